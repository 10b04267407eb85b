/// @file
/// @brief `switchboard::tcp_server`: the plain-TCP adapter on standalone Asio. It owns an
/// acceptor and its connections, frames lines with the line protocol v1, and plugs each
/// connection into a `router` as a session.
///
/// Requires standalone Asio (`ASIO_STANDALONE`, Debian `libasio-dev`) and threads; link the
/// `switchboard::asio` CMake target (meson: `switchboard_asio_dep`). The core headers never
/// include this one.
#pragma once

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif
#include <asio.hpp>

#include "../detail/output_queue.hpp"
#include "../payload.hpp"
#include "../protocol/line.hpp"
#include "../protocol/line_session.hpp"
#include "../rate_limiter.hpp"
#include "../router.hpp"
#include "../session_id.hpp"
#include "../transport.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

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
    /// @brief Output bound per connection, in bytes accepted for it and not yet taken by the
    /// kernel, each payload queued by reference (longer than `copy_max_bytes`) counting 64 bytes
    /// more for its bookkeeping. 1 or more. While more than half of it waits, the server stops reading that
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
    /// @brief Informational text sent on connect, each line prefixed `* `; empty for none.
    std::string greeting;
    /// @brief First delay before accepting again after an accept error (EMFILE, ENFILE,
    /// ENOBUFS...), doubled on each further error up to `accept_retry_max`.
    std::chrono::milliseconds accept_retry_min{10};
    /// @brief Longest delay between accept retries.
    std::chrono::milliseconds accept_retry_max{1000};
    /// @brief How long `stop()` lets connections flush queued output before cutting them.
    std::chrono::milliseconds stop_timeout{1000};
    /// @brief Set `TCP_NODELAY` on accepted sockets (default on: chat lines are latency-bound).
    bool no_delay = true;
    /// @brief Payloads of at most this many bytes are copied into the connection's write buffer
    /// (so that a burst of small messages leaves in one write); longer ones are queued by
    /// reference, shared with every other recipient (zero-copy fan-out). 0 references every
    /// payload; at most 64 KiB is used. Default 1 KiB. Memory per connection stays within
    /// `max_output_bytes` plus two write chunks (at most 64 KiB each).
    std::size_t copy_max_bytes = 1024;
    /// @brief Written-out write chunks (4-64 KiB each) the server keeps for reuse, at most this
    /// many bytes in all; chunks left unused for a second are freed. Fan-out queues megabytes per
    /// read and frees them once written: reusing them avoids faulting the pages in again on
    /// every burst. 0 frees every chunk at once. Default 32 MiB.
    std::size_t write_pool_bytes = std::size_t{32} << 20;

    // ---- limits (docs/security.md) -------------------------------------------------------------

    /// @brief Open connections in total; 0 for no limit (default). A connection over the limit is
    /// sent `* server full` and closed at once; the accept loop keeps running.
    std::size_t max_connections = 0;
    /// @brief Open connections per remote IP address; 0 for no limit (default). Over it, as for
    /// `max_connections`.
    std::size_t max_connections_per_address = 0;
    /// @brief A connection that has no user name this long after it was accepted is sent
    /// `* register timeout` and closed. 0 turns it off. Default 30 s. Checked every quarter of
    /// the shortest timeout (at least every 10 ms, at most every 1 s), so it fires up to that
    /// much late.
    std::chrono::milliseconds register_timeout{30000};
    /// @brief A registered connection that sends nothing this long is sent `* idle timeout` and
    /// closed. 0 turns it off (default): chat clients may be silent for hours, and TCP keepalive
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
    std::uint64_t accepted = 0;            ///< Connections accepted and opened as sessions.
    std::uint64_t refused_full = 0;        ///< Refused by `max_connections`.
    std::uint64_t refused_per_address = 0; ///< Refused by `max_connections_per_address`.
    std::uint64_t register_timeouts = 0;   ///< Closed by `register_timeout`.
    std::uint64_t idle_timeouts = 0;       ///< Closed by `idle_timeout`.
    std::uint64_t slow_consumers = 0;      ///< Cut because their output bound was exceeded.
    std::uint64_t rate_limited = 0;        ///< Lines refused with `err rate-limited`.
    std::uint64_t line_too_long = 0;       ///< Lines refused with `err line-too-long`.
};

/// @brief What the connect/disconnect hooks are told.
struct tcp_connection_info {
    session_id session;            ///< The router session of the connection.
    ::asio::ip::tcp::endpoint peer; ///< Remote address and port.
    std::string_view user;          ///< Registered name at disconnect (empty if none / on connect).
    disconnect_reason reason = disconnect_reason::peer_closed; ///< Meaningful on disconnect only.
    std::error_code error;          ///< The socket error for `disconnect_reason::error`.
};

