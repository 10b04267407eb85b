/// @file
/// @brief `switchboard::inbox_store`: where a router keeps the direct messages of users who are
/// offline, or not yet acknowledged, and the set of users it knows. The interface; the bounded
/// in-memory implementation is `memory_inbox` (memory_inbox.hpp).
#pragma once

#include "names.hpp"
#include "status.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

namespace switchboard {

/// @brief One stored direct message, owning its bytes (what a durable store hands
/// `memory_inbox::restore_user()`, or a copy kept from a visit: `stored_message_view::owned()`).
struct stored_message {
    std::uint64_t seq = 0;     ///< The recipient user's sequence number: 1, 2, 3, ...
    std::string from;          ///< Folded name of the sender.
    std::string text;          ///< The message text (text.hpp contract).
    std::int64_t stored_ms = 0; ///< Unix time in ms when it was stored (for the TTL).
};

/// @brief One stored direct message as a store shows it to a visitor (`inbox_store::for_each()`):
/// the sender and the text are views into the store, valid only during that call, so a store can
/// keep a message's bytes where it likes (`memory_inbox` keeps short ones inside the message's
/// ring slot) and a visit copies nothing. Keep a copy with `owned()`.
struct stored_message_view {
    std::uint64_t seq = 0;      ///< The recipient user's sequence number: 1, 2, 3, ...
    std::string_view from;      ///< Folded name of the sender.
    std::string_view text;      ///< The message text (text.hpp contract).
    std::int64_t stored_ms = 0; ///< Unix time in ms when it was stored (for the TTL).

    /// @brief A copy that owns its bytes (outlives the visit).
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] stored_message owned() const { return {seq, std::string(from), std::string(text), stored_ms}; }
};

/// @brief One de-duplication record: a sender's client id and the outcome of its first send
/// (`router::send()`, router_options::dedup_window).
struct sent_record {
    std::uint64_t key = 0;    ///< The client id's 64-bit hash (as the router computes it).
    std::int64_t at_ms = 0;   ///< Unix time in ms of the first send (the window's TTL runs from it).
    std::uint64_t seq = 0;    ///< The recipient's sequence number, 0 when the message was not stored.
    bool queued = false;      ///< The outcome was `queued` (else `delivered`).
};

/// @brief Outcome of `inbox_store::append()`.
struct append_result {
    status code = status::ok; ///< `ok` (stored), `inbox_full`, `user_not_found` (not a known
                              ///< user) or `store_busy`.
    std::uint64_t seq = 0;    ///< The sequence number given to the message when `code` is `ok`;
                              ///< 0 when a shared store gives it at commit (see `inbox_store`,
                              ///< "Sequence numbers").
};

/// @brief The identity of one direct message across the nodes of a cluster: the incarnation of
/// the node where it was sent (`redis::backplane::incarnation()`, random and not 0) and a
/// counter of that incarnation. Several nodes that hold sessions of the recipient each receive
/// the message with the same key, so a shared store stores it once (`inbox_store::append_once()`).
/// An empty key (both 0) names no message.
struct message_key {
    std::uint64_t origin = 0; ///< The sending node's incarnation; 0: no key.
    std::uint64_t serial = 0; ///< The message's number among those sent by that incarnation.

    /// @brief True when the key names no message (both parts 0).
    [[nodiscard]] constexpr bool empty() const noexcept { return origin == 0 && serial == 0; }
};

