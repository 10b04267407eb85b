// The protocol side of a registration the cluster answers later (issue #14, H1): the session's
// input after `/register` waits for the outcome (pipelined commands behave as on one node), and
// the outcome is exactly the bytes the synchronous answer would have been, in the line protocol,
// in JSON over WebSocket (switchboard.json) and in lines over WebSocket (switchboard.line).
#include "in_process_cluster.hpp"
#include "websocket_client.hpp"

#include <switchboard/in_memory_transport.hpp>
#include <switchboard/protocol/line_session.hpp>
#include <switchboard/router.hpp>
#include <switchboard/websocket/websocket_protocol.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

using switchboard::in_memory_transport;
using switchboard::payload;
using switchboard::router;
using switchboard::session_id;
using switchboard::protocol::input_result;
using switchboard::protocol::line_session;
using switchboard::protocol::line_session_options;
using switchboard::websocket::websocket_protocol;
using switchboard_test::in_process_cluster;

namespace {

constexpr std::chrono::nanoseconds t0{0};
constexpr auto no_pause = [] { return false; };

struct line_conn {
    in_memory_transport t;
    session_id id;
    line_session s;
    explicit line_conn(router& r)
        : id(r.open_session(t, switchboard::protocol::line_event_encoder::instance())), s(r, id, line_session_options{}) {}
    input_result in(std::string_view bytes) { return s.on_input(bytes, t0, no_pause); }
};

struct server_options { // what websocket_protocol::config reads from the server's options
    std::size_t max_line = 4096;
    switchboard::rate_limit rate;
    std::string greeting;
};

struct ws_conn {
    websocket_protocol protocol;
    in_memory_transport t;
    session_id id;
    ws_conn(websocket_protocol::config& c, router& r, std::string_view subprotocol) : protocol(c) {
        const std::string request = "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                                    "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: " +
                                    std::string(subprotocol) + "\r\n\r\n";
        const auto h = protocol.handshake(request, c, [](const payload&) {});
        REQUIRE(h.outcome == switchboard::protocol::handshake_result::kind::accepted);
        id = r.open_session(t, protocol.format());
        protocol.open(r, id, c);
        (void)t.take_bytes();
    }
    input_result in(std::string_view message) {
        return protocol.on_input(websocket_test::client_frame(websocket_test::op_text, std::string(message)).str(), t0,
                                 no_pause);
    }
    input_result resume() { return protocol.resume(t0, no_pause); }
};

// What a single router (no directory) answers to `line` from a fresh line session.
std::string line_answer(std::string_view setup, std::string_view line) {
    router r;
    line_conn other(r), c(r);
    if (!setup.empty()) (void)other.in(setup);
    (void)c.in(line);
    return c.t.take_bytes();
}

std::string ws_answer(std::string_view subprotocol, std::string_view setup, std::string_view message) {
    websocket_protocol::config config(server_options{});
    router r;
    ws_conn other(config, r, subprotocol), c(config, r, subprotocol);
    if (!setup.empty()) (void)other.in(setup);
    (void)c.in(message);
    return c.t.take_bytes();
}

// The texts of the server's frames (unmasked text frames: 0x81, a 7-bit length, the body).
std::vector<std::string> frames(std::string_view bytes) {
    std::vector<std::string> out;
    while (bytes.size() >= 2) {
        const std::size_t n = static_cast<unsigned char>(bytes[1]) & 0x7F;
        REQUIRE(n < 126);
        out.emplace_back(bytes.substr(2, n));
        bytes.remove_prefix(2 + n);
    }
    return out;
}

} // namespace

