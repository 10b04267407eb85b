/// @file
/// @brief The vocabulary of the Asio server facade: `disconnect_reason`, `tcp_server_options`,
/// `tcp_server_counters` and `tcp_connection_info`. Included by `tcp_server.hpp` (the facade) and
/// by the engine's internals; include `tcp_server.hpp` rather than this header.
///
/// Requires Asio: standalone (Debian `libasio-dev`) or Boost.Asio (see backend.hpp).
#pragma once

#include "backend.hpp"

#include "../protocol/line.hpp"
#include "../rate_limiter.hpp"
#include "../session_id.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>

namespace switchboard {

/// @brief Why a TCP connection ended.
enum class disconnect_reason : std::uint8_t {
    peer_closed,   ///< The peer closed its write side (EOF); its last lines were processed.
    quit,          ///< The client sent `/quit`.
    error,         ///< A socket error: connection reset, broken pipe, timeout.
    slow_consumer, ///< Queued output exceeded `tcp_server_options::max_output_bytes`.
    closed,        ///< Closed through `router::disconnect()` (a kick).
    server_stop,   ///< `tcp_server::stop()`.
    register_timeout, ///< No user name within `tcp_server_options::register_timeout`.
    idle_timeout,  ///< Registered, but no input within `tcp_server_options::idle_timeout`.
};

/// @brief The word for a disconnect reason, e.g. `"slow-consumer"`.
/// @note Thread-safe (pure function).
[[nodiscard]] constexpr std::string_view to_string(disconnect_reason r) noexcept {
    switch (r) {
    case disconnect_reason::peer_closed: return "peer-closed";
    case disconnect_reason::quit: return "quit";
    case disconnect_reason::error: return "error";
    case disconnect_reason::slow_consumer: return "slow-consumer";
    case disconnect_reason::closed: return "closed";
    case disconnect_reason::server_stop: return "server-stop";
    case disconnect_reason::register_timeout: return "register-timeout";
    case disconnect_reason::idle_timeout: return "idle-timeout";
    }
    return "unknown";
}

/// @brief Limits and behaviour of a `tcp_server`. Defaults are the ones of `tcp_chat`.
struct tcp_server_options {
    /// @brief Longest accepted line in bytes, terminator excluded (1 or more). Longer lines get
    /// `err line-too-long`; at most this many bytes (+1) are buffered per connection.
    std::size_t max_line = protocol::default_max_line;
    /// @brief Output bound per connection, in bytes of memory its queue holds for output not yet
    /// taken by the kernel: every write chunk counted whole (4-64 KiB, used or not), every
    /// payload queued by reference (longer than `copy_max_bytes`) counted whole plus 64 bytes of
    /// bookkeeping. 1 or more; the charge may pass it by one chunk's unused room. While more than half of it waits, the server stops reading that
    /// client's input (its own replies throttle it through TCP); keep it well above
    /// `read_chunk_bytes` so one chunk of commands cannot overshoot it with replies.
    /// A client that stops reading is disconnected (`slow_consumer`) when a delivery would
    /// exceed it; other clients are not affected. Default 1 MiB.
    std::size_t max_output_bytes = std::size_t{1} << 20;
    /// @brief Bytes read per `read` system call, into a per-thread buffer (idle connections hold
    /// no read buffer). 512 or more; default 64 KiB.
    std::size_t read_chunk_bytes = std::size_t{64} << 10;
    /// @brief Reads per readiness event before yielding to other connections (1 or more).
    unsigned reads_per_wakeup = 4;
    /// @brief Informational text the protocol sends on connect (the line protocol: each line as an
    /// informational line, see `protocol::line_session::greet()`); empty for none.
    std::string greeting;
    /// @brief First delay before accepting again after an accept error (EMFILE, ENFILE,
    /// ENOBUFS...), doubled on each further error up to `accept_retry_max`.
    std::chrono::milliseconds accept_retry_min{10};
    /// @brief Longest delay between accept retries.
    std::chrono::milliseconds accept_retry_max{1000};
    /// @brief How long `stop()` lets connections flush queued output before cutting them.
    std::chrono::milliseconds stop_timeout{1000};
    /// @brief How long a connection that is closing gracefully (after `/quit`, EOF, a register or
    /// idle timeout, a kick) may take to flush its queued output before it is cut. Without it, a
    /// client that stops reading holds its connection slot until TCP gives up on it (minutes).
    /// 0 turns it off. Default 10 s. Checked by the timeout sweep, so it fires up to a quarter of
    /// the shortest timeout late (at most 1 s).
    std::chrono::milliseconds drain_timeout{10000};
    /// @brief How often, at least, the server calls `router::tick()` (from its sweep timer, under
    /// the router mutex, with the Unix time in milliseconds): the router's timed events (a
    /// presence grace period's end, inbox TTL expiry, typing expiry) run from that tick, since the
    /// core never reads a clock. 1 ms or more; default 250 ms, so a timed event takes effect
    /// within about a quarter of a second of its due time (line protocol v1.2 asks for 1 s). 0
    /// turns the server's ticks off: the application then calls `router::tick()` itself (through
    /// `with_router()`), e.g. when several servers share one router. The sweep runs only after
    /// `listen()` or `start_sweep()`.
    std::chrono::milliseconds tick_interval{250};
    /// @brief The wall clock the server stamps router time with: Unix time in milliseconds.
    /// Read once per input chunk (`router::touch()`: last seen), once per sweep
    /// (`router::tick()`) and once per closed session. Empty (default): `std::chrono::system_clock`.
    /// Tests set a fake clock here. It is called under the router mutex, on I/O threads and on the
    /// sweep's strand: it must be thread-safe (several servers may share a router), fast, and must
    /// not call back into the server or the router.
    std::function<std::int64_t()> unix_clock;
    /// @brief Set `TCP_NODELAY` on accepted sockets (default on: chat lines are latency-bound).
    bool no_delay = true;
    /// @brief Payloads of at most this many bytes are copied into the connection's write buffer
    /// (so that a burst of small messages leaves in one write); longer ones are queued by
    /// reference, shared with every other recipient (zero-copy fan-out). 0 references every
    /// payload; at most 64 KiB is used. Default 1 KiB. Memory per connection stays within
    /// `max_output_bytes` plus one write chunk (at most 64 KiB): chunks count whole against it.
    std::size_t copy_max_bytes = 1024;
    /// @brief Written-out write chunks (4-64 KiB each) the server keeps for reuse, at most this
    /// many bytes in all; chunks left unused for a second are freed. Fan-out queues megabytes per
    /// read and frees them once written: reusing them avoids faulting the pages in again on
    /// every burst. 0 frees every chunk at once. Default 32 MiB.
    std::size_t write_pool_bytes = std::size_t{32} << 20;

