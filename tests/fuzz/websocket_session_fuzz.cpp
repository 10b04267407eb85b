// websocket_session_fuzz: libFuzzer target for whole WebSocket connections: the HTTP upgrade, then
// client frames, through websocket::websocket_protocol (the engine's WebSocket policy) into its
// json or line session and a real router (with a memory_inbox), while a second WebSocket
// connection, upgraded and registered as `bob` in room `lobby`, receives what the first one sends.
// It drives the policy the way the engine (asio/) does: the request head in reads, the session
// opened once it is accepted, frames in reads whose sizes come from the input, the pause predicate
// answering from the connection's queued output, resume() once that output is taken, the router
// session closed when the policy says quit (or the peer ends its side, or the transport dropped a
// slow consumer).
//
// Checked after every step:
//   1. every byte either connection was sent is a well-formed server frame stream (read with a
//      client-role decoder: unmasked, valid UTF-8 in text, valid close codes), made of text
//      frames, pongs and at most one close frame, which is the last frame; a text frame is at most
//      `config::frames.max_message` bytes (the server sends nothing bigger than it accepts); a
//      `switchboard.json` frame is one JSON object with a string "type", a `switchboard.line`
//      frame one line without CR or LF;
//   2. the policy holds at most what its bounds allow (`buffered()`: the request head up to
//      `max_head_bytes`, the decoder up to a frame past `max_message`, a read held while paused);
//   3. a connection that ended (quit, a refused upgrade, end of input, a dropped slow consumer)
//      takes no more input: on_input() says quit, and neither its transport nor bob's get a byte,
//      nor the router a change;
//   4. a connection the policy ended (quit) was sent a close frame, unless its transport dropped
//      it as a slow consumer;
//   5. the router is consistent: each open connection's name maps back to it, a closed one holds
//      no name or room, bob stays registered and in lobby while its connection is open, the
//      session count equals the open connections, and bob's queued output never exceeds its
//      transport's bound (past it the transport drops bob as a slow consumer, and the engine
//      closes bob's session).
//
// Input format (any byte string is valid; reads past the end yield 0):
//   S0  bits 0-2: max_line = 16 * (1 + S0 % 8); bits 3-4: alice offers switchboard.json (0),
//       switchboard.line (1), both, json first (2), or nothing (3: the server's default, json);
//       bit 5: bob speaks line (else json); bit 6: a rate limit of 5/s, burst 3; bit 7:
//       max_head_bytes = the size of bob's request (else 8192)
//   S1  alice's output bound 256 * (1 + S1 % 16) bytes (pause() is true past half of it); bob's
//       512 * (1 + (S1 >> 4)) bytes
//   S2  the request: S2 % 12 < 9 picks one from the table in `requests` (upgrades with each
//       offer, refusals, other paths); else the next byte is a length, and that many input bytes
//       are the request head
//   then, repeated, an operation byte A (A & 7):
//     0  raw bytes: a length byte, then that many bytes, fed to alice in one read
//     1  one client frame: a flags byte F (opcode: F & 7 indexes {text, text, text, binary, ping,
//        close, continuation, pong}; bit 3: not FIN; bit 4: unmasked; bit 5: RSV1; bits 6-7: the
//        body: a command of alice's format, a command of the other format, raw bytes (a length
//        byte and the bytes), or a long `say`: of max_line, max_line + 1 or max_message + 1
//        bytes (selector % 4 % 3) of 'x' or, with selector bit 2, of '"'), then a selector byte;
//        the frame is fed in up to three reads cut where the next byte says
//     2  a command from bob (a selector byte): to alice, to lobby, or a long one
//     3  the engine writes alice's output (it is taken) and resumes a paused connection
//     4  the engine writes bob's output
//     5  alice's peer ends its side (on_end_of_input); the session is closed
//     6  time moves on by (next byte) * 50 ms (the rate limit refills)
//     7  with A bit 3: a read while paused (the policy keeps it in order); else a fragmented text
//        message of alice's format in two frames with a ping between them
//
// Built with -fsanitize=fuzzer (SWITCHBOARD_BUILD_FUZZ, scripts/fuzz), or with replay_main.cpp
// as websocket_session_fuzz_replay, which replays tests/fuzz/corpus/websocket_session_fuzz/ under
// CTest. SWITCHBOARD_FUZZ_TRACE=1 prints every step.
#include "fuzz_support.hpp"

