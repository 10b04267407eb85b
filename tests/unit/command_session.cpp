// protocol::command_session driven by two wire formats: the line protocol (line_session) and the
// JSON format (websocket::json_session). The same scenarios run with every client on lines, every
// client on JSON, and the two mixed; each JSON reply and event is decoded back into the line the
// line protocol sends for it, and the transcripts must be equal. Then the JSON-only rules: the
// replies as objects, the check order, invalid JSON, the rate limit, and a room fanned out to both.
#include <switchboard/in_memory_transport.hpp>
#include <switchboard/memory_inbox.hpp>
#include <switchboard/protocol/command_session.hpp>
#include <switchboard/protocol/line.hpp>
#include <switchboard/protocol/line_session.hpp>
#include <switchboard/router.hpp>
#include <switchboard/websocket/json_format.hpp>

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

using switchboard::in_memory_transport;
using switchboard::memory_inbox;
using switchboard::memory_inbox_options;
using switchboard::name;
using switchboard::payload;
using switchboard::router;
using switchboard::router_options;
using switchboard::session_id;
using switchboard::session_policy;
using switchboard::status;
using switchboard::protocol::command_session_options;
using switchboard::protocol::input_result;
using switchboard::protocol::line_event_encoder;
using switchboard::protocol::line_session;
using switchboard::protocol::line_session_options;
using switchboard::websocket::json_event_encoder;
using switchboard::websocket::json_reply_encoder;
using switchboard::websocket::json_session;
using json = nlohmann::json;
using lines = std::vector<std::string>;

