/// @file
/// @brief `switchboard::memory_inbox`: the bounded in-memory `inbox_store` (lost on restart;
/// the durable one, `sqlite_inbox` in sqlite/sqlite_inbox.hpp, keeps one as its view).
#pragma once

#include "config.hpp"
#include "inbox_store.hpp"
#include "names.hpp"
#include "status.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <list>
#include <memory>
#include <queue>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace switchboard {

/// @brief Bounds of a `memory_inbox` (docs/security.md, "Limits").
struct memory_inbox_options {
    /// @brief Messages stored per user (1 or more; default 1000, `--inbox-max`). One more is
    /// `status::inbox_full`.
    std::size_t max_per_user = 1000;
    /// @brief How long a message stays stored (default 7 days, `--inbox-ttl`); older ones are
    /// dropped by `expire()`. 0 keeps nothing past the next `expire()`.
    std::chrono::seconds ttl{604800};
    /// @brief Bytes all stored messages may take together, each counted as
    /// `memory_inbox::cost()`: its ring slot, plus its heap block when its sender and text do not
    /// fit in the slot (default 256 MiB). Past it, `append()` is `inbox_full`.
    std::size_t max_bytes = std::size_t{256} << 20;
    /// @brief Users the store knows at most (default 100,000). At the bound, registering a new
    /// user forgets the known user that has had nothing stored for the longest; when every known
    /// user has messages stored, the new user stays unknown (messages to it while offline are
    /// `user_not_found`). Each known user costs about 200 bytes.
    std::size_t max_known_users = 100000;
};

/// @brief The in-memory inbox store: per-user FIFO of messages, with a per-user count, a TTL,
/// a global byte bound and a bounded set of known users (see `memory_inbox_options`).
///
/// Every call completes before it returns; `append()` calls `on_durable` with `ok` before
/// returning (a memory store is as durable as it gets) and keeps no de-duplication records (the
/// router's own window is as long-lived as the store). Memory: about `max_bytes` for the messages (their
/// bookkeeping included, see `cost()`) plus about 200 bytes per known user; an inbox
/// that empties keeps its ring until the next `expire()` (the router's tick), so that one that
/// fills again at once does not grow it again.
///
/// A message lives in one `slot_bytes` slot of its user's ring, its sender and text bytes inside
/// the slot when together they take at most `inline_bytes` (a typical chat line: storing and
/// acknowledging it allocates nothing), else in one heap block of their own.
///
/// Thread safety: none; the router's serialisation covers it (see `inbox_store`).
class memory_inbox final : public inbox_store {
public:
    /// @brief The bytes of a message's ring slot: its bookkeeping (32 bytes) and `inline_bytes`.
    /// A ring's capacity is a power of two, so just after it grew it holds up to twice the slots
    /// its messages use (an inbox that empties frees its ring at the next `expire()`).
    static constexpr std::size_t slot_bytes = 128;
    /// @brief Sender and text bytes kept inside the slot (together at most this many); a longer
    /// message's go to one heap block.
    static constexpr std::size_t inline_bytes = 96;
    /// @brief What a heap block costs beyond its bytes: the allocator's header and rounding.
    static constexpr std::size_t heap_overhead = 16;
    /// @brief Sender and text bytes one message may have together (their sizes are kept in 32
    /// bits); a longer one is `inbox_full`.
    static constexpr std::size_t max_message_bytes = 0xffffffffu;

    /// @brief What one message counts against `memory_inbox_options::max_bytes`: its slot, plus
    /// `from_size + text_size + heap_overhead` when those bytes do not fit in the slot. Not
    /// counted: a ring's unused slots (1,000 messages in a ring of 1,024 slots take 131 bytes
    /// each, against 128 counted) and the allocator's rounding beyond `heap_overhead`.
    /// @param from_size the sender's bytes.
    /// @param text_size the text's bytes.
    [[nodiscard]] static constexpr std::size_t cost(std::size_t from_size, std::size_t text_size) noexcept {
        const std::size_t n = from_size + text_size;
        return n <= inline_bytes ? slot_bytes : slot_bytes + n + heap_overhead;
    }

