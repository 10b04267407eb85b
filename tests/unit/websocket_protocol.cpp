// websocket::websocket_protocol, the engine's WebSocket policy, driven without a socket as the
// engine drives it: the request head in pieces (the upgrade, the page, /healthz, /metrics, 404,
// 405, a malformed head), then frames into a real router with in-memory transports: both
// subprotocols, pings, closes, protocol errors, pause and resume, a room mixing line-TCP,
// line-WebSocket and JSON-WebSocket members (one encode per format), notices and farewell.
#include <switchboard/in_memory_transport.hpp>
#include <switchboard/protocol/line_session.hpp>
#include <switchboard/router.hpp>
#include <switchboard/websocket/websocket_protocol.hpp>

#include "http_messages.hpp"
#include "websocket_client.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <deque>
#include <iterator>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using switchboard::in_memory_transport;
using switchboard::payload;
using switchboard::router;
using switchboard::session_id;
using switchboard::protocol::handshake_result;
using switchboard::protocol::input_result;
using switchboard::protocol::websocket_close_code;
using switchboard::protocol::websocket_decoder;
using switchboard::protocol::websocket_decoder_options;
using switchboard::protocol::websocket_message;
using switchboard::protocol::websocket_opcode;
using switchboard::protocol::websocket_role;
using switchboard::websocket::websocket_protocol;
using websocket_test::client_frame;
using websocket_test::close_body;
using websocket_test::op_binary;
using websocket_test::op_close;
using websocket_test::op_ping;
using websocket_test::op_text;
using websocket_test::upgrade_request;

namespace {

struct server_options { // what websocket_protocol::config reads from the server's options
    std::size_t max_line = 64;
    switchboard::rate_limit rate;
    std::string greeting;
};

// What a server frame stream says, read with a client-role decoder: "text:...", "pong:...",
// "close:<code>:<reason>".
std::vector<std::string> frames(std::string_view bytes) {
    websocket_decoder_options o;
    o.role = websocket_role::client;
    o.max_message = 1 << 20;
    websocket_decoder d(o);
    std::vector<std::string> out;
    const auto r = d.feed(bytes, [&](const websocket_message& m) {
        std::string what;
        if (m.opcode == websocket_opcode::text) what = "text:";
        else if (m.opcode == websocket_opcode::pong) what = "pong:";
        else if (m.opcode == websocket_opcode::close)
            what = "close:" + std::to_string(static_cast<unsigned>(m.code)) + ":";
        else what = "other:";
        out.push_back(what + std::string(m.data));
    });
    if (r.failed()) out.push_back("BAD:" + std::string(r.reason()));
    return out;
}

// One connection as the engine holds it: the policy object and its router session.
struct connection {
    websocket_protocol::config& config;
    websocket_protocol protocol{config};
    in_memory_transport transport;
    std::string emitted; // bytes the handshake queued
    session_id id;

    explicit connection(websocket_protocol::config& c) : config(c) {}

    handshake_result handshake(std::string_view bytes) {
        return protocol.handshake(bytes, config, [this](const payload& p) { emitted.append(p.view()); });
    }
    void open(router& r) {
        id = r.open_session(transport, protocol.format());
        protocol.open(r, id, config);
    }
    input_result input(std::string_view bytes) {
        return protocol.on_input(bytes, std::chrono::nanoseconds{0}, [] { return false; });
    }
    std::vector<std::string> take() { return frames(transport.take_bytes()); }
};

// A connection upgraded with `protocols` offered, opened on `r`, greeting taken.
std::unique_ptr<connection> upgraded(websocket_protocol::config& c, router& r, std::string_view protocols) {
    auto conn = std::make_unique<connection>(c);
    const std::string request = upgrade_request(protocols);
    const handshake_result h = conn->handshake(request);
    REQUIRE(h.outcome == handshake_result::kind::accepted);
    REQUIRE(h.consumed == request.size());
    conn->open(r);
    (void)conn->take();
    return conn;
}

std::string text(std::string_view body) { return client_frame(op_text, std::string(body)).str(); }

} // namespace

