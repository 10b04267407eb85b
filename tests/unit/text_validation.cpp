// protocol::is_valid_text: UTF-8 (RFC 3629) with no control bytes but TAB, incl. the 8-byte fast path.
#include <switchboard/protocol/line.hpp>

#include <catch2/catch.hpp>

#include <string>

using switchboard::protocol::is_valid_text;

namespace {
std::string bytes(std::initializer_list<int> values) {
    std::string s;
    for (int v : values) s.push_back(static_cast<char>(v));
    return s;
}
} // namespace

TEST_CASE("text: printable ASCII, space and TAB are valid, empty is valid", "[text]") {
    CHECK(is_valid_text(""));
    CHECK(is_valid_text("hello"));
    CHECK(is_valid_text("a\tb"));
    CHECK(is_valid_text("\t"));
    CHECK(is_valid_text("   trailing spaces   "));
    std::string printable;
    for (int b = 0x20; b <= 0x7E; ++b) printable.push_back(static_cast<char>(b));
    CHECK(is_valid_text(printable));
    // Each printable byte alone and within a long (fast-path) run.
    for (int b = 0x20; b <= 0x7E; ++b) {
        INFO("byte " << b);
        CHECK(is_valid_text(std::string(1, static_cast<char>(b))));
        CHECK(is_valid_text(std::string(17, static_cast<char>(b))));
    }
    CHECK(is_valid_text(std::string(4096, '\t')));
}

TEST_CASE("text: every control byte but TAB, and DEL, is rejected", "[text]") {
    for (int b = 0x00; b <= 0x1F; ++b) {
        if (b == '\t') continue;
        INFO("byte " << b);
        const std::string c(1, static_cast<char>(b));
        CHECK_FALSE(is_valid_text(c));
        CHECK_FALSE(is_valid_text("ab" + c + "cd"));
        CHECK_FALSE(is_valid_text("0123456789abcdef" + c));           // after two fast words
        CHECK_FALSE(is_valid_text(c + "0123456789abcdef"));           // in the first fast word
        CHECK_FALSE(is_valid_text("caf\xC3\xA9 " + c + " 12345678")); // after multi-byte
    }
    CHECK_FALSE(is_valid_text("\x7F"));
    CHECK_FALSE(is_valid_text("abc\x7F"));
    CHECK_FALSE(is_valid_text("abcdefgh\x7Fijklmnop"));
    CHECK_FALSE(is_valid_text("bare\rCR"));
    CHECK_FALSE(is_valid_text("ends in CR\r"));
    CHECK_FALSE(is_valid_text("new\nline"));
    CHECK_FALSE(is_valid_text("\x1B[31mred"));
    CHECK_FALSE(is_valid_text(std::string("nul\0byte", 8)));
}

TEST_CASE("text: Unicode's line breaks NEL, U+2028 and U+2029 are rejected; their neighbours pass", "[text]") {
    for (const std::string& lb : {bytes({0xC2, 0x85}), bytes({0xE2, 0x80, 0xA8}), bytes({0xE2, 0x80, 0xA9})}) {
        CHECK_FALSE(is_valid_text(lb));
        CHECK_FALSE(is_valid_text("hi" + lb + "msg admin you are banned"));
        CHECK_FALSE(is_valid_text("0123456789abcdef0123456789abcdef" + lb)); // after the fast path
    }
    CHECK(is_valid_text(bytes({0xC2, 0x84})));       // U+0084
    CHECK(is_valid_text(bytes({0xC2, 0x86})));       // U+0086
    CHECK(is_valid_text(bytes({0xE2, 0x80, 0xA7})));  // U+2027
    CHECK(is_valid_text(bytes({0xE2, 0x80, 0xAA})));  // U+202A
    CHECK(is_valid_text(bytes({0xE2, 0x80, 0xAE})));  // U+202E RIGHT-TO-LEFT OVERRIDE passes
}

TEST_CASE("text: valid 2, 3 and 4-byte UTF-8, including the boundaries", "[text]") {
    CHECK(is_valid_text("caf\xC3\xA9"));                      // U+00E9
    CHECK(is_valid_text(bytes({0xC2, 0x80})));                // U+0080, smallest 2-byte
    CHECK(is_valid_text(bytes({0xDF, 0xBF})));                // U+07FF, largest 2-byte
    CHECK(is_valid_text(bytes({0xE0, 0xA0, 0x80})));          // U+0800, smallest 3-byte
    CHECK(is_valid_text("\xE6\x97\xA5\xE6\x9C\xAC"));         // two CJK characters
    CHECK(is_valid_text(bytes({0xED, 0x9F, 0xBF})));          // U+D7FF, just below surrogates
    CHECK(is_valid_text(bytes({0xEE, 0x80, 0x80})));          // U+E000, just above surrogates
    CHECK(is_valid_text(bytes({0xEF, 0xBF, 0xBF})));          // U+FFFF
    CHECK(is_valid_text(bytes({0xF0, 0x90, 0x80, 0x80})));    // U+10000, smallest 4-byte
    CHECK(is_valid_text("\xF0\x9F\x98\x80"));                 // U+1F600 emoji
    CHECK(is_valid_text(bytes({0xF4, 0x8F, 0xBF, 0xBF})));    // U+10FFFF, largest
    CHECK(is_valid_text("h\xC3\xA9llo \xE6\x97\xA5 \xF0\x9F\x98\x80 \twith tab and more ascii"));
    // Multi-byte characters at every alignment relative to the 8-byte words.
    for (std::size_t pad = 0; pad < 16; ++pad) {
        INFO("pad " << pad);
        CHECK(is_valid_text(std::string(pad, 'a') + "\xF0\x9F\x98\x80" + std::string(9, 'b')));
        CHECK(is_valid_text(std::string(pad, 'a') + "\xE2\x82\xAC"));
    }
}

