// protocol::line_framer: LF framing, CRLF, split input, the length limit and discarding, finish().
#include <switchboard/protocol/line.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using switchboard::protocol::default_max_line;
using switchboard::protocol::line_framer;

namespace {

// Records what a framer reports: lines as strings and "<too-long>" markers, in order.
struct recorder {
    std::vector<std::string> events;
    std::size_t max_buffered = 0;

    std::size_t feed(line_framer& f, std::string_view bytes) {
        const std::size_t consumed = f.feed(
            bytes,
            [this](std::string_view line) {
                events.emplace_back(line);
                return true;
            },
            [this] { events.emplace_back("<too-long>"); });
        if (f.buffered() > max_buffered) max_buffered = f.buffered();
        return consumed;
    }
    void finish(line_framer& f) {
        f.finish([this](std::string_view line) { events.emplace_back(line); });
    }
};

using lines = std::vector<std::string>;

lines frame_whole(std::string_view input, std::size_t max_line = default_max_line) {
    line_framer f(max_line);
    recorder r;
    CHECK(r.feed(f, input) == input.size());
    r.finish(f);
    return r.events;
}

// Feeds `input` one byte at a time.
lines frame_bytewise(std::string_view input, std::size_t max_line, std::size_t* max_buffered = nullptr) {
    line_framer f(max_line);
    recorder r;
    for (char c : input) CHECK(r.feed(f, std::string_view(&c, 1)) == 1);
    r.finish(f);
    if (max_buffered) *max_buffered = r.max_buffered;
    return r.events;
}

} // namespace

TEST_CASE("line_framer: defaults", "[framer]") {
    CHECK(default_max_line == 4096);
    const line_framer f;
    CHECK(f.max_line() == 4096);
    CHECK(f.buffered() == 0);
    CHECK_FALSE(f.discarding());
    CHECK(line_framer(0).max_line() == 1);
}

TEST_CASE("line_framer: a line split at every byte boundary", "[framer]") {
    const std::string input = "/msg bob hello there\n";
    for (std::size_t cut = 0; cut <= input.size(); ++cut) {
        INFO("cut at " << cut);
        line_framer f;
        recorder r;
        r.feed(f, std::string_view(input).substr(0, cut));
        CHECK(f.buffered() == (cut == input.size() ? 0 : cut));
        r.feed(f, std::string_view(input).substr(cut));
        CHECK(r.events == lines{"/msg bob hello there"});
        CHECK(f.buffered() == 0);
    }
    // And split at every pair of boundaries, with CRLF.
    const std::string crlf = "ab\r\ncd\r\n";
    for (std::size_t i = 0; i <= crlf.size(); ++i)
        for (std::size_t j = i; j <= crlf.size(); ++j) {
            INFO("cuts at " << i << ", " << j);
            line_framer f;
            recorder r;
            r.feed(f, std::string_view(crlf).substr(0, i));
            r.feed(f, std::string_view(crlf).substr(i, j - i));
            r.feed(f, std::string_view(crlf).substr(j));
            CHECK(r.events == lines{"ab", "cd"});
        }
}

TEST_CASE("line_framer: many lines in one chunk, empty lines reported as empty", "[framer]") {
    CHECK(frame_whole("a\nbb\n\nccc\n") == lines{"a", "bb", "", "ccc"});
    std::string many;
    lines expected;
    for (int i = 0; i < 500; ++i) {
        many += "line " + std::to_string(i) + "\n";
        expected.push_back("line " + std::to_string(i));
    }
    CHECK(frame_whole(many) == expected);
}

TEST_CASE("line_framer: lines inside one chunk are views into the chunk (no copy)", "[framer]") {
    const std::string chunk = "first\nsecond\n";
    line_framer f;
    std::vector<const char*> starts;
    f.feed(
        chunk,
        [&](std::string_view line) {
            starts.push_back(line.data());
            return true;
        },
        [] {});
    REQUIRE(starts.size() == 2);
    CHECK(starts[0] == chunk.data());
    CHECK(starts[1] == chunk.data() + 6);
}

TEST_CASE("line_framer: CRLF, lone CR kept, CR split from LF", "[framer]") {
    CHECK(frame_whole("hello\r\n") == lines{"hello"});
    CHECK(frame_whole("\r\n") == lines{""});
    // Only one CR before LF is dropped.
    CHECK(frame_whole("hello\r\r\n") == lines{"hello\r"});
    // A CR in the middle of a line is part of the line.
    CHECK(frame_whole("a\rb\n") == lines{"a\rb"});
    CHECK(frame_whole("\rab\n") == lines{"\rab"});
    // CR at the end of one chunk, LF at the start of the next.
    line_framer f;
    recorder r;
    r.feed(f, "hello\r");
    CHECK(f.buffered() == 6);
    CHECK(r.events.empty());
    r.feed(f, "\nnext\r");
    r.feed(f, "\n");
    CHECK(r.events == lines{"hello", "next"});
    // A CR that is not followed by LF stays in the line even across chunks.
    line_framer g;
    recorder s;
    s.feed(g, "ab\r");
    s.feed(g, "cd\n");
    CHECK(s.events == lines{"ab\rcd"});
}