namespace {

enum class wire { line, json };

// The line the line protocol sends for a JSON reply or event (docs/protocol.md, "JSON wire
// format": the same fields, in the line's order).
std::string as_line(const json& j) {
    const std::string type = j.at("type").get<std::string>();
    const auto field = [&](const char* k) { return j.contains(k) ? " " + j.at(k).get<std::string>() : std::string(); };
    if (type == "ok") {
        if (j.value("queued", false)) return "ok queued" + field("to");
        if (j.contains("on")) return "ok " + j.at("command").get<std::string>() + " on";
        return "ok " + j.at("command").get<std::string>() + field("user") + field("room");
    }
    if (type == "error") {
        const std::string code = j.at("error").get<std::string>();
        if (!j.contains("argument") && (code == "usage" || code == "not-supported")) return "err " + code + field("command");
        return "err " + code + field("argument");
    }
    if (type == "who") {
        std::string s = "who";
        for (const json& u : j.at("users")) s += " " + u.get<std::string>();
        return s;
    }
    if (type == "sent") return "sent" + field("id") + field("outcome");
    if (type == "info") return "*" + field("text");
    if (type == "msg") return "msg" + field("from") + field("text");
    if (type == "room") return "room" + field("room") + field("from") + field("text");
    if (type == "join" || type == "leave") return type + field("room") + field("user");
    if (type == "dm") return "dm " + std::to_string(j.at("seq").get<std::uint64_t>()) + field("from") + field("text");
    if (type == "presence") {
        if (j.at("online").get<bool>()) return "presence" + field("user") + " online";
        return "presence" + field("user") + " offline" +
               (j.contains("last_seen") ? " " + std::to_string(j.at("last_seen").get<std::int64_t>()) : "");
    }
    if (type == "typing") return "typing" + field("from") + (j.at("stop").get<bool>() ? " stop" : "");
    if (type == "bye") return "bye" + field("reason");
    return "?? " + j.dump();
}

// One client of either format on an in-memory transport (what an adapter does).
class client {
public:
    client(router& r, wire w, const command_session_options& limits) : r_(&r), w_(w), limits_(limits) { open(); }
    ~client() { close(); }
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    void open() {
        close();
        t_ = std::make_unique<in_memory_transport>();
        if (w_ == wire::line) {
            id_ = r_->open_session(*t_, line_event_encoder::instance());
            line_session_options o;
            o.rate = limits_.rate;
            line_ = std::make_unique<line_session>(*r_, id_, o);
        } else {
            id_ = r_->open_session(*t_, json_event_encoder::instance());
            json_ = std::make_unique<json_session>(*r_, id_, json_reply_encoder::instance(), limits_);
        }
        open_ = true;
    }
    void close() {
        if (open_) (void)r_->close_session(id_);
        open_ = false;
    }
    // Sends the command in this client's format, received at `ms` (Unix ms; also the rate
    // limiter's clock).
    input_result send(std::string_view line, std::string_view json_text, std::int64_t ms) {
        r_->touch(id_, ms);
        const std::chrono::nanoseconds now = std::chrono::milliseconds(ms);
        if (w_ == wire::line) return line_->on_input(std::string(line) + "\n", now);
        return json_->on_message(json_text, now);
    }
    // Everything received since the last call, as line-protocol lines.
    lines take() {
        if (!t_) return {};
        if (w_ == wire::line) return t_->take_lines();
        lines out;
        for (const payload& p : t_->received()) {
            const std::string_view v = p.view();
            REQUIRE(!v.empty());
            CHECK(v.find('\n') == std::string_view::npos); // one object, no terminator
            out.push_back(as_line(json::parse(v)));
        }
        (void)t_->take_bytes();
        return out;
    }
    [[nodiscard]] session_id id() const noexcept { return id_; }

private:
    router* r_;
    wire w_;
    command_session_options limits_;
    std::unique_ptr<in_memory_transport> t_;
    session_id id_;
    std::unique_ptr<line_session> line_;
    std::unique_ptr<json_session> json_;
    bool open_ = false;
};

// One step of a scenario: client `who` sends `line` (line protocol) or `json` (JSON format);
// `[open]` and `[close]` (re)connect and disconnect it.
struct step {
    int who;
    std::string line;
    std::string json = {};
};

// Runs `steps` on a fresh router from `make`, client i on `formats(i)`; returns what each client
// received after each step, as line-protocol lines.
lines run(const std::vector<step>& steps, const std::function<router_options()>& make, int clients,
          const std::function<wire(int)>& formats, const command_session_options& limits = {},
          const std::function<void(router&)>& setup = {}) {
    router r(make());
    if (setup) setup(r);
    std::deque<client> c;
    for (int i = 0; i < clients; ++i) c.emplace_back(r, formats(i), limits);
    lines transcript;
    std::int64_t ms = 1000;
    for (const step& s : steps) {
        transcript.push_back("c" + std::to_string(s.who) + " > " + s.line);
        if (s.line == "[close]") c[static_cast<std::size_t>(s.who)].close();
        else if (s.line == "[open]") c[static_cast<std::size_t>(s.who)].open();
        else (void)c[static_cast<std::size_t>(s.who)].send(s.line, s.json, ms);
        ms += 7;
        for (int i = 0; i < clients; ++i)
            for (const std::string& l : c[static_cast<std::size_t>(i)].take())
                transcript.push_back("c" + std::to_string(i) + " < " + l);
    }
    return transcript;
}

// The same scenario on lines, on JSON, and mixed both ways must give one transcript.
lines same_on_every_format(const std::vector<step>& steps, const std::function<router_options()>& make, int clients,
                           const command_session_options& limits = {},
                           const std::function<void(router&)>& setup = {}) {
    const lines on_lines = run(steps, make, clients, [](int) { return wire::line; }, limits, setup);
    const lines on_json = run(steps, make, clients, [](int) { return wire::json; }, limits, setup);
    const lines mixed = run(steps, make, clients, [](int i) { return i % 2 ? wire::json : wire::line; }, limits, setup);
    const lines mixed2 = run(steps, make, clients, [](int i) { return i % 2 ? wire::line : wire::json; }, limits, setup);
    CHECK(on_json == on_lines);
    CHECK(mixed == on_lines);
    CHECK(mixed2 == on_lines);
    return on_lines;
}

std::set<std::string> error_tokens(const lines& transcript) {
    std::set<std::string> tokens;
    for (const std::string& l : transcript) {
        const std::size_t at = l.find(" < ");
        if (at == std::string::npos) continue;
        const std::string line = l.substr(at + 3);
        const std::size_t sp = line.find(' ', 4);
        if (line.rfind("err ", 0) == 0) tokens.insert(line.substr(4, sp == std::string::npos ? sp : sp - 4));
        if (line.rfind("sent ", 0) == 0) tokens.insert(line.substr(line.rfind(' ') + 1));
    }
    return tokens;
}

bool contains(const lines& transcript, const std::string& line) {
    for (const std::string& l : transcript)
        if (l == line) return true;
    return false;
}

// Each payload a JSON session received, as text; the transport is emptied.
lines objects(in_memory_transport& t) {
    lines got;
    for (const payload& p : t.received()) got.emplace_back(p.view());
    (void)t.take_bytes();
    return got;
}

} // namespace

