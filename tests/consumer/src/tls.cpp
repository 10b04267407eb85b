// Consumer smoke test for the TLS adapter: built against switchboard::tls /
// dependency('switchboard-tls') / `pkg-config switchboard-tls`. Proves the include path, Asio's
// definitions, threads and OpenSSL's libssl and libcrypto are provided (the TLS context is
// created by OpenSSL, so the program links against it); it does not start a server.
#include <switchboard/asio/tls_server.hpp>

#include <cstdio>

int main()
{
    asio::ssl::context context(asio::ssl::context::tls_server);
    std::error_code ec;
    // A missing file must come back as an error code, not an exception or a crash.
    auto unusable = switchboard::make_tls_context("/nonexistent/cert.pem", "/nonexistent/key.pem", ec);
    (void)unusable;
    if (!ec) {
        std::fprintf(stderr, "make_tls_context accepted a missing certificate file\n");
        return 1;
    }
    std::printf("switchboard tls consumer: ok (%s)\n", OpenSSL_version(OPENSSL_VERSION));
    return context.native_handle() != nullptr ? 0 : 1;
}
