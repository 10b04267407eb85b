/// @file
/// @brief `switchboard::structured_format`: a format whose payload is the event itself, for
/// in-process transports (a bot, a game's own network layer, a bridge) that want events as
/// values — sender, room, kind, text — instead of bytes of a wire protocol to parse back.
#pragma once

#include "event.hpp"
#include "payload.hpp"
#include "status.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string_view>

namespace switchboard {

/// @brief The format of sessions that take events as values.
///
/// A session opened with it (`router::open_session(t, structured_format::instance())`) receives,
/// in `transport::deliver()`, payloads that `decode()` turns back into the `event` — views into
/// the payload, no parsing of a wire protocol, no copy. Fan-out rules are those of every format:
/// one payload per event is shared by every structured recipient (K members cost one encode and
/// K reference-count increments), and a room mixing structured, line and other sessions encodes
/// once per format.
///
/// The payload layout is private to this class and to one process: 24 bytes of header (kind, room
/// size, user size, the outcome byte: `code` in bits 0-6 and `queued` in bit 7, text size, `seq`,
/// `last_seen`, in native byte order), then the room, user and text bytes. Every `event_kind`
/// goes through, the late answers (`send_outcome`, `register_outcome`) with their `code` and
/// `queued`. Bytes a
/// host hands to such a session with `router::send()` are not events: `decode()` returns nothing
/// for them.
///
/// Thread safety: stateless; one instance may be shared by any number of routers and threads.
class structured_format final : public event_encoder {
public:
    /// @brief Encodes `e` into one payload that `decode()` reads back.
    /// @param e the event; its views are read during the call only.
    /// @return the payload; empty (refused) when `e.room` or `e.user` is longer than 255 bytes or
    ///         `e.text` longer than 2^32 - 1 - 24 - 510 bytes (never for events the router makes:
    ///         names are at most 40 bytes and texts are bounded by the host's limits).
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] payload encode(const event& e) const override {
        constexpr std::size_t max_text = std::numeric_limits<std::uint32_t>::max() - header - 510;
        if (e.room.size() > 255 || e.user.size() > 255 || e.text.size() > max_text) return {};
        const std::uint32_t text_size = static_cast<std::uint32_t>(e.text.size());
        return payload::build(header + e.room.size() + e.user.size() + e.text.size(), [&](char* out) {
            out[0] = static_cast<char>(e.kind);
            out[1] = static_cast<char>(static_cast<unsigned char>(e.room.size()));
            out[2] = static_cast<char>(static_cast<unsigned char>(e.user.size()));
            out[3] = static_cast<char>(static_cast<unsigned char>(static_cast<unsigned>(e.code) | (e.queued ? 0x80u : 0u)));
            std::memcpy(out + 4, &text_size, 4);
            std::memcpy(out + 8, &e.seq, 8);
            std::memcpy(out + 16, &e.last_seen, 8);
            out += header;
            for (const std::string_view part : {e.room, e.user, e.text}) {
                if (!part.empty()) std::memcpy(out, part.data(), part.size());
                out += part.size();
            }
        });
    }

    /// @brief Reads back the event a payload of this format carries.
    /// @param p a payload delivered to a session of this format; must outlive the returned views.
    /// @return the event, its views pointing into `p`; nothing when `p` was not made by `encode()`
    ///         (bytes from `router::send()`, an empty payload).
    /// @note Thread-safe (reads `p` only). Never allocates.
    [[nodiscard]] static std::optional<event> decode(const payload& p) noexcept {
        const std::string_view b = p.view();
        if (b.size() < header) return std::nullopt;
        const auto kind = static_cast<unsigned char>(b[0]);
        const auto outcome = static_cast<unsigned char>(b[3]);
        if (kind > static_cast<unsigned char>(detail::last_event_kind) ||
            (outcome & 0x7fu) > static_cast<unsigned char>(detail::last_status))
            return std::nullopt;
        const std::size_t room = static_cast<unsigned char>(b[1]);
        const std::size_t user = static_cast<unsigned char>(b[2]);
        std::uint32_t text = 0;
        std::memcpy(&text, b.data() + 4, 4);
        if (b.size() != header + room + user + text) return std::nullopt;
        event e;
        e.kind = static_cast<event_kind>(kind);
        e.room = b.substr(header, room);
        e.user = b.substr(header + room, user);
        e.text = b.substr(header + room + user, text);
        e.code = static_cast<status>(outcome & 0x7fu);
        e.queued = (outcome & 0x80u) != 0;
        std::memcpy(&e.seq, b.data() + 8, 8);
        std::memcpy(&e.last_seen, b.data() + 16, 8);
        return e;
    }

    /// @brief The process-wide instance: the format to name in `router::open_session()`.
    [[nodiscard]] static const structured_format& instance() noexcept {
        static const structured_format format;
        return format;
    }

private:
    static constexpr std::size_t header = 24;
    static_assert(static_cast<unsigned>(detail::last_status) < 0x80u, "the outcome byte holds the status in 7 bits");
};

} // namespace switchboard
