// The smallest server: a router, the TCP adapter, and a bot that answers from its callback.
// Talk to it with `nc 127.0.0.1 7778`: `/register me`, then `/msg echo hello` -> `msg echo hello`.
// Usage: echo_bot [port]   (0 picks a free port; the line below says which)
#include <switchboard/asio/tcp_server.hpp>
#include <switchboard/structured_format.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

// The bot is a session whose transport takes events as values. It answers from inside deliver():
// the router delivers the answer after the message that caused it (docs/design.md, "Ordering").
class echo_bot final : public switchboard::transport {
public:
    explicit echo_bot(switchboard::router& r) : router_(r) {
        id_ = r.open_session(*this, switchboard::structured_format::instance());
        (void)r.register_name(id_, "echo");
    }
    switchboard::delivery deliver(const switchboard::payload& bytes) noexcept override {
        const auto e = switchboard::structured_format::decode(bytes);
        if (e && e->kind == switchboard::event_kind::direct_message)
            (void)router_.route(id_, e->user, e->text); // back to the sender
        return switchboard::delivery::queued;
    }
    void close(switchboard::close_mode) noexcept override {}

private:
    switchboard::router& router_;
    switchboard::session_id id_;
};

int main(int argc, char** argv) {
    const auto port = static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 7778);
    asio::io_context io;
    switchboard::router router;
    echo_bot bot(router); // before any I/O thread runs: no lock needed yet
    switchboard::tcp_server server(io, router);

    server.listen({asio::ip::make_address("127.0.0.1"), port});
    std::printf("echo_bot: listening on 127.0.0.1:%u\n", server.local_endpoint().port());
    std::fflush(stdout);

    asio::signal_set signals(io, SIGINT, SIGTERM); // Ctrl-C: stop gracefully
    signals.async_wait([&](const std::error_code&, int) { server.stop(); });
    io.run();
}