namespace detail {

// The stream of a plain-TCP connection (the policy `basic_tcp_server` is instantiated with; the
// TLS one is in tls_server.hpp). Reads are readiness-based into a per-thread buffer; writes are
// gathered from the output queue (chunks of copied small payloads and referenced large ones).
struct plain_stream {
    using socket_type = ::asio::ip::tcp::socket;
    using context_type = void; // no per-server context
    static constexpr bool is_tls = false;
    static socket_type make(::asio::ip::tcp::socket&& s, context_type*) { return std::move(s); }
    static ::asio::ip::tcp::socket& lowest(socket_type& s) noexcept { return s; }
    template <class Handler>
    static void handshake(socket_type&, Handler&& h) {
        std::forward<Handler>(h)(std::error_code{});
    }
};

template <class Stream>
class tcp_connection;

// State shared by the server and its connections; connections keep it alive.
template <class Stream>
struct tcp_server_state {
    tcp_server_state(::asio::io_context& io, router& r, std::mutex* m, tcp_server_options o,
                     typename Stream::context_type* c)
        : io(io), routes(r), router_mutex(m ? m : &own_mutex), options(std::move(o)),
          write_pool(options.write_pool_bytes), context(c),
          acceptor(::asio::make_strand(io)), retry_timer(acceptor.get_executor()),
          stop_timer(acceptor.get_executor()), sweep_timer(acceptor.get_executor()) {
        session_options.max_line = options.max_line;
        session_options.rate = options.rate;
        session_options.counters = &line_counters;
    }

    ::asio::io_context& io;
    router& routes;
    std::mutex own_mutex;
    std::mutex* router_mutex;
    tcp_server_options options;
    detail::chunk_pool write_pool;          // write chunks of every connection's output queue
    typename Stream::context_type* context; // TLS: the server's ssl::context
    protocol::line_session_options session_options;
    ::asio::ip::tcp::acceptor acceptor;
    ::asio::steady_timer retry_timer;
    ::asio::steady_timer stop_timer;
    ::asio::steady_timer sweep_timer; // register and idle timeouts, write pool trimming
    std::chrono::steady_clock::time_point last_pool_trim{};
    std::chrono::milliseconds retry_delay{0};
    std::atomic<bool> stopped{false};
    std::function<void(const tcp_connection_info&)> on_connect;
    std::function<void(const tcp_connection_info&)> on_disconnect;
    std::function<void(const std::error_code&)> on_accept_error;

    protocol::line_counters line_counters; // guarded by the router mutex
    std::atomic<std::uint64_t> accepted{0}, refused_full{0}, refused_per_address{0},
        register_timeouts{0}, idle_timeouts{0}, slow_consumers{0};

    std::mutex connections_mutex; // guards the two members below
    std::unordered_map<tcp_connection<Stream>*, std::shared_ptr<tcp_connection<Stream>>> connections;
    std::map<::asio::ip::address, std::size_t> per_address; // open connections per remote address
};

// One accepted socket: a router session, its line-protocol state, and its output queue.
// Socket operations run on the socket's strand; the output queue is shared with whichever thread
// holds the router when it calls deliver(), so it has its own small mutex.
// Lock order: router mutex -> output mutex -> connections mutex. Never the reverse.
template <class Stream>
class tcp_connection final : public transport, public std::enable_shared_from_this<tcp_connection<Stream>> {
public:
    // Buffers gathered into one write system call (Asio passes at most 64 to sendmsg).
    static constexpr std::size_t max_write_buffers = 64;
    // What a payload queued by reference costs beyond its bytes, charged against
    // max_output_bytes: its allocation header and malloc rounding, and its block in the queue
    // (measured before small payloads were copied: without it, 1-byte messages pinned about 3
    // times the bound). Copied payloads cost their bytes only.
    static constexpr std::size_t message_overhead = 64;

    // `address` is the peer's IP address, counted in server->per_address by the acceptor.
    tcp_connection(std::shared_ptr<tcp_server_state<Stream>> server, ::asio::ip::tcp::socket socket,
                   ::asio::ip::address address)
        : server_(std::move(server)), out_(server_->options.copy_max_bytes, &server_->write_pool),
          stream_(Stream::make(std::move(socket), server_->context)),
          address_(std::move(address)),
          connected_at_(std::chrono::steady_clock::now()),
          last_input_(connected_at_.time_since_epoch().count()) {}

    // The connection's strand.
    ::asio::any_io_executor executor() { return socket().get_executor(); }

    // Sets socket options, then (after the TLS handshake, if any) registers with the router and
    // starts reading. Runs on the socket's strand.
    void start() {
        std::error_code ec;
        peer_ = socket().remote_endpoint(ec);
        socket().non_blocking(true, ec);
        if (server_->options.no_delay) socket().set_option(::asio::ip::tcp::no_delay(true), ec);
        if (server_->options.keepalive) set_keepalive();
        Stream::handshake(stream_, [self = this->shared_from_this()](const std::error_code& e) { self->on_handshake(e); });
    }

