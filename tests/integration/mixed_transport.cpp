// One router, two transports: a TCP session and an in-memory session (switchboard's
// in_memory_transport driven by protocol::line_session, under the server's router mutex) message
// each other directly and through a room.
#include "test_server.hpp"

#include <optional>
#include <string>
#include <vector>
#include <switchboard/protocol/line.hpp>

using namespace switchboard_test;

namespace {
// An in-memory session on the server's router. Every call goes through with_router().
class memory_peer {
public:
    explicit memory_peer(test_server& server) : server_(server) {
        server_.with_router([this](switchboard::router& r) {
            id_ = r.open_session(transport_, switchboard::protocol::line_event_encoder::instance());
            session_.emplace(r, id_, options_);
        });
    }
    memory_peer(const memory_peer&) = delete;
    memory_peer& operator=(const memory_peer&) = delete;
    ~memory_peer() { close(); }

    // Feeds protocol bytes as if read from a socket.
    void input(std::string_view bytes) {
        server_.with_router([&](switchboard::router&) { (void)session_->on_input(bytes); });
    }
    // Everything delivered so far, as lines.
    std::vector<std::string> take_lines() {
        return server_.with_router([this](switchboard::router&) { return transport_.take_lines(); });
    }
    void close() {
        if (!session_) return;
        server_.with_router([this](switchboard::router& r) {
            session_.reset();
            (void)r.close_session(id_);
        });
    }

private:
    test_server& server_;
    switchboard::in_memory_transport transport_;
    switchboard::protocol::line_session_options options_;
    switchboard::session_id id_;
    std::optional<switchboard::protocol::line_session> session_;
};

using lines = std::vector<std::string>;
} // namespace

TEST_CASE("mixed transports: TCP and in-memory sessions on one router message each other",
          "[integration][mixed-transport]") {
    test_server server(2);
    memory_peer mem(server);
    mem.input("/register Mem\n");
    REQUIRE(mem.take_lines() == lines{"ok register mem"});

    client tcp = registered(server.port(), "tcp");
    expect_who(tcp, "who mem tcp");

    // TCP -> memory. The who reply to tcp comes after its /msg was routed.
    tcp.send("/msg MEM hello from a socket\n");
    expect_who(tcp, "who mem tcp");
    REQUIRE(mem.take_lines() == lines{"msg tcp hello from a socket"});

    // memory -> TCP.
    mem.input("/msg tcp hello from memory\n@TCP second\n");
    REQUIRE(tcp.read_line() == "msg mem hello from memory");
    REQUIRE(tcp.read_line() == "msg mem second");
    REQUIRE(mem.take_lines().empty());

    // Through a room: join events and messages cross transports both ways.
    mem.input("/join mixed\n");
    REQUIRE(mem.take_lines() == lines{"ok join mixed"});
    tcp.send("/join mixed\n");
    REQUIRE(tcp.read_line() == "ok join mixed");
    tcp.send("#mixed from tcp\n");
    expect_who(tcp, "who mem tcp");
    REQUIRE(mem.take_lines() == lines{"join mixed tcp", "room mixed tcp from tcp"});
    mem.input("#mixed from memory\n");
    REQUIRE(tcp.read_line() == "room mixed mem from memory");

    // The TCP side disconnects: the memory side is told, and its /msg is refused.
    tcp.reset();
    REQUIRE(server.wait_disconnect("tcp") == switchboard::disconnect_reason::error);
    mem.input("/msg tcp still there?\n");
    REQUIRE(mem.take_lines() == lines{"leave mixed tcp", "err user-not-found tcp"});

    // The memory side leaves: a new TCP client sees it gone.
    mem.close();
    client other(server.port());
    expect_who(other, "who");
    other.send("/register mem\n");
    REQUIRE(other.read_line() == "ok register mem");
}
