/// @file
/// @brief The timeout sweep: one timer per server (not one per connection, so an idle connection
/// costs no timer) that closes connections unregistered or idle too long and trims the write
/// chunk pool about once a second. `timeout_due()` is the decision, without I/O; `sweep()` is the
/// timer loop on the acceptor's strand. Internal to the engine.
#pragma once

#include "../../protocol/policy.hpp"
#include "../server_options.hpp"

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <system_error>

namespace switchboard::detail {

/// @brief Which timeout, if any, is due for a connection.
/// @param registered the session holds a name.
/// @param connected_at when the connection was accepted.
/// @param last_input when input was last read.
/// @param now the current time.
/// @param o the server's options (`register_timeout`, `idle_timeout`; 0 is off).
[[nodiscard]] inline std::optional<protocol::session_notice>
timeout_due(bool registered, std::chrono::steady_clock::time_point connected_at,
            std::chrono::steady_clock::time_point last_input, std::chrono::steady_clock::time_point now,
            const tcp_server_options& o) noexcept {
    if (!registered) {
        if (o.register_timeout.count() <= 0 || now - connected_at < o.register_timeout) return std::nullopt;
        return protocol::session_notice::register_timeout;
    }
    if (o.idle_timeout.count() <= 0 || now - last_input < o.idle_timeout) return std::nullopt;
    return protocol::session_notice::idle_timeout;
}

/// @brief How often the sweep runs: a quarter of the shortest timeout, between 10 ms and 1 s;
/// once a second for the pool alone; zero when there is nothing to do.
[[nodiscard]] inline std::chrono::milliseconds sweep_period(const tcp_server_options& o) noexcept {
    std::chrono::milliseconds shortest{0};
    for (const auto t : {o.register_timeout, o.idle_timeout, o.drain_timeout})
        if (t.count() > 0 && (shortest.count() == 0 || t < shortest)) shortest = t;
    const std::chrono::milliseconds most{1000};
    if (shortest.count() == 0) return o.write_pool_bytes == 0 ? std::chrono::milliseconds{0} : most;
    return std::clamp(shortest / 4, std::chrono::milliseconds{10}, most);
}

/// @brief One round of the sweep, then the next one scheduled. Runs on the acceptor's strand.
/// `State` provides `options`, `stopped`, `snapshot()` (connections with `check_timeouts(now)`),
/// `write_pool`, `last_pool_trim` and `sweep_timer`.
template <class State>
void sweep(const std::shared_ptr<State>& s) {
    const tcp_server_options& o = s->options;
    if (s->stopped) return;
    const auto now = std::chrono::steady_clock::now();
    if (o.register_timeout.count() > 0 || o.idle_timeout.count() > 0 || o.drain_timeout.count() > 0)
        for (const auto& c : s->snapshot()) c->check_timeouts(now);
    if (o.write_pool_bytes > 0 && now - s->last_pool_trim >= std::chrono::seconds{1}) {
        s->write_pool.trim();
        s->last_pool_trim = now;
    }
    const std::chrono::milliseconds period = sweep_period(o);
    if (period.count() == 0) return;
    s->sweep_timer.expires_after(period);
    s->sweep_timer.async_wait([s](const net_error_code& ec) {
        if (!ec) sweep(s);
    });
}

} // namespace switchboard::detail
