/// @file
/// @brief `switchboard::tcp_server`: the plain-TCP adapter on Asio (standalone, or Boost.Asio with
/// `SWITCHBOARD_USE_BOOST_ASIO`, see backend.hpp) — the public facade
/// of the connection engine. It owns an acceptor and its connections and plugs each connection
/// into a `router` as a session, speaking the line protocol v1 by default.
///
/// The engine is split by job (docs/design.md, "The connection engine"):
/// - server_options.hpp: options, counters, hook info, disconnect reasons (public);
/// - stream.hpp: the Stream policy and `plain_stream` (public; TLS in tls_server.hpp);
/// - protocol/policy.hpp, protocol/line_protocol.hpp: the Protocol policy and the line protocol's
///   (sans-I/O, public);
/// - detail/admission.hpp: connection limits, per-address counts, accept back-off;
/// - detail/lifecycle.hpp: the connection's state machine and its one close path;
/// - detail/output_pump.hpp: the bounded output queue and the gathered write loop;
/// - detail/input_driver.hpp: reads, pause and resume;
/// - detail/timeout_sweep.hpp: register and idle timeouts, pool trimming, the router's ticks;
/// - detail/server_state.hpp, detail/connection.hpp: what ties them together.
///
/// Requires Asio and threads: standalone Asio by default (Debian `libasio-dev`; link the
/// `switchboard::asio` CMake target, meson `switchboard_asio_dep`), or Boost.Asio with
/// `SWITCHBOARD_USE_BOOST_ASIO` (`switchboard::boost_asio`, meson `switchboard_boost_asio_dep`;
/// see backend.hpp). It includes all of Asio (`<asio.hpp>` or `<boost/asio.hpp>`). The core
/// headers never include this one.
#pragma once

#include "backend.hpp"

#if defined(SWITCHBOARD_USE_BOOST_ASIO)
#include <boost/asio.hpp>
#else
#include <asio.hpp>
#endif

#include "../names.hpp"
#include "../protocol/line_protocol.hpp"
#include "../protocol/policy.hpp"
#include "../router.hpp"
#include "detail/admission.hpp"
#include "detail/connection.hpp"
#include "detail/output_pump.hpp"
#include "detail/server_state.hpp"
#include "detail/timeout_sweep.hpp"
#include "server_options.hpp"
#include "stream.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace switchboard {

/// @brief A TCP server plugging each connection into a router as a session: the connection
/// engine with a Stream policy (`plain_stream`; `tls_stream` in tls_server.hpp; a test's fake
/// stream) and a Protocol policy (`protocol::line_protocol`, the line protocol v1, by default).
/// `tcp_server` is the plain-TCP instance, `tls_server` (asio/tls_server.hpp) the TLS one;
/// everything below holds for both, except that TLS reads into a 16 KiB per-connection buffer and
/// copies queued output into one buffer per write (the TLS engine takes one buffer at a time).
///
/// It runs entirely on the `asio::io_context` the application owns and starts no threads; run
/// that io_context on one thread or on several. Each connection's socket work runs on its own
/// strand; router calls are serialised by one mutex (the server's own, or one the application
/// passes so that several adapters and its own code share a router). Deliveries only queue bytes
/// under a per-connection mutex and post a write, so a slow client never blocks the router.
///
/// Writes: at most one write in flight per connection; everything queued meanwhile goes out in
/// the next gathered write (up to 64 runs per system call). Reads: readiness-based, into a
/// per-thread buffer, so an idle connection holds no read buffer. `TCP_NODELAY` is set
/// (configurable).
///
/// Time: the router never reads a clock; the server gives it the Unix time in milliseconds
/// (`std::chrono::system_clock`, or `tcp_server_options::unix_clock`): `router::touch()` for every
/// chunk of input and for the peer's end of input, before the protocol sees them (presence's
/// "last seen"), `router::tick()` from the sweep timer at least every
/// `tcp_server_options::tick_interval` (grace periods, TTLs) and right before each
/// `router::close_session()`.
///
/// Lifetime: the io_context and the router must outlive the server's handlers. Call `stop()`,
/// let the io_context run until it has no work (`run()` returns), then destroy the server.
/// Destroying a server that was not stopped stops it.
///
/// Thread safety: `listen()`, `adopt()`, `stop()`, `with_router()`, `local_endpoint()`,
/// `connection_count()` and `counters()` may be called from any thread. The hooks are called on
/// I/O threads, not under the router mutex, possibly concurrently for different connections when
/// the io_context runs on several threads; set them before `listen()`.
/// @tparam Stream the Stream policy (asio/stream.hpp).
/// @tparam Protocol the Protocol policy (protocol/policy.hpp).
template <class Stream, class Protocol = protocol::line_protocol>
class basic_tcp_server {
public:
    /// @brief The Stream policy.
    using stream_type = Stream;
    /// @brief The Protocol policy.
    using protocol_type = Protocol;

