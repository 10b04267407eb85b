// websocket/json_format.hpp: the JSON wire format's parser (every command form, usage errors,
// invalid JSON, nesting bound, ignored fields) and its writer (every reply kind, every event kind
// parsed back with nlohmann).
#include <switchboard/websocket/json_format.hpp>

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using switchboard::event;
using switchboard::event_kind;
using switchboard::status;
using switchboard::protocol::command;
using switchboard::protocol::command_kind;
using switchboard::protocol::reply;
using switchboard::websocket::json_command_buffer;
using switchboard::websocket::json_event_encoder;
using switchboard::websocket::json_reply_encoder;
using switchboard::websocket::parse_json_command;
using json = nlohmann::json;

namespace {

struct expected {
    command_kind kind;
    bool usage = false;
    std::string_view target = {};
    std::string_view text = {};
    std::string_view id = {};
    bool stop = false;
};

// A message must parse to exactly these fields.
void check(std::string_view message, const expected& e) {
    INFO("message: " << std::string(message));
    json_command_buffer b;
    const command c = parse_json_command(message, b);
    CHECK(c.malformed.empty());
    CHECK(c.kind == e.kind);
    CHECK(c.usage_error == e.usage);
    CHECK(c.target == e.target);
    CHECK(c.text == e.text);
    CHECK(c.id == e.id);
    CHECK(c.stop == e.stop);
    CHECK(c.word.empty());
}

bool malformed(std::string_view message) {
    json_command_buffer b;
    const command c = parse_json_command(message, b);
    return c.malformed == "invalid-json" && c.kind == command_kind::unknown;
}

json event_json(const event& e) { return json::parse(json_event_encoder::instance().encode(e).view()); }
json reply_json(const reply& r) { return json::parse(json_reply_encoder::instance().encode(r).view()); }

} // namespace

TEST_CASE("json: every command's object maps onto the format-neutral command", "[json][parse]") {
    using k = command_kind;
    check(R"({"type":"register","user":"Alice"})", {k::register_name, false, "Alice"});
    check(R"({"type":"register","user":"alice","secret":"s3cret with spaces"})",
          {k::register_name, false, "alice", "s3cret with spaces"});
    check(R"({"type":"msg","to":"bob","text":"hi \"there\"\n\u00e9"})", {k::msg, false, "bob", "hi \"there\"\n\xC3\xA9"});
    check(R"({"type":"send","id":"c1","to":"bob","text":"hi"})", {k::send, false, "bob", "hi", "c1"});
    check(R"({"type":"join","room":"lobby"})", {k::join, false, "lobby"});
    check(R"({"type":"leave","room":"Lobby Two"})", {k::leave, false, "Lobby Two"}); // validated later
    check(R"({"type":"say","room":"lobby","text":" spaced "})", {k::say, false, "lobby", " spaced "});
    check(R"({"type":"who"})", {k::who});
    check(R"({"type":"quit"})", {k::quit});
    check(R"({"type":"watch","user":"bob"})", {k::watch, false, "bob"});
    check(R"({"type":"unwatch","user":"bob"})", {k::unwatch, false, "bob"});
    check(R"({"type":"typing","to":"bob"})", {k::typing, false, "bob"});
    check(R"({"type":"typing","to":"bob","stop":false})", {k::typing, false, "bob"});
    check(R"({"type":"typing","to":"bob","stop":true})", {k::typing, false, "bob", {}, {}, true});
    check(R"({"type":"ack","on":true})", {k::ack, false, "on"});
    check(R"({"type":"ack","seq":12})", {k::ack, false, "12"});
    check(R"({"type":"ack","seq":0})", {k::ack, false, "0"}); // ack-invalid, from the router
    check(R"({"type":"ack","seq":18446744073709551615})", {k::ack, false, "18446744073709551615"});
    // The type is matched as the line protocol's command word: ASCII case-insensitively.
    check(R"({"type":"MSG","to":"b","text":"x"})", {k::msg, false, "b", "x"});
    check(R"({"type":"Register","user":"a"})", {k::register_name, false, "a"});
}

