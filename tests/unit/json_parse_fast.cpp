// websocket/json_format.hpp: parse_json_command() reads with simdjson and leaves to nlohmann what
// simdjson refuses; these are the edges where the two libraries differ, or where On-Demand alone
// would not validate, each compared with the nlohmann-only reference
// (detail::parse_json_command_reference(), the parser before simdjson). tests/fuzz/
// websocket_json_fuzz.cpp compares both on any input.
#include <switchboard/websocket/json_format.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

using switchboard::protocol::command;
using switchboard::protocol::command_kind;
using switchboard::websocket::json_command_buffer;
using switchboard::websocket::parse_json_command;
using switchboard::websocket::detail::parse_json_command_reference;

namespace {

void check_same(const command& fast, const command& ref) {
    CHECK(fast.malformed == ref.malformed);
    CHECK(fast.kind == ref.kind);
    CHECK(fast.usage_error == ref.usage_error);
    CHECK(fast.target == ref.target);
    CHECK(fast.text == ref.text);
    CHECK(fast.id == ref.id);
    CHECK(fast.stop == ref.stop);
    CHECK(fast.word == ref.word);
}

// The fast parser gives exactly the reference's command: from a copy (no padding given), and read
// in place with `json_read_padding` bytes after the message that could continue a number, a
// string, an atom or the object if the parser took them for input.
void same_as_reference(std::string_view message, std::size_t max_depth = 16) {
    INFO("message: [" << std::string(message) << "] max_depth " << max_depth);
    json_command_buffer fast_buffer, ref_buffer;
    const command ref = parse_json_command_reference(message, ref_buffer, max_depth);
    check_same(parse_json_command(message, fast_buffer, max_depth), ref);
    const std::string tails[] = {"9", "e5", "\"}", "ue,\"type\":\"quit\"}", " ", std::string(1, '\0')};
    for (const std::string& tail : tails) {
        std::string padded(message);
        while (padded.size() < message.size() + switchboard::websocket::json_read_padding) padded += tail;
        INFO("in place, followed by [" << tail << "...]");
        check_same(parse_json_command(std::string_view(padded.data(), message.size()), fast_buffer, max_depth,
                                      padded.size()),
                   ref);
        // As json_session reads it: string fields without escapes left in the message, and (a
        // single-frame WebSocket message) its UTF-8 checked by the parse.
        using access = switchboard::websocket::detail::json_command_access;
        const std::string_view in_place(padded.data(), message.size());
        check_same(access::parse(in_place, fast_buffer, max_depth, access::reader::fast, padded.size(), true), ref);
        check_same(access::parse(message, fast_buffer, max_depth, access::reader::fast, 0, true), ref);
        bool not_utf8 = false;
        const command unchecked =
            access::parse(in_place, fast_buffer, max_depth, access::reader::fast, padded.size(), true, &not_utf8);
        CHECK(not_utf8 == !switchboard::protocol::is_valid_utf8(message));
        if (!not_utf8) check_same(unchecked, ref);
    }
}

bool invalid(std::string_view message) {
    json_command_buffer b;
    return parse_json_command(message, b).malformed == "invalid-json";
}

} // namespace

TEST_CASE("json fast path: numbers are classified as nlohmann classifies them", "[json][parse]") {
    using k = command_kind;
    json_command_buffer b;
    // Beyond 64 bits simdjson refuses the integer; nlohmann reads a float: a usage error, not invalid-json.
    command c = parse_json_command(R"({"type":"ack","seq":18446744073709551616})", b);
    CHECK(c.malformed.empty());
    CHECK(c.kind == k::ack);
    CHECK(c.usage_error);
    c = parse_json_command(R"({"type":"who","x":-9223372036854775809,"y":)" + std::string(300, '9') + "}", b);
    CHECK(c.kind == k::who);
    // -0 is a signed integer to nlohmann: not a seq.
    c = parse_json_command(R"({"type":"ack","seq":-0})", b);
    CHECK(c.usage_error);
    // Above INT64_MAX and up to UINT64_MAX: unsigned.
    c = parse_json_command(R"({"type":"ack","seq":9223372036854775808})", b);
    CHECK(c.target == "9223372036854775808");
    // Out of the range of a double: refused by both.
    CHECK(invalid(R"({"type":"who","x":1e400})"));
    CHECK(invalid(R"({"type":"who","x":1.7976931348623159e308})"));
    CHECK(invalid(R"({"type":"who","x":)" + std::string(400, '9') + "}"));
    CHECK_FALSE(invalid(R"({"type":"who","x":1e-400})"));
    for (const char* m : {R"({"type":"ack","seq":12})", R"({"type":"ack","seq":1.0})", R"({"type":"ack","seq":1E2})",
                          R"({"type":"ack","seq":0})", R"({"type":"ack","seq":-5})", R"({"type":"ack","seq":5,"seq":-1})",
                          R"({"type":"ack","seq":-1,"seq":5})", R"({"type":"ack","seq":18446744073709551615})"})
        same_as_reference(m);
}

