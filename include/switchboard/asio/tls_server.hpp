/// @file
/// @brief `switchboard::tls_server`: the TLS variant of the TCP adapter, on `asio::ssl`
/// (OpenSSL). Same line protocol, limits, hooks and threading as `tcp_server`; TLS 1.2 or newer
/// only.
///
/// Requires Asio and OpenSSL (Debian `libasio-dev` or `libboost-dev`, and `libssl-dev`); link the
/// `switchboard::tls` CMake target (meson: `switchboard_tls_dep`), or with Boost.Asio
/// (`SWITCHBOARD_USE_BOOST_ASIO`, see backend.hpp) `switchboard::boost_tls`
/// (`switchboard_boost_tls_dep`).
#pragma once

#include "tcp_server.hpp"

#if defined(SWITCHBOARD_USE_BOOST_ASIO)
#include <boost/asio/ssl.hpp>
#else
#include <asio/ssl.hpp>
#endif
#include <openssl/ssl.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>
#include <system_error>
#include <utility>

namespace switchboard {

/// @brief The TLS stream (the Stream policy of `tls_server`, see asio/stream.hpp):
/// `asio::ssl::stream` over the TCP socket. The server side of the handshake runs before the
/// connection becomes a router session. Reads go through the TLS engine into a 16 KiB buffer of
/// the connection's own (allocated on the first read); a gathered write is copied into one buffer
/// of up to 64 KiB (the engine encrypts one buffer at a time, copying it anyway).
///
/// Thread safety: one connection's operations run on its strand (the socket's executor).
class tls_stream {
public:
    /// @brief The server's `asio::ssl::context` (certificate, key, versions).
    using context_type = net::ssl::context;
    /// @brief The socket's executor: the connection's strand.
    using executor_type = net::ip::tcp::socket::executor_type;
    /// @brief Records must go through the TLS engine, whose state cannot be shared with a
    /// synchronous read: reads are asynchronous, into the stream's own buffer.
    static constexpr bool readiness_reads = false;
    /// @brief Unused (reads are not readiness-based).
    static constexpr bool short_read_drains = false;
    /// @brief Bytes read per read (one TLS record holds at most 16 KiB).
    static constexpr std::size_t read_bytes = 16 * 1024;
    /// @brief Bytes copied per write, at most.
    static constexpr std::size_t write_bytes = 64 * 1024;

    /// @brief Wraps an accepted socket; `context` must outlive the stream.
    tls_stream(net::ip::tcp::socket&& socket, context_type* context) : stream_(std::move(socket), *context) {}