    /// @brief An empty store.
    /// @param options bounds; read at construction.
    explicit memory_inbox(memory_inbox_options options = {})
        : max_per_user_(std::max<std::size_t>(options.max_per_user, 1)),
          ttl_ms_(std::chrono::duration_cast<std::chrono::milliseconds>(options.ttl).count()), max_bytes_(options.max_bytes),
          max_known_(std::max<std::size_t>(options.max_known_users, 1)) {}

    /// @brief True: an `ok` append is as durable as this store gets when it returns.
    [[nodiscard]] bool completes_at_once() const noexcept override { return true; }

    [[nodiscard]] bool is_known(const name& user) const override { return users_.count(user) != 0; }

    /// @brief What `admit()` changed, for a store that mirrors this one in a database
    /// (sqlite/sqlite_inbox.hpp).
    struct admit_result {
        bool added = false; ///< `user` was not known and now is.
        name forgotten;     ///< The known user forgotten to make room for it; empty when none.
    };

    /// @brief `remember()`, reporting what changed: whether `user` became known, and which user
    /// was forgotten for it (at `memory_inbox_options::max_known_users`, the one whose inbox has
    /// been empty the longest).
    /// @param user a folded name.
    /// @return `added` false when `user` was known already, or stays unknown because every known
    ///         user has messages stored; `forgotten` set only when `added` is true and a user was
    ///         forgotten.
    /// @throws std::bad_alloc when memory runs out.
    admit_result admit(const name& user) {
        admit_result r;
        if (users_.count(user) != 0) return r;
        if (users_.size() >= max_known_) {
            if (idle_.empty()) return r;
            r.forgotten = idle_.front();
            forget_one();
        }
        box& b = users_[user];
        b.next_seq = forgot_any_ ? highest_given_ + 1 : 1;
        b.idle = idle_.insert(idle_.end(), user);
        r.added = true;
        return r;
    }

    void remember(const name& user) override { (void)admit(user); }

    /// @brief Restores a known user with its stored messages, as a durable store found them at
    /// start-up. The bounds are not applied: what was stored stays stored (a smaller
    /// `max_per_user` or `max_bytes` than before refuses new messages until enough are
    /// acknowledged or expire; a smaller `max_known_users` is reached again by forgetting idle
    /// users one per `remember()`).
    /// @param user a folded name that is not known yet (checked with `SWITCHBOARD_ASSERT`).
    /// @param highest_seq the highest sequence number ever given to `user` (its next message gets
    ///        the number above it, or above the highest one in `messages` when that is higher).
    /// @param messages the user's stored messages, in strictly increasing sequence order
    ///        (checked with `SWITCHBOARD_ASSERT`), none with sequence number 0.
    /// @throws std::bad_alloc when memory runs out.
    void restore_user(const name& user, std::uint64_t highest_seq, const std::vector<stored_message>& messages) {
        SWITCHBOARD_ASSERT(users_.count(user) == 0, "memory_inbox::restore_user: the user is known already");
        box& b = users_[user];
        std::uint64_t last = 0;
        b.messages.reserve(messages.size());
        for (const stored_message& m : messages) {
            SWITCHBOARD_ASSERT(m.seq > last, "memory_inbox::restore_user: messages out of sequence order");
            SWITCHBOARD_ASSERT(m.from.size() + m.text.size() <= max_message_bytes,
                               "memory_inbox::restore_user: a message longer than max_message_bytes");
            last = m.seq;
            b.messages.push_back(m.seq, m.from, m.text, m.stored_ms, ++appended_);
            bytes_ += cost(m.from.size(), m.text.size());
        }
        count_ += b.messages.size();
        b.next_seq = std::max(highest_seq, last) + 1;
        highest_given_ = std::max(highest_given_, b.next_seq - 1);
        if (b.empty()) {
            b.idle = idle_.insert(idle_.end(), user);
        } else {
            b.idle = idle_.end();
            ++non_empty_;
            track_front(user, b);
        }
    }

