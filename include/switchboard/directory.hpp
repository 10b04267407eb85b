/// @file
/// @brief `switchboard::directory`: the hook through which a router that is one node of a
/// cluster asks the cluster before it gives a user name, tells it when a name is given up, and
/// hands it the room events that other nodes must see. The interface only; the Redis backplane
/// implements it (issue #14). The contract is docs/design.md, "Clusters: the directory hook and
/// remote sessions".
#pragma once

#include "event.hpp"
#include "inbox_store.hpp"
#include "names.hpp"
#include "payload.hpp"
#include "session_id.hpp"
#include "status.hpp"

#include <cstdint>
#include <functional>

namespace switchboard {

enum class session_policy : std::uint8_t; // router.hpp

/// @brief The cluster's directory of who holds which user name, as one router (one node) sees it
/// (`router_options::directory`; null, the default, is a single node: v1 behaviour).
///
/// The router calls it, under the host's serialisation, at four points:
/// - `claim()`: a local session asks for a name and passed every local check; the router returns
///   `status::pending` and the directory answers later with `router::claim_completed()`;
/// - `released()`: a local session that held a name gave it up (closed, replaced, taken over by a
///   remote session);
/// - `room_active()`: the first local member joined a room, or the last one left;
/// - `room_event()`: a room fan-out started on this node (for the other nodes' members).
///
/// and, for direct messages to users with sessions on other nodes, at two more:
/// - `message_key_for()`: a message stored here that those nodes store too (one key for all);
/// - `confirm()`: a `router::send()` answered only once another node handed the message.
///
/// Sessions held by other nodes appear in the router as remote sessions ("proxies",
/// `router::open_remote_session()`, `router::register_remote()`): they count for presence,
/// lookup and direct routing like local ones, and the router never reports them here.
///
/// Contract for implementers:
/// - No method may call back into the router: each records what it must do and does it later,
///   from the host's serialisation (an event loop turn, a Redis reply). In particular
///   `router::claim_completed()` is never called from inside `claim()`.
/// - Every `claim()` is answered exactly once (`router::claim_completed()` with its ticket),
///   even when the session closed meanwhile (the router then undoes an `ok` with `released()`).
/// - The directory is the authority: when it gives a name to a session of another node under
///   `exclusive` or `replace`, the node registers a remote session for it, and the router
///   replaces its own local holder.
///
/// Thread safety: called only under the router's serialisation; implementations synchronise
/// whatever they share with other threads (a Redis connection on another strand).
class directory {
public:
    directory() = default;
    directory(const directory&) = delete;
    directory& operator=(const directory&) = delete;
    virtual ~directory() = default;

    /// @brief A local session asks for `user` and passed every local check (a valid name, the
    /// authorizer, the policy against the sessions this router holds, remote ones included):
    /// ask the cluster. The router has returned `status::pending`; the session holds no name yet
    /// (commands that need one are refused as `not_registered`).
    /// @param user the folded name.
    /// @param s the local session asking.
    /// @param policy the router's `router_options::sessions`, for the cluster-wide decision.
    /// @param ticket to pass to `router::claim_completed()`, exactly once, later, from the
    ///        host's serialisation: `ok`, `name_taken`, `too_many_sessions` or
    ///        `cluster_unavailable`.
    virtual void claim(const name& user, session_id s, session_policy policy, std::uint64_t ticket) = 0;

    /// @brief A local session that held `user` gave it up: `router::close_session()`, a replace
    /// takeover, a remote session that took the name, or a claim answered `ok` for a session
    /// that was closed meanwhile (the claim is undone).
    /// @param user the folded name.
    /// @param s the local session.
    /// @param last_seen_ms the session's last input (`router::touch()`), Unix ms; -1 never.
    virtual void released(const name& user, session_id s, std::int64_t last_seen_ms) = 0;

    /// @brief The first local member joined `room` (`active` true) or the last local member left
    /// (`active` false): subscribe to, or unsubscribe from, the room's events of other nodes.
    /// Remote sessions never join rooms, so they never count here.
    /// @param room the folded room name.
    /// @param active see above.
    virtual void room_active(const name& room, bool active) = 0;

    /// @brief A fan-out that started on this node (`publish()`, a `member_joined` or a
    /// `member_left`), once per fan-out, after the local deliveries, with the event as it was
    /// encoded for the local members: publish it for the other nodes, which `router::relay()` it.
    /// Not called for `router::relay()` itself (the event came from another node).
    /// @param room the folded room name.
    /// @param e the event; its views are valid only during the call.
    virtual void room_event(const name& room, const event& e) = 0;

    /// @brief A direct message for `user` is about to be stored on this node while the user
    /// also has sessions on other nodes, whose transports are handed `remote_bytes` next (the
    /// same payload object for each of them): the key under which those transports send it, so
    /// that each node holding the user finds it stored once (`inbox_store::append_once()`,
    /// docs/cluster.md, "One user on several nodes"). The router stores it under the same key.
    /// The default has no key to give (a directory whose nodes share no store).
    /// @param user the recipient's folded name.
    /// @param remote_bytes what the user's remote sessions' transports are handed for this message.
    /// @return the key; an empty one: the router stores the message as usual (`append()`).
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] virtual message_key message_key_for(const name& user, const payload& remote_bytes) {
        (void)user;
        (void)remote_bytes;
        return {};
    }

    /// @brief A `router::send()` (a client's `/send`, whose answer `delivered` promises that a
    /// session was handed the message) to `user`, all of whose sessions are on other nodes, is
    /// about to hand `remote_bytes` to those sessions' transports (the same payload object for
    /// each): have their nodes confirm it, so that the router answers `delivered` only once a
    /// node handed it to a session (stored first for a session with acknowledgements on), not
    /// when it left this node (docs/cluster.md, "Confirmed sends"). The default confirms
    /// nothing (the router answers as soon as the transports took it).
    /// @param user the recipient's folded name.
    /// @param remote_bytes what the user's remote sessions' transports are handed next.
    /// @param done when this returns true: called exactly once, later, from the host's
    ///        serialisation (never from inside this call), with `ok` when a receiving node handed
    ///        it, else the failure: the receiving node's (`inbox_full`, `store_busy`, ...: nobody
    ///        was handed it), or `cluster_unavailable` when no node confirmed in time (the
    ///        outcome is then unknown: it may have been handed). Called even if no transport
    ///        took the message (the router then ignores it). It may call into the router.
    /// @return true when the confirmation was arranged; false: `done` is never called.
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] virtual bool confirm(const name& user, const payload& remote_bytes,
                                       std::function<void(status)> done) {
        (void)user;
        (void)remote_bytes;
        (void)done;
        return false;
    }
};

} // namespace switchboard
