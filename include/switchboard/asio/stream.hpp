/// @file
/// @brief The Stream policy of the connection engine, and `switchboard::plain_stream`, the
/// plain-TCP stream. The engine (asio/detail/connection.hpp) touches a socket only through its
/// Stream, so a TLS stream (asio/tls_server.hpp) or a test's fake stream with no socket at all
/// (tests/unit/fake_stream.hpp) plugs in unchanged.
///
/// A Stream policy `S` is the per-connection stream object. Required members (checked by
/// `check_stream_policy<S>()`):
///
/// | member | what the engine does with it |
/// |---|---|
/// | `using context_type = ...;` | per-server context handed to the constructor (TLS: `asio::ssl::context`), `void` for none |
/// | `S(asio::ip::tcp::socket&&, context_type*)` | only for `listen()`: wraps an accepted socket |
/// | `executor_type get_executor()` | the connection's strand: every handler of the connection runs on it |
/// | `void prepare(const tcp_server_options&) noexcept` | socket options: non-blocking, `TCP_NODELAY`, keepalive timing |
/// | `asio::ip::tcp::endpoint remote_endpoint(net_error_code&) const` | the peer, for the limits and the hooks |
/// | `void async_handshake(H)` | `h(error_code)`: the stream's own handshake (TLS), or none |
/// | `static constexpr bool readiness_reads` | true: the engine waits with `async_wait_readable(h)` and reads with non-blocking `read_some(char*, size, error_code&)` into a per-thread buffer; false: `async_read_some(h)` calls `h(error_code, std::string_view)` with bytes in the stream's own buffer |
/// | `static constexpr bool short_read_drains` | readiness reads: a read shorter than asked means drained, so wait at once (Linux epoll) instead of reading until `would_block` |
/// | `void async_write_some(const asio::const_buffer* b, std::size_t n, H)` | one gathered write of up to n buffers (they stay valid until the handler runs); `h(error_code, bytes_written)`, a short count is fine |
/// | `void close() noexcept` | shutdown and close, idempotent; pending operations complete with `operation_aborted` |
/// | `void async_shutdown(H)` (optional) | the stream's graceful end after a drain (`/quit`, EOF, a kick, `stop()`, a timeout; never after an abort), before `close()`: `h()` when done, bounded in time by the stream (TLS: sends close_notify). Without it, `close()` follows the drain at once |
/// | `static bool is_end_of_stream(const net_error_code&) noexcept` | the peer's orderly end (EOF; TLS: also a missing close_notify) |
/// | `static void refuse(asio::ip::tcp::socket&, std::string_view bytes) noexcept` | a socket over a limit: best effort write of the protocol's refusal, then close (TLS writes nothing) |
///
/// Requires Asio: standalone (Debian `libasio-dev`) or Boost.Asio (see backend.hpp).
#pragma once

#include "backend.hpp"
#include "server_options.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#endif

namespace switchboard {

namespace detail {

// SO_KEEPALIVE, and on Linux its timing and TCP_USER_TIMEOUT (best effort: errors ignored).
inline void set_keepalive(net::ip::tcp::socket& socket, const tcp_server_options& o) noexcept {
    net_error_code ec;
    socket.set_option(net::socket_base::keep_alive(true), ec);
#if defined(TCP_KEEPIDLE) && defined(TCP_KEEPINTVL) && defined(TCP_KEEPCNT)
    const int fd = socket.native_handle();
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
#else
    (void)o;
#endif
}

// Non-blocking mode, TCP_NODELAY and keepalive: what every TCP stream sets on its socket.
inline void prepare_socket(net::ip::tcp::socket& socket, const tcp_server_options& o) noexcept {
    net_error_code ec;
    socket.non_blocking(true, ec);
    if (o.no_delay) socket.set_option(net::ip::tcp::no_delay(true), ec);
    if (o.keepalive) set_keepalive(socket, o);
}

// Shutdown and close, ignoring errors (the peer may be gone already).
inline void close_socket(net::ip::tcp::socket& socket) noexcept {
    if (!socket.is_open()) return;
    net_error_code ignored;
    socket.shutdown(net::ip::tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
}

// The buffers of one gathered write, per thread: Asio copies the sequence into the operation, so
// the connection needs no buffer vector of its own.
inline std::vector<net::const_buffer>& write_buffers(const net::const_buffer* b, std::size_t n) {
    thread_local std::vector<net::const_buffer> buffers;
    buffers.assign(b, b + n);
    return buffers;
}

template <class S, class = void>
struct has_stream_io : std::false_type {};
template <class S>
struct has_stream_io<S, std::void_t<decltype(std::declval<S&>().get_executor()),
                                    decltype(std::declval<S&>().prepare(std::declval<const tcp_server_options&>())),
                                    decltype(std::declval<const S&>().remote_endpoint(std::declval<net_error_code&>())),
                                    decltype(std::declval<S&>().close()),
                                    decltype(S::is_end_of_stream(std::declval<const net_error_code&>()))>>
    : std::true_type {};

template <class S, class = void>
struct has_async_shutdown : std::false_type {};
template <class S>
struct has_async_shutdown<S, std::void_t<decltype(std::declval<S&>().async_shutdown(std::declval<void (*)()>()))>>
    : std::true_type {};

template <class S, class = void>
struct has_readiness_reads : std::false_type {};
template <class S>
struct has_readiness_reads<S, std::void_t<decltype(S::readiness_reads), decltype(S::short_read_drains)>>
    : std::true_type {};

} // namespace detail

/// @brief Compile-time check of a Stream policy (see the table at the top of this file); the
/// engine calls it once per instantiation. Each failure reads as the rule that was broken.
/// @return true (the checks are `static_assert`s).
template <class S>
constexpr bool check_stream_policy() noexcept {
    static_assert(detail::has_stream_io<S>::value,
                  "a Stream has an executor (the strand), prepare(options), remote_endpoint(ec), close() and "
                  "is_end_of_stream(ec)");
    static_assert(detail::has_readiness_reads<S>::value,
                  "a Stream says how it reads: static constexpr bool readiness_reads and short_read_drains");
    static_assert(std::is_nothrow_move_constructible_v<S> || !std::is_copy_constructible_v<S>,
                  "a Stream is moved into its connection, never copied");
    static_assert(noexcept(std::declval<S&>().close()), "closing a Stream never throws");
    return true;
}

/// @brief The plain-TCP stream (the Stream policy of `tcp_server`): an `asio::ip::tcp::socket`
/// read by readiness into the engine's per-thread buffer and written with gathered writes.
///
/// Thread safety: one connection's operations run on its strand (the socket's executor).
class plain_stream {
public:
    /// @brief No per-server context.
    using context_type = void;
    /// @brief The socket's executor: the connection's strand.
    using executor_type = net::ip::tcp::socket::executor_type;
    /// @brief Reads wait for readability, then read into the engine's per-thread buffer.
    static constexpr bool readiness_reads = true;
#if defined(ASIO_HAS_EPOLL) || defined(BOOST_ASIO_HAS_EPOLL)
    /// @brief On Linux a short read means drained: Asio's wait re-arms the descriptor with
    /// `EPOLL_CTL_MOD`, which reports data that arrived in between (epoll(7)).
    static constexpr bool short_read_drains = true;
#else
    /// @brief Elsewhere read until `would_block`, as edge-triggered readiness needs.
    static constexpr bool short_read_drains = false;
#endif