    /// @brief Restores the store-wide sequence state a durable store persisted: the highest
    /// sequence number given to anyone, and whether a user was ever forgotten (a user remembered
    /// after that starts above `highest_given`, so no number is given twice; see `inbox_store`).
    /// Raises, never lowers, what the store already holds.
    /// @param highest_given the highest sequence number given to any user so far.
    /// @param forgot_any true when the store has forgotten a user since it was created.
    void restore_high_water(std::uint64_t highest_given, bool forgot_any) noexcept {
        highest_given_ = std::max(highest_given_, highest_given);
        forgot_any_ = forgot_any_ || forgot_any;
    }

    /// @brief Bounds the sequence numbers this store gives, for a durable store that keeps them in
    /// fewer than 64 bits (`sqlite_inbox`: SQLite's signed 64-bit integers). An `append()` for a
    /// user whose next number would be above `max_seq` is `status::store_failed` and stores
    /// nothing, so a number is never wrapped. Lowers, never raises, the bound (default: none).
    /// @param max_seq the highest sequence number the store may give, 1 or more.
    void limit_seq(std::uint64_t max_seq) noexcept { max_seq_ = std::min(max_seq_, max_seq); }

    /// @brief The highest sequence number given to any user so far (0 when none); see
    /// `restore_high_water()`.
    [[nodiscard]] std::uint64_t highest_given() const noexcept { return highest_given_; }
    /// @brief True once the store has forgotten a known user to stay within `max_known_users`.
    [[nodiscard]] bool forgot_any() const noexcept { return forgot_any_; }

    /// @brief Removes one stored message, wherever it is in its user's inbox: a durable store
    /// removes a message whose commit failed (the `inbox_store` completion contract). Its
    /// sequence number is not given again.
    /// @param user a folded name.
    /// @param seq the message's sequence number.
    /// @return true when it was stored and is now removed; false when it is not stored (already
    ///         acknowledged, expired or removed, or never stored).
    bool remove_one(const name& user, std::uint64_t seq) {
        const auto it = users_.find(user);
        if (it == users_.end()) return false;
        box& b = it->second;
        const std::size_t i = b.messages.upper_bound(seq - 1);
        if (i == b.messages.size() || b.messages[i].seq != seq) return false;
        if (i == 0) { // the front: its expiry entry goes stale, the next front gets one
            pop_front(user, b);
            track_front(user, b);
            return true;
        }
        bytes_ -= b.messages[i].cost();
        --count_;
        b.messages.erase(i);
        return true;
    }

    /// @brief `inbox_store::append()`: `on_durable(ok)` runs before it returns.
    /// @return as `inbox_store::append()`; `store_failed` when the user's next number is above
    ///         the bound of `limit_seq()` (never without it).
    append_result append(const name& user, std::string_view from, std::string_view text, std::int64_t now_ms,
                         durable_handler on_durable, std::uint64_t /*sent_key*/ = 0) override {
        const auto it = users_.find(user);
        if (it == users_.end()) return {status::user_not_found, 0};
        box& b = it->second;
        if (b.next_seq > max_seq_) return {status::store_failed, 0}; // its numbers are used up: limit_seq()
        const std::size_t c = cost(from.size(), text.size());
        if (b.size() >= max_per_user_ || bytes_ + c > max_bytes_ || from.size() + text.size() > max_message_bytes)
            return {status::inbox_full, 0};
        const std::uint64_t seq = b.next_seq;
        b.messages.push_back(seq, from, text, now_ms, appended_ + 1); // may throw: nothing changed yet
        ++b.next_seq;
        ++appended_;
        highest_given_ = std::max(highest_given_, seq);
        bytes_ += c;
        ++count_;
        if (b.size() == 1) {
            ++non_empty_;
            idle_.erase(b.idle); // not forgettable while something is stored
            b.idle = idle_.end();
            track_front(user, b);
        }
        if (on_durable) on_durable(status::ok);
        return {status::ok, seq};
    }

