// Consumer smoke test for the adapters on Boost.Asio: built against switchboard::boost_tls /
// dependency('switchboard-boost-tls') / `pkg-config switchboard-boost-tls`. Proves that the
// target selects the Boost backend (SWITCHBOARD_USE_BOOST_ASIO), that no standalone Asio comes
// along, and that Boost's headers, threads and OpenSSL are provided; it does not start a server.
#include <switchboard/asio/tls_server.hpp>

#include <cstdio>
#include <system_error>
#include <type_traits>

#if !defined(SWITCHBOARD_USE_BOOST_ASIO) || defined(ASIO_VERSION) || defined(ASIO_STANDALONE)
#error "switchboard::boost_tls must select Boost.Asio and bring no standalone Asio"
#endif
static_assert(std::is_same_v<switchboard::net::io_context, boost::asio::io_context>);

int main()
{
    boost::asio::io_context io; // the application's own
    switchboard::router router;
    switchboard::tcp_server plain(io, router);
    std::error_code ec;
    auto unusable = switchboard::make_tls_context("/nonexistent/cert.pem", "/nonexistent/key.pem", ec);
    if (!ec) {
        std::fprintf(stderr, "make_tls_context accepted a missing certificate file\n");
        return 1;
    }
    switchboard::tls_server tls(io, unusable, router);
    plain.stop();
    tls.stop();
    io.run();
    std::printf("switchboard boost consumer: ok (Boost.Asio %d)\n", BOOST_ASIO_VERSION);
    return 0;
}