TEST_CASE("line_framer: exactly max_line bytes is accepted with LF and with CRLF", "[framer]") {
    const std::size_t max = 16;
    const std::string exact(max, 'x');
    CHECK(frame_whole(exact + "\n", max) == lines{exact});
    CHECK(frame_whole(exact + "\r\n", max) == lines{exact});
    CHECK(frame_bytewise(exact + "\n", max) == lines{exact});
    CHECK(frame_bytewise(exact + "\r\n", max) == lines{exact});
    // Split right before the CR, and between CR and LF.
    for (std::size_t cut : {max, max + 1}) {
        line_framer f(max);
        recorder r;
        const std::string in = exact + "\r\n";
        r.feed(f, std::string_view(in).substr(0, cut));
        CHECK(f.buffered() == cut);
        r.feed(f, std::string_view(in).substr(cut));
        CHECK(r.events == lines{exact});
    }
    // The default limit: 4096 bytes is fine, 4097 is not.
    CHECK(frame_whole(std::string(4096, 'y') + "\n") == lines{std::string(4096, 'y')});
    CHECK(frame_whole(std::string(4097, 'y') + "\n") == lines{"<too-long>"});
}

TEST_CASE("line_framer: max_line + 1 bytes is rejected once, discarded up to LF, next line delivered",
          "[framer]") {
    const std::size_t max = 16;
    const std::string over(max + 1, 'x');
    // In one chunk.
    CHECK(frame_whole(over + "\nnext\n", max) == lines{"<too-long>", "next"});
    // With CRLF: max+1 bytes of content before CRLF is still too long.
    CHECK(frame_whole(over + "\r\nnext\r\n", max) == lines{"<too-long>", "next"});
    // max bytes + a CR that is content (followed by another CR) is max+1 bytes: too long.
    CHECK(frame_whole(std::string(max, 'x') + "\r\r\nok\n", max) == lines{"<too-long>", "ok"});
    // Byte by byte.
    std::size_t max_buffered = 0;
    CHECK(frame_bytewise(over + "\nnext\n", max, &max_buffered) == lines{"<too-long>", "next"});
    CHECK(max_buffered <= max + 1);
    // Whole over-long line in one chunk, then its LF later.
    line_framer f(max);
    recorder r;
    r.feed(f, over);
    CHECK(r.events == lines{"<too-long>"});
    CHECK(f.discarding());
    CHECK(f.buffered() == 0);
    r.feed(f, "more junk");
    CHECK(f.discarding());
    r.feed(f, "junk\nafter\n");
    CHECK_FALSE(f.discarding());
    CHECK(r.events == lines{"<too-long>", "after"});
    // Buffered prefix + segment in the chunk with the LF exceeding the limit.
    line_framer g(max);
    recorder s;
    s.feed(g, std::string(10, 'a'));
    s.feed(g, std::string(10, 'b') + "\nok\n");
    CHECK(s.events == lines{"<too-long>", "ok"});
    CHECK(g.buffered() == 0);
}

TEST_CASE("line_framer: an over-long line in many small chunks is reported once, memory is bounded",
          "[framer]") {
    const std::size_t max = 64;
    line_framer f(max);
    recorder r;
    std::size_t too_long_seen_at = 0;
    const std::string piece = "0123456";
    for (int i = 0; i < 2000; ++i) { // 14000 bytes, no LF
        r.feed(f, piece);
        REQUIRE(f.buffered() <= max + 1);
        if (too_long_seen_at == 0 && !r.events.empty()) too_long_seen_at = static_cast<std::size_t>(i) + 1;
    }
    CHECK(r.events == lines{"<too-long>"});
    // Reported as soon as the excess is seen: after 10 pieces (70 bytes > 64), not at the LF.
    CHECK(too_long_seen_at == 10);
    CHECK(r.max_buffered <= max + 1);
    r.feed(f, "tail\r\nhello\r\n");
    CHECK(r.events == lines{"<too-long>", "hello"});
    CHECK(f.buffered() == 0);

    // Two over-long lines back to back: two reports.
    CHECK(frame_bytewise(std::string(100, 'z') + "\n" + std::string(100, 'w') + "\nend\n", max) ==
          lines{"<too-long>", "<too-long>", "end"});
}

