// protocol::utf8_validator: RFC 3629 UTF-8 fed in pieces (a code point split anywhere), the
// failure reported by the piece that holds the bad byte, truncated texts, the ASCII fast path;
// is_valid_utf8() and truncate_utf8().
#include <switchboard/protocol/utf8_validator.hpp>

#include <catch2/catch.hpp>

#include "utf8_text.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using switchboard::protocol::is_valid_utf8;
using switchboard::protocol::truncate_utf8;
using switchboard::protocol::utf8_validator;

namespace {

using switchboard_test::encode_utf8;

// A plain decoder as the reference: decode greedily, then require the shortest form, no
// surrogate and at most U+10FFFF.
bool reference_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
        if (len == 0 || i + len > s.size()) return false;
        std::uint32_t cp = len == 1 ? c : c & (0x7Fu >> len);
        for (std::size_t k = 1; k < len; ++k) {
            const auto b = static_cast<unsigned char>(s[i + k]);
            if ((b & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (b & 0x3Fu);
        }
        const std::uint32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_for_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

struct verdict {
    bool prefix;
    bool complete;
};

verdict whole(std::string_view s) {
    utf8_validator v;
    const bool ok = v.feed(s);
    CHECK(ok == v.valid_prefix());
    CHECK(ok != v.failed());
    return {v.valid_prefix(), v.complete()};
}

verdict bytewise(std::string_view s) {
    utf8_validator v;
    for (char c : s) v.feed(std::string_view(&c, 1));
    return {v.valid_prefix(), v.complete()};
}

} // namespace

TEST_CASE("utf8_validator: empty and ASCII", "[websocket][utf8]") {
    utf8_validator v;
    CHECK(v.valid_prefix());
    CHECK(v.complete());
    CHECK(v.feed(""));
    CHECK(v.feed("hello\t\n\x01\x7f"));
    CHECK(v.complete());
    CHECK(is_valid_utf8(""));
    CHECK(is_valid_utf8(std::string(1000, 'a')));
}

TEST_CASE("utf8_validator: every code point, and the boundaries of each length", "[websocket][utf8]") {
    for (std::uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
        const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
        const std::string s = encode_utf8(cp);
        if (is_valid_utf8(s) == surrogate) FAIL("code point " << cp);
    }
    for (std::uint32_t cp : {0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xFFFFu, 0x10000u, 0x10FFFFu})
        CHECK(is_valid_utf8(encode_utf8(cp)));
    CHECK_FALSE(is_valid_utf8(encode_utf8(0x110000)));   // F4 90 80 80
    CHECK_FALSE(is_valid_utf8(encode_utf8(0x13FFFF)));
    CHECK_FALSE(is_valid_utf8("\xED\xA0\x80"));     // U+D800
    CHECK_FALSE(is_valid_utf8("\xED\xBF\xBF"));     // U+DFFF
    CHECK(is_valid_utf8("\xED\x9F\xBF"));           // U+D7FF
    CHECK(is_valid_utf8("\xEE\x80\x80"));           // U+E000
}

TEST_CASE("utf8_validator: overlong forms and bytes that never appear", "[websocket][utf8]") {
    for (const char* bad : {"\xC0\x80", "\xC1\xBF", "\xE0\x80\x80", "\xE0\x9F\xBF", "\xF0\x80\x80\x80",
                            "\xF0\x8F\xBF\xBF", "\xF5\x80\x80\x80", "\xF8\x88\x80\x80\x80", "\xFE", "\xFF",
                            "\x80", "\xBF", "a\x80", "\xC2\xC2\x80", "\xE1\x80\xC0"}) {
        INFO(bad);
        CHECK_FALSE(is_valid_utf8(bad));
        CHECK_FALSE(whole(bad).prefix);
    }
}

TEST_CASE("utf8_validator: a truncated sequence is a valid prefix but not complete", "[websocket][utf8]") {
    for (const char* cut : {"\xC3", "\xE2\x82", "\xF0\x9F", "\xF0\x9F\x98", "abc\xE0\xA0"}) {
        INFO(cut);
        const verdict w = whole(cut);
        CHECK(w.prefix);
        CHECK_FALSE(w.complete);
        CHECK_FALSE(is_valid_utf8(cut));
    }
}

TEST_CASE("utf8_validator: a text cut at every point gives the whole text's verdict", "[websocket][utf8]") {
    const std::vector<std::string> texts = {
        "h\xC3\xA9llo w\xC3\xB6rld \xE2\x82\xAC \xF0\x9F\x98\x80 end",
        "\xF4\x8F\xBF\xBF\xE0\xA0\x80\xED\x9F\xBF",
        "ok so far \xE0\x9F\xBF then overlong",
        "\xF0\x9F\x98", // truncated
    };
    for (const std::string& t : texts) {
        const bool want = reference_utf8(t);
        CHECK(is_valid_utf8(t) == want);
        for (std::size_t cut = 0; cut <= t.size(); ++cut) {
            utf8_validator v;
            v.feed(std::string_view(t).substr(0, cut));
            v.feed(std::string_view(t).substr(cut));
            CHECK((v.valid_prefix() && v.complete()) == want);
        }
        const verdict b = bytewise(t);
        const verdict w = whole(t);
        CHECK(b.prefix == w.prefix);
        CHECK(b.complete == w.complete);
    }
}

TEST_CASE("utf8_validator: the piece holding the bad byte fails, earlier pieces pass", "[websocket][utf8]") {
    utf8_validator v;
    CHECK(v.feed("first \xC3"));  // a lead byte at the end: still a valid prefix
    CHECK(v.feed("\xA9 second")); // its continuation in the next piece
    CHECK(v.complete());
    CHECK_FALSE(v.feed("bad \xC3(")); // a lead byte followed by ASCII
    CHECK(v.failed());
    CHECK_FALSE(v.feed("fine again")); // stays failed
    CHECK_FALSE(v.complete());
    v.reset();
    CHECK(v.valid_prefix());
    CHECK(v.complete());
}

TEST_CASE("utf8_validator: every two-byte sequence against a reference decoder", "[websocket][utf8]") {
    std::string s(2, '\0');
    for (unsigned a = 0; a < 256; ++a) {
        for (unsigned b = 0; b < 256; ++b) {
            s[0] = static_cast<char>(a);
            s[1] = static_cast<char>(b);
            if (is_valid_utf8(s) != reference_utf8(s)) FAIL("bytes " << a << " " << b);
        }
    }
}

TEST_CASE("utf8_validator: the ASCII fast path stops at a non-ASCII byte anywhere", "[websocket][utf8]") {
    for (std::size_t at = 0; at < 40; ++at) {
        std::string t(40, 'x');
        t[at] = '\x80'; // a lone continuation byte
        CHECK_FALSE(is_valid_utf8(t));
        t[at] = '\xC3'; // a lead byte: valid only if its continuation follows
        CHECK_FALSE(is_valid_utf8(t));
        t.insert(at + 1, 1, '\xA9');
        CHECK(is_valid_utf8(t));
    }
}

TEST_CASE("truncate_utf8: cuts on a character boundary", "[websocket][utf8]") {
    CHECK(truncate_utf8("hello", 10) == "hello");
    CHECK(truncate_utf8("hello", 5) == "hello");
    CHECK(truncate_utf8("hello", 3) == "hel");
    CHECK(truncate_utf8("a\xC3\xA9", 2) == "a");           // é would be cut
    CHECK(truncate_utf8("a\xC3\xA9", 3) == "a\xC3\xA9");
    CHECK(truncate_utf8("\xF0\x9F\x98\x80z", 3).empty());  // an emoji would be cut
    CHECK(truncate_utf8("\xF0\x9F\x98\x80z", 4) == "\xF0\x9F\x98\x80");
    CHECK(truncate_utf8("\xE2\x82\xAC\xE2\x82\xAC", 5) == "\xE2\x82\xAC");
    CHECK(truncate_utf8("abc", 0).empty());
    // A valid text stays valid at every cut.
    const std::string t = "h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80!";
    for (std::size_t n = 0; n <= t.size() + 1; ++n) {
        const std::string_view p = truncate_utf8(t, n);
        CHECK(p.size() <= n);
        CHECK(p.size() + 3 >= std::min(n, t.size()));
        CHECK(is_valid_utf8(p));
    }
}