    delivery deliver(const payload& bytes) noexcept override {
        std::lock_guard<std::mutex> lock(out_mutex_);
        if (out_closed_) return delivery::closed;
        const std::size_t cost = bytes.size() + (out_.references(bytes.size()) ? message_overhead : 0);
        const std::size_t queued = queued_bytes_.load(std::memory_order_relaxed);
        bool fits = queued <= server_->options.max_output_bytes && cost <= server_->options.max_output_bytes - queued;
        if (fits) {
            try {
                out_.push(bytes);
            } catch (...) {
                fits = false;
            }
        }
        if (!fits) {
            reason_ = disconnect_reason::slow_consumer;
            server_->slow_consumers.fetch_add(1, std::memory_order_relaxed);
            cut_locked(disconnect_reason::slow_consumer);
            return delivery::slow_consumer;
        }
        queued_bytes_.store(queued + cost, std::memory_order_relaxed);
        if (!write_in_flight_) {
            write_in_flight_ = true;
            ::asio::post(socket().get_executor(), [self = this->shared_from_this()] { self->start_write(); });
        }
        return delivery::queued;
    }

    void close(close_mode mode) noexcept override {
        close_with(mode, disconnect_reason::closed);
    }

    // Closes for `reason`: `after_flush` stops input and closes once queued output is written.
    void close_with(close_mode mode, disconnect_reason reason) noexcept {
        std::lock_guard<std::mutex> lock(out_mutex_);
        if (out_closed_) return;
        if (!reason_) reason_ = reason;
        if (mode == close_mode::abort) return cut_locked(reason);
        flush_then_close_ = true;
        stop_input_ = true;
        if (!write_in_flight_) {
            write_in_flight_ = true; // start_write() sees an empty queue and closes
            ::asio::post(socket().get_executor(), [self = this->shared_from_this()] { self->start_write(); });
        }
    }

    // The TLS handshake is done (or there is none): the connection becomes a session. A failed
    // handshake, or a connection cut meanwhile (register timeout, stop), never becomes one.
    void on_handshake(const std::error_code& ec) {
        if (ec || stopping_input()) {
            input_over_ = true;
            error_ = ec;
            return abort_output(disconnect_reason::error);
        }
        {
            std::lock_guard<std::mutex> lock(*server_->router_mutex);
            id_ = server_->routes.open_session(*this, protocol::line_event_encoder::instance());
            session_open_ = true;
            session_.emplace(server_->routes, id_, server_->session_options);
            session_->greet(server_->options.greeting);
        }
        if (server_->on_connect) server_->on_connect(tcp_connection_info{id_, peer_, {}, {}, {}});
        continue_reading();
    }

    // Cuts the socket now (stop timeout).
    void abort() noexcept { abort_output(disconnect_reason::server_stop); }

    // The peer's IP address (as counted in per_address).
    const ::asio::ip::address& address() const noexcept { return address_; }

    // Closes the connection when it has been unregistered or idle too long. Runs on the
    // acceptor's strand (the sweep), never concurrently with itself.
    void check_timeouts(std::chrono::steady_clock::time_point now) {
        if (timed_out_) return;
        const auto& o = server_->options;
        disconnect_reason why;
        if (!registered_.load(std::memory_order_relaxed)) {
            if (o.register_timeout.count() <= 0 || now - connected_at_ < o.register_timeout) return;
            why = disconnect_reason::register_timeout;
        } else {
            const std::chrono::steady_clock::time_point last{
                std::chrono::steady_clock::duration(last_input_.load(std::memory_order_relaxed))};
            if (o.idle_timeout.count() <= 0 || now - last < o.idle_timeout) return;
            why = disconnect_reason::idle_timeout;
        }
        {
            std::lock_guard<std::mutex> lock(*server_->router_mutex);
            if (released_) return;
            // Registered some other way than through this connection's input (with_router)?
            if (why == disconnect_reason::register_timeout && server_->routes.is_registered(id_)) {
                registered_.store(true, std::memory_order_relaxed);
                return;
            }
            timed_out_ = true;
            try {
                (void)server_->routes.send(id_, protocol::encode_info(
                    why == disconnect_reason::register_timeout ? "register timeout" : "idle timeout"));
            } catch (const std::bad_alloc&) {
            }
        }
        (why == disconnect_reason::register_timeout ? server_->register_timeouts : server_->idle_timeouts)
            .fetch_add(1, std::memory_order_relaxed);
        close_with(close_mode::after_flush, why);
    }

private:
    void post_abort() noexcept { // out_mutex_ held
        try {
            ::asio::post(socket().get_executor(), [self = this->shared_from_this()] { self->shut_socket(); });
        } catch (...) {
        }
    }