    /// @brief A server for router `r` on `io`.
    /// @param io the application's io_context; must outlive the server's handlers.
    /// @param r the router; must outlive the server's handlers.
    /// @param options limits and greeting (see `tcp_server_options`).
    /// @param router_mutex the mutex that serialises calls on `r`, when the application shares
    ///        `r` with other code; null for a mutex of the server's own.
    /// @throws std::bad_alloc when memory runs out.
    template <class S = Stream, std::enable_if_t<std::is_void_v<typename S::context_type>, int> = 0>
    basic_tcp_server(net::io_context& io, router& r, tcp_server_options options = {},
                     std::mutex* router_mutex = nullptr)
        : state_(std::make_shared<state_type>(io, r, router_mutex, std::move(options), nullptr)) {}

    /// @brief A server whose connections use `context` (TLS: certificate, key, protocol versions;
    /// see `make_tls_context()` in tls_server.hpp); otherwise as above.
    /// @param io the application's io_context; must outlive the server's handlers.
    /// @param context must outlive the server's handlers; shared by all its connections.
    /// @param r the router; must outlive the server's handlers.
    /// @param options limits and greeting (see `tcp_server_options`).
    /// @param router_mutex the mutex that serialises calls on `r`, when the application shares
    ///        `r` with other code; null for a mutex of the server's own.
    /// @throws std::bad_alloc when memory runs out.
    template <class S = Stream, std::enable_if_t<!std::is_void_v<typename S::context_type>, int> = 0>
    basic_tcp_server(net::io_context& io, typename S::context_type& context, router& r,
                     tcp_server_options options = {}, std::mutex* router_mutex = nullptr)
        : state_(std::make_shared<state_type>(io, r, router_mutex, std::move(options), &context)) {}

    basic_tcp_server(const basic_tcp_server&) = delete;
    basic_tcp_server& operator=(const basic_tcp_server&) = delete;

    /// @brief Stops the server if it is still running (see `stop()`).
    ~basic_tcp_server() { stop(); }

    /// @brief Binds to `endpoint` and starts accepting.
    /// @param endpoint address and port; port 0 picks a free ephemeral port (see
    ///        `local_endpoint()`).
    /// @param ec set on failure (address in use, permission denied, ...); cleared on success.
    void listen(const net::ip::tcp::endpoint& endpoint, std::error_code& ec) {
        auto& acceptor = state_->acceptor;
        net_error_code e; // Asio's own type (Boost.Asio: boost::system::error_code)
        acceptor.open(endpoint.protocol(), e);
        if (!e) acceptor.set_option(net::socket_base::reuse_address(true), e);
        if (!e) acceptor.bind(endpoint, e);
        if (!e) acceptor.listen(net::socket_base::max_listen_connections, e);
        ec = e;
        if (e) {
            net_error_code ignored;
            acceptor.close(ignored);
            return;
        }
        net::post(acceptor.get_executor(), [s = state_] {
            accept_next(s);
            detail::sweep(s);
        });
    }