    status acknowledge(const name& user, std::uint64_t through) override {
        const auto it = users_.find(user);
        if (it == users_.end() || through == 0 || through >= it->second.next_seq) return status::ack_invalid;
        box& b = it->second;
        if (b.empty() || b.front().seq > through) return status::ok;
        while (!b.empty() && b.front().seq <= through) pop_front(user, b);
        track_front(user, b);
        return status::ok;
    }

    [[nodiscard]] std::uint64_t highest_seq(const name& user) const override {
        const auto it = users_.find(user);
        return it == users_.end() ? 0 : it->second.next_seq - 1;
    }

    [[nodiscard]] std::size_t stored(const name& user) const override {
        const auto it = users_.find(user);
        return it == users_.end() ? 0 : it->second.size();
    }

    using inbox_store::for_each;

    void for_each(const name& user, std::uint64_t after,
                  const std::function<bool(const stored_message_view&)>& visit) const override {
        const auto it = users_.find(user);
        if (it == users_.end()) return;
        const box& b = it->second;
        for (std::size_t i = b.messages.upper_bound(after); i < b.messages.size(); ++i)
            if (!visit(b.messages[i].view())) return;
    }

    void remove_all(const name& user) override {
        const auto it = users_.find(user);
        if (it == users_.end()) return;
        while (!it->second.empty()) pop_front(user, it->second);
    }

    std::size_t expire(std::int64_t now_ms) override { return expire(now_ms, {}); }

    /// @brief `expire()`, reporting each message it drops, for a store that mirrors this one in
    /// a database. Messages leave each inbox from its front, so every message of `user` with a
    /// sequence number up to the one reported is gone.
    /// @param now_ms Unix time in ms.
    /// @param dropped called with the user and the sequence number of each dropped message, in
    ///        the order they are dropped; may be empty. It must not call back into the store.
    /// @return how many messages were dropped.
    std::size_t expire(std::int64_t now_ms, const std::function<void(const name&, std::uint64_t)>& dropped) {
        trim();
        std::size_t count = 0;
        while (!expiry_.empty() && now_ms - expiry_.top().stored_ms >= ttl_ms_) {
            const expiry_entry e = expiry_.top();
            expiry_.pop();
            const auto it = users_.find(e.user);
            if (it == users_.end()) continue;
            box& b = it->second;
            if (b.empty() || b.front().seq != e.seq) continue; // that front left meanwhile
            // One message at a time, so that messages leave in the order they were stored (which
            // inbox empties first decides which known user is forgotten first).
            pop_front(e.user, b);
            ++count;
            if (dropped) dropped(e.user, e.seq);
            track_front(e.user, b);
        }
        // Entries of fronts that left (acknowledged) wait for their time; rebuild when they dominate.
        if (expiry_.size() > 2 * non_empty_ + 1024) rebuild_expiry();
        return count;
    }

    /// @brief Messages stored in all inboxes.
    [[nodiscard]] std::size_t message_count() const noexcept { return count_; }
    /// @brief Bytes counted against `memory_inbox_options::max_bytes`.
    [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }
    /// @brief Known users.
    [[nodiscard]] std::size_t known_users() const noexcept { return users_.size(); }

private:
    // A stored message in its ring slot. The sender's bytes, then the text's, are inside the
    // slot when together they fit in inline_bytes, else in a heap block the slot owns (the fifo
    // frees it when the message leaves). Trivially copyable: the ring moves slots as bytes.
    struct item {
        std::uint64_t seq;
        std::int64_t stored_ms;
        std::uint64_t order; // appended_ when stored: ties of the expiry order go by it
        std::uint32_t from_size;
        std::uint32_t text_size;
        union {
            char local[inline_bytes];
            char* heap;
        } bytes;
        [[nodiscard]] std::size_t size() const noexcept { return std::size_t{from_size} + text_size; }
        [[nodiscard]] bool on_heap() const noexcept { return size() > inline_bytes; }
        [[nodiscard]] const char* data() const noexcept { return on_heap() ? bytes.heap : bytes.local; }
        [[nodiscard]] std::size_t cost() const noexcept { return memory_inbox::cost(from_size, text_size); }
        [[nodiscard]] stored_message_view view() const noexcept {
            const char* p = data();
            return {seq, {p, from_size}, {p + from_size, text_size}, stored_ms};
        }
    };
    static_assert(sizeof(item) == slot_bytes, "slot_bytes is what a slot takes");
    static_assert(std::is_trivially_copyable<item>::value, "the ring moves slots as bytes");