TEST_CASE("cluster protocol: lines after a pending /register wait for its answer (line protocol)", "[cluster]") {
    in_process_cluster c(2);
    line_conn a(c.at(0));
    // Pipelined in one read: the rest is held.
    CHECK(a.in("/register bob\n/msg x hi\n/who\n") == input_result::paused);
    CHECK(a.t.take_bytes().empty());
    CHECK(a.in("/join lobby\n") == input_result::paused); // read meanwhile: held behind
    CHECK(a.s.resume(t0, no_pause) == input_result::paused); // still waiting: nothing applied
    CHECK(a.t.take_bytes().empty());
    c.pump();
    CHECK(a.t.take_bytes() == line_answer({}, "/register bob\n")); // the same bytes
    CHECK(a.s.resume(t0, no_pause) == input_result::keep_reading);
    CHECK(a.t.take_bytes() == "err user-not-found x\nwho bob\nok join lobby\n");
    CHECK(a.s.held() == 0);

    // /register as the last line: nothing held, but the next read waits.
    line_conn b(c.at(1));
    CHECK(b.in("/register carol\n") == input_result::keep_reading);
    CHECK(b.in("/who\n") == input_result::paused);
    c.pump();
    CHECK(b.s.resume(t0, no_pause) == input_result::keep_reading);
    CHECK(b.t.take_bytes() == "ok register carol\nwho bob carol\n");

    // A refusal is the synchronous err line.
    line_conn d(c.at(0)), e(c.at(1));
    CHECK(d.in("/register dave\n") == input_result::keep_reading);
    CHECK(e.in("/register dave\n/msg bob x\n") == input_result::paused);
    c.pump();
    CHECK(d.t.take_bytes() == "ok register dave\n");
    CHECK(e.t.take_bytes() == line_answer("/register dave\n", "/register dave\n")); // err name-taken dave
    CHECK(e.s.resume(t0, no_pause) == input_result::keep_reading);
    CHECK(e.t.take_bytes() == "err not-registered\n");
}

TEST_CASE("cluster protocol: JSON over WebSocket: the outcome object, and the next message waits", "[cluster]") {
    websocket_protocol::config config(server_options{});
    in_process_cluster c(2);
    ws_conn a(config, c.at(0), "switchboard.json");
    CHECK(a.in(R"({"type":"register","user":"bob"})") == input_result::keep_reading);
    CHECK(a.t.take_bytes().empty());
    CHECK(a.in(R"({"type":"msg","to":"x","text":"hi"})") == input_result::paused);
    CHECK(a.resume() == input_result::paused);
    c.pump();
    CHECK(a.t.take_bytes() == ws_answer("switchboard.json", {}, R"({"type":"register","user":"bob"})"));
    CHECK(a.resume() == input_result::keep_reading);
    CHECK(frames(a.t.take_bytes()) ==
          std::vector<std::string>{R"({"type":"error","error":"user-not-found","command":"msg","argument":"x"})"});
    ws_conn b(config, c.at(1), "switchboard.json");
    CHECK(b.in(R"({"type":"register","user":"bob"})") == input_result::keep_reading);
    CHECK(b.t.take_bytes() == ws_answer("switchboard.json", R"({"type":"register","user":"bob"})",
                                        R"({"type":"register","user":"bob"})")); // refused at once
    ws_conn d(config, c.at(1), "switchboard.json");
    CHECK(d.in(R"({"type":"register","user":"dora"})") == input_result::keep_reading);
    ws_conn e(config, c.at(0), "switchboard.json");
    CHECK(e.in(R"({"type":"register","user":"dora"})") == input_result::keep_reading);
    c.pump();
    CHECK(e.t.take_bytes() == ws_answer("switchboard.json", R"({"type":"register","user":"dora"})",
                                        R"({"type":"register","user":"dora"})")); // name-taken, later
}

TEST_CASE("cluster protocol: lines over WebSocket: the rest of a message after /register waits", "[cluster]") {
    websocket_protocol::config config(server_options{});
    in_process_cluster c(2);
    ws_conn a(config, c.at(0), "switchboard.line");
    CHECK(a.in("/register bob\n/msg x hi\n/who") == input_result::paused); // one message, three lines
    CHECK(a.t.take_bytes().empty());
    CHECK(a.in("/join lobby") == input_result::paused);
    CHECK(a.resume() == input_result::paused);
    c.pump();
    CHECK(a.t.take_bytes() == ws_answer("switchboard.line", {}, "/register bob"));
    CHECK(a.resume() == input_result::keep_reading);
    CHECK(frames(a.t.take_bytes()) == std::vector<std::string>{"err user-not-found x", "who bob", "ok join lobby"});
}