    /// @brief As above; throws `std::system_error` on failure.
    void listen(const net::ip::tcp::endpoint& endpoint) {
        std::error_code ec;
        listen(endpoint, ec);
        if (ec) throw std::system_error(ec, "switchboard::tcp_server::listen");
    }

    /// @brief Serves a stream connected by other means (a socket from another acceptor or a
    /// socketpair, a stream handed over by a proxy, a test's fake stream), exactly as an accepted
    /// one: the connection limits apply, then the stream's and the protocol's handshakes, the
    /// session, the hooks, the timeouts and `stop()`. Does not need `listen()`; the timeout sweep
    /// (and with it the router's ticks) runs only after `listen()` or `start_sweep()`.
    /// @param stream the connected stream, moved in. Its executor must serialise the connection's
    ///        handlers (a strand, or an io_context run by one thread).
    /// @return true when it is served; false when the server is stopped or a connection limit
    ///         refused it (the stream is then closed, without the protocol's refusal bytes).
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] bool adopt(Stream&& stream) {
        net_error_code ec;
        const net::ip::tcp::endpoint peer = stream.remote_endpoint(ec);
        if (state_->stopped) return false;
        return admit(state_, std::move(stream), peer, [](Stream& refused, protocol::refusal_reason) { refused.close(); });
    }

    /// @brief As above, for a connected socket (plain TCP: the socket itself; TLS: the server side
    /// of the handshake runs first). Only for streams built from a socket.
    template <class S = Stream, std::enable_if_t<std::is_constructible_v<S, net::ip::tcp::socket&&,
                                                                         typename S::context_type*>, int> = 0>
    [[nodiscard]] bool adopt(net::ip::tcp::socket&& socket) {
        return adopt(Stream(std::move(socket), state_->context));
    }

    /// @brief Starts the timeout sweep, and with it the router's ticks, without `listen()` (for
    /// servers fed only by `adopt()`). Call it once.
    void start_sweep() {
        net::post(state_->acceptor.get_executor(), [s = state_] { detail::sweep(s); });
    }

    /// @brief The bound address (with the real port after listening on port 0); an empty endpoint
    /// when not listening.
    [[nodiscard]] net::ip::tcp::endpoint local_endpoint() const {
        net_error_code ec;
        auto ep = state_->acceptor.local_endpoint(ec);
        return ec ? net::ip::tcp::endpoint{} : ep;
    }

    /// @brief Graceful stop: stops accepting, drains every connection (reason `server_stop`: input
    /// stops, its session is released and its rooms told, queued output is written) for up to
    /// `tcp_server_options::stop_timeout`, then cuts the connections still draining.
    /// Returns at once; the work completes on the io_context. Calling it again does nothing.
    void stop() {
        if (state_->stopped.exchange(true)) return;
        net::post(state_->acceptor.get_executor(), [s = state_] {
            net_error_code ignored;
            s->acceptor.close(ignored);
            s->retry_timer.cancel();
            s->sweep_timer.cancel();
            for (const auto& c : s->snapshot()) c->close_request(close_mode::after_flush, disconnect_reason::server_stop);
            s->stop_timer.expires_after(s->options.stop_timeout);
            s->stop_timer.async_wait([s](const net_error_code& ec) {
                if (ec) return;
                for (const auto& c : s->snapshot()) c->close_request(close_mode::abort, disconnect_reason::server_stop);
            });
            if (s->connection_count() == 0) s->stop_timer.cancel();
        });
    }

    /// @brief Calls `f(router&)` while holding the router mutex, and returns what it returns.
    /// The way for application code on any thread to use the router beside the server. `f` must
    /// not call `with_router` again (the mutex is not recursive).
    template <class F>
    decltype(auto) with_router(F&& f) {
        std::lock_guard<std::mutex> lock(*state_->router_mutex);
        return std::forward<F>(f)(state_->routes);
    }

    /// @brief Open connections (a snapshot).
    [[nodiscard]] std::size_t connection_count() const { return state_->connection_count(); }

    /// @brief The protocol's server-wide configuration (`Protocol::config`, built from the
    /// options at construction): where a protocol keeps settings the common options do not
    /// have (the WebSocket protocol's page, allowed origins, metrics callback). Set it up
    /// before `listen()`; afterwards it is read by connections under the router mutex, so
    /// change it only inside `with_router()`.
    [[nodiscard]] typename Protocol::config& protocol_config() noexcept { return state_->protocol; }

    /// @brief A snapshot of the server's running totals (takes the router mutex briefly).
    [[nodiscard]] tcp_server_counters counters() const {
        std::lock_guard<std::mutex> lock(*state_->router_mutex);
        return counters(std::adopt_lock);
    }

    /// @brief As `counters()`, for a caller that already holds the router mutex (code running
    /// inside `with_router()`, a router callback, or a protocol's metrics page); takes no lock.
    [[nodiscard]] tcp_server_counters counters(std::adopt_lock_t) const {
        const state_type& s = *state_;
        tcp_server_counters c;
        c.accepted = s.accepted.load(std::memory_order_relaxed);
        c.refused_full = s.refused_full.load(std::memory_order_relaxed);
        c.refused_per_address = s.refused_per_address.load(std::memory_order_relaxed);
        c.register_timeouts = s.register_timeouts.load(std::memory_order_relaxed);
        c.handshake_timeouts = s.handshake_timeouts.load(std::memory_order_relaxed);
        c.idle_timeouts = s.idle_timeouts.load(std::memory_order_relaxed);
        c.slow_consumers = s.slow_consumers.load(std::memory_order_relaxed);
        const auto p = Protocol::counters(s.protocol);
        c.rate_limited = p.rate_limited;
        c.line_too_long = p.line_too_long;
        return c;
    }

    /// @brief Called after a connection was accepted and registered as a session.
    void on_connect(std::function<void(const tcp_connection_info&)> hook) { state_->on_connect = std::move(hook); }
    /// @brief Called once per connection when its session was released (its name and rooms are
    /// already gone; remaining output may still be flushing).
    void on_disconnect(std::function<void(const tcp_connection_info&)> hook) {
        state_->on_disconnect = std::move(hook);
    }
    /// @brief Called for each accept error (e.g. EMFILE); the server retries with back-off.
    void on_accept_error(std::function<void(const std::error_code&)> hook) {
        state_->on_accept_error = std::move(hook);
    }

