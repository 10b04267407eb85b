/// @file
/// @brief `switchboard::status`: the expected outcomes of router calls, as values.
#pragma once

#include <cstdint>
#include <string_view>

namespace switchboard {

/// @brief The outcome of a router operation.
///
/// Everything that a client or the network can cause is one of these values, never an exception.
/// `to_string()` spells each value in lowercase words joined by `-`; every wire format uses that
/// spelling as its error token (docs/protocol.md), so no format needs a table of its own.
enum class status : std::uint8_t {
    ok,                 ///< Done.
    invalid_name,       ///< A user or room name is not 1-40 bytes of `[A-Za-z0-9_.-]`.
    name_taken,         ///< Another session holds the user name (exclusive registration policy).
    already_registered, ///< This session already holds a user name.
    not_registered,     ///< The session has no user name yet, and the operation needs one.
    user_not_found,     ///< No session holds the target user name.
    already_member,     ///< The session is already in the room.
    not_member,         ///< The session is not in the room (or the room does not exist).
    unknown_session,    ///< The session id is not open: never opened, or closed already (stale).
    auth_failed,        ///< The authorizer refused the name with this credential (wrong or
                        ///< missing secret, or the name is reserved).
    too_many_rooms,     ///< The session is in `router_options::max_rooms_per_session` rooms.
    room_full,          ///< The room has `router_options::max_room_members` members.
    rate_limited,       ///< The session sent faster than its rate limit; the command was dropped.
    depth_exceeded,     ///< Called from inside callbacks nested `router_options::max_callback_depth`
                        ///< deep (e.g. two bots answering each other forever); nothing was done.
    invalid_text,       ///< The message text breaks the text contract (text.hpp: empty, invalid
                        ///< UTF-8, a control character), or a recipient's wire format cannot
                        ///< carry it as one event; nothing was delivered to anyone.
    too_many_sessions,  ///< The user holds `router_options::max_sessions_per_user` sessions
                        ///< (`session_policy::multi`).
    already_watching,   ///< The session already watches that user's presence.
    not_watching,       ///< The session does not watch that user's presence.
    too_many_watches,   ///< The session watches `router_options::max_watches_per_session` users.
    inbox_full,         ///< The recipient's inbox holds its limit of messages, or the store its
                        ///< byte bound; nothing was stored or delivered.
    not_supported,      ///< The feature is off on this router (acknowledgements without an inbox).
    ack_invalid,        ///< An acknowledged sequence number is 0 or above the highest one sent.
    store_busy,         ///< The inbox store cannot take the message now (a durable store whose
                        ///< queue is full, or whose database stayed locked past its busy
                        ///< timeout); nothing was stored; retry later.
    store_full,         ///< The durable store's disk (or database size limit) is full; nothing
                        ///< was stored; what was stored before stays readable.
    store_failed,       ///< The durable store failed otherwise (an I/O error, a read-only or
                        ///< corrupt database); nothing was stored.
    cluster_unavailable, ///< The cluster backplane cannot reach its directory (Redis) or the node
                         ///< holding the recipient; nothing was done (docs/design.md, "Clusters:
                         ///< the directory hook and remote sessions").
    pending,            ///< `router::register_name()` with a `directory`: the cluster decides, and
                        ///< the session is answered later with a `register_outcome` event. Never a
                        ///< final outcome, never sent to a client as an error.
};

namespace detail {
/// The highest `status` (formats that carry a status as a number check it on decode).
inline constexpr status last_status = status::pending;
} // namespace detail

/// @brief The protocol token of a status, e.g. `"name-taken"`.
/// @param s any value of `status`.
/// @return a static, NUL-terminated string; `"unknown"` for a value outside the enumeration.
/// @note Thread-safe (pure function).
[[nodiscard]] constexpr std::string_view to_string(status s) noexcept {
    switch (s) {
    case status::ok: return "ok";
    case status::invalid_name: return "invalid-name";
    case status::name_taken: return "name-taken";
    case status::already_registered: return "already-registered";
    case status::not_registered: return "not-registered";
    case status::user_not_found: return "user-not-found";
    case status::already_member: return "already-member";
    case status::not_member: return "not-member";
    case status::unknown_session: return "unknown-session";
    case status::auth_failed: return "auth-failed";
    case status::too_many_rooms: return "too-many-rooms";
    case status::room_full: return "room-full";
    case status::rate_limited: return "rate-limited";
    case status::depth_exceeded: return "depth-exceeded";
    case status::invalid_text: return "invalid-text";
    case status::too_many_sessions: return "too-many-sessions";
    case status::already_watching: return "already-watching";
    case status::not_watching: return "not-watching";
    case status::too_many_watches: return "too-many-watches";
    case status::inbox_full: return "inbox-full";
    case status::not_supported: return "not-supported";
    case status::ack_invalid: return "ack-invalid";
    case status::store_busy: return "store-busy";
    case status::store_full: return "store-full";
    case status::store_failed: return "store-failed";
    case status::cluster_unavailable: return "cluster-unavailable";
    case status::pending: return "pending";
    }
    return "unknown";
}

} // namespace switchboard