TEST_CASE("json fast path: whatever simdjson refuses, nlohmann decides", "[json][parse]") {
    json_command_buffer b;
    // A UTF-8 byte order mark: nlohmann skips it, simdjson refuses it.
    CHECK(parse_json_command("\xEF\xBB\xBF{\"type\":\"who\"}", b).kind == command_kind::who);
    CHECK(invalid("\xEF\xBB{\"type\":\"who\"}"));
    CHECK(invalid(" \xEF\xBB\xBF{\"type\":\"who\"}"));
    // Escapes: a lone low surrogate, a pair, a key written with escapes.
    CHECK(invalid(R"({"type":"msg","to":"b","text":"\udc00"})"));
    CHECK(invalid(R"({"type":"msg","to":"b","text":"\ud83d\u0041"})"));
    CHECK(parse_json_command(R"({"type":"msg","to":"b","text":"\ud83d\ude00"})", b).text == "\xF0\x9F\x98\x80");
    CHECK(parse_json_command(R"({"t\u0079pe":"join","room":"lobby"})", b).kind == command_kind::join);
    CHECK(parse_json_command(R"({"type":"msg","to":"b","text":"a\u0000b"})", b).text == std::string_view("a\0b", 3));
    for (const char* m : {"\xEF\xBB\xBF{\"type\":\"who\"}", "\xEF\xBB\xBF", "\xEF\xBB\xBF ", "{\"type\":\"who\"}\xEF\xBB\xBF",
                          R"({"type":"msg","to":"b","text":"\ud800\udc00"})", R"({"t\u0079pe":"join","room":"lobby"})"})
        same_as_reference(m);
}

TEST_CASE("json fast path: values the command does not read are validated too", "[json][parse]") {
    // On-Demand checks only what is read; parse_json_command() reads every value.
    for (const char* m : {R"({"type":"who","x":tru})", R"({"type":"who","x":nul})", R"({"type":"who","x":[1,2,]})",
                          R"({"type":"who","x":[1 2]})", R"({"type":"who","x":{"a" 1}})", R"({"type":"who","x":{"a":1,}})",
                          R"({"type":"who","x":01})", R"({"type":"who","x":1.})", R"({"type":"who","x":-})",
                          R"({"type":"who","x":"\x"})", R"({"type":"who","x":[}])", R"({"type":"who","x":{]})",
                          R"({"type":"who","x":[[[[1]]]})", R"({"type":"who","x":"a)", R"({"type":"who","x":12a})",
                          R"({"type":"who","x":truefalse})", R"({"type":"who","x":{"\u00zz":1}})", R"({"type":"who"}})",
                          R"({"type":"who"}])", R"({"type":"who"},)", R"({"type":"who"} x)", R"({"type":"who",})",
                          "{\"type\":\"who\",\"x\":\"\x01\"}", "{\"type\":\"who\",\"x\":\"\xC3\"}", "{\"type\":\"who\",\"x\":\"\xED\xA0\x80\"}"}) {
        INFO(m);
        CHECK(invalid(m));
        same_as_reference(m);
    }
    CHECK_FALSE(invalid(R"({"type" : "who" , "x" : [ { } , [ ] , { "a" : [ 1 , -2.5e-3 , null , true , false , "s" ] } ] })"));
}

TEST_CASE("json fast path: duplicates, types and nesting as the reference", "[json][parse]") {
    for (const char* m : {
             R"({"type":"typing","to":"b","stop":true,"stop":"x"})", R"({"type":"typing","to":"b","stop":"x","stop":true})",
             R"({"type":"typing","to":"b","stop":true,"stop":false})", R"({"type":"ack","on":true,"on":1})",
             R"({"type":"ack","on":1,"on":true})", R"({"type":"msg","to":"bob","to":[],"text":"x"})",
             R"({"type":"msg","to":[],"to":"bob","text":"x"})", R"({"type":"msg","to":"bob","text":"x","text":null})",
             R"({"type":"register","user":"a","secret":"s","secret":{}})", R"({"type":{"type":"who"}})",
             R"({"x":{"type":"quit","to":"eve"},"type":"msg","to":"bob","text":"hi"})", R"({"type":"send","id":"c1","id":"c!","to":"b","text":"x"})",
             R"({"type":"WHO"})", R"({"type":"nick","user":"x"})", R"({})", R"([])", R"("x")", "", " ",
         })
        same_as_reference(m);
    same_as_reference(std::string_view("{\"type\":\"who\"}\0", 15)); // a NUL byte: refused whole
    same_as_reference(std::string_view("{\"type\":\"w\0o\"}", 14));
    const auto nested = [](std::size_t levels) {
        std::string m = R"({"type":"who","x":)";
        for (std::size_t i = 1; i < levels; ++i) m += i % 2 ? "[" : "{\"a\":";
        m += "0";
        for (std::size_t i = levels - 1; i >= 1; --i) m += i % 2 ? "]" : "}";
        return m + "}";
    };
    // Around the default bound (16), the fast reader's own walk bound (32) and past it, where
    // nlohmann reads: the same answers.
    for (std::size_t depth : {1u, 2u, 15u, 16u, 17u, 31u, 32u, 33u, 40u, 100u})
        for (std::size_t levels : {1u, 2u, 16u, 17u, 32u, 33u, 34u, 40u, 41u})
            if (levels > 1) same_as_reference(nested(levels), depth);
    json_command_buffer b;
    CHECK(parse_json_command(nested(40), b, 40).kind == command_kind::who);
    CHECK(parse_json_command(nested(41), b, 40).malformed == "invalid-json");
}