/// @brief Storage of the offline inbox and of acknowledgements (docs/design.md, "Offline inbox
/// and acknowledgements"); the router calls it, never the network.
///
/// Decisions are synchronous, durability may be asynchronous: `append()` decides at once whether
/// the message is taken (and its sequence number), from state the store keeps in memory (counts,
/// sequence numbers, the known users), and reports through `on_durable` whether it would survive a
/// restart — before returning for a store that has nothing more to do (`memory_inbox`), or later,
/// from the host's serialisation, for a store that commits in batches on its own thread (the
/// SQLite store, issue #12). So the routing path never waits for a disk. The same holds for
/// `record_sent()`. `acknowledge()` decides at once too; a durable store makes the removal
/// durable later, and one lost in a crash only means the message is delivered again.
///
/// Completion contract (`durable_handler`): called exactly once for each `append()` that returned
/// `ok` (never for a refused one) and for each `record_sent()`, in the order of the calls, with
/// - `ok`: durable;
/// - `store_busy`, `store_full` or `store_failed` (status.hpp): the commit failed, so the message
///   (or record) is not stored. The store has already removed it from its view (`for_each()`,
///   `stored()`) when the handler runs, and its sequence number is not given again.
/// - `user_not_found`, `inbox_full` or `cluster_unavailable`: only from a store shared by several
///   routers (the cluster inbox, redis/redis_inbox.hpp), which decides at commit: the user is not
///   known, its inbox is full, or the shared store could not be reached. Not stored either.
///
/// Sequence numbers: per recipient user, 1, 2, 3, ... in the order stored, never reused while the
/// store lives, nor across restarts for a durable store (a store that forgets a user to stay
/// within its bounds starts that user above every number it has given anyone, so a number is never
/// given twice). Without failed commits they have no gaps. A store shared by several routers
/// (redis/redis_inbox.hpp) may answer `append()` with `ok` and sequence number 0 for a user with
/// no session on this router: the number is given when the shared store commits, and this
/// router never shows it (no session of the user is here to receive it); for a user with a
/// session here it gives the number at once, as every other store.
///
/// De-duplication records (`sent_record`) let the router's `send()` answer a client's retry with
/// the first outcome after a restart: a store keeps, per sender, the records it was given, within
/// the router's window and TTL. The default implementations keep nothing (a store that does not
/// outlive the router needs nothing beyond the router's own window).
///
/// Thread safety: called only under the router's serialisation.
class inbox_store {
public:
    /// @brief Reports whether an appended message (or a de-duplication record) became durable:
    /// `ok`, or why it did not (`store_busy`, `store_full`, `store_failed`); see the class comment.
    using durable_handler = std::function<void(status)>;

    virtual ~inbox_store() = default;

    /// @brief True when every `append()` and `record_sent()` of this store is durable when it
    /// returns `ok` (`memory_inbox`): the caller may then pass no `on_durable` and wait for
    /// nothing. The default is false (a store that commits later).
    [[nodiscard]] virtual bool completes_at_once() const noexcept { return false; }

    /// @brief True when `user` is a known user: one that registered since the store was created,
    /// or was declared by the host. Only known users get messages stored while offline.
    /// @param user a folded name.
    [[nodiscard]] virtual bool is_known(const name& user) const = 0;

    /// @brief Records that `user` registered (idempotent). A store at its bound of known users
    /// may forget another user with nothing stored, or decline (the user then stays unknown).
    /// @param user a folded name.
    /// @throws std::bad_alloc when memory runs out.
    virtual void remember(const name& user) = 0;

    /// @brief Stores a direct message for `user` under its next sequence number.
    /// @param user the recipient, a folded name.
    /// @param from the sender's folded name.
    /// @param text the text (already checked against the text contract).
    /// @param now_ms Unix time in ms (the TTL runs from it).
    /// @param on_durable see the class comment (completion contract); may be empty.
    /// @param sent_key when not 0, the sender's de-duplication record for this client-id hash is
    ///        stored with the message, in the same transaction: `{sent_key, now_ms, seq, true}`
    ///        (a later `record_sent()` with the same key may update its outcome). A store that
    ///        keeps no records ignores it.
    /// @return `ok` with the sequence number; `user_not_found` when `user` is not known;
    ///         `inbox_full` when the user's count or the store's byte bound is reached;
    ///         `store_busy` when the store cannot take it now (its queue of uncommitted work is
    ///         full); `store_full` or `store_failed` when a durable store already knows its
    ///         database cannot take writes; `store_failed` also when the user's sequence numbers
    ///         are used up (a store that keeps them in fewer than 64 bits, `sqlite_inbox::max_seq`:
    ///         a number is never wrapped or given twice). Nothing is stored unless `ok`.
    /// @throws std::bad_alloc when memory runs out.
    virtual append_result append(const name& user, std::string_view from, std::string_view text,
                                 std::int64_t now_ms, durable_handler on_durable,
                                 std::uint64_t sent_key = 0) = 0;