#include "../unit/websocket_client.hpp"

#include <switchboard/in_memory_transport.hpp>
#include <switchboard/memory_inbox.hpp>
#include <switchboard/names.hpp>
#include <switchboard/payload.hpp>
#include <switchboard/protocol/websocket_frame.hpp>
#include <switchboard/router.hpp>
#include <switchboard/session_id.hpp>
#include <switchboard/websocket/websocket_protocol.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using switchboard::in_memory_transport;
using switchboard::payload;
using switchboard::router;
using switchboard::session_id;
using switchboard::protocol::handshake_result;
using switchboard::protocol::input_result;
using switchboard::protocol::websocket_decoder;
using switchboard::protocol::websocket_decoder_options;
using switchboard::protocol::websocket_message;
using switchboard::protocol::websocket_opcode;
using switchboard::protocol::websocket_role;
using switchboard::websocket::websocket_protocol;
using switchboard_fuzz::byte_reader;
using switchboard_fuzz::escaped;
using switchboard_fuzz::trace;
using websocket_test::upgrade_request;

struct server_options { // what websocket_protocol::config reads from the server's options
    std::size_t max_line;
    switchboard::rate_limit rate;
    std::string greeting;
};

const char* const offers[] = {"switchboard.json", "switchboard.line", "switchboard.json, switchboard.line", ""};

// Alice's request head: S2 % 12 below 9 picks one of these (index 0: the offer of S0).
std::string request(std::size_t i, std::string_view offer) {
    switch (i) {
    case 0: return upgrade_request(offer);
    case 1: return upgrade_request(offer); // (the same, read in three reads: 1 byte, 7, the rest)
    case 2: return upgrade_request("switchboard.line, switchboard.json");
    case 3: return upgrade_request("chat.v2");                 // no common subprotocol: 400
    case 4: return upgrade_request(offer, "/ws", "8");         // 426
    case 5: return upgrade_request(offer, "/elsewhere");       // 404
    case 6: return "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    case 7: return "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\r\n"; // 400: no key
    default: return "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
    }
}

const char* const json_commands[] = {
    R"({"type":"register","user":"alice"})", R"({"type":"register","user":"bob"})",
    R"({"type":"register","user":"Alice"})", R"({"type":"join","room":"lobby"})",
    R"({"type":"leave","room":"lobby"})", R"({"type":"msg","to":"bob","text":"hi bob"})",
    R"({"type":"say","room":"lobby","text":"hi all"})", R"({"type":"who"})", R"({"type":"quit"})",
    R"({"type":"ack","on":true})", R"({"type":"ack","seq":1})", R"({"type":"watch","user":"bob"})",
    R"({"type":"typing","to":"bob"})", R"({"type":"send","id":"c1","to":"bob","text":"once"})",
    R"({"type":"msg","to":"carol","text":"nobody"})", R"({"type":"msg","to":"alice","text":"me"})",
    R"({"type":"join","room":"a b"})", R"({"type":"msg","to":"bob","text":"\u001b[31m"})",
    R"({"type":"msg","to":"bob","text":"caf\u00e9 \"q\" \\"})", R"({"type":"nick"})", R"([1,2])",
    R"({"type":"msg")", R"({"type":"join","room":"\u0001\u0002\u0003\u0004\u0005\u0006\u0007"})",
    "{\"type\":\"msg\",\"to\":\"bob\",\"text\":\"\xff\"}", R"([[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]])"};
const char* const line_commands[] = {"/register alice", "/register bob", "/register Alice", "/join lobby",
                                     "/leave lobby", "/msg bob hi bob", "/say lobby hi all", "/who", "/quit",
                                     "/ack on", "/ack 1", "/watch bob", "/typing bob", "/send c1 bob once",
                                     "/msg carol nobody", "@alice me", "#lobby shorthand", "/join a b",
                                     "/register alice\n/join lobby\r\n/say lobby three in one", "/nick x",
                                     "/msg bob \x1b[31m", "/msg bob caf\xc3\xa9", "\n\n", "/quit\n/msg bob after quit",
                                     "/register alice\n/quit\n/join lobby"};

template <std::size_t N>
std::string pick(const char* const (&table)[N], std::uint8_t i) {
    return table[i % N];
}