TEST_CASE("json fast path: a message longer than the fast reader's bound goes to nlohmann", "[json][parse]") {
    using switchboard::websocket::detail::json_fast_max_message;
    json_command_buffer b;
    const std::string text(json_fast_max_message, 'x');
    const command c = parse_json_command(R"({"type":"msg","to":"bob","text":")" + text + "\"}", b);
    CHECK(c.kind == command_kind::msg);
    CHECK(c.text == text);
}

TEST_CASE("json fast path: a message cut anywhere is refused, whatever the previous message left", "[json][parse]") {
    // The per-thread padded copy holds the bytes of a longer earlier message past the end of a
    // shorter one; they must never be read as part of it.
    json_command_buffer b;
    const std::string full = R"({"type":"ack","seq":123456789012})";
    for (std::size_t n = 0; n < full.size(); ++n) {
        INFO(full.substr(0, n));
        CHECK(parse_json_command(full, b).target == "123456789012");
        CHECK(invalid(full.substr(0, n)));
    }
    const std::string digits = R"({"type":"ack","seq":1})";
    CHECK(parse_json_command(R"({"type":"ack","seq":1999999999})", b).target == "1999999999");
    CHECK(parse_json_command(digits, b).target == "1");
}

// Since 2026-12-05 the fast reader matches the command's field names where they lie and reads a
// string without a backslash raw (a view, no unescaping); anything escaped goes through simdjson's
// unescaping. Both must give the reference's fields, for every name, escaped or not, and for a
// backslash at any place in a string (the raw check goes 16 bytes at a time).
TEST_CASE("json fast path: field names and strings, escaped or not, as the reference", "[json][parse]") {
    const char* const names[] = {"type", "user", "to", "room", "text", "secret", "id", "stop", "on", "seq"};
    const auto escaped = [](std::string_view name) { // every character as \u00XX
        std::string out;
        constexpr char hex[] = "0123456789abcdef";
        for (const char ch : name) out += std::string("\\u00") + hex[(ch >> 4) & 0xF] + hex[ch & 0xF];
        return out;
    };
    for (const char* name : names) {
        const std::string n(name);
        for (const std::string& key : {n, escaped(n), n.substr(0, n.size() - 1), n + "x", n + "\\u0000",
                                       "x" + n, std::string(1, static_cast<char>(n[0] ^ 0x20)) + n.substr(1)}) {
            for (const std::string& value : {std::string("\"v\""), std::string("true"), std::string("7")}) {
                same_as_reference(R"({"type":"msg","to":"bob","text":"t",")" + key + "\":" + value + "}");
                same_as_reference(R"({")" + key + "\":" + value + R"(,"type":"register","user":"u","secret":"s"})");
                same_as_reference(R"({"type":"ack",")" + key + "\":" + value + "}");
                same_as_reference(R"({"type":"typing","to":"x",")" + key + "\":" + value + "}");
                same_as_reference(R"({"type":"send","id":"i","to":"x","text":"y",")" + key + "\":" + value + "}");
            }
        }
    }
    for (std::size_t length = 0; length <= 40; ++length) {
        const std::string plain(length, 'a');
        same_as_reference(R"({"type":"msg","to":"bob","text":")" + plain + R"(","x":"\\"})");
        for (std::size_t at = 0; at <= length; ++at) {
            std::string text = plain;
            text.insert(at, "\\n");
            same_as_reference(R"({"type":"msg","to":"bob","text":")" + text + "\"}");
            text = plain;
            text.insert(at, "\\\"");
            same_as_reference(R"({"type":"say","room":"r","text":")" + text + "\"}");
        }
    }
}