    // SO_KEEPALIVE, and on Linux its timing and TCP_USER_TIMEOUT (best effort: errors ignored).
    void set_keepalive() noexcept {
        std::error_code ec;
        socket().set_option(::asio::socket_base::keep_alive(true), ec);
#if defined(TCP_KEEPIDLE) && defined(TCP_KEEPINTVL) && defined(TCP_KEEPCNT)
        const auto& o = server_->options;
        const int fd = socket().native_handle();
        const int idle = static_cast<int>(std::max<std::int64_t>(o.keepalive_idle.count(), 1));
        const int interval = static_cast<int>(std::max<std::int64_t>(o.keepalive_interval.count(), 1));
        const int count = std::max(o.keepalive_count, 1);
        (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
        (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
#if defined(TCP_USER_TIMEOUT)
        const unsigned user_timeout_ms = static_cast<unsigned>(
            std::min<std::int64_t>((std::int64_t{idle} + std::int64_t{interval} * count) * 1000, 0x7fffffff));
        (void)::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms);
#endif
#endif
    }

    ::asio::ip::tcp::socket& socket() noexcept { return Stream::lowest(stream_); }

    // Reads on: readiness-based for plain TCP, an asynchronous read for TLS (whose records must
    // go through the TLS engine, and whose state cannot be shared with a synchronous read).
    void continue_reading() {
        if constexpr (Stream::is_tls) read_async();
        else on_readable({});
    }

    void read_async() {
        if (!tls_buffer_) tls_buffer_.reset(new char[tls_read_bytes]);
        stream_.async_read_some(::asio::buffer(tls_buffer_.get(), tls_read_bytes),
                                [self = this->shared_from_this()](const std::error_code& ec, std::size_t n) {
                                    self->on_read(ec, n);
                                });
    }

    void on_read(const std::error_code& ec, std::size_t n) {
        if (input_over_) return;
        if (stopping_input()) return end_input(disconnect_reason::server_stop, {});
        if (ec == ::asio::error::eof || is_truncation(ec)) return end_input(disconnect_reason::peer_closed, {});
        if (ec) return end_input(disconnect_reason::error, ec);
        if (read_on_after(apply_input(std::string_view(tls_buffer_.get(), n), false))) read_async();
    }

    // A TLS peer that closed TCP without close_notify: treated as a normal close (the line
    // protocol has its own end, /quit, and a cut line is processed as at any EOF).
    static bool is_truncation(const std::error_code& ec) noexcept {
        if constexpr (Stream::is_tls) return Stream::is_truncation(ec);
        else return false;
    }

    void wait_readable() {
        socket().async_wait(::asio::ip::tcp::socket::wait_read,
                           [self = this->shared_from_this()](const std::error_code& ec) { self->on_readable(ec); });
    }

    static char* read_buffer(std::size_t size) {
        thread_local std::unique_ptr<char[]> buffer;
        thread_local std::size_t capacity = 0;
        if (capacity < size) {
            buffer.reset(new char[size]);
            capacity = size;
        }
        return buffer.get();
    }

    // Reads at most reads_per_wakeup chunks, then yields to other connections. A short read
    // means the socket is drained: on Linux it waits at once, without the read that would fail
    // with EAGAIN, because Asio's wait re-arms the descriptor with EPOLL_CTL_MOD, which reports
    // data that arrived in between (epoll(7); ep_modify). Elsewhere it reads until EAGAIN, as
    // edge-triggered readiness needs.
    void on_readable(const std::error_code& wait_error) {
        if (input_over_) return;
        if (wait_error) return end_input(disconnect_reason::error, wait_error);
        const std::size_t chunk = std::max<std::size_t>(server_->options.read_chunk_bytes, 512);
        char* const buffer = read_buffer(chunk);
        for (unsigned i = 0; i < std::max(1u, server_->options.reads_per_wakeup); ++i) {
            if (stopping_input()) return end_input(disconnect_reason::server_stop, {});
            std::error_code ec;
            const std::size_t n = socket().read_some(::asio::buffer(buffer, chunk), ec);
            if (ec == ::asio::error::would_block || ec == ::asio::error::try_again) return wait_readable();
            if (ec == ::asio::error::eof) return end_input(disconnect_reason::peer_closed, {});
            if (ec) return end_input(disconnect_reason::error, ec);
            if (!read_on_after(apply_input(std::string_view(buffer, n), false))) return;
#if defined(ASIO_HAS_EPOLL)
            if (n < chunk) return wait_readable();
#endif
        }
        ::asio::post(socket().get_executor(), [self = this->shared_from_this()] { self->on_readable({}); });
    }

    // Hands input to the protocol under the router mutex: `bytes` just read, or (resume) what the
    // session held when it paused. The session stops after any line that leaves the output backed
    // up or closed, so one read's worth of commands cannot pile up replies past the bound.
    protocol::input_result apply_input(std::string_view bytes, bool resume) {
        const auto now = std::chrono::steady_clock::now().time_since_epoch();
        if (!resume) last_input_.store(now.count(), std::memory_order_relaxed);
        protocol::input_result r = protocol::input_result::keep_reading;
        std::lock_guard<std::mutex> lock(*server_->router_mutex);
        if (released_) return r;
        const auto backed_up = [this] { return output_closed_or_backed_up(); };
        try {
            r = resume ? session_->resume(now, backed_up) : session_->on_input(bytes, now, backed_up);
        } catch (const std::bad_alloc&) {
            r = protocol::input_result::quit;
        }
        if (!registered_.load(std::memory_order_relaxed) && server_->routes.is_registered(id_))
            registered_.store(true, std::memory_order_relaxed);
        return r;
    }

    // What every read path does once the protocol has had the input: end on /quit, pause while
    // the replies are backed up (on_written() calls resume_input() once they drained). True:
    // read on.
    bool read_on_after(protocol::input_result r) {
        if (r == protocol::input_result::quit) {
            end_input(disconnect_reason::quit, {});
            return false;
        }
        if (r == protocol::input_result::paused || output_backed_up()) {
            input_paused_ = true;
            return false;
        }
        return true;
    }

    // Output drained after a pause: finish the held input, then read again.
    void resume_input() {
        if (input_over_) return;
        if (read_on_after(apply_input({}, true))) continue_reading();
    }

    // Backpressure on a client's own input: while more than half the output bound waits for this
    // client, stop reading from it, so a client that pipelines commands faster than it reads the
    // replies is slowed down by TCP instead of being cut as a slow consumer.
    // Read without the output mutex (once per command): a delivery racing with it from another
    // thread is seen at the next command at the latest.
    bool output_backed_up() const noexcept {
        return queued_bytes_.load(std::memory_order_relaxed) > server_->options.max_output_bytes / 2;
    }
    bool output_closed_or_backed_up() const noexcept {
        return out_closed_.load(std::memory_order_relaxed) || output_backed_up();
    }

    bool stopping_input() {
        std::lock_guard<std::mutex> lock(out_mutex_);
        return stop_input_ || out_closed_;
    }

    // Input is over: process a half-closed peer's last line, release the session (its rooms are
    // told), then flush what is queued and close (or close at once after an error).
    void end_input(disconnect_reason reason, std::error_code ec) {
        if (input_over_) return;
        input_over_ = true;
        error_ = ec;
        {
            std::lock_guard<std::mutex> lock(*server_->router_mutex);
            if (reason == disconnect_reason::peer_closed && !released_) {
                try {
                    (void)session_->on_end_of_input();
                } catch (const std::bad_alloc&) {
                }
            }
        }
        release(reason);
        if (reason == disconnect_reason::error) abort_output(reason);
        else close_with(close_mode::after_flush, reason);
    }

    void abort_output(disconnect_reason reason) noexcept {
        std::lock_guard<std::mutex> lock(out_mutex_);
        cut_locked(reason);
    }

    // Stops output and closes the socket on the strand. out_mutex_ held. The queue is freed on
    // the strand (start_write, on_written), where no write can still be reading it.
    void cut_locked(disconnect_reason reason) noexcept {
        if (!reason_) reason_ = reason;
        out_closed_ = true;
        if (!write_in_flight_) out_.clear();
        post_abort();
    }

    // Closes the router session once; afterwards the router never calls this transport again.
    void release(disconnect_reason reason) {
        std::string user;
        {
            std::lock_guard<std::mutex> lock(*server_->router_mutex);
            if (released_) return;
            released_ = true;
            if (!session_open_) return; // the TLS handshake never completed
            user = std::string(server_->routes.name_of(id_));
            (void)server_->routes.close_session(id_);
        }
        disconnect_reason why = reason;
        {
            std::lock_guard<std::mutex> lock(out_mutex_);
            if (reason_) why = *reason_;
        }
        if (server_->on_disconnect)
            server_->on_disconnect(tcp_connection_info{id_, peer_, user, why, error_});
    }

    // Runs on the strand. Sends the head of the output queue in one system call (up to
    // max_write_buffers runs, gathered). The runs stay valid while deliver() appends behind them,
    // and only on_written() (on this strand) releases them, so the write runs unlocked.
    void start_write() {
        std::array<detail::output_queue::buffer, max_write_buffers> runs;
        std::size_t count = 0;
        {
            std::lock_guard<std::mutex> lock(out_mutex_);
            if (!out_closed_) count = out_.gather(runs.data(), runs.size());
            if (count == 0) {
                write_in_flight_ = false;
                if (out_closed_) {
                    out_.clear(); // no write is in flight: nothing reads the queue any more
                } else if (flush_then_close_) {
                    out_closed_ = true;
                    post_abort();
                }
                return;
            }
        }
        auto done = [self = this->shared_from_this()](const std::error_code& ec, std::size_t n) {
            self->on_written(ec, n);
        };
        if constexpr (Stream::is_tls) {
            // The TLS engine encrypts one buffer per write: copy the queued runs into one
            // (encryption copies them anyway), up to a few records' worth.
            staging_.clear();
            for (std::size_t i = 0; i < count && staging_.size() < tls_write_bytes; ++i) {
                const std::size_t take = std::min(runs[i].size, tls_write_bytes - staging_.size());
                staging_.insert(staging_.end(), runs[i].data, runs[i].data + take);
            }
            stream_.async_write_some(::asio::buffer(staging_), std::move(done));
        } else {
            buffers_.clear();
            for (std::size_t i = 0; i < count; ++i) buffers_.emplace_back(runs[i].data, runs[i].size);
            stream_.async_write_some(buffers_, std::move(done));
        }
    }

    // Releases what the kernel took and lowers the queued count by it, so a client that reads is
    // measured by what is really still waiting for it.
    void on_written(const std::error_code& ec, std::size_t written) {
        bool resume = false;
        {
            std::lock_guard<std::mutex> lock(out_mutex_);
            if (ec) {
                out_.clear();
                error_ = ec;
                write_in_flight_ = false;
                cut_locked(disconnect_reason::error);
                return;
            }
            out_.consume(written);
            queued_bytes_.store(out_.size() + out_.referenced() * message_overhead, std::memory_order_relaxed);
            resume = input_paused_ && queued_bytes_.load(std::memory_order_relaxed) <= server_->options.max_output_bytes / 4;
        }
        if (resume && !input_over_) {
            input_paused_ = false;
            ::asio::post(socket().get_executor(), [self = this->shared_from_this()] { self->resume_input(); });
        }
        start_write();
    }

    // Runs on the strand: closes the socket (pending waits complete with operation_aborted, which
    // ends input and releases the session) and forgets the connection.
    void shut_socket() {
        if (socket().is_open()) {
            std::error_code ignored;
            socket().shutdown(::asio::ip::tcp::socket::shutdown_both, ignored);
            socket().close(ignored);
        }
        if (!input_over_) {
            input_over_ = true;
            disconnect_reason why = disconnect_reason::error;
            {
                std::lock_guard<std::mutex> lock(out_mutex_);
                if (reason_) why = *reason_;
            }
            release(why);
        }
        std::lock_guard<std::mutex> lock(server_->connections_mutex);
        if (server_->connections.erase(this) != 0) {
            const auto it = server_->per_address.find(address_);
            if (it != server_->per_address.end() && --it->second == 0) server_->per_address.erase(it);
        }
        if (server_->stopped && server_->connections.empty())
            ::asio::post(server_->acceptor.get_executor(), [s = server_] { s->stop_timer.cancel(); });
    }

    // TLS: bytes read per read (one TLS record holds at most 16 KiB) and copied per write.
    static constexpr std::size_t tls_read_bytes = 16 * 1024;
    static constexpr std::size_t tls_write_bytes = 64 * 1024;

    // Declared first so that it is destroyed last: out_ gives its chunks back to the server's
    // pool when it is destroyed, and this may be the last reference to the server's state.
    std::shared_ptr<tcp_server_state<Stream>> server_;

    // What deliver() touches comes next, together in the object's first cache lines: a fan-out
    // visits one connection per member.
    std::mutex out_mutex_; // guards the members below (the atomics are written under it, and read
                           // without it where a stale value only delays a pause by one line)
    detail::output_queue out_;
    std::atomic<std::size_t> queued_bytes_{0}; // charged for out_ (bytes + message_overhead per reference)
    bool write_in_flight_ = false;
    bool flush_then_close_ = false;
    bool stop_input_ = false;
    std::atomic<bool> out_closed_{false};
    std::optional<disconnect_reason> reason_;

    typename Stream::socket_type stream_;
    ::asio::ip::tcp::endpoint peer_;
    const ::asio::ip::address address_;
    const std::chrono::steady_clock::time_point connected_at_;
    std::atomic<std::chrono::steady_clock::rep> last_input_; // time of the last read, for idle_timeout
    std::atomic<bool> registered_{false}; // the session holds a name (it never loses it while open)
    bool timed_out_ = false;              // sweep only (acceptor strand)
    session_id id_;
    std::optional<protocol::line_session> session_; // guarded by the router mutex
    bool released_ = false;                         // guarded by the router mutex
    bool input_over_ = false;                       // strand only
    bool input_paused_ = false;                     // strand only: reading waits for output
    std::error_code error_;                         // strand only
    std::vector<::asio::const_buffer> buffers_;     // strand only
    std::unique_ptr<char[]> tls_buffer_;            // strand only (TLS reads)
    std::vector<char> staging_;                     // strand only (TLS writes)
    bool session_open_ = false;                     // guarded by the router mutex
};

} // namespace detail

/// @brief A TCP server speaking the line protocol v1, plugging each connection into a router as a
/// session. `Stream` is the connection's stream: `tcp_server` is the plain-TCP instance,
/// `tls_server` (asio/tls_server.hpp) the TLS one; everything below holds for both, except that
/// TLS reads into a 16 KiB per-connection buffer and copies queued output into one buffer per
/// write (the TLS engine takes one buffer at a time).
///
/// It runs entirely on the `asio::io_context` the application owns and starts no threads; run
/// that io_context on one thread or on several. Each connection's socket work runs on its own
/// strand; router calls are serialised by one mutex (the server's own, or one the application
/// passes so that several adapters and its own code share a router). Deliveries only queue bytes
/// under a per-connection mutex and post a write, so a slow client never blocks the router.
///
/// Writes: at most one write in flight per connection; everything queued meanwhile goes out in
/// the next gathered write (up to 64 payloads per system call). Reads: readiness-based, into a per-thread buffer, so an idle
/// connection holds no read buffer. `TCP_NODELAY` is set (configurable).
///
/// Lifetime: the io_context and the router must outlive the server's handlers. Call `stop()`,
/// let the io_context run until it has no work (`run()` returns), then destroy the server.
/// Destroying a server that was not stopped stops it.
///
/// Thread safety: `listen()`, `stop()`, `with_router()`, `local_endpoint()` and
/// `connection_count()` may be called from any thread. The hooks are called on I/O threads, not
/// under the router mutex, possibly concurrently for different connections when the io_context
/// runs on several threads; set them before `listen()`.
template <class Stream>
class basic_tcp_server {
public:
    /// @brief A server for router `r` on `io`.
    /// @param io the application's io_context; must outlive the server's handlers.
    /// @param r the router; must outlive the server's handlers.
    /// @param options limits and greeting (see `tcp_server_options`).
    /// @param router_mutex the mutex that serialises calls on `r`, when the application shares
    ///        `r` with other code; null for a mutex of the server's own.
    template <class S = Stream, std::enable_if_t<std::is_void_v<typename S::context_type>, int> = 0>
    basic_tcp_server(::asio::io_context& io, router& r, tcp_server_options options = {},
                     std::mutex* router_mutex = nullptr)
        : state_(std::make_shared<detail::tcp_server_state<Stream>>(io, r, router_mutex, std::move(options),
                                                                    nullptr)) {}