// A `say` of a text of `n` bytes `fill` (the long commands: at max_line, past it, past
// max_message); in JSON a '"' is escaped (two bytes each).
std::string long_command(bool json, std::size_t n, char fill) {
    if (!json) return "/say lobby " + std::string(n, fill);
    std::string text;
    for (std::size_t i = 0; i < n; ++i) text += fill == '"' ? "\\\"" : std::string(1, fill);
    return R"({"type":"say","room":"lobby","text":")" + text + "\"}";
}

// One connection as the engine holds it: the policy, its transport and router session, and a
// client-role reader of everything the transport was given.
struct connection {
    websocket_protocol::config& config;
    websocket_protocol protocol{config};
    std::unique_ptr<in_memory_transport> transport;
    std::size_t bound;
    const char* who;
    bool upgraded = false; // the router session was opened
    bool ended = false;    // the engine stopped reading (quit, refused, end of input, dropped)
    bool quit = false;     // the policy said quit
    bool paused = false;
    bool json = false;
    session_id id;
    std::string http; // what the handshake emitted
    websocket_decoder reader;
    bool saw_close = false;

    static websocket_decoder_options reader_options() {
        websocket_decoder_options o;
        o.role = websocket_role::client;
        o.max_message = std::size_t{1} << 24;
        return o;
    }
    connection(websocket_protocol::config& c, std::size_t out_bound, const char* name)
        : config(c), transport(std::make_unique<in_memory_transport>(out_bound)), bound(out_bound), who(name),
          reader(reader_options()) {}

    // Takes what the transport holds (the engine wrote it) and checks it as a client reads it.
    void drain() {
        const std::string bytes = transport->take_bytes();
        if (bytes.empty()) return;
        if (trace::verbose()) trace::amend(std::string(who) + " was sent " + escaped(bytes.substr(0, 400)));
        const auto r = reader.feed(bytes, [&](const websocket_message& m) {
            FUZZ_CHECK_MSG(!saw_close, std::string(who) + ": a frame after the close frame: " + escaped(m.data));
            switch (m.opcode) {
            case websocket_opcode::text:
                FUZZ_CHECK_MSG(m.data.size() <= config.frames.max_message,
                               std::string(who) + ": a text frame of " + std::to_string(m.data.size()) +
                                   " bytes, over max_message " + std::to_string(config.frames.max_message));
                if (json) {
                    const auto j = nlohmann::json::parse(m.data, nullptr, false);
                    FUZZ_CHECK_MSG(j.is_object() && j.contains("type") && j["type"].is_string(),
                                   std::string(who) + ": not a JSON event: " + escaped(m.data));
                } else {
                    FUZZ_CHECK_MSG(!m.data.empty() && m.data.find_first_of("\r\n") == std::string_view::npos,
                                   std::string(who) + ": not one line: " + escaped(m.data));
                }
                break;
            case websocket_opcode::pong: break;
            case websocket_opcode::close: saw_close = true; break;
            default: FUZZ_CHECK_MSG(false, std::string(who) + ": a server frame of opcode " +
                                               std::to_string(static_cast<unsigned>(m.opcode)));
            }
        });
        FUZZ_CHECK_MSG(!r.failed(), std::string(who) + ": the server's frames do not decode: " + std::string(r.reason()));
    }

    void check_buffered(std::size_t max_read) const {
        const std::size_t limit = config.http.max_head_bytes + config.frames.max_message + 14 + 125 + max_read +
                                  config.frames.max_message; // head, decoder, held read, held lines
        FUZZ_CHECK_MSG(protocol.buffered() <= limit,
                       std::string(who) + ": buffered " + std::to_string(protocol.buffered()) + " > " + std::to_string(limit));
    }
};

// The server's settings, made before the connections: a policy copies the request-head bounds
// when it is constructed.
struct server_settings {
    std::size_t max_line;
    websocket_protocol::config config;
    explicit server_settings(std::uint8_t s0)
        : max_line(16 * (1 + (s0 & 7))),
          config(server_options{max_line, (s0 & 0x40) ? switchboard::rate_limit{5, 3} : switchboard::rate_limit{}, "hello"}) {
        if (s0 & 0x80) // exactly bob's request: one offering more is over the bound
            config.http.max_head_bytes = upgrade_request((s0 & 0x20) ? "switchboard.line" : "switchboard.json").size();
    }
};

