/// @file
/// @brief `switchboard::cluster_format`: the neutral binary encoding of an `event` that nodes of a
/// cluster exchange (the format of remote sessions, docs/design.md, "Clusters: the directory hook
/// and remote sessions"), and `decode_cluster_event()`, which reads it back without trusting it.
#pragma once

#include "event.hpp"
#include "payload.hpp"
#include "status.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>

namespace switchboard {

/// @brief The event format of remote sessions: every field of `event`, little-endian, no
/// alignment: `kind` u8, `code` u8, `queued` u8, `seq` u64, `last_seen` i64 (19 bytes), then
/// `room`, `user` and `text`, each as a u32 length and its bytes.
///
/// A node routing to a remote session encodes the event once in this format (a fan-out shares the
/// payload as for any format); the backplane carries the bytes to the node that holds the real
/// session, which decodes them (`decode_cluster_event()`) and encodes the event again in that
/// session's own format. The layout is fixed (nodes of different builds may talk); a change of
/// it is a change of the cluster protocol.
///
/// Thread safety: stateless; one instance may be shared by any number of routers and threads.
class cluster_format final : public event_encoder {
public:
    /// @brief Bytes before the three strings: kind, code, queued, seq, last_seen.
    static constexpr std::size_t fixed_size = 3 + 8 + 8;
    /// @brief Bytes of the smallest encoding: the fixed part and three empty strings.
    static constexpr std::size_t min_size = fixed_size + 3 * 4;

    /// @brief Encodes every field of `e`.
    /// @param e the event; its views are read during the call only.
    /// @return the payload; empty (refused) only when a string is longer than 2^32 - 1 bytes or
    ///         the whole would not fit a `std::size_t`.
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] payload encode(const event& e) const override {
        constexpr std::size_t max_part = std::numeric_limits<std::uint32_t>::max();
        if (e.room.size() > max_part || e.user.size() > max_part || e.text.size() > max_part) return {};
        const std::size_t size = min_size + e.room.size() + e.user.size() + e.text.size();
        return payload::build(size, [&](char* out) {
            out[0] = static_cast<char>(e.kind);
            out[1] = static_cast<char>(e.code);
            out[2] = static_cast<char>(e.queued ? 1 : 0);
            out = put(out + 3, e.seq, 8);
            out = put(out, static_cast<std::uint64_t>(e.last_seen), 8);
            for (const std::string_view part : {e.room, e.user, e.text}) {
                out = put(out, part.size(), 4);
                if (!part.empty()) std::memcpy(out, part.data(), part.size());
                out += part.size();
            }
        });
    }

    /// @brief The process-wide instance: the format to name in `router::open_remote_session()`.
    [[nodiscard]] static const cluster_format& instance() noexcept {
        static const cluster_format format;
        return format;
    }

private:
    static char* put(char* out, std::uint64_t v, int bytes) noexcept {
        for (int i = 0; i < bytes; ++i) *out++ = static_cast<char>(static_cast<unsigned char>(v >> (8 * i)));
        return out;
    }
};

namespace detail {
[[nodiscard]] inline std::uint64_t read_le(const char* p, int bytes) noexcept {
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
    return v;
}
} // namespace detail

/// @brief Reads back an event of `cluster_format`, trusting nothing: every length is checked
/// against what is left, the kind and code must be values of their enumerations, `queued` 0 or 1,
/// and the bytes must end exactly after the text.
/// @param bytes what another node sent (any bytes); must outlive the views put into `e`.
/// @param e set only on success; its `room`, `user` and `text` view into `bytes`.
/// @return true when `bytes` is exactly one well-formed encoding; false for anything else (`e`
///         unchanged). Names and texts are not checked against the router's contracts here:
///         the router checks what it relays (`router::relay()`), and wire formats' `encode()`
///         checks what is sent to one session.
/// @note Thread-safe (pure function). Never allocates, never reads outside `bytes`.
[[nodiscard]] inline bool decode_cluster_event(std::string_view bytes, event& e) noexcept {
    if (bytes.size() < cluster_format::min_size) return false;
    const auto kind = static_cast<unsigned char>(bytes[0]);
    const auto code = static_cast<unsigned char>(bytes[1]);
    const auto queued = static_cast<unsigned char>(bytes[2]);
    if (kind > static_cast<unsigned char>(detail::last_event_kind) ||
        code > static_cast<unsigned char>(detail::last_status) || queued > 1)
        return false;
    event out;
    out.kind = static_cast<event_kind>(kind);
    out.code = static_cast<status>(code);
    out.queued = queued == 1;
    out.seq = detail::read_le(bytes.data() + 3, 8);
    out.last_seen = static_cast<std::int64_t>(detail::read_le(bytes.data() + 11, 8));
    std::size_t at = cluster_format::fixed_size;
    std::string_view* const parts[] = {&out.room, &out.user, &out.text};
    for (std::string_view* part : parts) {
        if (bytes.size() - at < 4) return false;
        const std::uint64_t length = detail::read_le(bytes.data() + at, 4);
        at += 4;
        if (length > bytes.size() - at) return false;
        *part = bytes.substr(at, static_cast<std::size_t>(length));
        at += static_cast<std::size_t>(length);
    }
    if (at != bytes.size()) return false;
    e = out;
    return true;
}

} // namespace switchboard