    // A user's messages in sequence order: a ring whose capacity is a power of two, so taking
    // from the front never moves the rest, and adding at the back moves them only to grow. Its
    // slots are raw storage: a message is written into its slot, and its heap block (if any)
    // freed when it leaves.
    class fifo {
    public:
        fifo() noexcept = default;
        fifo(fifo&& o) noexcept
            : slots_(std::exchange(o.slots_, nullptr)), cap_(std::exchange(o.cap_, 0)), head_(std::exchange(o.head_, 0)),
              size_(std::exchange(o.size_, 0)) {}
        fifo& operator=(fifo&& o) noexcept {
            if (this != &o) {
                release();
                slots_ = std::exchange(o.slots_, nullptr);
                cap_ = std::exchange(o.cap_, 0);
                head_ = std::exchange(o.head_, 0);
                size_ = std::exchange(o.size_, 0);
            }
            return *this;
        }
        fifo(const fifo&) = delete;
        fifo& operator=(const fifo&) = delete;
        ~fifo() { release(); }

        [[nodiscard]] std::size_t size() const noexcept { return size_; }
        [[nodiscard]] item& operator[](std::size_t i) noexcept { return slots_[(head_ + i) & (cap_ - 1)]; }
        [[nodiscard]] const item& operator[](std::size_t i) const noexcept { return slots_[(head_ + i) & (cap_ - 1)]; }
        void reserve(std::size_t n) {
            if (n <= cap_) return;
            std::size_t cap = cap_ == 0 ? 4 : cap_;
            while (cap < n) cap *= 2;
            grow(cap);
        }
        // Adds a message at the back (from + text at most max_message_bytes). On bad_alloc
        // nothing is added.
        void push_back(std::uint64_t seq, std::string_view from, std::string_view text, std::int64_t stored_ms,
                       std::uint64_t order) {
            if (size_ == cap_) grow(cap_ == 0 ? 4 : 2 * std::size_t{cap_});
            item* const m = ::new (static_cast<void*>(&(*this)[size_])) item;
            m->seq = seq;
            m->stored_ms = stored_ms;
            m->order = order;
            m->from_size = static_cast<std::uint32_t>(from.size());
            m->text_size = static_cast<std::uint32_t>(text.size());
            char* out = m->bytes.local;
            if (m->on_heap()) out = m->bytes.heap = new char[m->size()];
            if (!from.empty()) std::memcpy(out, from.data(), from.size());
            if (!text.empty()) std::memcpy(out + from.size(), text.data(), text.size());
            ++size_;
        }
        void pop_front() noexcept {
            free_bytes(slots_[head_]);
            head_ = (head_ + 1) & (cap_ - 1);
            --size_;
        }
        void erase(std::size_t i) noexcept { // the one at i; the later ones move up
            free_bytes((*this)[i]);
            for (; i + 1 < size_; ++i) (*this)[i] = (*this)[i + 1];
            --size_;
        }
        void release() noexcept { // every message, and the storage
            while (size_ != 0) pop_front();
            std::allocator<item>().deallocate(slots_, cap_);
            slots_ = nullptr;
            cap_ = head_ = 0;
        }
        // The index of the first message whose sequence number is above `seq` (size() if none).
        [[nodiscard]] std::size_t upper_bound(std::uint64_t seq) const noexcept {
            std::size_t lo = 0, hi = size_;
            while (lo < hi) {
                const std::size_t mid = lo + (hi - lo) / 2;
                if ((*this)[mid].seq <= seq) lo = mid + 1;
                else hi = mid;
            }
            return lo;
        }