TEST_CASE("command_session: every command gives the same outcome on lines and on JSON", "[json][session]") {
    memory_inbox_options io;
    io.max_per_user = 2;
    std::deque<memory_inbox> inboxes; // one per run
    const auto make = [&] {
        router_options o;
        o.inbox = &inboxes.emplace_back(io);
        o.max_rooms_per_session = 2;
        o.max_room_members = 3;
        o.max_watches_per_session = 2;
        return o;
    };
    const std::vector<step> steps = {
        // before registering: 3 is eve, then admin
        {3, "/who", R"({"type":"who"})"},
        {3, "/msg bob", R"({"type":"msg","to":"bob"})"},
        {3, "/msg bob hi", R"({"type":"msg","to":"bob","text":"hi"})"},
        {3, "/msg bad!name hi", R"({"type":"msg","to":"bad!name","text":"hi"})"},
        {3, "/join lobby", R"({"type":"join","room":"lobby"})"},
        {3, "/typing bob", R"({"type":"typing","to":"bob"})"},
        {3, "/ack 1", R"({"type":"ack","seq":1})"},
        {3, "/send m0 bob hi", R"({"type":"send","id":"m0","to":"bob","text":"hi"})"},
        {3, "/nick eve", R"({"type":"nick","user":"eve"})"},
        {3, "/NICK eve", R"({"type":"NICK"})"},
        {3, "hello?", R"({"text":"hello?"})"},
        {3, "/", R"({"type":""})"},
        {3, "/register al@ice", R"({"type":"register","user":"al@ice"})"},
        {3, "/register al@ice secret", R"({"type":"register","user":"al@ice","secret":"secret"})"},
        {3, "/register", R"({"type":"register"})"},
        {3, "/register " + std::string(41, 'x'), R"({"type":"register","user":")" + std::string(41, 'x') + "\"}"},
        {3, "/register admin wrong", R"({"type":"register","user":"admin","secret":"wrong"})"},
        {0, "/ack on", R"({"type":"ack","on":true})"},
        {0, "/register Alice", R"({"type":"register","user":"Alice"})"},
        {1, "/register bob", R"({"type":"register","user":"bob"})"},
        {2, "/register CAROL", R"({"type":"register","user":"CAROL"})"},
        {3, "/register ALICE", R"({"type":"register","user":"ALICE"})"},
        {3, "/register admin open sesame", R"({"type":"register","user":"admin","secret":"open sesame"})"},
        {3, "/register eve2", R"({"type":"register","user":"eve2"})"},
        {3, "/who", R"({"type":"who"})"},
        // direct messages, acknowledgements
        {1, "/msg alice hi alice", R"({"type":"msg","to":"alice","text":"hi alice"})"},
        {0, "/ack 1", R"({"type":"ack","seq":1})"},
        {0, "/ack 9", R"({"type":"ack","seq":9})"},
        {0, "/ack 0", R"({"type":"ack","seq":0})"},
        {0, "/ack on", R"({"type":"ack","on":true})"},
        {0, "/msg bob hello bob", R"({"type":"msg","to":"bob","text":"hello bob"})"},
        {0, "@BOB hi again", R"({"type":"msg","to":"BOB","text":"hi again"})"},
        {0, "/msg bob tab\tand two spaces  ", R"({"type":"msg","to":"bob","text":"tab\tand two spaces  "})"},
        {0, "/msg bob caf\xC3\xA9 \xE2\x82\xAC 5", R"({"type":"msg","to":"bob","text":"caf\u00e9 \u20ac 5"})"},
        {0, "/msg alice note to self", R"({"type":"msg","to":"alice","text":"note to self"})"},
        {0, "/msg b@d hi", R"({"type":"msg","to":"b@d","text":"hi"})"},
        {0, "/msg  bob hi", R"({"type":"msg","to":"","text":"bob hi"})"},
        {0, "/msg nobody \x1b[31mred", R"({"type":"msg","to":"nobody","text":"\u001b[31mred"})"},
        {0, "/msg bad!name \x1b[31mred", R"({"type":"msg","to":"bad!name","text":"\u001b[31mred"})"},
        {0, "/msg bob line\xE2\x80\xA8sep", R"({"type":"msg","to":"bob","text":"line\u2028sep"})"},
        {0, "/msg nobody hi", R"({"type":"msg","to":"nobody","text":"hi"})"},
        // rooms
        {0, "/join Lobby", R"({"type":"join","room":"Lobby"})"},
        {1, "/join lobby", R"({"type":"join","room":"lobby"})"},
        {2, "/join lobby", R"({"type":"join","room":"lobby"})"},
        {3, "/join lobby", R"({"type":"join","room":"lobby"})"},
        {0, "/join lobby", R"({"type":"join","room":"lobby"})"},
        {0, "/join dev", R"({"type":"join","room":"dev"})"},
        {0, "/join third", R"({"type":"join","room":"third"})"},
        {0, "/join a b", R"({"type":"join","room":"a b"})"},
        {0, "/join", R"({"type":"join"})"},
        {0, "#lobby hello room", R"({"type":"say","room":"lobby","text":"hello room"})"},
        {1, "/say LOBBY hi all", R"({"type":"say","room":"LOBBY","text":"hi all"})"},
        {0, "/say lobby", R"({"type":"say","room":"lobby"})"},
        {3, "/say lobby hi", R"({"type":"say","room":"lobby","text":"hi"})"},
        {0, "/say lobby \x7f", R"({"type":"say","room":"lobby","text":"\u007f"})"},
        {0, "/say l@bby hi", R"({"type":"say","room":"l@bby","text":"hi"})"},
        {2, "/leave lobby", R"({"type":"leave","room":"lobby"})"},
        {2, "/leave lobby", R"({"type":"leave","room":"lobby"})"},
        {2, "/leave", R"({"type":"leave"})"},
        {2, "/leave lobby ", R"({"type":"leave","room":"lobby "})"},
        // presence
        {2, "/watch bob", R"({"type":"watch","user":"bob"})"},
        {2, "/watch bob", R"({"type":"watch","user":"bob"})"},
        {2, "/watch zed", R"({"type":"watch","user":"zed"})"},
        {2, "/watch alice", R"({"type":"watch","user":"alice"})"},
        {2, "/unwatch zed", R"({"type":"unwatch","user":"zed"})"},
        {2, "/unwatch zed", R"({"type":"unwatch","user":"zed"})"},
        {2, "/watch b!d", R"({"type":"watch","user":"b!d"})"},
        {2, "/watch", R"({"type":"watch"})"},
        {0, "/watch bob", R"({"type":"watch","user":"bob"})"},
        // typing
        {1, "/typing carol", R"({"type":"typing","to":"carol"})"},
        {1, "/typing carol stop", R"({"type":"typing","to":"carol","stop":true})"},
        {1, "/typing carol now", R"({"type":"typing","to":"carol","stop":"now"})"},
        {1, "/typing nobody", R"({"type":"typing","to":"nobody","stop":false})"},
        {1, "/typing", R"({"type":"typing"})"},
        // send with client ids
        {1, "/send m1 carol lunch?", R"({"type":"send","id":"m1","to":"carol","text":"lunch?"})"},
        {1, "/send m1 carol lunch?", R"({"type":"send","id":"m1","to":"carol","text":"lunch?"})"},
        {1, "/send m2 nobody hi", R"({"type":"send","id":"m2","to":"nobody","text":"hi"})"},
        {1, "/send m3 b!d hi", R"({"type":"send","id":"m3","to":"b!d","text":"hi"})"},
        {1, "/send m4 carol \x01", R"({"type":"send","id":"m4","to":"carol","text":"\u0001"})"},
        {1, "/send m!5 carol hi", R"({"type":"send","id":"m!5","to":"carol","text":"hi"})"},
        {1, "/send m5 carol", R"({"type":"send","id":"m5","to":"carol"})"},
        // offline inbox
        {2, "[close]"},
        {1, "/msg carol are you there?", R"({"type":"msg","to":"carol","text":"are you there?"})"},
        {1, "/send m6 carol see you", R"({"type":"send","id":"m6","to":"carol","text":"see you"})"},
        {1, "/msg carol third", R"({"type":"msg","to":"carol","text":"third"})"},
        {1, "/send m7 carol x", R"({"type":"send","id":"m7","to":"carol","text":"x"})"},
        {2, "[open]"},
        {2, "/register carol", R"({"type":"register","user":"carol"})"},
        {1, "[close]"},
        {0, "/who", R"({"type":"who"})"},
        // quit
        {3, "/quit now", R"({"type":"quit"})"},
        {3, "/who", R"({"type":"who"})"},
        {3, "[close]"},
        {0, "/who", R"({"type":"who"})"},
    };
    const lines t = same_on_every_format(steps, make, 4, {}, [](router& r) {
        r.set_authorizer([](session_id, const name& user, std::string_view secret) {
            return user.view() != "admin" || secret == "open sesame" ? status::ok : status::auth_failed;
        });
    });
    const std::set<std::string> expected_tokens = {
        "usage",           "not-registered", "invalid-name",   "invalid-text",     "unknown-command",
        "auth-failed",     "name-taken",     "already-registered", "user-not-found", "already-member",
        "too-many-rooms",  "room-full",      "not-member",     "already-watching", "not-watching",
        "too-many-watches", "inbox-full",    "ack-invalid",    "delivered",        "queued",
    };
    for (const std::string& token : expected_tokens) {
        INFO("error token " << token);
        CHECK(error_tokens(t).count(token) == 1);
    }
    // A few landmarks, so that the scenario is known to do what it says on the line protocol.
    CHECK(contains(t, "c0 < dm 1 bob hi alice"));
    CHECK(contains(t, "c1 < msg alice caf\xC3\xA9 \xE2\x82\xAC 5"));
    CHECK(contains(t, "c2 < room lobby alice hello room"));
    CHECK(contains(t, "c2 < presence zed offline"));
    CHECK(contains(t, "c2 < typing bob stop"));
    CHECK(contains(t, "c1 < sent m6 queued"));
    CHECK(contains(t, "c1 < ok queued carol"));
    CHECK(contains(t, "c2 < msg bob see you"));
    CHECK(contains(t, "c3 < err unknown-command nick"));
    CHECK(contains(t, "c3 < err usage register"));
    CHECK(contains(t, "c0 < err invalid-name a b"));
    CHECK(contains(t, "c0 < presence bob offline 1595")); // bob's last command, at 1000 + 85 * 7 ms
    CHECK(contains(t, "c3 < ok quit"));
    CHECK(t.back() == "c0 < who alice carol"); // admin quit and closed
}

TEST_CASE("command_session: not-supported, sessions replaced and too many sessions alike on both formats",
          "[json][session]") {
    const std::vector<step> plain = {
        {0, "/ack on", R"({"type":"ack","on":true})"},
        {0, "/register alice", R"({"type":"register","user":"alice"})"},
        {0, "/ack 1", R"({"type":"ack","seq":1})"},
        {0, "/ack", R"({"type":"ack"})"},
    };
    const lines t = same_on_every_format(plain, [] { return router_options{}; }, 1);
    CHECK(t == lines{"c0 > /ack on", "c0 < err not-supported ack", "c0 > /register alice", "c0 < ok register alice",
                     "c0 > /ack 1", "c0 < err not-supported ack", "c0 > /ack", "c0 < err usage ack"});

    const std::vector<step> replace = {
        {0, "/register alice", R"({"type":"register","user":"alice"})"},
        {1, "/register bob", R"({"type":"register","user":"bob"})"},
        {0, "/join lobby", R"({"type":"join","room":"lobby"})"},
        {1, "/join lobby", R"({"type":"join","room":"lobby"})"},
        {2, "/register alice", R"({"type":"register","user":"alice"})"},
        {1, "/msg alice which device?", R"({"type":"msg","to":"alice","text":"which device?"})"},
    };
    const lines r = same_on_every_format(replace, [] {
        router_options o;
        o.sessions = session_policy::replace;
        return o;
    }, 3);
    CHECK(contains(r, "c0 < bye replaced"));
    CHECK(contains(r, "c1 < leave lobby alice"));
    CHECK(contains(r, "c2 < msg bob which device?"));

    const std::vector<step> multi = {
        {0, "/register alice", R"({"type":"register","user":"alice"})"},
        {1, "/register alice", R"({"type":"register","user":"alice"})"},
        {2, "/register alice", R"({"type":"register","user":"alice"})"},
        {2, "/register bob", R"({"type":"register","user":"bob"})"},
        {2, "/msg alice hi both", R"({"type":"msg","to":"alice","text":"hi both"})"},
    };
    const lines m = same_on_every_format(multi, [] {
        router_options o;
        o.sessions = session_policy::multi;
        o.max_sessions_per_user = 2;
        return o;
    }, 3);
    CHECK(contains(m, "c2 < err too-many-sessions alice"));
    CHECK(contains(m, "c0 < msg bob hi both"));
    CHECK(contains(m, "c1 < msg bob hi both"));
}

TEST_CASE("command_session: the rate limit counts every JSON message but quit, invalid ones too", "[json][session]") {
    const std::vector<step> steps = {
        {0, "/who", R"({"type":"who"})"},
        {0, "/nick", R"({"type":"nick"})"},
        {0, "/who", R"({"type":"who"})"}, // the third within 14 ms: refused
        {0, "/quit", R"({"type":"quit"})"},
    };
    command_session_options limits;
    limits.rate.per_second = 10;
    limits.rate.burst = 2;
    const lines t = same_on_every_format(steps, [] { return router_options{}; }, 1, limits);
    CHECK(t == lines{"c0 > /who", "c0 < who", "c0 > /nick", "c0 < err unknown-command nick", "c0 > /who",
                     "c0 < err rate-limited", "c0 > /quit", "c0 < ok quit"});

    // Invalid JSON takes a token as well, and a refused command's JSON error names it.
    router r;
    in_memory_transport t1;
    std::uint64_t refused = 0;
    limits.rate_limited = &refused;
    json_session js(r, r.open_session(t1, json_event_encoder::instance()), json_reply_encoder::instance(), limits);
    CHECK(js.on_message("{", std::chrono::seconds(5)) == input_result::keep_reading);
    CHECK(js.on_message("nope", std::chrono::seconds(5)) == input_result::keep_reading);
    CHECK(js.on_message(R"({"type":"join","room":"x"})", std::chrono::seconds(5)) == input_result::keep_reading);
    CHECK(refused == 1);
    CHECK(objects(t1) == lines{R"({"type":"error","error":"invalid-json"})", R"({"type":"error","error":"invalid-json"})",
                       R"({"type":"error","error":"rate-limited","command":"join"})"});
}

TEST_CASE("command_session: JSON replies, check order and quit as objects", "[json][session]") {
    router r;
    in_memory_transport ta, tb;
    json_session a(r, r.open_session(ta, json_event_encoder::instance()), json_reply_encoder::instance());
    const auto said = [&](std::string_view message) {
        CHECK(a.on_message(message) == input_result::keep_reading);
        return objects(ta);
    };
    // usage before not-registered; not-registered before invalid-name
    CHECK(said(R"({"type":"msg","to":"bad!name"})") == lines{R"({"type":"error","error":"usage","command":"msg"})"});
    CHECK(said(R"({"type":"msg","to":"bad!name","text":"hi"})") ==
          lines{R"({"type":"error","error":"not-registered","command":"msg"})"});
    CHECK(said(R"({"type":"register","user":"alice","extra":{"ignored":[1,2,3]}})") ==
          lines{R"({"type":"ok","command":"register","user":"alice"})"});
    // invalid-name before invalid-text; invalid-text before user-not-found
    CHECK(said(R"({"type":"msg","to":"bad!name","text":"\u001b[31m"})") ==
          lines{R"({"type":"error","error":"invalid-name","command":"msg","argument":"bad!name"})"});
    CHECK(said(R"({"type":"msg","to":"nobody","text":"\u001b[31m"})") ==
          lines{R"({"type":"error","error":"invalid-text","command":"msg"})"});
    CHECK(said(R"({"type":"msg","to":"Nobody","text":"hi"})") ==
          lines{R"({"type":"error","error":"user-not-found","command":"msg","argument":"nobody"})"});
    // an invalid name is echoed as sent, escaped by JSON
    CHECK(said(R"({"type":"join","room":"a\"b\u0001"})") ==
          lines{R"({"type":"error","error":"invalid-name","command":"join","argument":"a\"b\u0001"})"});
    CHECK(said(R"({"type":"Nick"})") == lines{R"({"type":"error","error":"unknown-command","argument":"nick"})"});
    CHECK(said(R"({"to":"bob"})") == lines{R"({"type":"error","error":"unknown-command"})"});
    CHECK(said(R"([{"type":"who"}])") == lines{R"({"type":"error","error":"invalid-json"})"});
    CHECK(said(R"({"type":"who"})") == lines{R"({"type":"who","users":["alice"]})"});
    CHECK(said(R"({"type":"ack","on":true})") ==
          lines{R"({"type":"error","error":"not-supported","command":"ack"})"});
    // a direct message to a JSON session from a line session
    const session_id b = r.open_session(tb, line_event_encoder::instance());
    line_session lb(r, b, {});
    (void)lb.on_input("/register bob\n/msg alice \"quoted\" \\ caf\xC3\xA9\n");
    CHECK(tb.take_lines() == lines{"ok register bob"});
    CHECK(objects(ta) == lines{R"({"type":"msg","from":"bob","text":"\"quoted\" \\ caf)"
                       "\xC3\xA9"
                       R"("})"});
    CHECK(a.on_message(R"({"type":"quit"})") == input_result::quit);
    CHECK(a.on_message(R"({"type":"who"})") == input_result::quit); // nothing more is applied
    CHECK(objects(ta) == lines{R"({"type":"ok","command":"quit"})"});
    CHECK(a.on_end_of_input() == input_result::quit);
}

TEST_CASE("command_session: a room with line and JSON members gets each message encoded once per format",
          "[json][session][fanout]") {
    router r;
    std::deque<in_memory_transport> t;
    std::deque<json_session> js;
    std::deque<line_session> ls;
    std::vector<session_id> ids;
    for (int i = 0; i < 5; ++i) {
        in_memory_transport& tr = t.emplace_back();
        const bool on_json = i % 2 == 1;
        const session_id id = r.open_session(tr, on_json ? static_cast<const switchboard::event_encoder&>(json_event_encoder::instance())
                                                         : line_event_encoder::instance());
        ids.push_back(id);
        const std::string user = "u" + std::to_string(i);
        if (on_json) {
            js.emplace_back(r, id, json_reply_encoder::instance());
            (void)js.back().on_message(R"({"type":"register","user":")" + user + "\"}");
            (void)js.back().on_message(R"({"type":"join","room":"mixed"})");
        } else {
            ls.emplace_back(r, id, line_session_options{});
            (void)ls.back().on_input("/register " + user + "\n/join mixed\n");
        }
    }
    for (auto& tr : t) (void)tr.take_bytes();
    (void)ls.front().on_input("#mixed hello \"all\"\n"); // u0, a line session, says it
    CHECK(t[0].received().empty());
    const payload& line_bytes = t[2].received().at(0);
    const payload& json_bytes = t[1].received().at(0);
    CHECK(line_bytes.view() == "room mixed u0 hello \"all\"\n");
    CHECK(json_bytes.view() == R"({"type":"room","room":"mixed","from":"u0","text":"hello \"all\""})");
    for (std::size_t i = 1; i < t.size(); ++i) {
        REQUIRE(t[i].received().size() == 1);
        CHECK(same_buffer(t[i].received()[0], i % 2 ? json_bytes : line_bytes));
    }
    CHECK(line_bytes.use_count() == 2); // u2, u4
    CHECK(json_bytes.use_count() == 2); // u1, u3
    for (auto& tr : t) (void)tr.take_bytes();
    // and from a JSON member
    (void)js.front().on_message(R"({"type":"say","room":"mixed","text":"back"})");
    CHECK(t[1].received().empty());
    CHECK(t[0].take_lines() == lines{"room mixed u1 back"});
    CHECK(t[3].take_bytes() == R"({"type":"room","room":"mixed","from":"u1","text":"back"})");
}