    /// @brief A server whose connections use `context` (TLS: certificate, key, protocol versions;
    /// see `make_tls_context()` in tls_server.hpp); otherwise as above.
    /// @param context must outlive the server's handlers; shared by all its connections.
    template <class S = Stream, std::enable_if_t<!std::is_void_v<typename S::context_type>, int> = 0>
    basic_tcp_server(::asio::io_context& io, typename S::context_type& context, router& r,
                     tcp_server_options options = {}, std::mutex* router_mutex = nullptr)
        : state_(std::make_shared<detail::tcp_server_state<Stream>>(io, r, router_mutex, std::move(options),
                                                                    &context)) {}

    basic_tcp_server(const basic_tcp_server&) = delete;
    basic_tcp_server& operator=(const basic_tcp_server&) = delete;

    /// @brief Stops the server if it is still running (see `stop()`).
    ~basic_tcp_server() { stop(); }

    /// @brief Binds to `endpoint` and starts accepting.
    /// @param endpoint address and port; port 0 picks a free ephemeral port (see
    ///        `local_endpoint()`).
    /// @param ec set on failure (address in use, permission denied, ...); cleared on success.
    void listen(const ::asio::ip::tcp::endpoint& endpoint, std::error_code& ec) {
        auto& acceptor = state_->acceptor;
        ec.clear();
        acceptor.open(endpoint.protocol(), ec);
        if (!ec) acceptor.set_option(::asio::socket_base::reuse_address(true), ec);
        if (!ec) acceptor.bind(endpoint, ec);
        if (!ec) acceptor.listen(::asio::socket_base::max_listen_connections, ec);
        if (ec) {
            std::error_code ignored;
            acceptor.close(ignored);
            return;
        }
        ::asio::post(acceptor.get_executor(), [s = state_] {
            accept_next(s);
            sweep(s);
        });
    }

