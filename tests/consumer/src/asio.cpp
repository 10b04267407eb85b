// Consumer smoke test for the Asio adapter: built against switchboard::asio /
// dependency('switchboard-asio'). Proves the include path (no Asio macro is needed) and threads are
// provided by the target; it does not start a server.
#include <switchboard/asio/tcp_server.hpp>

#include <cstdio>

int main()
{
    asio::io_context io;
    io.poll();
    std::printf("switchboard asio consumer: ok (Asio %d)\n", ASIO_VERSION);
    return 0;
}