struct harness : server_settings {
    switchboard::memory_inbox inbox;
    router r;
    connection alice;
    connection bob;
    std::chrono::nanoseconds now{1};
    std::size_t max_read = 0; // the longest read fed so far (what a paused policy may hold)

    static switchboard::router_options router_options(switchboard::memory_inbox& box) {
        switchboard::router_options o;
        o.inbox = &box;
        return o;
    }
    harness(std::uint8_t s0, std::uint8_t s1)
        : server_settings(s0), r(router_options(inbox)), alice(config, 256 * (1 + (s1 & 15)), "alice"),
          bob(config, 512 * (1 + (s1 >> 4)), "bob") {}

    // -- the engine's side of one connection ---------------------------------------------------

    bool pause_of(const connection& c) const { return c.transport->queued_bytes() > c.bound / 2; }

    void open(connection& c) {
        c.id = r.open_session(*c.transport, c.protocol.format());
        c.json = &c.protocol.format() == &switchboard::websocket::json_frames::instance();
        c.protocol.open(r, c.id, config);
        c.upgraded = true;
    }

    void end(connection& c) { // the engine closes the connection: the session goes
        c.ended = true;
        if (c.upgraded && r.is_open(c.id)) r.close_session(c.id);
    }

    void after(connection& c, input_result res) {
        if (res == input_result::quit) {
            c.quit = true;
            end(c);
        }
        else c.paused = res == input_result::paused || pause_of(c); // (the engine: either stops its reads)
    }

    // One read of `bytes` by connection `c`, as the engine makes it.
    void read(connection& c, std::string_view bytes) {
        max_read = std::max(max_read, bytes.size());
        if (c.ended) { // invariant 3: nothing more is applied (the engine would not even read)
            const std::size_t mine = c.transport->queued_bytes(), bobs = bob.transport->queued_bytes();
            const std::size_t sessions = r.session_count();
            if (c.upgraded) {
                const input_result res = c.protocol.on_input(bytes, now, [&] { return pause_of(c); });
                FUZZ_CHECK_MSG(res == input_result::quit || !c.quit, std::string(c.who) + ": took input after quit");
            }
            FUZZ_CHECK(c.transport->queued_bytes() == mine);
            FUZZ_CHECK(bob.transport->queued_bytes() == bobs);
            FUZZ_CHECK(r.session_count() == sessions);
            return;
        }
        if (!c.upgraded) {
            const handshake_result h =
                c.protocol.handshake(bytes, config, [&](const payload& p) { c.http.append(p.view()); });
            trace::amend("handshake " + std::to_string(static_cast<int>(h.outcome)));
            if (h.outcome == handshake_result::kind::more) return;
            if (h.outcome == handshake_result::kind::refused) {
                FUZZ_CHECK_MSG(c.http.compare(0, 9, "HTTP/1.1 ") == 0 && c.http.find("\r\n\r\n") != std::string::npos,
                               "a refusal that is not an HTTP response: " + escaped(c.http));
                c.ended = true;
                return;
            }
            FUZZ_CHECK(h.consumed <= bytes.size());
            FUZZ_CHECK_MSG(c.http.compare(0, 12, "HTTP/1.1 101") == 0, "an upgrade answered " + escaped(c.http));
            open(c);
            bytes.remove_prefix(h.consumed);
            if (bytes.empty()) return;
        }
        const input_result res = c.protocol.on_input(bytes, now, [&] { return pause_of(c); });
        trace::amend("-> " + std::to_string(static_cast<int>(res)));
        after(c, res);
    }

    // The engine wrote c's output; a paused connection goes on.
    void write(connection& c) {
        c.drain();
        if (c.ended || !c.upgraded || !c.paused) return;
        const input_result res = c.protocol.resume(now, [&] { return pause_of(c); });
        trace::amend("resume -> " + std::to_string(static_cast<int>(res)));
        after(c, res);
    }

    // A read by alice as the engine makes it: not while paused (it writes and resumes first).
    void feed(std::string_view bytes, bool while_paused = false) {
        for (int i = 0; i < 64 && alice.paused && !alice.ended && !while_paused; ++i) write(alice);
        read(alice, bytes);
    }

