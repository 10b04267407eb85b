/// @file
/// @brief The timeout sweep: one timer per server (not one per connection, so an idle connection
/// costs no timer) that closes connections unregistered or idle too long, trims the write chunk
/// pool about once a second and drives the router's clock (`router::tick()` at least every
/// `tcp_server_options::tick_interval`). `timeout_due()` and `sweep_period()` are the decisions,
/// without I/O; `unix_time_ms()` is the one place the engine reads the wall clock; `sweep()` is the
/// timer loop on the acceptor's strand. Internal to the engine.
#pragma once

#include "../../protocol/policy.hpp"
#include "../server_options.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
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

/// @brief The router's time: Unix time in milliseconds, from `o.unix_clock` when set, else from
/// `std::chrono::system_clock`. The core never reads a clock; the engine stamps `router::touch()`
/// (last seen) and `router::tick()` with this. Thread-safe when `o.unix_clock` is.
[[nodiscard]] inline std::int64_t unix_time_ms(const tcp_server_options& o) {
    if (o.unix_clock) return o.unix_clock();
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// @brief How often the sweep runs: a quarter of the shortest timeout, between 10 ms and 1 s;
/// once a second for the pool alone; and never less often than `tick_interval` (at least 1 ms)
/// when it is on. Zero when there is nothing to do (no timeout, no pool, no ticks).
[[nodiscard]] inline std::chrono::milliseconds sweep_period(const tcp_server_options& o) noexcept {
    std::chrono::milliseconds shortest{0};
    for (const auto t : {o.register_timeout, o.handshake_timeout, o.idle_timeout, o.drain_timeout})
        if (t.count() > 0 && (shortest.count() == 0 || t < shortest)) shortest = t;
    const std::chrono::milliseconds most{1000};
    std::chrono::milliseconds period{0};
    if (shortest.count() > 0) period = std::clamp(shortest / 4, std::chrono::milliseconds{10}, most);
    else if (o.write_pool_bytes > 0) period = most;
    if (o.tick_interval.count() > 0) {
        const auto tick = std::max(o.tick_interval, std::chrono::milliseconds{1});
        if (period.count() == 0 || tick < period) period = tick;
    }
    return period;
}

/// @brief One round of the sweep, then the next one scheduled. Runs on the acceptor's strand.
/// `State` provides `options`, `stopped`, `snapshot()` (connections with `check_timeouts(now)`),
/// `write_pool`, `last_pool_trim`, `sweep_timer`, `router_mutex` and `routes` (the router).
/// The router's tick comes first, so that what it expires (a grace period's end, stored messages
/// past their TTL) is decided before this round's timeouts close connections.
template <class State>
void sweep(const std::shared_ptr<State>& s) {
    const tcp_server_options& o = s->options;
    if (s->stopped) return;
    if (o.tick_interval.count() > 0) {
        try {
            std::lock_guard<std::mutex> lock(*s->router_mutex);
            s->routes.tick(unix_time_ms(o)); // read under the mutex: router time never goes back
        } catch (const std::bad_alloc&) { // out of memory: the next round ticks again
        }
    }
    const auto now = std::chrono::steady_clock::now();
    if (o.register_timeout.count() > 0 || o.handshake_timeout.count() > 0 || o.idle_timeout.count() > 0 ||
        o.drain_timeout.count() > 0)
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