    /// @brief As above; throws `std::system_error` on failure.
    void listen(const ::asio::ip::tcp::endpoint& endpoint) {
        std::error_code ec;
        listen(endpoint, ec);
        if (ec) throw std::system_error(ec, "switchboard::tcp_server::listen");
    }

    /// @brief The bound address (with the real port after listening on port 0); an empty endpoint
    /// when not listening.
    [[nodiscard]] ::asio::ip::tcp::endpoint local_endpoint() const {
        std::error_code ec;
        auto ep = state_->acceptor.local_endpoint(ec);
        return ec ? ::asio::ip::tcp::endpoint{} : ep;
    }

    /// @brief Graceful stop: stops accepting, releases every session (rooms are told), flushes
    /// queued output for up to `tcp_server_options::stop_timeout`, then closes every connection.
    /// Returns at once; the work completes on the io_context. Calling it again does nothing.
    void stop() {
        if (state_->stopped.exchange(true)) return;
        ::asio::post(state_->acceptor.get_executor(), [s = state_] {
            std::error_code ignored;
            s->acceptor.close(ignored);
            s->retry_timer.cancel();
            s->sweep_timer.cancel();
            for (const auto& c : snapshot(*s)) c->close_with(close_mode::after_flush, disconnect_reason::server_stop);
            s->stop_timer.expires_after(s->options.stop_timeout);
            s->stop_timer.async_wait([s](const std::error_code& ec) {
                if (ec) return;
                for (const auto& c : snapshot(*s)) c->abort();
            });
            if (connection_count_of(*s) == 0) s->stop_timer.cancel();
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
    [[nodiscard]] std::size_t connection_count() const { return connection_count_of(*state_); }

    /// @brief A snapshot of the server's running totals (takes the router mutex briefly).
    [[nodiscard]] tcp_server_counters counters() const {
        const detail::tcp_server_state<Stream>& s = *state_;
        tcp_server_counters c;
        c.accepted = s.accepted.load(std::memory_order_relaxed);
        c.refused_full = s.refused_full.load(std::memory_order_relaxed);
        c.refused_per_address = s.refused_per_address.load(std::memory_order_relaxed);
        c.register_timeouts = s.register_timeouts.load(std::memory_order_relaxed);
        c.idle_timeouts = s.idle_timeouts.load(std::memory_order_relaxed);
        c.slow_consumers = s.slow_consumers.load(std::memory_order_relaxed);
        std::lock_guard<std::mutex> lock(*s.router_mutex);
        c.rate_limited = s.line_counters.rate_limited;
        c.line_too_long = s.line_counters.line_too_long;
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
    using state_ptr = std::shared_ptr<detail::tcp_server_state<Stream>>;

    static std::size_t connection_count_of(detail::tcp_server_state<Stream>& s) {
        std::lock_guard<std::mutex> lock(s.connections_mutex);
        return s.connections.size();
    }

    static std::vector<std::shared_ptr<detail::tcp_connection<Stream>>> snapshot(detail::tcp_server_state<Stream>& s) {
        std::lock_guard<std::mutex> lock(s.connections_mutex);
        std::vector<std::shared_ptr<detail::tcp_connection<Stream>>> out;
        out.reserve(s.connections.size());
        for (const auto& entry : s.connections) out.push_back(entry.second);
        return out;
    }

    // Accept loop on the acceptor's strand; each socket gets a strand of its own.
    static void accept_next(const state_ptr& s) {
        if (s->stopped || !s->acceptor.is_open()) return;
        s->acceptor.async_accept(::asio::make_strand(s->io), [s](const std::error_code& ec,
                                                                 ::asio::ip::tcp::socket socket) {
            if (ec == ::asio::error::operation_aborted || s->stopped) return;
            if (ec) return retry_accept(s, ec);
            s->retry_delay = std::chrono::milliseconds{0};
            std::error_code peer_error;
            const auto address = socket.remote_endpoint(peer_error).address();
            if (peer_error) return accept_next(s); // gone already: the socket closes here
            std::shared_ptr<detail::tcp_connection<Stream>> c;
            {
                std::lock_guard<std::mutex> lock(s->connections_mutex);
                const auto& o = s->options;
                std::size_t& from_address = s->per_address[address];
                const bool full = o.max_connections != 0 && s->connections.size() >= o.max_connections;
                if (full || (o.max_connections_per_address != 0 && from_address >= o.max_connections_per_address)) {
                    if (from_address == 0) s->per_address.erase(address);
                    (full ? s->refused_full : s->refused_per_address).fetch_add(1, std::memory_order_relaxed);
                    refuse(socket);
                    return accept_next(s);
                }
                c = std::make_shared<detail::tcp_connection<Stream>>(s, std::move(socket), address);
                s->connections.emplace(c.get(), c);
                ++from_address;
            }
            s->accepted.fetch_add(1, std::memory_order_relaxed);
            // start() runs on the connection's strand (the socket's executor).
            auto executor = c->executor();
            ::asio::dispatch(executor, [c = std::move(c)] { c->start(); });
            accept_next(s);
        });
    }

    // Over a connection limit: tells the client why, without waiting (the socket is new, so its
    // send buffer is empty and the line fits), then closes. Best effort: errors are ignored.
    // A TLS client expects a handshake, not a line: it is just closed.
    static void refuse(::asio::ip::tcp::socket& socket) noexcept {
        static constexpr char line[] = "* server full\n";
        std::error_code ignored;
        socket.non_blocking(true, ignored);
        if (!Stream::is_tls) (void)socket.write_some(::asio::buffer(line, sizeof line - 1), ignored);
        socket.shutdown(::asio::ip::tcp::socket::shutdown_send, ignored);
        socket.close(ignored);
    }

    // Register and idle timeouts: one timer for the server instead of one per connection, so an
    // idle connection costs no timer. It also trims the write chunk pool about once a second.
    // Runs on the acceptor's strand.
    static void sweep(const state_ptr& s) {
        const auto& o = s->options;
        std::chrono::milliseconds shortest{0};
        for (const auto t : {o.register_timeout, o.idle_timeout})
            if (t.count() > 0 && (shortest.count() == 0 || t < shortest)) shortest = t;
        if (s->stopped) return;
        const auto now = std::chrono::steady_clock::now();
        if (shortest.count() > 0)
            for (const auto& c : snapshot(*s)) c->check_timeouts(now);
        if (o.write_pool_bytes > 0 && now - s->last_pool_trim >= std::chrono::seconds{1}) {
            s->write_pool.trim();
            s->last_pool_trim = now;
        }
        if (shortest.count() == 0 && o.write_pool_bytes == 0) return;
        const std::chrono::milliseconds most{1000};
        const auto period = shortest.count() == 0 ? most : std::clamp(shortest / 4, std::chrono::milliseconds{10}, most);
        s->sweep_timer.expires_after(period);
        s->sweep_timer.async_wait([s](const std::error_code& ec) {
            if (!ec) sweep(s);
        });
    }

    // Out of descriptors or buffers: the pending connection stays in the backlog, so accepting
    // again at once would spin. Wait, doubling the delay, then try again.
    static void retry_accept(const state_ptr& s, const std::error_code& ec) {
        if (s->on_accept_error) s->on_accept_error(ec);
        const auto& o = s->options;
        s->retry_delay = s->retry_delay.count() == 0 ? o.accept_retry_min
                                                     : std::min(s->retry_delay * 2, o.accept_retry_max);
        s->retry_timer.expires_after(s->retry_delay);
        s->retry_timer.async_wait([s](const std::error_code& wait_ec) {
            if (!wait_ec) accept_next(s);
        });
    }

    state_ptr state_;
};

/// @brief The plain-TCP server (see `basic_tcp_server`): no setup, the zero-configuration default.
using tcp_server = basic_tcp_server<detail::plain_stream>;

} // namespace switchboard