    /// @brief Wraps an accepted (or connected) socket.
    explicit plain_stream(net::ip::tcp::socket&& socket, context_type* = nullptr) noexcept
        : socket_(std::move(socket)) {}

    /// @brief The connection's strand.
    [[nodiscard]] executor_type get_executor() noexcept { return socket_.get_executor(); }
    /// @brief Non-blocking mode, `TCP_NODELAY` and keepalive per `o` (errors ignored).
    void prepare(const tcp_server_options& o) noexcept { detail::prepare_socket(socket_, o); }
    /// @brief The peer's address and port.
    [[nodiscard]] net::ip::tcp::endpoint remote_endpoint(net_error_code& ec) const {
        return socket_.remote_endpoint(ec);
    }
    /// @brief No handshake: calls `h` at once (the caller is on the strand already).
    template <class Handler>
    void async_handshake(Handler&& h) {
        std::forward<Handler>(h)(net_error_code{});
    }
    /// @brief Waits until the socket is readable.
    template <class Handler>
    void async_wait_readable(Handler&& h) {
        socket_.async_wait(net::ip::tcp::socket::wait_read, std::forward<Handler>(h));
    }
    /// @brief Non-blocking read: `would_block` when nothing is there, `eof` at the end.
    std::size_t read_some(char* data, std::size_t size, net_error_code& ec) {
        return socket_.read_some(net::buffer(data, size), ec);
    }
    /// @brief One gathered write (`sendmsg`) of `count` buffers.
    template <class Handler>
    void async_write_some(const net::const_buffer* buffers, std::size_t count, Handler&& h) {
        socket_.async_write_some(detail::write_buffers(buffers, count), std::forward<Handler>(h));
    }
    /// @brief Shutdown and close; idempotent.
    void close() noexcept { detail::close_socket(socket_); }
    /// @brief EOF is the peer's orderly end.
    [[nodiscard]] static bool is_end_of_stream(const net_error_code& ec) noexcept { return ec == net::error::eof; }
    /// @brief Writes `bytes` without waiting (a new socket's send buffer is empty), then closes.
    static void refuse(net::ip::tcp::socket& socket, std::string_view bytes) noexcept {
        net_error_code ignored;
        socket.non_blocking(true, ignored);
        if (!bytes.empty()) (void)socket.write_some(net::buffer(bytes.data(), bytes.size()), ignored);
        socket.shutdown(net::ip::tcp::socket::shutdown_send, ignored);
        socket.close(ignored);
    }
    /// @brief The socket (for socket options of the application's own).
    [[nodiscard]] net::ip::tcp::socket& socket() noexcept { return socket_; }

private:
    net::ip::tcp::socket socket_;
};

static_assert(check_stream_policy<plain_stream>(), "plain_stream is a Stream policy");

namespace detail {
/// @brief The former name of `plain_stream` (kept for source compatibility).
using plain_stream = ::switchboard::plain_stream;
} // namespace detail

} // namespace switchboard