    /// @brief The connection's strand.
    [[nodiscard]] executor_type get_executor() noexcept { return stream_.next_layer().get_executor(); }
    /// @brief Non-blocking mode, `TCP_NODELAY` and keepalive per `o` (errors ignored).
    void prepare(const tcp_server_options& o) noexcept {
        detail::prepare_socket(stream_.next_layer(), o);
        shutdown_timeout_ = o.stop_timeout;
    }
    /// @brief The peer's address and port.
    [[nodiscard]] net::ip::tcp::endpoint remote_endpoint(net_error_code& ec) const {
        return stream_.next_layer().remote_endpoint(ec);
    }
    /// @brief The server side of the TLS handshake.
    template <class Handler>
    void async_handshake(Handler&& h) {
        stream_.async_handshake(net::ssl::stream_base::server, std::forward<Handler>(h));
    }
    /// @brief Reads decrypted bytes into the stream's buffer; `h(error_code, std::string_view)`.
    template <class Handler>
    void async_read_some(Handler&& h) {
        if (!read_buffer_) read_buffer_.reset(new char[read_bytes]);
        stream_.async_read_some(net::buffer(read_buffer_.get(), read_bytes),
                                [this, h = std::forward<Handler>(h)](const net_error_code& ec, std::size_t n) mutable {
                                    h(ec, std::string_view(read_buffer_.get(), n));
                                });
    }
    /// @brief Copies up to `write_bytes` of the gathered buffers into one, and writes it.
    template <class Handler>
    void async_write_some(const net::const_buffer* buffers, std::size_t count, Handler&& h) {
        staging_.clear();
        for (std::size_t i = 0; i < count && staging_.size() < write_bytes; ++i) {
            const char* data = static_cast<const char*>(buffers[i].data());
            const std::size_t take = std::min(buffers[i].size(), write_bytes - staging_.size());
            staging_.insert(staging_.end(), data, data + take);
        }
        stream_.async_write_some(net::buffer(staging_), std::forward<Handler>(h));
    }
    /// @brief The TLS shutdown at the end of a graceful close: sends close_notify and waits for
    /// the peer's, for at most `tcp_server_options::stop_timeout` (1 s by default); then `h()`.
    /// A pending read is cancelled first (the shutdown reads the peer's reply itself). A peer
    /// that never answers, or is gone, costs at most that deadline; errors are ignored (the
    /// connection closes either way).
    template <class Handler>
    void async_shutdown(Handler&& h) {
        // Both handlers share the caller's handler (which keeps the connection, and so this
        // stream, alive) until the second of them has run: `this` stays valid in both.
        auto done = std::make_shared<std::decay_t<Handler>>(std::forward<Handler>(h));
        net_error_code ignored;
        stream_.next_layer().cancel(ignored);
        if (!shutdown_timer_) shutdown_timer_ = std::make_unique<net::steady_timer>(get_executor());
        shutdown_timer_->expires_after(shutdown_timeout_);
        shutdown_timer_->async_wait([this, done](const net_error_code& ec) {
            if (ec) return; // cancelled: the shutdown finished in time
            net_error_code cancel_error;
            stream_.next_layer().cancel(cancel_error); // the shutdown completes with operation_aborted
        });
        stream_.async_shutdown([this, done](const net_error_code&) {
            shutdown_timer_->cancel();
            (*done)();
        });
    }
    /// @brief Closes the TCP socket (after `async_shutdown()` on a graceful close, at once on an
    /// abort); idempotent.
    void close() noexcept { detail::close_socket(stream_.next_layer()); }
    /// @brief EOF, or a peer that closed TCP without a TLS close_notify (RFC 8446, section 6.1):
    /// an ordinary end of input (the line protocol has its own end, `/quit`).
    [[nodiscard]] static bool is_end_of_stream(const net_error_code& ec) noexcept {
        return ec == net::error::eof || ec == net::ssl::error::stream_truncated;
    }
    /// @brief A TLS client expects a handshake, not plaintext: just closes.
    static void refuse(net::ip::tcp::socket& socket, std::string_view) noexcept {
        net_error_code ignored;
        socket.shutdown(net::ip::tcp::socket::shutdown_send, ignored);
        socket.close(ignored);
    }

private:
    net::ssl::stream<net::ip::tcp::socket> stream_;
    std::unique_ptr<char[]> read_buffer_; // strand only
    std::vector<char> staging_;           // strand only
    std::unique_ptr<net::steady_timer> shutdown_timer_; // strand only; made by the first shutdown
    std::chrono::milliseconds shutdown_timeout_{1000};  // tcp_server_options::stop_timeout
};

static_assert(check_stream_policy<tls_stream>(), "tls_stream is a Stream policy");

namespace detail {
/// @brief The former name of `tls_stream` (kept for source compatibility).
using tls_stream = ::switchboard::tls_stream;
} // namespace detail

/// @brief A TLS server speaking the line protocol v1: `basic_tcp_server` over `asio::ssl`.
///
/// Construct it with an `asio::ssl::context` holding the certificate and key (see
/// `make_tls_context()`): `tls_server server(io, context, router, options);`. Everything of
/// `tcp_server` applies (options, limits, hooks, `stop()`, thread safety). Differences:
/// - a connection becomes a router session (and `on_connect` is called) only after its TLS
///   handshake succeeded; a failed handshake is just closed, with no hook call. The handshake is
///   bounded by `tcp_server_options::register_timeout` (it counts from accept).
/// - reads go through a 16 KiB buffer per connection and queued output is copied into one buffer
///   per write (up to 64 KiB), since the TLS engine encrypts one buffer at a time;
/// - over a connection limit the connection is closed without the protocol's refusal bytes (the
///   client expects a handshake);
/// - a graceful close (`/quit`, a kick or timeout after flushing, `stop()`) ends with the TLS
///   shutdown: the server sends close_notify and waits for the peer's for at most
///   `tcp_server_options::stop_timeout`, then closes the socket; an abort (slow consumer, socket
///   error) closes at once. A peer that closes without close_notify is an ordinary end of input
///   (the line protocol ends with `/quit`).
using tls_server = basic_tcp_server<tls_stream>;

/// @brief An `asio::ssl::context` for a `tls_server`: TLS 1.2 or newer only (RFC 8996 deprecates
/// 1.0 and 1.1), no TLS compression, OpenSSL's default cipher suites, and the certificate chain
/// and private key from PEM files.
/// @param certificate_chain_file PEM file: the server certificate first, then intermediates.
/// @param private_key_file PEM file with the certificate's private key (not encrypted).
/// @param ec set when a file cannot be read or does not match; cleared on success.
/// @return the context (unusable when `ec` is set).
[[nodiscard]] inline net::ssl::context make_tls_context(const std::string& certificate_chain_file,
                                                       const std::string& private_key_file,
                                                       std::error_code& ec) {
    net::ssl::context context(net::ssl::context::tls_server);
    net_error_code e; // Asio's own type (Boost.Asio: boost::system::error_code)
    context.set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                            net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                            net::ssl::context::no_tlsv1_1 | net::ssl::context::no_compression |
                            net::ssl::context::single_dh_use,
                        e);
    ec = e;
    // OpenSSL keeps a read and a write record buffer (about 34 KB together) per connection for
    // its whole life unless told to free them while idle: most chat connections are idle.
    if (!ec) SSL_CTX_set_mode(context.native_handle(), SSL_MODE_RELEASE_BUFFERS);
    if (!ec && SSL_CTX_set_min_proto_version(context.native_handle(), TLS1_2_VERSION) != 1)
        ec = std::make_error_code(std::errc::protocol_not_supported);
    if (!ec) context.use_certificate_chain_file(certificate_chain_file, e);
    if (!ec && !e) context.use_private_key_file(private_key_file, net::ssl::context::pem, e);
    if (!ec) ec = e;
    return context;
}

/// @brief As above; throws `std::system_error` on failure.
[[nodiscard]] inline net::ssl::context make_tls_context(const std::string& certificate_chain_file,
                                                       const std::string& private_key_file) {
    std::error_code ec;
    net::ssl::context context = make_tls_context(certificate_chain_file, private_key_file, ec);
    if (ec) throw std::system_error(ec, "switchboard::make_tls_context");
    return context;
}

} // namespace switchboard
