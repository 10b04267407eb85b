/// @file
/// @brief `switchboard::prometheus_text()`: the router's and the servers' counters in the
/// Prometheus text exposition format (version 0.0.4), for a `/metrics` endpoint. Pure formatting:
/// no I/O, no lock of its own; the caller holds the router's serialisation while it runs.
///
/// Source: Prometheus, "Exposition formats", text-based format (`# HELP`, `# TYPE`, one sample per
/// line, `name{label="value"} number`); metric names follow Prometheus' naming practices
/// (`switchboard_` prefix, `_total` for counters).
#pragma once

#include "../router.hpp"
#include "server_options.hpp"

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace switchboard {

/// @brief One listener's figures for `prometheus_text()`.
struct server_metrics {
    std::string_view transport;  ///< The label value of `transport`, e.g. `"tcp"` or `"ws"`: ASCII
                                 ///< letters, digits, `_` and `-` only (it is written unescaped).
    tcp_server_counters counters; ///< `basic_tcp_server::counters(std::adopt_lock)`.
    std::size_t connections = 0; ///< `basic_tcp_server::connection_count()`.
};

namespace detail {

inline void prometheus_family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out.append("# HELP switchboard_").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE switchboard_").append(name).append(" ").append(type).append("\n");
}

inline void prometheus_sample(std::string& out, std::string_view name, std::string_view transport, std::uint64_t v) {
    out.append("switchboard_").append(name);
    if (!transport.empty()) out.append("{transport=\"").append(transport).append("\"}");
    char digits[24];
    const auto r = std::to_chars(digits, digits + sizeof digits, v);
    out.append(" ").append(digits, static_cast<std::size_t>(r.ptr - digits)).append("\n");
}

} // namespace detail

/// @brief Renders the router's counters and gauges and each listener's counters as one page of
/// the Prometheus text format (serve it with `Content-Type: text/plain; version=0.0.4`).
///
/// Router families (no label): `switchboard_routed_total`, `_delivered_total`, `_dropped_total`,
/// `_user_not_found_total`, `_auth_failed_total`, `_too_many_rooms_total`, `_room_full_total`,
/// `_queued_total`, `_inbox_full_total`, `_replayed_total`, `_presence_events_total`,
/// `_typing_dropped_total`, `_duplicates_total`, `_store_failures_total` (the fields of
/// `router_counters`, same meaning) and the gauges `switchboard_sessions`, `switchboard_users`
/// (online), `switchboard_rooms`. Listener families (label `transport`): `_accepted_total`,
/// `_refused_total` (full and per address together), `_register_timeouts_total`,
/// `_handshake_timeouts_total`, `_idle_timeouts_total`, `_slow_consumers_total`,
/// `_rate_limited_total`, `_message_too_long_total` (the fields of `tcp_server_counters`), and the
/// gauge `switchboard_connections`.
/// @param r the router; read only. Call with its serialisation held (e.g. from
///        `basic_tcp_server::with_router()` or a protocol's handshake, which runs under it).
/// @param servers one entry per listener sharing `r`; may be empty.
/// @return the page, LF line ends, ending in LF.
/// @throws std::bad_alloc when memory runs out.
/// @note Thread safety: as for reading `r`.
[[nodiscard]] inline std::string prometheus_text(const router& r, std::initializer_list<server_metrics> servers) {
    std::string out;
    out.reserve(4096);
    const router_counters& c = r.counters();
    const struct {
        std::string_view name;
        std::uint64_t value;
        std::string_view help;
    } router_families[] = {
        {"routed_total", c.routed, "Successful direct and room messages."},
        {"delivered_total", c.delivered, "Payloads handed to sessions (one per recipient)."},
        {"dropped_total", c.dropped, "Payloads refused by closing or slow sessions."},
        {"user_not_found_total", c.user_not_found, "Direct messages to a user with no session and no inbox."},
        {"auth_failed_total", c.auth_failed, "Registrations refused by the authorizer."},
        {"too_many_rooms_total", c.too_many_rooms, "Joins refused: too many rooms for the session."},
        {"room_full_total", c.room_full, "Joins refused: the room is full."},
        {"queued_total", c.queued, "Direct messages stored for an offline user."},
        {"inbox_full_total", c.inbox_full, "Direct messages refused: the inbox is full."},
        {"replayed_total", c.replayed, "Stored messages handed to a session after they were stored."},
        {"presence_events_total", c.presence_events, "Presence events handed to watchers."},
        {"typing_dropped_total", c.typing_dropped, "Typing events a backed-up session did not take."},
        {"duplicates_total", c.duplicates, "Sends answered from the de-duplication window."},
        {"store_failures_total", c.store_failures, "Stored messages a durable store failed to commit."},
    };
    for (const auto& f : router_families) {
        detail::prometheus_family(out, f.name, "counter", f.help);
        detail::prometheus_sample(out, f.name, {}, f.value);
    }
    const struct {
        std::string_view name;
        std::uint64_t value;
        std::string_view help;
    } gauges[] = {
        {"sessions", r.session_count(), "Open sessions."},
        {"users", r.user_count(), "Users online (holding a name)."},
        {"rooms", r.room_count(), "Rooms with at least one member."},
    };
    for (const auto& g : gauges) {
        detail::prometheus_family(out, g.name, "gauge", g.help);
        detail::prometheus_sample(out, g.name, {}, g.value);
    }
    if (servers.size() == 0) return out;
    using field = std::uint64_t (*)(const server_metrics&);
    const struct {
        std::string_view name;
        std::string_view type;
        field value;
        std::string_view help;
    } server_families[] = {
        {"accepted_total", "counter", [](const server_metrics& s) { return s.counters.accepted; },
         "Connections admitted past the connection limits (HTTP requests included on a WebSocket listener)."},
        {"refused_total", "counter",
         [](const server_metrics& s) { return s.counters.refused_full + s.counters.refused_per_address; },
         "Connections refused by the connection limits."},
        {"register_timeouts_total", "counter", [](const server_metrics& s) { return s.counters.register_timeouts; },
         "Connections closed for not registering in time."},
        {"handshake_timeouts_total", "counter", [](const server_metrics& s) { return s.counters.handshake_timeouts; },
         "Connections cut for not completing their handshake in time."},
        {"idle_timeouts_total", "counter", [](const server_metrics& s) { return s.counters.idle_timeouts; },
         "Connections closed for being idle."},
        {"slow_consumers_total", "counter", [](const server_metrics& s) { return s.counters.slow_consumers; },
         "Connections cut because their output bound was exceeded."},
        {"rate_limited_total", "counter", [](const server_metrics& s) { return s.counters.rate_limited; },
         "Commands refused by the rate limit."},
        {"message_too_long_total", "counter", [](const server_metrics& s) { return s.counters.line_too_long; },
         "Lines or messages refused for their length."},
        {"connections", "gauge", [](const server_metrics& s) { return static_cast<std::uint64_t>(s.connections); },
         "Open connections."},
    };
    for (const auto& f : server_families) {
        detail::prometheus_family(out, f.name, f.type, f.help);
        for (const server_metrics& s : servers) detail::prometheus_sample(out, f.name, s.transport, f.value(s));
    }
    return out;
}

} // namespace switchboard