TEST_CASE("line_framer: never buffers more than max_line + 1 bytes", "[framer]") {
    const std::size_t max = 8;
    // max bytes then CR: max+1 buffered (the CR may belong to a CRLF).
    line_framer f(max);
    recorder r;
    r.feed(f, std::string(max, 'a'));
    CHECK(f.buffered() == max);
    r.feed(f, "\r");
    CHECK(f.buffered() == max + 1);
    CHECK(r.events.empty());
    // Anything but LF after that is content: too long, buffer released.
    r.feed(f, "b");
    CHECK(f.buffered() == 0);
    CHECK(r.events == lines{"<too-long>"});
    // max+1 bytes not ending in CR: too long right away.
    line_framer g(max);
    recorder s;
    s.feed(g, std::string(max, 'a'));
    s.feed(g, "b");
    CHECK(g.buffered() == 0);
    CHECK(s.events == lines{"<too-long>"});

    // Random input of random chunk sizes: the bound always holds.
    std::mt19937 rng(12345);
    std::uniform_int_distribution<int> byte_dist(0, 11);
    std::uniform_int_distribution<std::size_t> len_dist(1, 30);
    line_framer h(max);
    recorder t;
    for (int round = 0; round < 3000; ++round) {
        std::string chunk;
        const std::size_t len = len_dist(rng);
        for (std::size_t i = 0; i < len; ++i) {
            const int v = byte_dist(rng);
            chunk.push_back(v == 0 ? '\n' : v == 1 ? '\r' : static_cast<char>('a' + v));
        }
        t.feed(h, chunk);
        REQUIRE(h.buffered() <= max + 1);
    }
    for (const std::string& e : t.events) REQUIRE((e == "<too-long>" || e.size() <= max));
}

TEST_CASE("line_framer: framing is independent of chunking (random chunks vs one chunk)", "[framer]") {
    std::mt19937 rng(42);
    std::uniform_int_distribution<int> byte_dist(0, 9);
    std::string input;
    for (int i = 0; i < 5000; ++i) {
        const int v = byte_dist(rng);
        input.push_back(v == 0 ? '\n' : v == 1 ? '\r' : static_cast<char>('a' + v));
    }
    const std::size_t max = 12;
    const lines whole = frame_whole(input, max);
    REQUIRE(whole.size() > 100);
    for (unsigned seed = 1; seed <= 20; ++seed) {
        std::mt19937 chunks(seed);
        std::uniform_int_distribution<std::size_t> len_dist(1, 7);
        line_framer f(max);
        recorder r;
        for (std::size_t pos = 0; pos < input.size();) {
            const std::size_t len = std::min(len_dist(chunks), input.size() - pos);
            r.feed(f, std::string_view(input).substr(pos, len));
            pos += len;
        }
        r.finish(f);
        INFO("seed " << seed);
        CHECK(r.events == whole);
    }
}

TEST_CASE("line_framer: finish() reports the unterminated last line", "[framer]") {
    CHECK(frame_whole("a\nlast") == lines{"a", "last"});
    CHECK(frame_whole("a\nlast\r") == lines{"a", "last"}); // one trailing CR dropped
    CHECK(frame_whole("a\n") == lines{"a"});               // nothing pending: no extra line
    CHECK(frame_whole("a\n\r") == lines{"a"});             // a lone CR is an empty line: not reported
    CHECK(frame_whole("") == lines{});

    line_framer f(8);
    recorder r;
    r.feed(f, "12345678\r"); // max + CR
    r.finish(f);
    CHECK(r.events == lines{"12345678"});
    CHECK(f.buffered() == 0);
    // finish() resets: the framer starts clean afterwards.
    r.feed(f, "x\n");
    CHECK(r.events == lines{"12345678", "x"});

    // A bool-returning callback works too, and is called once.
    line_framer g;
    int calls = 0;
    g.feed("tail", [](std::string_view) { return true; }, [] {});
    g.finish([&](std::string_view line) {
        ++calls;
        CHECK(line == "tail");
        return false;
    });
    CHECK(calls == 1);
}

TEST_CASE("line_framer: finish() while discarding reports nothing", "[framer]") {
    line_framer f(4);
    recorder r;
    r.feed(f, "ok\n123456");
    CHECK(f.discarding());
    r.finish(f);
    CHECK(r.events == lines{"ok", "<too-long>"});
    CHECK_FALSE(f.discarding());
    CHECK(f.buffered() == 0);
    r.feed(f, "ab\n");
    CHECK(r.events == lines{"ok", "<too-long>", "ab"});
}

TEST_CASE("line_framer: on_line returning false stops early", "[framer]") {
    line_framer f;
    std::vector<std::string> seen;
    const std::string chunk = "one\ntwo\nthree\n";
    const std::size_t consumed = f.feed(
        chunk,
        [&](std::string_view line) {
            seen.emplace_back(line);
            return line != "two";
        },
        [] {});
    CHECK(seen == lines{"one", "two"});
    CHECK(consumed == 8); // "one\ntwo\n"
    CHECK(f.buffered() == 0);
    // The caller may feed the rest later.
    f.feed(
        std::string_view(chunk).substr(consumed),
        [&](std::string_view line) {
            seen.emplace_back(line);
            return true;
        },
        [] {});
    CHECK(seen == lines{"one", "two", "three"});

    // Stop on a line that was assembled from a buffered prefix.
    line_framer g;
    seen.clear();
    g.feed("par", [&](std::string_view) { return true; }, [] {});
    const std::size_t used = g.feed(
        "tial\nrest\n",
        [&](std::string_view line) {
            seen.emplace_back(line);
            return false;
        },
        [] {});
    CHECK(seen == lines{"partial"});
    CHECK(used == 5);
    CHECK(g.buffered() == 0);
}
