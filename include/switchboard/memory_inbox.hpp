/// @file
/// @brief `switchboard::memory_inbox`: the bounded in-memory `inbox_store` (lost on restart;
/// the SQLite store of issue #12 is the durable one).
#pragma once

#include "inbox_store.hpp"
#include "names.hpp"
#include "status.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace switchboard {

/// @brief Bounds of a `memory_inbox` (docs/security.md, "Limits").
struct memory_inbox_options {
    /// @brief Messages stored per user (1 or more; default 1000, `--inbox-max`). One more is
    /// `status::inbox_full`.
    std::size_t max_per_user = 1000;
    /// @brief How long a message stays stored (default 7 days, `--inbox-ttl`); older ones are
    /// dropped by `expire()`. 0 keeps nothing past the next `expire()`.
    std::chrono::seconds ttl{604800};
    /// @brief Bytes all stored messages may take together, counted as sender + text +
    /// `message_overhead` each (default 256 MiB). Past it, `append()` is `inbox_full`.
    std::size_t max_bytes = std::size_t{256} << 20;
    /// @brief Users the store knows at most (default 100,000). At the bound, registering a new
    /// user forgets the known user that has had nothing stored for the longest; when every known
    /// user has messages stored, the new user stays unknown (messages to it while offline are
    /// `user_not_found`). Each known user costs about 160 bytes.
    std::size_t max_known_users = 100000;
};

/// @brief The in-memory inbox store: per-user FIFO of messages, with a per-user count, a TTL,
/// a global byte bound and a bounded set of known users (see `memory_inbox_options`).
///
/// Every call completes before it returns; `append()` calls `on_durable` before returning (a
/// memory store is as durable as it gets). Memory: at most `max_bytes` of messages plus about
/// 160 bytes per known user plus 24 bytes per message in the expiry order.
///
/// Thread safety: none; the router's serialisation covers it (see `inbox_store`).
class memory_inbox final : public inbox_store {
public:
    /// @brief What each stored message costs beyond its sender and text bytes, counted against
    /// `max_bytes` (its `stored_message`, deque slot and string headers).
    static constexpr std::size_t message_overhead = 96;

    /// @brief An empty store.
    /// @param options bounds; read at construction.
    explicit memory_inbox(memory_inbox_options options = {})
        : max_per_user_(std::max<std::size_t>(options.max_per_user, 1)),
          ttl_ms_(static_cast<std::int64_t>(options.ttl.count()) * 1000), max_bytes_(options.max_bytes),
          max_known_(std::max<std::size_t>(options.max_known_users, 1)) {}

    [[nodiscard]] bool is_known(const name& user) const override { return users_.count(user) != 0; }

    void remember(const name& user) override {
        if (users_.count(user) != 0) return;
        if (users_.size() >= max_known_ && !forget_one()) return;
        box& b = users_[user];
        b.next_seq = forgot_any_ ? highest_given_ + 1 : 1;
        idle_.push_back(user);
    }

    append_result append(const name& user, std::string_view from, std::string_view text, std::int64_t now_ms,
                         durable_handler on_durable) override {
        const auto it = users_.find(user);
        if (it == users_.end()) return {status::user_not_found, 0};
        box& b = it->second;
        const std::size_t cost = from.size() + text.size() + message_overhead;
        if (b.messages.size() >= max_per_user_ || bytes_ + cost > max_bytes_) return {status::inbox_full, 0};
        const std::uint64_t seq = b.next_seq++;
        highest_given_ = std::max(highest_given_, seq);
        b.messages.push_back(stored_message{seq, std::string(from), std::string(text), now_ms});
        bytes_ += cost;
        ++count_;
        expiry_.push_back(expiry_entry{user, seq, now_ms});
        if (on_durable) on_durable();
        return {status::ok, seq};
    }

    status acknowledge(const name& user, std::uint64_t through) override {
        const auto it = users_.find(user);
        if (it == users_.end() || through == 0 || through >= it->second.next_seq) return status::ack_invalid;
        box& b = it->second;
        while (!b.messages.empty() && b.messages.front().seq <= through) pop_front(user, b);
        return status::ok;
    }