TEST_CASE("json: missing, mistyped or empty arguments are usage errors", "[json][parse]") {
    using k = command_kind;
    for (const char* m : {
             R"({"type":"register"})", R"({"type":"register","user":""})", R"({"type":"register","user":7})",
             R"({"type":"register","user":"a","secret":1})", R"({"type":"register","user":null})",
         })
        check(m, {k::register_name, true});
    for (const char* m : {R"({"type":"msg","to":"bob"})", R"({"type":"msg","text":"hi"})",
                          R"({"type":"msg","to":"","text":"hi"})", R"({"type":"msg","to":"bob","text":""})",
                          R"({"type":"msg","to":["bob"],"text":"hi"})", R"({"type":"msg","to":"bob","text":{"a":1}})"})
        check(m, {k::msg, true});
    check(R"({"type":"say","room":"lobby"})", {k::say, true});
    check(R"({"type":"join"})", {k::join, true});
    check(R"({"type":"leave","room":false})", {k::leave, true});
    check(R"({"type":"watch","user":""})", {k::watch, true});
    check(R"({"type":"unwatch"})", {k::unwatch, true});
    check(R"({"type":"typing"})", {k::typing, true});
    check(R"({"type":"typing","to":"bob","stop":"stop"})", {k::typing, true});
    for (const char* m : {R"({"type":"send","to":"bob","text":"hi"})", R"({"type":"send","id":"","to":"bob","text":"hi"})",
                          R"({"type":"send","id":"m!4","to":"bob","text":"hi"})", R"({"type":"send","id":1,"to":"bob","text":"hi"})",
                          R"({"type":"send","id":"c1","to":"bob"})"})
        check(m, {k::send, true});
    check(std::string(R"({"type":"send","id":")") + std::string(41, 'x') + R"(","to":"b","text":"x"})", {k::send, true});
    for (const char* m : {R"({"type":"ack"})", R"({"type":"ack","on":false})", R"({"type":"ack","on":"true"})",
                          R"({"type":"ack","on":true,"seq":1})", R"({"type":"ack","seq":-1})", R"({"type":"ack","seq":1.5})",
                          R"({"type":"ack","seq":"3"})", R"({"type":"ack","seq":1e3})"})
        check(m, {k::ack, true});
}

TEST_CASE("json: unknown type echoes the word; missing or non-string type has none", "[json][parse]") {
    json_command_buffer b;
    command c = parse_json_command(R"({"type":"Nick","user":"x"})", b);
    CHECK(c.kind == command_kind::unknown);
    CHECK(c.word == "Nick");
    CHECK(c.malformed.empty());
    for (const char* m : {R"({})", R"({"user":"bob"})", R"({"type":1})", R"({"type":null})", R"({"type":["msg"]})"}) {
        INFO(m);
        c = parse_json_command(m, b);
        CHECK(c.kind == command_kind::unknown);
        CHECK(c.word.empty());
        CHECK(c.malformed.empty());
    }
    c = parse_json_command(R"({"type":""})", b);
    CHECK(c.kind == command_kind::unknown);
    CHECK(c.word.empty());
    // An event's type sent by a client is no command.
    c = parse_json_command(R"({"type":"room","room":"x","text":"y"})", b);
    CHECK(c.kind == command_kind::unknown);
    CHECK(c.word == "room");
}

TEST_CASE("json: invalid JSON, non-objects and invalid UTF-8 are invalid-json", "[json][parse]") {
    for (std::string m : {
             std::string(""), std::string("{"), std::string("}"), std::string("{\"type\":\"who\""),
             std::string("{\"type\":\"who\"} {}"), std::string("{\"type\":\"who\"} x"), std::string("{type:\"who\"}"),
             std::string("{\"type\":'who'}"), std::string("[]"), std::string("[{\"type\":\"who\"}]"), std::string("\"who\""),
             std::string("42"), std::string("null"), std::string("true"), std::string("{\"type\":\"who\",}"),
             std::string("{\"type\":\"msg\",\"to\":\"b\",\"text\":\"\xC3\"}"),          // cut UTF-8
             std::string("{\"type\":\"msg\",\"to\":\"b\",\"text\":\"\xC0\xAF\"}"),      // overlong
             std::string("{\"type\":\"msg\",\"to\":\"b\",\"text\":\"\\ud800\"}"),       // lone surrogate
             std::string("{\"type\":\"msg\",\"to\":\"b\",\"text\":\"a\nb\"}"),          // raw control
             std::string("{\"type\":\"who\"}\0", 15), std::string("{\"type\":\"who\"} // comment"),
         }) {
        INFO("message: [" << m << "]");
        CHECK(malformed(m));
    }
    // Whitespace around the object is JSON.
    json_command_buffer b;
    CHECK(parse_json_command(" \t\r\n{\"type\":\"who\"}\n ", b).kind == command_kind::who);
}

TEST_CASE("json: nesting past the bound is refused without deep recursion", "[json][parse]") {
    const auto nested = [](std::size_t levels) { // the command object is level 1
        std::string m = R"({"type":"who","x":)";
        for (std::size_t i = 1; i < levels; ++i) m += i % 2 ? "[" : "{\"a\":";
        m += "0";
        for (std::size_t i = levels - 1; i >= 1; --i) m += i % 2 ? "]" : "}";
        return m + "}";
    };
    json_command_buffer b;
    CHECK(parse_json_command(nested(2), b).kind == command_kind::who);
    CHECK(parse_json_command(nested(16), b).kind == command_kind::who);
    CHECK(parse_json_command(nested(17), b).malformed == "invalid-json");
    CHECK(parse_json_command(nested(3), b, 2).malformed == "invalid-json");
    CHECK(parse_json_command(nested(2), b, 2).kind == command_kind::who);
    // A million levels: parsing stops at level 17 (and could not use much stack anyway).
    const std::string deep = R"({"type":"who","x":)" + std::string(1000000, '[');
    CHECK(parse_json_command(deep, b).malformed == "invalid-json");
}

TEST_CASE("json: unknown fields are ignored, nested fields are not arguments, the last duplicate wins",
          "[json][parse]") {
    using k = command_kind;
    check(R"({"type":"msg","to":"bob","text":"hi","client":"web/1.0","meta":{"to":"eve","text":"x"},"v":[1,2]})",
          {k::msg, false, "bob", "hi"});
    check(R"({"x":{"type":"quit"},"type":"join","room":"lobby","text":"ignored by join"})", {k::join, false, "lobby"});
    check(R"({"type":"msg","to":"eve","to":"bob","text":"hi"})", {k::msg, false, "bob", "hi"});
    check(R"({"type":"quit","type":"who"})", {k::who});
}

TEST_CASE("json: the buffer holds the views until the next parse and is reused", "[json][parse]") {
    json_command_buffer b;
    const std::string long_text(300, 'z');
    command c = parse_json_command(R"({"type":"msg","to":"bob","text":")" + long_text + "\"}", b);
    CHECK(c.text == long_text); // the message is gone; the view points into the buffer
    c = parse_json_command(R"({"type":"join","room":"lobby"})", b);
    CHECK(c.kind == command_kind::join);
    CHECK(c.target == "lobby");
    CHECK(c.text.empty());
}

