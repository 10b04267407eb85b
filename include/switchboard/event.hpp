/// @file
/// @brief Events the router sends to sessions, and `event_encoder`, which turns an event into
/// the bytes of one wire protocol.
#pragma once

#include "payload.hpp"
#include "status.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace switchboard {

class router;

/// @brief Kind of a routed event.
enum class event_kind : std::uint8_t {
    direct_message, ///< A 1:1 message: `user` is the sender, `text` the body.
    room_message,   ///< A room message: `room`, `user` the sender, `text` the body.
    member_joined,  ///< `user` joined `room` (sent to the members already there).
    member_left,    ///< `user` left `room` or disconnected (sent to the remaining members).
    acked_message,  ///< A 1:1 message to a session with acknowledgements on: `user` the sender,
                    ///< `text` the body, `seq` the recipient user's sequence number (to ack).
    presence_online,  ///< `user` came online (to its watchers).
    presence_offline, ///< `user` went offline; `last_seen` the Unix time in ms of its last input,
                      ///< -1 when never seen.
    typing_started, ///< `user` is typing to the recipient (ephemeral).
    typing_stopped, ///< `user` stopped typing to the recipient (ephemeral).
    session_replaced, ///< This session's user name was taken over by a newer session
                      ///< (`session_policy::replace`); the session is closed after this event.
    send_outcome,   ///< The late answer to a message this session sent, once a durable inbox
                    ///< store has committed it or failed to (`route_result::pending`; docs/design.md,
                    ///< "Durable outcomes"): `user` the recipient; `text` the client id of
                    ///< `router::send()`, empty for `router::route()`; `code` `ok`, or why
                    ///< nothing was stored (`store_busy`, `store_full`, `store_failed`); `queued`
                    ///< (when `ok`) stored for later rather than delivered.
    register_outcome, ///< The late answer to a `router::register_name()` that returned
                      ///< `status::pending` (a cluster's `directory` decided): `user` the name,
                      ///< `code` `ok` (the session now holds it) or why not (`name_taken`,
                      ///< `too_many_sessions`, `cluster_unavailable`). Wire formats spell it as
                      ///< the synchronous answer would have been (`ok register <name>`).
    session_closed, ///< The server closes this session, after this event, for a reason of its
                    ///< own: `user` the name it held, `code` why (`cluster_unavailable`: the node lost its cluster
                    ///< lease, so the names its sessions held may be held elsewhere now;
                    ///< `name_taken`: after Redis came back, the directory had given the
                    ///< session's name to a session on another node; docs/cluster.md,
                    ///< "Failures"). Wire formats spell it `bye <token>` (`bye replaced` is
                    ///< `session_replaced`).
};

namespace detail {
/// The highest `event_kind` (formats that carry the kind as a number check it on decode).
inline constexpr event_kind last_event_kind = event_kind::session_closed;
} // namespace detail

/// @brief One event, as views into the router's storage; valid only during `encode()`.
struct event {
    event_kind kind = event_kind::direct_message; ///< What happened.
    std::string_view room;                         ///< Folded room name; empty for direct messages.
    std::string_view user;                         ///< Folded name of the sender or member.
    std::string_view text;                         ///< The message text (text.hpp contract); empty
                                                   ///< for every other kind.
    std::uint64_t seq = 0;     ///< `acked_message`: the sequence number (1 or more); else 0.
    std::int64_t last_seen = -1; ///< `presence_offline`: Unix time in ms, -1 for never; else -1.
    status code = status::ok;    ///< `send_outcome`, `register_outcome`: the outcome; else `ok`.
    bool queued = false;         ///< `send_outcome` with `ok`: stored for later (else delivered).
};

/// @brief A wire format: encodes events into the bytes of one wire protocol.
///
/// Every session names its format when it is opened (`router::open_session()`); one router
/// serves sessions of several formats at once (netcat lines beside browser JSON). A fan-out
/// encodes each event once per distinct format among its recipients, and hands the same payload
/// to every recipient of that format (docs/design.md, "Fan-out and formats"). The router keeps at
/// most `max_formats` distinct formats; it compares them by address, so use one object per format.
///
/// Contract for implementers:
/// - The payload is exactly one event in the format's framing. A message text (`direct_message`,
///   `room_message`) has passed the router's text contract (text.hpp); an encoder whose framing
///   cannot carry a text as exactly one event returns an empty payload to refuse it. The router
///   then delivers nothing to anyone and returns `status::invalid_text`. Built-in encoders check
///   again, so an encoder called directly never emits a forged second event either. Refusing a
///   membership event (`member_joined`, `member_left`) means that event is not sent at all to any
///   session (the join or leave itself stands); built-in encoders never do.
/// - `encode()` must not call back into the router.
///
/// Thread safety: `encode()` is const and may be called from any thread that holds the router;
/// implementations keep no mutable state.
class event_encoder {
public:
    virtual ~event_encoder() = default;

    /// @brief Encodes one event.
    /// @param e the event; its views are valid only during the call.
    /// @return the complete bytes to write to each recipient (framing included); an empty payload
    ///         when this format cannot carry the event as exactly one event (refused).
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] virtual payload encode(const event& e) const = 0;

private:
    friend class router;

    /// @brief What the router calls, for events it built itself: their names are valid names
    /// and their text met the text contract (text.hpp), checked by the router just before. An
    /// encoder may override it to skip checks it would repeat (the line encoder does); the
    /// default calls `encode()`. Private: only the router, which checks first, can reach it.
    [[nodiscard]] virtual payload encode_checked(const event& e) const { return encode(e); }
};

/// @brief Most distinct formats (`event_encoder` objects) one router serves at once.
inline constexpr std::size_t max_formats = 8;

} // namespace switchboard