private:
    using state_type = detail::server_state<Stream, Protocol>;
    using state_ptr = std::shared_ptr<state_type>;
    using connection_type = typename state_type::connection_type;

    // Admission, then the connection; its start() runs on its strand (the stream's executor).
    // `refuse(stream_or_socket)` is called for a refused connection. False: refused.
    template <class Source, class Refuse>
    static bool admit(const state_ptr& s, Source&& source, const net::ip::tcp::endpoint& peer, Refuse&& refuse) {
        std::shared_ptr<connection_type> c;
        {
            std::lock_guard<std::mutex> lock(s->connections_mutex);
            // Checked under the mutex: stop() sets `stopped` before it takes its snapshot under the
            // same mutex, so a connection is either in the snapshot or never admitted.
            if (s->stopped) return false;
            const auto refusal = s->limits.admit(peer.address(), s->connections.size());
            if (refusal) {
                (*refusal == protocol::refusal_reason::server_full ? s->refused_full : s->refused_per_address)
                    .fetch_add(1, std::memory_order_relaxed);
                refuse(source, *refusal);
                return false;
            }
            try {
                c = std::make_shared<connection_type>(s, make_stream(s, std::forward<Source>(source)), peer);
                s->connections.emplace(c.get(), c);
            } catch (...) {
                s->limits.release(peer.address());
                throw;
            }
        }
        s->accepted.fetch_add(1, std::memory_order_relaxed);
        auto executor = c->stream().get_executor();
        net::dispatch(executor, [c = std::move(c)] { c->start(); });
        return true;
    }

    static Stream make_stream(const state_ptr&, Stream&& stream) { return std::move(stream); }
    template <class S = Stream>
    static S make_stream(const state_ptr& s, net::ip::tcp::socket&& socket) {
        return S(std::move(socket), s->context);
    }

    // Accept loop on the acceptor's strand; each socket gets a strand of its own.
    static void accept_next(const state_ptr& s) {
        if (s->stopped || !s->acceptor.is_open()) return;
        s->acceptor.async_accept(net::make_strand(s->io), [s](const net_error_code& ec,
                                                             net::ip::tcp::socket socket) {
            if (ec == net::error::operation_aborted || s->stopped) return;
            if (ec) return retry_accept(s, ec);
            s->backoff.reset();
            net_error_code peer_error;
            const auto peer = socket.remote_endpoint(peer_error);
            if (peer_error) return accept_next(s); // gone already: the socket closes here
            // Over a connection limit: the protocol's refusal, written without waiting (the socket
            // is new, so its send buffer is empty), then close. A TLS stream writes nothing.
            (void)admit(s, std::move(socket), peer, [](net::ip::tcp::socket& refused, protocol::refusal_reason r) {
                Stream::refuse(refused, Protocol::refusal(r));
            });
            accept_next(s);
        });
    }

    // Out of descriptors or buffers: the pending connection stays in the backlog, so accepting
    // again at once would spin. Wait, doubling the delay, then try again.
    static void retry_accept(const state_ptr& s, const net_error_code& ec) {
        if (s->on_accept_error) s->on_accept_error(std::error_code(ec));
        s->retry_timer.expires_after(s->backoff.next());
        s->retry_timer.async_wait([s](const net_error_code& wait_ec) {
            if (!wait_ec) accept_next(s);
        });
    }

    state_ptr state_;
};