    /// @brief Stores the message named `key` for `user` once, however many nodes of a cluster
    /// call it for that message (each holding a session of the user received it): the first call
    /// gives it the user's next sequence number, the others find that number. The router calls
    /// it for a message another node routed here with a key (`router::deliver_remote()`). The
    /// default, for a store that is not shared, is `append(user, from, text, now_ms, on_durable)`.
    /// @param user the recipient, a folded name.
    /// @param key the message's identity; not empty.
    /// @param from the sender's folded name.
    /// @param text the text (already checked against the text contract).
    /// @param now_ms Unix time in ms (the TTL runs from it).
    /// @param on_durable see the class comment (completion contract); may be empty.
    /// @return as `append()`; a shared store answers `ok` with sequence number 0 and makes the
    ///         message (and any other message of the user it did not show yet) visible to
    ///         `for_each()` before `on_durable` runs.
    /// @throws std::bad_alloc when memory runs out.
    virtual append_result append_once(const name& user, const message_key& key, std::string_view from,
                                      std::string_view text, std::int64_t now_ms, durable_handler on_durable) {
        (void)key;
        return append(user, from, text, now_ms, std::move(on_durable));
    }

    /// @brief Stores (or replaces, by key) a de-duplication record of `sender`; the default keeps
    /// nothing and reports `ok` at once.
    /// @param sender the sending user's folded name.
    /// @param record the record; its `key` is not 0.
    /// @param on_durable see the class comment (completion contract); may be empty.
    /// @throws std::bad_alloc when memory runs out.
    virtual void record_sent(const name& sender, const sent_record& record, durable_handler on_durable) {
        (void)sender;
        (void)record;
        if (on_durable) on_durable(status::ok);
    }

    /// @brief Calls `visit` with each de-duplication record kept for `sender`, oldest first (the
    /// router reloads a sender's window from it after a restart); the default keeps none.
    /// @param sender a folded name.
    /// @param visit called once per record; it must not call back into the store.
    /// @throws std::bad_alloc when memory runs out.
    virtual void for_each_sent(const name& sender, const std::function<void(const sent_record&)>& visit) const {
        (void)sender;
        (void)visit;
    }

    /// @brief Removes every stored message of `user` with sequence number ≤ `through`
    /// (a cumulative acknowledgement). Acknowledging again is a no-op.
    /// @param user a folded name.
    /// @param through 1 or more.
    /// @return `ok`; `ack_invalid` when `through` is 0 or above `highest_seq(user)` (nothing
    ///         removed).
    virtual status acknowledge(const name& user, std::uint64_t through) = 0;

    /// @brief The highest sequence number given to `user`'s messages (0 when none).
    /// @param user a folded name.
    [[nodiscard]] virtual std::uint64_t highest_seq(const name& user) const = 0;

    /// @brief Number of messages stored for `user`.
    /// @param user a folded name.
    [[nodiscard]] virtual std::size_t stored(const name& user) const = 0;

    /// @brief Calls `visit` with each stored message of `user` whose sequence number is above
    /// `after`, in sequence order, until `visit` returns false.
    /// @param user a folded name.
    /// @param after 0 for every message.
    /// @param visit called once per message, with views valid during the call only
    ///        (`stored_message_view`); it must not call back into the store.
    /// @throws std::bad_alloc when memory runs out.
    virtual void for_each(const name& user, std::uint64_t after,
                          const std::function<bool(const stored_message_view&)>& visit) const = 0;

    /// @brief Calls `visit` with every stored message of `user`, in sequence order.
    /// @param user a folded name.
    /// @param visit called once per message, with views valid during the call only; it must not
    ///        call back into the store.
    /// @throws std::bad_alloc when memory runs out.
    void for_each(const name& user, const std::function<void(const stored_message_view&)>& visit) const {
        for_each(user, 0, [&](const stored_message_view& m) {
            visit(m);
            return true;
        });
    }

    /// @brief The lowest sequence number stored for `user`; 0 when nothing is stored.
    /// @param user a folded name.
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] std::uint64_t first_seq(const name& user) const {
        std::uint64_t first = 0;
        for_each(user, 0, [&](const stored_message_view& m) {
            first = m.seq;
            return false;
        });
        return first;
    }

    /// @brief Removes every stored message of `user` (at-most-once replay: after `for_each`).
    /// @param user a folded name.
    virtual void remove_all(const name& user) = 0;

    /// @brief Drops messages stored longer ago than the store's TTL.
    /// @param now_ms Unix time in ms.
    /// @return how many messages were dropped.
    virtual std::size_t expire(std::int64_t now_ms) = 0;
};

} // namespace switchboard
