// websocket/json_format.hpp: the hand-written writer of the hot events (`msg`, `room`) against
// nlohmann, the reference: for many texts (every byte value, escapes, UTF-8 of every length,
// invalid UTF-8, every length across the 8-byte steps of the scan) the encoder's bytes are exactly
// `json_text()`'s, bare and inside a WebSocket frame.
#include <switchboard/protocol/websocket_frame.hpp>
#include <switchboard/websocket/json_format.hpp>
#include <switchboard/websocket/websocket_protocol.hpp>

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "utf8_text.hpp"

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using switchboard::event;
using switchboard::event_kind;
using switchboard::websocket::json_event_encoder;
using switchboard::websocket::json_frames;
using switchboard::websocket::json_text;

namespace {

void put_utf8(std::string& s, std::uint32_t cp) { s += switchboard_test::encode_utf8(cp); }

// The texts to compare: hand-picked ones, then random ones of every length up to 80.
std::vector<std::string> texts() {
    std::vector<std::string> t = {"",
                                  "hi",
                                  "0000000001 0000000123456789 loadgen-0123456789-abcdefghijklmnopq",
                                  "\"",
                                  "\\",
                                  "\\\"",
                                  "a\"b\\c",
                                  "tab\there",
                                  "</script>",
                                  "caf\xC3\xA9 \"au lait\"",
                                  "\xF0\x9F\x98\x80 smile",
                                  "\xE2\x80\xA8 line separator, \xE2\x80\xA9 paragraph separator",
                                  "\x7F del",
                                  std::string("nul\0inside", 10)};
    for (int c = 0; c < 0x80; ++c) { // every ASCII byte alone and between plain bytes
        t.emplace_back(1, static_cast<char>(c));
        t.push_back("abcdefg" + std::string(1, static_cast<char>(c)) + "hijklmnop");
    }
    std::mt19937 rng(20261213);
    const auto pick = [&](std::uint32_t n) { return std::uniform_int_distribution<std::uint32_t>(0, n - 1)(rng); };
    for (int round = 0; round < 20; ++round) {
        for (std::size_t length = 0; length <= 80; ++length) {
            std::string s;
            while (s.size() < length) {
                switch (pick(8)) {
                case 0: s += static_cast<char>(pick(0x20)); break;             // a control byte
                case 1: s += pick(2) ? '"' : '\\'; break;                      // escaped
                case 2: put_utf8(s, 0x80 + pick(0x800 - 0x80)); break;          // 2 bytes
                case 3: {                                                       // 3 bytes, no surrogate
                    std::uint32_t cp = 0x800 + pick(0x10000 - 0x800);
                    if (cp >= 0xD800 && cp < 0xE000) cp -= 0x800;
                    put_utf8(s, cp);
                    break;
                }
                case 4: put_utf8(s, 0x10000 + pick(0x110000 - 0x10000)); break; // 4 bytes
                default: s += static_cast<char>(0x20 + pick(0x5F)); break;       // printable ASCII
                }
            }
            t.push_back(std::move(s));
        }
    }
    // Invalid UTF-8: the writer leaves these to nlohmann, which replaces them with U+FFFD.
    for (const char* bad : {"\xC3", "a\xC3(b", "\xFF", "\xED\xA0\x80 surrogate", "\xC0\xAF overlong",
                            "\xF4\x90\x80\x80 above U+10FFFF", "ok then \xE2\x82"})
        t.emplace_back(bad);
    return t;
}

} // namespace

TEST_CASE("json writer: msg and room are byte for byte nlohmann's, bare and framed", "[json][websocket][event]") {
    const std::vector<std::string> all = texts();
    std::size_t compared = 0;
    for (const std::string& text : all) {
        for (const event_kind kind : {event_kind::direct_message, event_kind::room_message}) {
            for (const std::string_view user : {std::string_view("alice"), std::string_view("a\"l\\ice"),
                                                std::string_view("0123456789012345678901234567890123456789")}) {
                event e;
                e.kind = kind;
                e.user = user;
                e.text = text;
                if (kind == event_kind::room_message) e.room = text.size() % 2 ? "lobby" : "r\to\"om";
                INFO("text: " << nlohmann::json(text).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace)
                              << ", user: " << std::string(user) << ", room: " << std::string(e.room));
                const std::string reference = json_text(e); // nlohmann's object and dump()
                CHECK(json_event_encoder::instance().encode(e).view() == reference);
                CHECK(json_frames::instance().encode(e).view() ==
                      switchboard::protocol::encode_websocket_text(reference).view());
                ++compared;
            }
        }
    }
    CHECK(compared == all.size() * 6);
}

TEST_CASE("json writer: a frame step without build() gets the same text", "[json][websocket][event]") {
    struct copy_only {
        static switchboard::payload frame(std::string_view body) { return switchboard::payload::copy_of(body); }
    };
    using copy_only_format = switchboard::websocket::basic_json_format<copy_only>;
    static_assert(!switchboard::websocket::detail::frame_builds_in_place<copy_only>::value,
                  "a frame step with frame() only is detected as such");
    static_assert(switchboard::websocket::detail::frame_builds_in_place<switchboard::websocket::text_frame>::value,
                  "text_frame writes the JSON in place");
    event e;
    e.kind = event_kind::room_message;
    e.room = "lobby";
    e.user = "bob";
    e.text = "h\xC3\xA9llo \"q\"\n";
    CHECK(copy_only_format::instance().encode(e).view() == json_text(e));
    CHECK(copy_only_format::instance().encode(e).view() ==
          R"({"type":"room","room":"lobby","from":"bob","text":"h)"
          "\xC3\xA9"
          R"(llo \"q\"\n"})");
}

TEST_CASE("json writer: the escape scan finds every byte that needs care in each 8-byte step", "[json][event]") {
    using switchboard::websocket::detail::json_escaped_size;
    for (int c = 0; c < 0x100; ++c) {
        for (std::size_t at = 0; at < 16; ++at) {
            std::string s(16, 'x');
            s[at] = static_cast<char>(c);
            const std::size_t expected = c < 0x20 ? (c == '\b' || c == '\t' || c == '\n' || c == '\f' || c == '\r' ? 17 : 21)
                                         : c == '"' || c == '\\' ? 17
                                         : c >= 0x80            ? std::string_view::npos // a lone byte: invalid UTF-8
                                                                : 16;
            INFO("byte " << c << " at " << at);
            CHECK(json_escaped_size(s) == expected);
        }
    }
}