// ---- writing ------------------------------------------------------------------------------------

TEST_CASE("json: every reply kind as an object", "[json][reply]") {
    using k = command_kind;
    CHECK(reply_json(reply::ok(k::register_name, "alice")) == json{{"type", "ok"}, {"command", "register"}, {"user", "alice"}});
    CHECK(reply_json(reply::ok(k::join, "lobby")) == json{{"type", "ok"}, {"command", "join"}, {"room", "lobby"}});
    CHECK(reply_json(reply::ok(k::leave, "lobby")) == json{{"type", "ok"}, {"command", "leave"}, {"room", "lobby"}});
    CHECK(reply_json(reply::ok(k::watch, "bob")) == json{{"type", "ok"}, {"command", "watch"}, {"user", "bob"}});
    CHECK(reply_json(reply::ok(k::unwatch, "bob")) == json{{"type", "ok"}, {"command", "unwatch"}, {"user", "bob"}});
    CHECK(reply_json(reply::ok(k::ack, "on")) == json{{"type", "ok"}, {"command", "ack"}, {"on", true}});
    CHECK(reply_json(reply::ok(k::quit)) == json{{"type", "ok"}, {"command", "quit"}});
    CHECK(reply_json(reply::queued("bob")) ==
          json{{"type", "ok"}, {"command", "msg"}, {"queued", true}, {"to", "bob"}});
    CHECK(reply_json(reply::error(status::user_not_found, k::msg, "bob")) ==
          json{{"type", "error"}, {"error", "user-not-found"}, {"command", "msg"}, {"argument", "bob"}});
    CHECK(reply_json(reply::error(status::not_registered, k::join)) ==
          json{{"type", "error"}, {"error", "not-registered"}, {"command", "join"}});
    CHECK(reply_json(reply::about_command("usage", k::say)) == json{{"type", "error"}, {"error", "usage"}, {"command", "say"}});
    CHECK(reply_json(reply::unknown_command("NiCk")) ==
          json{{"type", "error"}, {"error", "unknown-command"}, {"argument", "nick"}});
    CHECK(reply_json(reply::unknown_command({})) == json{{"type", "error"}, {"error", "unknown-command"}});
    CHECK(reply_json(reply::error("invalid-json")) == json{{"type", "error"}, {"error", "invalid-json"}});
    CHECK(reply_json(reply::error(status::invalid_name, k::msg, std::string_view("a\x1b\0b", 4))) ==
          json{{"type", "error"}, {"error", "invalid-name"}, {"command", "msg"}, {"argument", std::string("a\x1b\0b", 4)}});
    const std::vector<std::string_view> users{"alice", "bob"}, none;
    CHECK(reply_json(reply::who(users)) == json{{"type", "who"}, {"users", {"alice", "bob"}}});
    CHECK(reply_json(reply::who(none)) == json{{"type", "who"}, {"users", json::array()}});
    CHECK(reply_json(reply::sent("c1", "delivered")) == json{{"type", "sent"}, {"id", "c1"}, {"outcome", "delivered"}});
    CHECK(reply_json(reply::info("welcome \"home\"")) == json{{"type", "info"}, {"text", "welcome \"home\""}});
    // "type" comes first, and the text is compact: one object, no terminator.
    CHECK(json_reply_encoder::instance().encode(reply::ok(k::join, "lobby")).view() ==
          R"({"type":"ok","command":"join","room":"lobby"})");
}