/// @brief The plain-TCP server (see `basic_tcp_server`): no setup, the zero-configuration default.
using tcp_server = basic_tcp_server<plain_stream>;

/// @brief The `router_options::ack_window` for a router served by a server built with
/// `options` and the line protocol: the most unacknowledged direct messages of the longest size
/// that one connection's output queue holds within `max_output_bytes`, so that a replay to a
/// client with acknowledgements on (`/ack on`) that does not read never cuts it as a slow
/// consumer; the rest of the replay waits stored and goes out as the client acknowledges.
///
/// One message is counted as the longest `dm` line the line protocol writes for text a client
/// sent (`"dm "`, a 20-digit sequence number, a space, a 40-byte sender name, a space, `max_line`
/// bytes of text and the LF: `max_line` + 66 bytes) plus what the queue charges for a payload it
/// holds by reference (64 bytes; shorter, copied payloads cost less). With the defaults (1 MiB,
/// 4096 bytes) the window is 248. It bounds the direct messages only: the session's other output
/// (replies, room messages) and text longer than `max_line` that the host passes to
/// `router::route()` share the same bound.
///
/// The server does not set the window itself (the router is built before the server, and may
/// serve other servers and transports with other bounds): set it on the `router_options` the
/// router is built with, from the options of the server that will serve the router's clients
/// (`examples/tcp_chat.cpp` does).
/// @param options the server's options: `max_output_bytes` (bytes per connection) and `max_line`
///        (bytes per line, terminator excluded) are read, nothing else.
/// @return the window, in messages: `max_output_bytes / (max_line + 130)`, at least 1.
/// @note Thread-safe (pure function).
[[nodiscard]] inline std::size_t recommended_ack_window(const tcp_server_options& options) noexcept {
    constexpr std::size_t seq_digits = std::numeric_limits<std::uint64_t>::digits10 + 1; // 20
    constexpr std::size_t dm_framing = 3 + seq_digits + 1 + max_name_length + 1 + 1;     // "dm ", SP, SP, LF
    constexpr std::size_t per_message_overhead = dm_framing + detail::output_pump::message_overhead;
    static_assert(per_message_overhead == 130, "the figure the documentation gives");
    const std::size_t bound = options.max_output_bytes;
    if (bound <= per_message_overhead || options.max_line > bound - per_message_overhead) return 1; // no overflow below
    return bound / (options.max_line + per_message_overhead);
}

} // namespace switchboard