TEST_CASE("command_session: the JSON example of docs/protocol.md", "[json][session][docs]") {
    router r;
    in_memory_transport ta, tb;
    std::optional<json_session> alice;
    alice.emplace(r, r.open_session(ta, json_event_encoder::instance()), json_reply_encoder::instance());
    const session_id bob_id = r.open_session(tb, line_event_encoder::instance());
    line_session bob(r, bob_id, {});
    lines transcript;
    const auto collect = [&] {
        for (const payload& p : ta.received()) transcript.push_back("alice < " + std::string(p.view()));
        (void)ta.take_bytes();
        for (const std::string& l : tb.take_lines()) transcript.push_back("bob   < " + l);
    };
    const auto a = [&](std::string_view m) {
        transcript.push_back("alice > " + std::string(m));
        (void)alice->on_message(m);
        collect();
    };
    const auto b = [&](std::string_view l) {
        transcript.push_back("bob   > " + std::string(l));
        (void)bob.on_input(std::string(l) + "\n");
        collect();
    };
    a(R"({"type":"register","user":"Alice"})");
    b("/register bob");
    a(R"({"type":"msg","to":"bob","text":"caf\u00e9 \"au lait\""})");
    b("/join lobby");
    a(R"({"type":"join","room":"lobby"})");
    b("#lobby hi alice");
    a(R"({"type":"msg","to":"bob"})");
    a(R"({"type":"msg","to":"carol","text":"hi"})");
    a(R"({"type":"nick","user":"al"})");
    a(R"({"type":"msg",)");
    a(R"({"type":"who","client":"web/1.0"})");
    a(R"({"type":"quit"})");
    REQUIRE(r.close_session(alice->id()) == status::ok); // the adapter closes after quit
    collect();
    CHECK(transcript == lines{
                            R"(alice > {"type":"register","user":"Alice"})",
                            R"(alice < {"type":"ok","command":"register","user":"alice"})",
                            "bob   > /register bob",
                            "bob   < ok register bob",
                            R"(alice > {"type":"msg","to":"bob","text":"caf\u00e9 \"au lait\""})",
                            "bob   < msg alice caf\xC3\xA9 \"au lait\"",
                            "bob   > /join lobby",
                            "bob   < ok join lobby",
                            R"(alice > {"type":"join","room":"lobby"})",
                            R"(alice < {"type":"ok","command":"join","room":"lobby"})",
                            "bob   < join lobby alice",
                            "bob   > #lobby hi alice",
                            R"(alice < {"type":"room","room":"lobby","from":"bob","text":"hi alice"})",
                            R"(alice > {"type":"msg","to":"bob"})",
                            R"(alice < {"type":"error","error":"usage","command":"msg"})",
                            R"(alice > {"type":"msg","to":"carol","text":"hi"})",
                            R"(alice < {"type":"error","error":"user-not-found","command":"msg","argument":"carol"})",
                            R"(alice > {"type":"nick","user":"al"})",
                            R"(alice < {"type":"error","error":"unknown-command","argument":"nick"})",
                            R"(alice > {"type":"msg",)",
                            R"(alice < {"type":"error","error":"invalid-json"})",
                            R"(alice > {"type":"who","client":"web/1.0"})",
                            R"(alice < {"type":"who","users":["alice","bob"]})",
                            R"(alice > {"type":"quit"})",
                            R"(alice < {"type":"ok","command":"quit"})",
                            "bob   < leave lobby alice",
                        });
}