TEST_CASE("json: every event kind round-trips through the encoder", "[json][event]") {
    const std::string text = "h\xC3\xA9llo \"q\" \\ \t / \xF0\x9F\x98\x80 </script>";
    event e;
    e.kind = event_kind::direct_message;
    e.user = "alice";
    e.text = text;
    CHECK(event_json(e) == json{{"type", "msg"}, {"from", "alice"}, {"text", text}});
    e.kind = event_kind::room_message;
    e.room = "lobby";
    CHECK(event_json(e) == json{{"type", "room"}, {"room", "lobby"}, {"from", "alice"}, {"text", text}});
    e.text = {};
    e.kind = event_kind::member_joined;
    CHECK(event_json(e) == json{{"type", "join"}, {"room", "lobby"}, {"user", "alice"}});
    e.kind = event_kind::member_left;
    CHECK(event_json(e) == json{{"type", "leave"}, {"room", "lobby"}, {"user", "alice"}});
    e.room = {};
    e.kind = event_kind::acked_message;
    e.seq = 18446744073709551615u;
    e.text = "x";
    CHECK(event_json(e) == json{{"type", "dm"}, {"seq", 18446744073709551615u}, {"from", "alice"}, {"text", "x"}});
    e = event{};
    e.user = "bob";
    e.kind = event_kind::presence_online;
    CHECK(event_json(e) == json{{"type", "presence"}, {"user", "bob"}, {"online", true}});
    e.kind = event_kind::presence_offline;
    CHECK(event_json(e) == json{{"type", "presence"}, {"user", "bob"}, {"online", false}}); // never seen
    e.last_seen = 1733000000123;
    CHECK(event_json(e) == json{{"type", "presence"}, {"user", "bob"}, {"online", false}, {"last_seen", 1733000000123}});
    e.last_seen = -1;
    e.kind = event_kind::typing_started;
    CHECK(event_json(e) == json{{"type", "typing"}, {"from", "bob"}, {"stop", false}});
    e.kind = event_kind::typing_stopped;
    CHECK(event_json(e) == json{{"type", "typing"}, {"from", "bob"}, {"stop", true}});
    e = event{};
    e.kind = event_kind::session_replaced;
    CHECK(event_json(e) == json{{"type", "bye"}, {"reason", "replaced"}});
    e.kind = event_kind::session_closed; // a cluster node closing its sessions (lease lost)
    e.user = "bob";
    e.code = status::cluster_unavailable;
    CHECK(event_json(e) == json{{"type", "bye"}, {"reason", "cluster-unavailable"}});
    e.code = status::name_taken;
    CHECK(event_json(e) == json{{"type", "bye"}, {"reason", "name-taken"}});
    e = event{};
    // send_outcome: the objects of the replies it stands for.
    e.kind = event_kind::send_outcome;
    e.user = "bob";
    e.queued = true;
    CHECK(event_json(e) == json{{"type", "ok"}, {"command", "msg"}, {"queued", true}, {"to", "bob"}});
    e.queued = false;
    e.code = status::store_busy;
    CHECK(event_json(e) == json{{"type", "error"}, {"error", "store-busy"}, {"command", "msg"}, {"argument", "bob"}});
    e.text = "c1";
    CHECK(event_json(e) == json{{"type", "sent"}, {"id", "c1"}, {"outcome", "store-busy"}});
    e.code = status::ok;
    CHECK(event_json(e) == json{{"type", "sent"}, {"id", "c1"}, {"outcome", "delivered"}});
    e.queued = true;
    CHECK(event_json(e) == json{{"type", "sent"}, {"id", "c1"}, {"outcome", "queued"}});
}

