/// @file
/// @brief `switchboard::tls_server`: the TLS variant of the TCP adapter, on `asio::ssl`
/// (OpenSSL). Same line protocol, limits, hooks and threading as `tcp_server`; TLS 1.2 or newer
/// only.
///
/// Requires standalone Asio and OpenSSL (Debian `libasio-dev`, `libssl-dev`); link the
/// `switchboard::tls` CMake target (meson: `switchboard_tls_dep`).
#pragma once

#include "tcp_server.hpp"

#include <asio/ssl.hpp>
#include <openssl/ssl.h>

#include <string>
#include <system_error>
#include <utility>

namespace switchboard {

namespace detail {

// The stream of a TLS connection: asio::ssl::stream over the TCP socket. The server side of the
// handshake runs before the connection becomes a router session.
struct tls_stream {
    using socket_type = ::asio::ssl::stream<::asio::ip::tcp::socket>;
    using context_type = ::asio::ssl::context;
    static constexpr bool is_tls = true;
    static socket_type make(::asio::ip::tcp::socket&& s, context_type* c) { return socket_type(std::move(s), *c); }
    static ::asio::ip::tcp::socket& lowest(socket_type& s) noexcept { return s.next_layer(); }
    template <class Handler>
    static void handshake(socket_type& s, Handler&& h) {
        s.async_handshake(::asio::ssl::stream_base::server, std::forward<Handler>(h));
    }
    // The peer closed TCP without a TLS close_notify (RFC 8446, section 6.1).
    static bool is_truncation(const std::error_code& ec) noexcept { return ec == ::asio::ssl::error::stream_truncated; }
};

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
/// - over a connection limit the connection is closed without the `* server full` line (the
///   client expects a handshake);
/// - the server closes connections without sending a TLS close_notify, and accepts a peer that
///   closes without one as an ordinary end of input (the line protocol ends with `/quit`).
using tls_server = basic_tcp_server<detail::tls_stream>;

/// @brief An `asio::ssl::context` for a `tls_server`: TLS 1.2 or newer only (RFC 8996 deprecates
/// 1.0 and 1.1), no TLS compression, OpenSSL's default cipher suites, and the certificate chain
/// and private key from PEM files.
/// @param certificate_chain_file PEM file: the server certificate first, then intermediates.
/// @param private_key_file PEM file with the certificate's private key (not encrypted).
/// @param ec set when a file cannot be read or does not match; cleared on success.
/// @return the context (unusable when `ec` is set).
[[nodiscard]] inline ::asio::ssl::context make_tls_context(const std::string& certificate_chain_file,
                                                         const std::string& private_key_file,
                                                         std::error_code& ec) {
    ::asio::ssl::context context(::asio::ssl::context::tls_server);
    ec.clear();
    context.set_options(::asio::ssl::context::default_workarounds | ::asio::ssl::context::no_sslv2 |
                            ::asio::ssl::context::no_sslv3 | ::asio::ssl::context::no_tlsv1 |
                            ::asio::ssl::context::no_tlsv1_1 | ::asio::ssl::context::no_compression |
                            ::asio::ssl::context::single_dh_use,
                        ec);
    if (!ec && SSL_CTX_set_min_proto_version(context.native_handle(), TLS1_2_VERSION) != 1)
        ec = std::make_error_code(std::errc::protocol_not_supported);
    if (!ec) context.use_certificate_chain_file(certificate_chain_file, ec);
    if (!ec) context.use_private_key_file(private_key_file, ::asio::ssl::context::pem, ec);
    return context;
}

/// @brief As above; throws `std::system_error` on failure.
[[nodiscard]] inline ::asio::ssl::context make_tls_context(const std::string& certificate_chain_file,
                                                         const std::string& private_key_file) {
    std::error_code ec;
    ::asio::ssl::context context = make_tls_context(certificate_chain_file, private_key_file, ec);
    if (ec) throw std::system_error(ec, "switchboard::make_tls_context");
    return context;
}

} // namespace switchboard