TEST_CASE("websocket_protocol: the upgrade in pieces, frames in the same read as the head's end", "[websocket][policy]") {
    websocket_protocol::config c(server_options{64, {}, "hello\nsecond line"});
    router r;
    connection conn(c);
    const std::string request(http_test::chromium_upgrade); // offers switchboard.json first
    const std::string first_frame = text(R"({"type":"register","user":"alice"})");
    CHECK(conn.handshake(request.substr(0, 10)).outcome == handshake_result::kind::more);
    CHECK(conn.handshake(request.substr(10, 100)).outcome == handshake_result::kind::more);
    const std::string last = request.substr(110) + first_frame;
    const handshake_result h = conn.handshake(last);
    REQUIRE(h.outcome == handshake_result::kind::accepted);
    CHECK(h.consumed == request.size() - 110); // the head ends here; the frame is the session's
    const http_test::response reply = http_test::read_response(conn.emitted);
    CHECK(reply.status == 101);
    CHECK(reply.get("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    CHECK(reply.get("sec-websocket-protocol") == "switchboard.json");
    CHECK(&conn.protocol.format() == &switchboard::websocket::json_frames::instance());
    conn.open(r);
    CHECK(conn.input(std::string_view(last).substr(h.consumed)) == input_result::keep_reading);
    CHECK(conn.take() == std::vector<std::string>{R"(text:{"type":"info","text":"hello"})",
                                                  R"(text:{"type":"info","text":"second line"})",
                                                  R"(text:{"type":"ok","command":"register","user":"alice"})"});
    CHECK(c.totals.upgrades == 1);
}

TEST_CASE("websocket_protocol: HTTP answers on the same listener, each closing the connection", "[websocket][policy]") {
    websocket_protocol::config c(server_options{});
    c.page = "<!doctype html><title>chat</title>";
    const auto answer = [&c](std::string_view request) {
        connection conn(c);
        const handshake_result h = conn.handshake(request);
        CHECK(h.outcome == handshake_result::kind::refused); // answered: flush, then close
        return http_test::read_response(conn.emitted);
    };
    http_test::response page = answer("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(page.status == 200);
    CHECK(page.get("content-type") == "text/html; charset=utf-8");
    CHECK(page.get("connection") == "close");
    CHECK(page.body == c.page);
    CHECK(answer("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").body == "ok\n");
    CHECK(answer("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").status == 404); // no metrics callback
    c.metrics = [] { return std::string("switchboard_routed_total 7\n"); };
    const http_test::response metrics = answer("GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(metrics.status == 200);
    CHECK(metrics.get("content-type") == "text/plain; version=0.0.4; charset=utf-8");
    CHECK(metrics.body == "switchboard_routed_total 7\n");
    CHECK(answer("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").status == 405);
    CHECK(answer("GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n").status == 404);
    CHECK(answer("GET / HTTP/1.1\r\nHost : x\r\n\r\n").status == 400); // space before the colon
    CHECK(answer(upgrade_request("chat.v2")).status == 400);               // no subprotocol we speak
    c.page.clear();
    CHECK(answer("GET / HTTP/1.1\r\nHost: x\r\n\r\n").status == 404);
    CHECK(c.totals.http_requests == 9);
    CHECK(c.totals.upgrades == 0);
}

TEST_CASE("websocket_protocol: switchboard.line carries lines, one per text frame without the LF", "[websocket][policy]") {
    websocket_protocol::config c(server_options{});
    router r;
    auto bob = upgraded(c, r, "switchboard.line");
    CHECK(&bob->protocol.format() == &switchboard::websocket::line_frame_events::instance());
    // Two commands in one message, CRLF and an empty line between them.
    CHECK(bob->input(text("/register bob\r\n\n/join lobby")) == input_result::keep_reading);
    CHECK(bob->take() == std::vector<std::string>{"text:ok register bob", "text:ok join lobby"});
    auto alice = upgraded(c, r, ""); // offers none: the default, JSON
    CHECK(&alice->protocol.format() == &switchboard::websocket::json_frames::instance());
    (void)alice->input(text(R"({"type":"register","user":"alice"})"));
    (void)alice->input(text(R"({"type":"msg","to":"bob","text":"hi bob"})"));
    CHECK(bob->take() == std::vector<std::string>{"text:msg alice hi bob"});
    (void)bob->input(text("/msg alice hello\n/msg carol x"));
    CHECK(alice->take() == std::vector<std::string>{R"(text:{"type":"ok","command":"register","user":"alice"})",
                                                    R"(text:{"type":"msg","from":"bob","text":"hello"})"});
    CHECK(bob->take() == std::vector<std::string>{"text:err user-not-found carol"});
}

TEST_CASE("websocket_protocol: a room of line-TCP, line-WebSocket and JSON-WebSocket members, one encode per format",
          "[websocket][policy][fanout]") {
    websocket_protocol::config c(server_options{});
    router r;
    std::deque<std::unique_ptr<connection>> ws;
    std::deque<in_memory_transport> tcp(2);
    std::deque<switchboard::protocol::line_session> tcp_sessions;
    for (int i = 0; i < 2; ++i) {
        const session_id id = r.open_session(tcp[i], switchboard::protocol::line_event_encoder::instance());
        tcp_sessions.emplace_back(r, id, switchboard::protocol::line_session_options{});
        (void)tcp_sessions.back().on_input("/register tcp" + std::to_string(i) + "\n/join lobby\n");
    }
    for (int i = 0; i < 4; ++i) {
        ws.push_back(upgraded(c, r, i % 2 ? "switchboard.json" : "switchboard.line"));
        const std::string user = "ws" + std::to_string(i);
        (void)ws.back()->input(text(i % 2 ? R"({"type":"register","user":")" + user + R"("})" : "/register " + user));
        (void)ws.back()->input(text(i % 2 ? R"({"type":"join","room":"lobby"})" : "/join lobby"));
    }
    for (auto& t : tcp) (void)t.take_bytes();
    for (auto& w : ws) (void)w->take();
    (void)tcp_sessions[0].on_input("/say lobby hello all\n");
    const payload& line_tcp = tcp[1].received().at(0);
    const payload& line_ws = ws[0]->transport.received().at(0);
    const payload& json_ws = ws[1]->transport.received().at(0);
    CHECK(line_tcp.view() == "room lobby tcp0 hello all\n");
    CHECK(frames(line_ws.view()) == std::vector<std::string>{"text:room lobby tcp0 hello all"});
    CHECK(frames(json_ws.view()) ==
          std::vector<std::string>{R"(text:{"type":"room","room":"lobby","from":"tcp0","text":"hello all"})"});
    // The members of one format share one buffer: the frame, header and body, is written as is.
    CHECK(ws[2]->transport.received().at(0).data() == line_ws.data());
    CHECK(ws[3]->transport.received().at(0).data() == json_ws.data());
    CHECK(line_ws.use_count() == 2);
    CHECK(json_ws.use_count() == 2);
}

TEST_CASE("websocket_protocol: ping, pong, the client's close, and the farewell", "[websocket][policy]") {
    websocket_protocol::config c(server_options{});
    router r;
    auto conn = upgraded(c, r, "switchboard.json");
    CHECK(frames(conn->protocol.farewell().view()) == std::vector<std::string>{"close:1001:"});
    CHECK(conn->input(client_frame(op_ping, "are you there").str()) == input_result::keep_reading);
    CHECK(conn->take() == std::vector<std::string>{"pong:are you there"});
    // A ping between the fragments of a message is answered at once; the message still applies.
    (void)conn->input(client_frame(op_text, R"({"type":"regis)").fragment().str());
    (void)conn->input(client_frame(op_ping, "p").str());
    CHECK(conn->take() == std::vector<std::string>{"pong:p"});
    (void)conn->input(client_frame(0x0, R"(ter","user":"al"})").str());
    CHECK(conn->take() == std::vector<std::string>{R"(text:{"type":"ok","command":"register","user":"al"})"});
    CHECK(conn->input(client_frame(op_close, close_body(4000, "bye")).str()) == input_result::quit);
    CHECK(conn->take() == std::vector<std::string>{"close:4000:"}); // the code echoed
    CHECK(conn->protocol.farewell().empty());                        // one close frame only
    CHECK(conn->input(text(R"({"type":"who"})")) == input_result::quit); // nothing read after it
    CHECK(conn->take().empty());
}

TEST_CASE("websocket_protocol: broken frames close with their code, and nothing after", "[websocket][policy]") {
    websocket_protocol::config c(server_options{});
    router r;
    struct {
        std::string bytes;
        std::string close;
    } cases[] = {
        {client_frame(op_text, "hi").unmasked().str(), "close:1002:"},
        {client_frame(op_text, "hi").reserved(4).str(), "close:1002:"},
        {client_frame(0x3, "").str(), "close:1002:"},
        {client_frame(op_text, "\xC3").str(), "close:1007:"},
        {client_frame(op_text, "").header_only(std::uint64_t{1} << 40), "close:1009:"},
        {client_frame(op_binary, "\x01\x02").str(), "close:1003:"},
    };
    for (const auto& k : cases) {
        auto conn = upgraded(c, r, "switchboard.json");
        CHECK(conn->input(k.bytes) == input_result::quit);
        const std::vector<std::string> got = conn->take();
        REQUIRE(got.size() == 1);
        CHECK(got[0].substr(0, k.close.size()) == k.close);
        CHECK(conn->protocol.farewell().empty());
    }
    CHECK(c.totals.message_too_big == 1);
    CHECK(c.totals.protocol_errors == 5);
    CHECK(websocket_protocol::counters(c).line_too_long == 1);
}

TEST_CASE("websocket_protocol: quit answers, then closes with 1000; a notice is a 1008 close", "[websocket][policy]") {
    websocket_protocol::config c(server_options{});
    router r;
    auto json = upgraded(c, r, "switchboard.json");
    CHECK(json->input(text(R"({"type":"quit"})")) == input_result::quit);
    CHECK(json->take() == std::vector<std::string>{R"(text:{"type":"ok","command":"quit"})", "close:1000:"});
    auto line = upgraded(c, r, "switchboard.line");
    line->protocol.notify(r, line->id, switchboard::protocol::session_notice::register_timeout);
    CHECK(line->take() == std::vector<std::string>{"close:1008:register timeout"});
    CHECK(line->protocol.farewell().empty());
}

TEST_CASE("websocket_protocol: pause after a message holds the rest until resume", "[websocket][policy]") {
    websocket_protocol::config c(server_options{});
    router r;
    auto conn = upgraded(c, r, "switchboard.line");
    const std::string two = text("/register al") + text("/who") + text("/join x");
    int asked = 0;
    const auto pause_once = [&asked] { return ++asked == 1; };
    CHECK(conn->protocol.on_input(two, std::chrono::nanoseconds{0}, pause_once) == input_result::paused);
    CHECK(conn->take() == std::vector<std::string>{"text:ok register al"});
    CHECK(conn->protocol.buffered() > 0);
    CHECK(conn->protocol.resume(std::chrono::nanoseconds{0}, [] { return false; }) == input_result::keep_reading);
    CHECK(conn->take() == std::vector<std::string>{"text:who al", "text:ok join x"});
}

TEST_CASE("websocket_protocol: the rate limit is counted for the server", "[websocket][policy]") {
    websocket_protocol::config c(server_options{64, switchboard::rate_limit{1, 1}, ""});
    router r;
    auto conn = upgraded(c, r, "switchboard.json");
    (void)conn->input(text(R"({"type":"who"})") + text(R"({"type":"who"})"));
    CHECK(conn->take() == std::vector<std::string>{R"(text:{"type":"who","users":[]})",
                                                   R"(text:{"type":"error","error":"rate-limited","command":"who"})"});
    CHECK(websocket_protocol::counters(c).rate_limited == 1);
}

TEST_CASE("websocket_protocol: lines and texts over max_line are refused as over TCP, the session kept",
          "[websocket][policy]") {
    websocket_protocol::config c(server_options{16, {}, ""});
    router r;
    auto line = upgraded(c, r, "switchboard.line");
    auto json = upgraded(c, r, "switchboard.json");
    (void)line->input(text("/register bob"));
    (void)json->input(text(R"({"type":"register","user":"al"})"));
    (void)line->take();
    (void)json->take();
    // 17 bytes: one past max_line, in a message well under max_message.
    CHECK(line->input(text("/msg al 123456789")) == input_result::keep_reading);
    CHECK(line->take() == std::vector<std::string>{"text:err line-too-long"});
    CHECK(json->input(text(R"({"type":"msg","to":"bob","text":"12345678901234567"})")) == input_result::keep_reading);
    CHECK(json->take() == std::vector<std::string>{R"(text:{"type":"error","error":"line-too-long"})"});
    CHECK(line->take().empty()); // nothing relayed
    (void)json->input(text(R"({"type":"msg","to":"bob","text":"1234567890123456"})")); // 16 bytes: fits
    CHECK(line->take() == std::vector<std::string>{"text:msg al 1234567890123456"});
    CHECK(websocket_protocol::counters(c).line_too_long == 2);
}

// Since 2026-12-05 a single-frame JSON message is not UTF-8-checked by the frame decoder:
// simdjson's stage 1 checks it while parsing (websocket_decoder_options::defer_single_frame_utf8).
// Whatever the message (JSON or not, the bad bytes in a string, a key, or outside any string), it
// must still close with 1007 before anything of it is applied, as RFC 6455 section 8.1 asks.
TEST_CASE("websocket_protocol: JSON text that is not UTF-8 closes with 1007, in one frame or fragmented",
          "[websocket][policy][utf8]") {
    websocket_protocol::config c(server_options{});
    router r;
    const std::string bad[] = {
        "{\"type\":\"msg\",\"to\":\"bob\",\"text\":\"a\xFF\"}",            // a byte never in UTF-8
        "{\"type\":\"msg\",\"to\":\"bob\",\"text\":\"\xC0\xAF\"}",         // overlong '/'
        "{\"type\":\"msg\",\"to\":\"bob\",\"text\":\"\xED\xA0\x80\"}",     // a surrogate (U+D800)
        "{\"type\":\"msg\",\"to\":\"bob\",\"text\":\"\xF4\x90\x80\x80\"}", // above U+10FFFF
        "{\"type\":\"msg\",\"to\":\"bob\",\"text\":\"ok\"}\xE2\x82",       // cut at the end, after the object
        "{\"type\":\"who\",\"k\xE9y\":1}",                                 // in a key (Latin-1)
        "\xFF{\"type\":\"who\"}",                                          // not JSON either
        "{\"type\":\"who\"} \x80",                                         // after the object
    };
    auto bob = upgraded(c, r, "switchboard.json");
    (void)bob->input(text(R"({"type":"register","user":"bob"})"));
    (void)bob->take();
    std::vector<std::unique_ptr<connection>> kept; // their router sessions stay open: keep their transports
    int n = 0;
    for (const std::string& message : bad) {
        INFO(message);
        const std::string al_name = "al" + std::to_string(++n);
        auto al = upgraded(c, r, "switchboard.json");
        const std::string join = R"({"type":"join","room":"x)" + std::to_string(n) + "\"}";
        // One frame; a valid message before it in the same read applies, nothing after it does.
        CHECK(al->input(text(R"({"type":"register","user":")" + al_name + "\"}") + text(message) +
                        text(join)) == input_result::quit);
        CHECK(al->take() == std::vector<std::string>{R"(text:{"type":"ok","command":"register","user":")" + al_name + "\"}",
                                                     "close:1007:text not UTF-8"});
        CHECK(bob->take().empty());
        // The same bytes fragmented: the frame decoder checks them, with the same close.
        auto frag = upgraded(c, r, "switchboard.json");
        const std::size_t half = message.size() / 2;
        CHECK(frag->input(client_frame(op_text, message.substr(0, half)).fragment().str() +
                          client_frame(0x0, message.substr(half)).str()) == input_result::quit);
        CHECK(frag->take() == std::vector<std::string>{"close:1007:text not UTF-8"});
        // And arriving a byte at a time (one frame, many reads).
        auto slow = upgraded(c, r, "switchboard.json");
        const std::string frame = text(message);
        input_result last = input_result::keep_reading;
        for (const char ch : frame) last = slow->input(std::string_view(&ch, 1));
        CHECK(last == input_result::quit);
        CHECK(slow->take() == std::vector<std::string>{"close:1007:text not UTF-8"});
        for (auto* conn : {&al, &frag, &slow}) kept.push_back(std::move(*conn));
    }
    CHECK(c.totals.protocol_errors == 3 * std::size(bad));
    // Valid UTF-8 of every length goes through; JSON that is bad but UTF-8 is answered, not closed.
    auto al = upgraded(c, r, "switchboard.json");
    (void)al->input(text(R"({"type":"register","user":"al"})"));
    (void)al->take();
    CHECK(al->input(text("{\"type\":\"msg\",\"to\":\"bob\",\"text\":\"\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"}")) ==
          input_result::keep_reading);
    CHECK(bob->take() ==
          std::vector<std::string>{"text:{\"type\":\"msg\",\"from\":\"al\",\"text\":\"\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"}"});
    CHECK(al->input(text("{\"type\":\"msg\",\"to\":\"bob\",\"text\":\"\xC3\xA9\"")) == input_result::keep_reading);
    CHECK(al->input(text("")) == input_result::keep_reading);
    CHECK(al->take() == std::vector<std::string>{R"(text:{"type":"error","error":"invalid-json"})",
                                                 R"(text:{"type":"error","error":"invalid-json"})"});
    CHECK(c.totals.protocol_errors == 3 * std::size(bad));
}

// String fields without escapes are read where they lie in the frame decoder's buffer (no copy),
// escaped ones are unescaped by simdjson; keys are matched raw unless escaped.
TEST_CASE("websocket_protocol: JSON strings and keys with and without escapes", "[websocket][policy]") {
    websocket_protocol::config c(server_options{});
    router r;
    auto al = upgraded(c, r, "switchboard.json");
    auto bob = upgraded(c, r, "switchboard.json");
    (void)al->input(text(R"({"type":"register","user":"al"})"));
    (void)bob->input(text(R"({"user":"b\u006fb","t\u0079pe":"register"})"));
    CHECK(bob->take() == std::vector<std::string>{R"(text:{"type":"ok","command":"register","user":"bob"})"});
    (void)al->take();
    const std::string in[] = {
        R"({"type":"msg","to":"bob","text":"plain"})",
        R"({"type":"msg","to":"bob","text":"a\"b\\c\/d\u00e9\ud83d\ude00\t"})",
        R"({ "text" : "spaced" , "to" : "bob" , "type" : "msg" })",
        R"({"type":"msg","te\u0078t":"escaped key","\u0074o":"bob"})",
        R"({"type":"msg","to":"nobody","to":"bob","text":"last wins","text2":"x","typ":"y","tex":"z"})",
        R"({"type":"msg","to":"bob","text":"x","extra":{"to":"al","text":"nested"}})",
    };
    for (const std::string& m : in) (void)al->input(text(m));
    CHECK(al->take().empty());
    CHECK(bob->take() ==
          std::vector<std::string>{R"(text:{"type":"msg","from":"al","text":"plain"})",
                                   "text:{\"type\":\"msg\",\"from\":\"al\",\"text\":\"a\\\"b\\\\c/d\xC3\xA9\xF0\x9F\x98\x80\\t\"}",
                                   R"(text:{"type":"msg","from":"al","text":"spaced"})",
                                   R"(text:{"type":"msg","from":"al","text":"escaped key"})",
                                   R"(text:{"type":"msg","from":"al","text":"last wins"})",
                                   R"(text:{"type":"msg","from":"al","text":"x"})"});
    // A field whose name only starts like one is not that field.
    (void)al->input(text(R"({"type":"msg","tox":"bob","text":"x"})"));
    (void)al->input(text(R"({"type":"msg","to":"bob","texts":"x"})"));
    CHECK(al->take() == std::vector<std::string>{R"(text:{"type":"error","error":"usage","command":"msg"})",
                                                 R"(text:{"type":"error","error":"usage","command":"msg"})"});
}

// switchboard.json reads the whole frames of one read as one batch (one simdjson stage 1 for all,
// websocket_protocol's batch path) and each frame alone otherwise. These tests send the same
// frames both ways: all in one read, and one frame per read (never a batch), and require the same
// replies, the same deliveries and the same end, frame for frame.
namespace {

struct json_run {
    std::vector<std::string> al, bob; // what each received
    bool quit = false;                // the connection was told to close
    bool operator==(const json_run& o) const { return al == o.al && bob == o.bob && quit == o.quit; }
};

std::ostream& operator<<(std::ostream& os, const json_run& r) {
    os << (r.quit ? "quit" : "open") << "\n al:";
    for (const auto& s : r.al) os << "\n  " << s;
    os << "\n bob:";
    for (const auto& s : r.bob) os << "\n  " << s;
    return os;
}

// A router with two switchboard.json connections, bob and al, registered, their replies taken.
struct json_pair {
    websocket_protocol::config c{server_options{}};
    router r;
    std::unique_ptr<connection> bob = upgraded(c, r, "switchboard.json");
    std::unique_ptr<connection> al = upgraded(c, r, "switchboard.json");
    json_pair() {
        (void)bob->input(text(R"({"type":"register","user":"bob"})"));
        (void)al->input(text(R"({"type":"register","user":"al"})"));
        (void)bob->take();
        (void)al->take();
    }
};

// al sends `messages`, one text frame each, to bob: all frames in one read, or one read per frame.
json_run send_json(const std::vector<std::string>& messages, bool one_read) {
    json_pair pair;
    auto& al = pair.al;
    auto& bob = pair.bob;
    json_run run;
    if (one_read) {
        std::string all;
        for (const std::string& m : messages) all += text(m);
        run.quit = al->input(all) == input_result::quit;
    } else {
        for (const std::string& m : messages)
            if ((run.quit = al->input(text(m)) == input_result::quit)) break;
    }
    run.al = al->take();
    run.bob = bob->take();
    return run;
}

} // namespace

TEST_CASE("websocket_protocol: JSON frames of one read, one malformed among them, each read as alone",
          "[websocket][policy][batch]") {
    const std::string good[] = {R"({"type":"msg","to":"bob","text":"one"})", R"({"type":"msg","to":"bob","text":"two"})",
                                R"({"type":"msg","to":"bob","text":"three"})"};
    std::string deep = R"({"type":"msg","to":"bob","text":"deep","x":)";
    for (int i = 0; i < 20; ++i) deep += "[";
    for (int i = 0; i < 20; ++i) deep += "]";
    deep += "}";
    // Each a frame (or frames) that a batch must not read differently from reading it alone.
    const std::vector<std::vector<std::string>> bad = {
        {R"({"type":"msg","to":"bob",)", R"("text":"runs into the next frame"})"}, // an object across two frames
        {R"({"type":"msg","to":"bob","text":"open string)", R"( closed in the next"})"},
        {R"({"type":"msg","to":"bob","text":"\u00e9)", R"( an escaped string running on, longer than its own frame"})"},
        {R"({"type":"msg","to":"bob","text":"x)"},                               // a string left open
        {R"(")"},
        {R"({"type":"msg","to":"bob","text":"a"})", R"(})"},                      // a stray brace
        {R"({"type":"who"} {"type":"msg","to":"bob","text":"second value"})"},   // two values in one frame
        {R"({"type":"msg","to":"bob","text":"x"}})"},
        {R"({"type":"msg","to":"bob","text":"junk after"}1:166})"},             // fuzz: last in a batch
        {"   "},
        {""},
        {"[1,2]"},
        {R"("a string")"},
        {"123"},
        {"{"},
        {"}"},
        {R"({"type":"msg","to":"bob","text":"a\"b\\c\u00e9"})"},                 // escapes
        {" \t{\"type\":\"msg\",\"to\":\"bob\",\"text\":\"spaced\"}\r\n "},       // whitespace around
        {"{\"type\":\"msg\",\"to\":\"bob\",\"text\":\"a control byte \x01\"}"},  // stage 1 refuses the batch
        {R"({"type":"msg","to":"bob","text":"big","n":123456789012345678901234567890})"}, // nlohmann decides
        {deep},                                                                  // deeper than 16
        {R"({"type":"msg","to":"bob","text":"\)", R"("})"},                      // an escape at the end
        {R"({"type":"quit"})"},                                                  // the rest is not applied
        {"{\"type\":\"msg\",\"to\":\"bob\",\"text\":\"\xC3\"}"},                 // not UTF-8: 1007
    };
    for (const auto& frames : bad) {
        std::vector<std::string> messages{good[0], good[1]};
        messages.insert(messages.end(), frames.begin(), frames.end());
        std::string shown;
        for (const auto& f : frames) shown += "[" + f + "]";
        INFO("frames " << shown);
        // Last in the read, then with good frames after them.
        CHECK(send_json(messages, true) == send_json(messages, false));
        messages.push_back(good[2]);
        messages.push_back(good[0]);
        const json_run alone = send_json(messages, false), batched = send_json(messages, true);
        CHECK(batched == alone);
        // The good frames after the bad ones still arrive (unless the bad ones ended the connection).
        if (!alone.quit) CHECK(alone.bob.size() >= 3);
    }
}

TEST_CASE("websocket_protocol: JSON frames of one read, random frames, each read as alone", "[websocket][policy][batch]") {
    const std::string pieces[] = {R"({"type":"msg","to":"bob","text":")", R"("})", "x", R"(\")", R"(\\)", "\\", "\"",
                                  "{", "}", "[", "]", " ", ",", ":", "1", "-", "true", "\x01", "\xC3\xA9", "\xFF",
                                  R"({"type":"who"})", R"({"type":"msg","to":"bob","text":"ok"})", "\n"};
    std::mt19937 random(20261206);
    for (int round = 0; round < 300; ++round) {
        std::vector<std::string> messages(2 + random() % 7);
        for (std::string& m : messages) {
            const std::size_t n = random() % 4;
            for (std::size_t k = 0; k < n; ++k) {
                const std::size_t pick = random() % std::size(pieces);
                if (pieces[pick] == "\xFF" && random() % 4 != 0) continue; // mostly valid UTF-8
                m += pieces[pick];
            }
            if (random() % 2) m = R"({"type":"msg","to":"bob","text":"m)" + std::to_string(round) + "\"}";
        }
        std::string shown;
        for (const auto& m : messages) shown += "[" + m + "]";
        INFO("round " << round << " frames " << shown);
        REQUIRE(send_json(messages, true) == send_json(messages, false));
    }
}