TEST_CASE("json: the encoder always writes one object, escaping controls and replacing bad UTF-8",
          "[json][event]") {
    event e;
    e.kind = event_kind::direct_message;
    e.user = "al\"ice";
    e.text = std::string_view("a\nb\r\x1b\0\xC3(\xFF", 9);
    const std::string bytes(json_event_encoder::instance().encode(e).view());
    CHECK(bytes.find('\n') == std::string::npos);
    CHECK(bytes.find('\r') == std::string::npos);
    CHECK(bytes.find('\0') == std::string::npos);
    const json j = json::parse(bytes);
    CHECK(j.at("from") == "al\"ice");
    CHECK(j.at("text") == std::string("a\nb\r\x1b\0\xEF\xBF\xBD(\xEF\xBF\xBD", 13));
    // A frame step wraps the same text.
    struct tagged {
        static switchboard::payload frame(std::string_view body) {
            return switchboard::payload::copy_of("<" + std::string(body) + ">");
        }
    };
    e.user = "alice";
    e.text = "hi";
    using tagged_format = switchboard::websocket::basic_json_format<tagged>;
    CHECK(tagged_format::instance().encode(e).view() == R"(<{"type":"msg","from":"alice","text":"hi"}>)");
    CHECK(tagged_format::instance().encode(reply::info("x")).view() == R"(<{"type":"info","text":"x"}>)");
}