    private:
        static void free_bytes(item& m) noexcept {
            if (m.on_heap()) delete[] m.bytes.heap;
        }
        void grow(std::size_t cap) {
            item* fresh = std::allocator<item>().allocate(cap);
            for (std::size_t i = 0; i < size_; ++i) ::new (static_cast<void*>(fresh + i)) item((*this)[i]);
            std::allocator<item>().deallocate(slots_, cap_);
            slots_ = fresh;
            cap_ = static_cast<std::uint32_t>(cap);
            head_ = 0;
        }
        item* slots_ = nullptr;
        std::uint32_t cap_ = 0, head_ = 0, size_ = 0;
    };
    struct box {
        std::uint64_t next_seq = 1;
        std::list<name>::iterator idle; // its place in idle_ while nothing is stored
        fifo messages;
        [[nodiscard]] bool empty() const noexcept { return messages.size() == 0; }
        [[nodiscard]] std::size_t size() const noexcept { return messages.size(); }
        [[nodiscard]] const item& front() const noexcept { return messages[0]; }
        [[nodiscard]] std::uint64_t front_order() const noexcept { return messages[0].order; }
    };
    struct expiry_entry { // the front message of an inbox, when it became the front
        name user;
        std::uint64_t seq;
        std::int64_t stored_ms;
        std::uint64_t order;
        bool operator<(const expiry_entry& o) const noexcept { // a min-heap by time, then by order stored
            return stored_ms != o.stored_ms ? stored_ms > o.stored_ms : order > o.order;
        }
    };

    // The front of a user's inbox changed: its TTL is what expire() waits for next. One entry per
    // front, not per message: an acknowledgement of many messages costs one entry.
    void track_front(const name& user, const box& b) {
        if (!b.empty()) expiry_.push(expiry_entry{user, b.front().seq, b.front().stored_ms, b.front_order()});
    }

    void pop_front(const name& user, box& b) {
        bytes_ -= b.front().cost();
        --count_;
        b.messages.pop_front();
        if (b.empty()) {
            --non_empty_;
            b.idle = idle_.insert(idle_.end(), user); // empty since now: the newest of the idle
            // Its ring stays until the next expire() (the router's tick), so an inbox that
            // empties and fills again at once (acknowledgements keeping up) does not regrow it.
            if (trim_.size() >= max_trim) trim();
            trim_.push_back(user);
        }
    }

    // Frees the rings of the inboxes that emptied since the last call and are still empty.
    void trim() noexcept {
        for (const name& user : trim_) {
            const auto it = users_.find(user);
            if (it != users_.end() && it->second.empty()) it->second.messages.release();
        }
        trim_.clear();
    }

    // Forgets the known user whose inbox has been empty the longest; false when none is empty.
    bool forget_one() {
        if (idle_.empty()) return false;
        users_.erase(idle_.front());
        idle_.pop_front();
        forgot_any_ = true;
        return true;
    }

    void rebuild_expiry() {
        std::priority_queue<expiry_entry> fresh;
        for (const auto& entry : users_)
            if (!entry.second.empty())
                fresh.push(expiry_entry{entry.first, entry.second.front().seq, entry.second.front().stored_ms,
                                        entry.second.front_order()});
        expiry_ = std::move(fresh);
    }

    std::size_t max_per_user_;
    std::int64_t ttl_ms_;
    std::size_t max_bytes_;
    std::size_t max_known_;
    std::size_t bytes_ = 0;
    std::size_t count_ = 0;
    std::uint64_t highest_given_ = 0;
    std::uint64_t max_seq_ = std::numeric_limits<std::uint64_t>::max(); // limit_seq()
    bool forgot_any_ = false;
    std::unordered_map<name, box, name_hash> users_;
    std::list<name> idle_; // known users with nothing stored, in the order their inbox became empty
    std::size_t non_empty_ = 0;       // users with messages stored
    std::uint64_t appended_ = 0;      // messages ever stored (item::order)
    std::priority_queue<expiry_entry> expiry_; // inbox fronts by time stored (lazy: stale ones skipped)
    static constexpr std::size_t max_trim = 1024;
    std::vector<name> trim_; // inboxes emptied since the last trim(), their rings still allocated
};

} // namespace switchboard