    void check() {
        for (connection* c : {&alice, &bob}) {
            if (c->transport->closed() && !c->ended) { // a slow consumer dropped by its transport
                trace::amend(std::string(c->who) + " dropped");
                end(*c);
            }
            FUZZ_CHECK(c->transport->queued_bytes() <= c->bound);
            c->check_buffered(max_read);
            if (!c->upgraded) continue;
            const bool open = r.is_open(c->id);
            FUZZ_CHECK_MSG(open == !c->ended, std::string(c->who) + ": open " + std::to_string(open));
            if (!open) continue;
            const std::string_view held = r.name_of(c->id);
            if (!held.empty()) FUZZ_CHECK_MSG(r.find(held) == c->id, std::string(c->who) + " holds " + std::string(held));
        }
        std::size_t open = 0;
        for (const connection* c : {&alice, &bob}) open += c->upgraded && !c->ended;
        FUZZ_CHECK_MSG(r.session_count() == open, "sessions " + std::to_string(r.session_count()) + ", open " + std::to_string(open));
        const auto lobby = switchboard::name::parse("lobby");
        if (bob.upgraded && !bob.ended) {
            FUZZ_CHECK(r.name_of(bob.id) == "bob");
            FUZZ_CHECK(r.is_member(bob.id, *lobby));
        }
        if (alice.upgraded && alice.ended) {
            FUZZ_CHECK(!r.is_open(alice.id));
            FUZZ_CHECK(r.name_of(alice.id).empty());
            FUZZ_CHECK(!r.is_member(alice.id, *lobby));
            FUZZ_CHECK_MSG(!r.find("alice"), "alice's name outlived her connection");
        }
    }
};

// A client frame: opcode, FIN, mask, RSV1 from `flags`.
std::string frame(unsigned opcode, const std::string& body, bool fin = true, bool masked = true, bool rsv1 = false) {
    websocket_test::client_frame f(opcode, body);
    if (!fin) f.fragment();
    if (!masked) f.unmasked();
    if (rsv1) f.reserved(4);
    f.mask_key(0x37, 0xfa, 0x21, 0x3d);
    return f.str();
}