TEST_CASE("text: overlong forms are rejected", "[text]") {
    CHECK_FALSE(is_valid_text(bytes({0xC0, 0x80})));             // overlong NUL
    CHECK_FALSE(is_valid_text(bytes({0xC0, 0xAF})));             // overlong '/'
    CHECK_FALSE(is_valid_text(bytes({0xC1, 0xBF})));             // overlong U+007F
    CHECK_FALSE(is_valid_text(bytes({0xE0, 0x80, 0x80})));       // overlong 3-byte
    CHECK_FALSE(is_valid_text(bytes({0xE0, 0x9F, 0xBF})));       // overlong U+07FF
    CHECK_FALSE(is_valid_text(bytes({0xF0, 0x80, 0x80, 0x80}))); // overlong 4-byte
    CHECK_FALSE(is_valid_text(bytes({0xF0, 0x8F, 0xBF, 0xBF}))); // overlong U+FFFF
}

TEST_CASE("text: surrogates and code points above U+10FFFF are rejected", "[text]") {
    CHECK_FALSE(is_valid_text(bytes({0xED, 0xA0, 0x80}))); // U+D800
    CHECK_FALSE(is_valid_text(bytes({0xED, 0xBF, 0xBF}))); // U+DFFF
    CHECK_FALSE(is_valid_text(bytes({0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80}))); // CESU pair
    CHECK_FALSE(is_valid_text(bytes({0xF4, 0x90, 0x80, 0x80})));             // U+110000
    CHECK_FALSE(is_valid_text(bytes({0xF7, 0xBF, 0xBF, 0xBF})));
    for (int lead = 0xF5; lead <= 0xFF; ++lead) {
        INFO("lead " << lead);
        CHECK_FALSE(is_valid_text(bytes({lead, 0x80, 0x80, 0x80})));
    }
}

TEST_CASE("text: truncated sequences and lone continuation bytes are rejected", "[text]") {
    CHECK_FALSE(is_valid_text(bytes({0xC3})));
    CHECK_FALSE(is_valid_text(bytes({0xE6, 0x97})));
    CHECK_FALSE(is_valid_text(bytes({0xF0, 0x9F, 0x98})));
    CHECK_FALSE(is_valid_text("abc" + bytes({0xF0, 0x9F, 0x98})));
    // Truncated by a following ASCII byte rather than by the end.
    CHECK_FALSE(is_valid_text(bytes({0xC3, 'a'})));
    CHECK_FALSE(is_valid_text(bytes({0xE6, 0x97, 'a'})));
    CHECK_FALSE(is_valid_text(bytes({0xF0, 0x9F, 0x98, 'a'})));
    // A lead byte followed by another lead byte.
    CHECK_FALSE(is_valid_text(bytes({0xC3, 0xC3, 0xA9})));
    for (int c = 0x80; c <= 0xBF; ++c) {
        INFO("continuation " << c);
        CHECK_FALSE(is_valid_text(bytes({c})));
        CHECK_FALSE(is_valid_text("abcdefgh" + bytes({c}) + "ijk"));
    }
    // One continuation byte too many.
    CHECK_FALSE(is_valid_text(bytes({0xC3, 0xA9, 0xA9})));
    // Telnet negotiation (IAC DO ...) is not UTF-8.
    CHECK_FALSE(is_valid_text(bytes({0xFF, 0xFD, 0x03})));
}

TEST_CASE("text: the 8-byte fast path catches a bad byte at each position 0..15", "[text]") {
    const std::string base = "abcdefghijklmnop"; // 16 printable bytes: two fast-path words
    REQUIRE(is_valid_text(base));
    const int bad_bytes[] = {0x00, 0x01, 0x08, 0x0A, 0x0D, 0x1B, 0x1F, 0x7F, 0x80, 0xBF, 0xC0, 0xFF};
    for (std::size_t pos = 0; pos < 16; ++pos) {
        for (int bad : bad_bytes) {
            std::string s = base;
            s[pos] = static_cast<char>(bad);
            INFO("byte " << bad << " at position " << pos);
            CHECK_FALSE(is_valid_text(s));
            CHECK_FALSE(is_valid_text(s + "qrstuvwx")); // and with more words after it
        }
        // TAB is fine at any position, even though the fast path sees it as a control byte.
        std::string tab = base;
        tab[pos] = '\t';
        INFO("TAB at position " << pos);
        CHECK(is_valid_text(tab));
        CHECK(is_valid_text(tab + "\tqrstuvw"));
        // A valid 2-byte character at any position.
        std::string two = base;
        two.replace(pos, 1, "\xC3\xA9");
        CHECK(is_valid_text(two));
        // Bytes just around the forbidden ranges are fine: space (0x20) and '~' (0x7E).
        std::string edge = base;
        edge[pos] = (pos % 2) ? ' ' : '~';
        CHECK(is_valid_text(edge));
    }
}