    // ---- limits (docs/security.md) -------------------------------------------------------------

    /// @brief Open connections in total; 0 for no limit (default). A connection over the limit is
    /// sent the protocol's refusal (the line protocol's "server full" notice, nothing over TLS) and
    /// closed at once; the accept loop keeps running.
    std::size_t max_connections = 0;
    /// @brief Open connections per remote IP address; 0 for no limit (default). Over it, as for
    /// `max_connections`.
    std::size_t max_connections_per_address = 0;
    /// @brief A connection that has no user name this long after it was accepted is sent the
    /// protocol's register-timeout notice and closed. 0 turns it off. Default 30 s. Checked every quarter of
    /// the shortest timeout (at least every 10 ms, at most every 1 s), so it fires up to that
    /// much late.
    std::chrono::milliseconds register_timeout{30000};
    /// @brief Protocols with a handshake only (WebSocket: the HTTP upgrade request): a connection
    /// whose handshake is not complete this long after it was accepted is cut, without a reply
    /// (it has no session yet). Counted from the accept, never extended by bytes received, so a
    /// client sending one byte at a time (slowloris) cannot hold the connection longer. 0 turns
    /// it off. Default 10 s. Checked by the timeout sweep, like `register_timeout`.
    std::chrono::milliseconds handshake_timeout{10000};
    /// @brief A registered connection that sends nothing this long is sent the protocol's
    /// idle-timeout notice and closed. 0 turns it off (default): chat clients may be silent for hours, and TCP keepalive
    /// reaps dead peers.
    std::chrono::milliseconds idle_timeout{0};
    /// @brief Per-connection command rate (default off): see `protocol::line_session_options::rate`.
    rate_limit rate;
    /// @brief Turn on TCP keepalive (`SO_KEEPALIVE`, default on), so that a peer that vanished
    /// without a FIN or RST (power loss, NAT timeout) is detected and its session and name freed.
    /// On Linux the timing below is applied and `TCP_USER_TIMEOUT` is set to the same total, so
    /// a peer that stops acknowledging data is reaped in the same time.
    bool keepalive = true;
    /// @brief Idle time before the first keepalive probe (Linux `TCP_KEEPIDLE`; default 60 s).
    std::chrono::seconds keepalive_idle{60};
    /// @brief Time between keepalive probes (Linux `TCP_KEEPINTVL`; default 10 s).
    std::chrono::seconds keepalive_interval{10};
    /// @brief Unanswered probes before the connection is dropped (Linux `TCP_KEEPCNT`; default 6).
    /// A dead peer is reaped after about idle + interval * count (2 minutes by default).
    int keepalive_count = 6;
};

/// @brief Running totals of a `tcp_server`, for metrics (a snapshot from `tcp_server::counters()`).
/// Monotonic.
struct tcp_server_counters {
    std::uint64_t accepted = 0;            ///< Connections admitted past the connection limits (before any
                                           ///< TLS or protocol handshake: a WebSocket listener counts plain
                                           ///< HTTP requests too).
    std::uint64_t refused_full = 0;        ///< Refused by `max_connections`.
    std::uint64_t refused_per_address = 0; ///< Refused by `max_connections_per_address`.
    std::uint64_t register_timeouts = 0;   ///< Closed by `register_timeout`.
    std::uint64_t handshake_timeouts = 0;  ///< Cut by `handshake_timeout` (protocols with a handshake).
    std::uint64_t idle_timeouts = 0;       ///< Closed by `idle_timeout`.
    std::uint64_t slow_consumers = 0;      ///< Cut because their output bound was exceeded.
    std::uint64_t rate_limited = 0;        ///< Lines refused with `err rate-limited`.
    std::uint64_t line_too_long = 0;       ///< Lines refused with `err line-too-long`.
};

/// @brief What the connect/disconnect hooks are told.
struct tcp_connection_info {
    session_id session;            ///< The router session of the connection.
    net::ip::tcp::endpoint peer; ///< Remote address and port.
    std::string_view user;          ///< Registered name at disconnect (empty if none / on connect).
    disconnect_reason reason = disconnect_reason::peer_closed; ///< Meaningful on disconnect only.
    std::error_code error;          ///< The socket error for `disconnect_reason::error`.
};

} // namespace switchboard
