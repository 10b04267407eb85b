/// @file
/// @brief Events the router sends to sessions, and `event_encoder`, which turns an event into
/// the bytes of one wire protocol.
#pragma once

#include "payload.hpp"

#include <cstdint>
#include <string_view>

namespace switchboard {

/// @brief Kind of a routed event.
enum class event_kind : std::uint8_t {
    direct_message, ///< A 1:1 message: `user` is the sender, `text` the body.
    room_message,   ///< A room message: `room`, `user` the sender, `text` the body.
    member_joined,  ///< `user` joined `room` (sent to the members already there).
    member_left,    ///< `user` left `room` or disconnected (sent to the remaining members).
};

/// @brief One event, as views into the router's storage; valid only during `encode()`.
struct event {
    event_kind kind = event_kind::direct_message; ///< What happened.
    std::string_view room;                         ///< Folded room name; empty for direct messages.
    std::string_view user;                         ///< Folded name of the sender or member.
    std::string_view text;                         ///< Opaque body bytes; empty for membership.
};

/// @brief Encodes events into the bytes of one wire protocol.
///
/// The router calls `encode()` once per event, however many sessions receive it, and hands the
/// same payload to each of them (docs/design.md, "Fan-out"). The default is the line protocol v1
/// encoder (`protocol::line_event_encoder`).
///
/// Thread safety: `encode()` is const and may be called from any thread that holds the router;
/// implementations keep no mutable state.
class event_encoder {
public:
    virtual ~event_encoder() = default;

    /// @brief Encodes one event.
    /// @param e the event; its views are valid only during the call.
    /// @return the complete bytes to write to each recipient (framing included).
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] virtual payload encode(const event& e) const = 0;
};

} // namespace switchboard