// Feeds `bytes` to alice in up to three reads, cut at the points the next byte gives.
void feed_cut(harness& h, byte_reader& in, const std::string& bytes) {
    const std::uint8_t cut = in.byte();
    std::size_t a = bytes.empty() ? 0 : (cut & 15) % (bytes.size() + 1);
    std::size_t b = bytes.empty() ? 0 : a + ((cut >> 4) * 7) % (bytes.size() - a + 1);
    const std::string_view v(bytes);
    if (a != 0) h.feed(v.substr(0, a));
    if (b != a) h.feed(v.substr(a, b - a));
    if (b != bytes.size() || bytes.empty()) h.feed(v.substr(b));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    trace::scope scope;
    byte_reader in(data, size);
    const std::uint8_t s0 = in.byte(), s1 = in.byte(), s2 = in.byte();
    harness h(s0, s1);
    const std::string_view offer = offers[(s0 >> 3) & 3];
    const bool bob_line = (s0 & 0x20) != 0;
    trace::add("setup max_line " + std::to_string(h.max_line) + ", alice offers '" + std::string(offer) + "', bob " +
               (bob_line ? "line" : "json"));

    // Bob: upgraded, registered, in lobby; his greeting and replies taken.
    const std::string bob_request = upgrade_request(bob_line ? "switchboard.line" : "switchboard.json");
    h.read(h.bob, bob_request);
    FUZZ_CHECK(h.bob.upgraded);
    h.read(h.bob, frame(websocket_test::op_text, bob_line ? "/register bob" : R"({"type":"register","user":"bob"})"));
    h.read(h.bob, frame(websocket_test::op_text, bob_line ? "/join lobby" : R"({"type":"join","room":"lobby"})"));
    h.write(h.bob);
    h.check();

    // Alice's request head.
    std::string head;
    if (s2 % 12 < 9) {
        head = request(s2 % 12, offer);
    } else {
        head = std::string(in.take(in.byte()));
    }
    trace::add("request " + escaped(head.substr(0, 60)));
    if (s2 % 12 == 1) { // in reads of 1, 7 and the rest bytes
        h.feed(std::string_view(head).substr(0, 1));
        h.feed(std::string_view(head).substr(1, 7));
        h.feed(std::string_view(head).substr(8));
    } else {
        h.feed(head);
    }
    h.check();

    int steps = 0;
    while (!in.empty() && ++steps <= 200) {
        const std::uint8_t a = in.byte();
        const bool json = h.alice.upgraded ? h.alice.json : offer != "switchboard.line";
        switch (a & 7) {
        case 0: {
            const std::string_view raw = in.take(in.byte());
            trace::add("raw " + escaped(raw.substr(0, 60)));
            h.feed(raw);
            break;
        }
        case 1: {
            static const unsigned opcodes[] = {websocket_test::op_text, websocket_test::op_text, websocket_test::op_text,
                                               websocket_test::op_binary, websocket_test::op_ping, websocket_test::op_close,
                                               websocket_test::op_cont, websocket_test::op_pong};
            const std::uint8_t f = in.byte(), sel = in.byte();
            std::string body;
            switch (f >> 6) {
            case 0: body = json ? pick(json_commands, sel) : pick(line_commands, sel); break;
            case 1: body = json ? pick(line_commands, sel) : pick(json_commands, sel); break;
            case 2: body = std::string(in.take(sel)); break;
            default: { // at max_line, one past it, or well past max_message
                const std::size_t sizes[] = {h.max_line, h.max_line + 1, h.config.frames.max_message + 1};
                body = long_command(json, sizes[(sel & 3) % 3], (sel & 4) ? '"' : 'x');
            }
            }
            const unsigned op = opcodes[f & 7];
            if (op == websocket_test::op_close && (f >> 6) < 2)
                body = websocket_test::close_body(sel & 1 ? 1000 : 4000 + sel, "bye"); // (raw bytes: any body)
            trace::add("frame op " + std::to_string(op) + " flags " + std::to_string(f) + " " + escaped(body.substr(0, 60)));
            feed_cut(h, in, frame(op, body, (f & 8) == 0, (f & 16) == 0, (f & 32) != 0));
            break;
        }
        case 2: {
            const std::uint8_t sel = in.byte();
            static const char* const line_says[] = {"/msg alice hi alice", "/say lobby from bob", "/typing alice",
                                                    "/watch alice"};
            static const char* const json_says[] = {R"({"type":"msg","to":"alice","text":"hi alice"})",
                                                    R"({"type":"say","room":"lobby","text":"from bob"})",
                                                    R"({"type":"typing","to":"alice"})", R"({"type":"watch","user":"alice"})"};
            const std::string body = sel >= 0xF0 ? long_command(!bob_line, h.max_line, 'b')
                                                 : bob_line ? pick(line_says, sel) : pick(json_says, sel);
            trace::add("bob: " + escaped(body.substr(0, 60)));
            h.read(h.bob, frame(websocket_test::op_text, body));
            break;
        }
        case 3: trace::add("write alice"); h.write(h.alice); break;
        case 4: trace::add("write bob"); h.write(h.bob); break;
        case 5:
            trace::add("alice's peer ends its side");
            if (!h.alice.ended && h.alice.upgraded) h.alice.protocol.on_end_of_input();
            if (!h.alice.ended) h.end(h.alice);
            break;
        case 6: {
            const std::uint8_t d = in.byte();
            h.now += std::chrono::milliseconds(50 * d);
            trace::add("time +" + std::to_string(50 * d) + " ms");
            break;
        }
        default:
            if (a & 8) {
                const std::string_view raw = in.take(in.byte() & 63);
                trace::add("read while paused " + escaped(raw));
                h.feed(raw, true);
            } else {
                const std::string body = json ? pick(json_commands, in.byte()) : pick(line_commands, in.byte());
                const std::size_t half = body.size() / 2;
                trace::add("fragments " + escaped(body));
                h.feed(frame(websocket_test::op_text, body.substr(0, half), false) +
                       frame(websocket_test::op_ping, "p") +
                       frame(websocket_test::op_cont, body.substr(half)));
            }
        }
        h.check();
    }
    // The engine writes everything and closes.
    for (int i = 0; i < 64 && h.alice.paused && !h.alice.ended; ++i) h.write(h.alice);
    h.write(h.alice);
    h.write(h.bob);
    h.check();
    for (const connection* c : {&h.alice, &h.bob}) // (a dropped slow consumer may have lost it)
        FUZZ_CHECK_MSG(!c->quit || c->saw_close || c->transport->closed(),
                       std::string(c->who) + ": the policy said quit, and no close frame was sent");
    return 0;
}