TEST_CASE("websocket_protocol: JSON frames of one read, paused in the middle, resumed", "[websocket][policy][batch]") {
    json_pair pair;
    auto& al = pair.al;
    auto& bob = pair.bob;
    std::string all;
    for (int i = 0; i < 6; ++i) all += text(R"({"type":"msg","to":"bob","text":"m)" + std::to_string(i) + "\"}");
    int asked = 0;
    const auto pause_third = [&asked] { return ++asked == 3; };
    CHECK(al->protocol.on_input(all, std::chrono::nanoseconds{0}, pause_third) == input_result::paused);
    CHECK(bob->take() == std::vector<std::string>{R"(text:{"type":"msg","from":"al","text":"m0"})",
                                                  R"(text:{"type":"msg","from":"al","text":"m1"})",
                                                  R"(text:{"type":"msg","from":"al","text":"m2"})"});
    CHECK(al->protocol.buffered() > 0);
    CHECK(al->protocol.resume(std::chrono::nanoseconds{0}, [] { return false; }) == input_result::keep_reading);
    CHECK(bob->take() == std::vector<std::string>{R"(text:{"type":"msg","from":"al","text":"m3"})",
                                                  R"(text:{"type":"msg","from":"al","text":"m4"})",
                                                  R"(text:{"type":"msg","from":"al","text":"m5"})"});
    CHECK(al->protocol.buffered() == 0);
    // Paused at the last frame: nothing is held.
    asked = 0;
    const auto pause_sixth = [&asked] { return ++asked == 6; };
    CHECK(al->protocol.on_input(all, std::chrono::nanoseconds{0}, pause_sixth) == input_result::keep_reading);
    CHECK(bob->take().size() == 6);
    CHECK(al->protocol.buffered() == 0);
}