    [[nodiscard]] std::uint64_t highest_seq(const name& user) const override {
        const auto it = users_.find(user);
        return it == users_.end() ? 0 : it->second.next_seq - 1;
    }

    [[nodiscard]] std::size_t stored(const name& user) const override {
        const auto it = users_.find(user);
        return it == users_.end() ? 0 : it->second.messages.size();
    }

    void for_each(const name& user, const std::function<void(const stored_message&)>& visit) const override {
        const auto it = users_.find(user);
        if (it == users_.end()) return;
        for (const stored_message& m : it->second.messages) visit(m);
    }

    void remove_all(const name& user) override {
        const auto it = users_.find(user);
        if (it == users_.end()) return;
        while (!it->second.messages.empty()) pop_front(user, it->second);
    }

    std::size_t expire(std::int64_t now_ms) override {
        std::size_t dropped = 0;
        while (!expiry_.empty() && now_ms - expiry_.front().stored_ms >= ttl_ms_) {
            const expiry_entry e = expiry_.front();
            expiry_.pop_front();
            const auto it = users_.find(e.user);
            if (it == users_.end()) continue;
            box& b = it->second;
            // Messages of a user leave in seq order (acknowledged or expired), so the one this
            // entry names is at the front or gone already.
            if (!b.messages.empty() && b.messages.front().seq == e.seq) {
                pop_front(e.user, b);
                ++dropped;
            }
        }
        // Entries of acknowledged messages wait for their TTL; compact when they dominate.
        if (expiry_.size() > 2 * count_ + 1024) compact_expiry();
        return dropped;
    }

    /// @brief Messages stored in all inboxes.
    [[nodiscard]] std::size_t message_count() const noexcept { return count_; }
    /// @brief Bytes counted against `memory_inbox_options::max_bytes`.
    [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }
    /// @brief Known users.
    [[nodiscard]] std::size_t known_users() const noexcept { return users_.size(); }

private:
    struct box {
        std::uint64_t next_seq = 1;
        std::deque<stored_message> messages;
    };
    struct expiry_entry {
        name user;
        std::uint64_t seq;
        std::int64_t stored_ms;
    };

    void pop_front(const name& user, box& b) {
        const stored_message& m = b.messages.front();
        bytes_ -= m.from.size() + m.text.size() + message_overhead;
        --count_;
        b.messages.pop_front();
        if (b.messages.empty()) {
            b.messages.shrink_to_fit();
            idle_.push_back(user);
        }
    }

    // Forgets the known user whose inbox has been empty the longest; false when none is empty.
    bool forget_one() {
        if (idle_.size() > 2 * users_.size() + 1024) compact_idle();
        while (!idle_.empty()) {
            const name n = idle_.front();
            idle_.pop_front();
            const auto it = users_.find(n);
            if (it == users_.end() || !it->second.messages.empty()) continue; // stale entry
            users_.erase(it);
            forgot_any_ = true;
            return true;
        }
        return false;
    }

    void compact_idle() {
        std::deque<name> kept;
        std::unordered_set<name, name_hash> seen;
        for (const name& n : idle_) {
            const auto it = users_.find(n);
            if (it != users_.end() && it->second.messages.empty() && seen.insert(n).second) kept.push_back(n);
        }
        idle_ = std::move(kept);
    }

    void compact_expiry() {
        std::deque<expiry_entry> kept;
        for (const expiry_entry& e : expiry_) {
            const auto it = users_.find(e.user);
            if (it == users_.end() || it->second.messages.empty()) continue;
            if (e.seq >= it->second.messages.front().seq) kept.push_back(e);
        }
        expiry_ = std::move(kept);
    }

    std::size_t max_per_user_;
    std::int64_t ttl_ms_;
    std::size_t max_bytes_;
    std::size_t max_known_;
    std::size_t bytes_ = 0;
    std::size_t count_ = 0;
    std::uint64_t highest_given_ = 0;
    bool forgot_any_ = false;
    std::unordered_map<name, box, name_hash> users_;
    std::deque<name> idle_;           // known users in the order their inbox became empty (lazy)
    std::deque<expiry_entry> expiry_; // stored messages in the order stored (lazy)
};

} // namespace switchboard
