// protocol::parse_http_request / http_request_parser: the request line, header syntax, line
// endings, the three bounds at and past their limit, split input, and the head's length.
#include "http_messages.hpp"

#include <switchboard/protocol/http_request.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using switchboard::protocol::any_list_element;
using switchboard::protocol::http_header;
using switchboard::protocol::http_parse_error;
using switchboard::protocol::http_parse_result;
using switchboard::protocol::http_parse_status;
using switchboard::protocol::http_request;
using switchboard::protocol::http_request_options;
using switchboard::protocol::http_request_parser;
using switchboard::protocol::http_target_form;
using switchboard::protocol::is_valid_host;
using switchboard::protocol::list_contains_token;
using switchboard::protocol::parse_http_request;

namespace {

http_parse_result parse(std::string_view bytes, const http_request_options& o = {}) {
    http_request r;
    return parse_http_request(bytes, r, o);
}

http_parse_error error_of(std::string_view bytes, const http_request_options& o = {}) {
    const http_parse_result r = parse(bytes, o);
    return r.status == http_parse_status::error ? r.error : http_parse_error::none;
}

bool is_complete(std::string_view bytes, const http_request_options& o = {}) {
    return parse(bytes, o).status == http_parse_status::complete;
}

// "GET <target> HTTP/1.1", a Host line, the extra lines (each with its CRLF), the empty line.
std::string request(std::string_view target = "/", std::string_view extra = "", std::string_view method = "GET") {
    return std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: h\r\n" + std::string(extra) + "\r\n";
}

bool same(const http_request& a, const http_request& b) {
    if (a.method != b.method || a.target != b.target || a.path != b.path || a.query != b.query ||
        a.version != b.version || a.version_minor != b.version_minor || a.header_count() != b.header_count())
        return false;
    for (std::size_t i = 0; i < a.header_count(); ++i)
        if (a.begin()[i].name != b.begin()[i].name || a.begin()[i].value != b.begin()[i].value) return false;
    return true;
}

} // namespace

TEST_CASE("http_request: defaults and error names", "[websocket][http]") {
    const http_request_options o;
    CHECK(o.max_head_bytes == 8192);
    CHECK(o.max_headers == 64);
    CHECK(o.max_target == 2048);
    CHECK(o.require_host);
    CHECK(http_request::capacity >= o.max_headers);
    for (int e = 1; e <= static_cast<int>(http_parse_error::too_many_headers); ++e) {
        const auto err = static_cast<http_parse_error>(e);
        INFO(e);
        CHECK_FALSE(to_string(err).empty());
        CHECK(to_string(err).find(' ') == std::string_view::npos);
        const int s = http_status_of(err);
        CHECK((s == 400 || s == 414 || s == 431 || s == 505));
    }
    CHECK(http_status_of(http_parse_error::uri_too_long) == 414);
    CHECK(http_status_of(http_parse_error::head_too_large) == 431);
    CHECK(http_status_of(http_parse_error::too_many_headers) == 431);
    CHECK(http_status_of(http_parse_error::unsupported_version) == 505);
    CHECK(http_status_of(http_parse_error::obsolete_line_folding) == 400);
    CHECK(http_status_of(http_parse_error::none) == 0);
}

TEST_CASE("http_request: Chromium's upgrade request", "[websocket][http]") {
    const std::string_view in = http_test::chromium_upgrade;
    http_request r;
    const http_parse_result res = parse_http_request(in, r);
    REQUIRE(res.status == http_parse_status::complete);
    CHECK(res.error == http_parse_error::none);
    CHECK(res.consumed == in.size());
    CHECK(r.method == "GET");
    CHECK(r.target == "/ws");
    CHECK(r.path == "/ws");
    CHECK(r.query.empty());
    CHECK(r.version == "HTTP/1.1");
    CHECK(r.version_major == 1);
    CHECK(r.version_minor == 1);
    CHECK(r.form == http_target_form::origin);
    CHECK(r.header_count() == 13);
    CHECK(r.begin()->name == "Host");
    CHECK(r.begin()->value == "localhost:8080");
    CHECK(r.header("host") == std::string_view("localhost:8080"));
    CHECK(r.header("SEC-WEBSOCKET-KEY") == std::string_view("dGhlIHNhbXBsZSBub25jZQ=="));
    CHECK_FALSE(r.header("Content-Length").has_value());
    CHECK(r.count("upgrade") == 1);
    CHECK(r.has_token("Connection", "upgrade"));
    CHECK(r.has_token("sec-websocket-protocol", "switchboard.line"));
    CHECK_FALSE(r.has_token("Sec-WebSocket-Protocol", "switchboard"));
    // Every view points into the input.
    for (const http_header& h : r) {
        CHECK(h.name.data() >= in.data());
        CHECK(h.value.data() + h.value.size() <= in.data() + in.size());
    }
}

TEST_CASE("http_request: repeated headers, values and token lists", "[websocket][http]") {
    const std::string in = request("/", "X-A: 1\r\nx-a: 2\r\nOther: z\r\nX-A:\r\nConnection: keep-alive\r\n"
                                        "CONNECTION: ,, Upgrade ,\r\n");
    http_request r;
    REQUIRE(parse_http_request(in, r).status == http_parse_status::complete);
    CHECK(r.count("X-A") == 3);
    std::vector<std::string> values;
    for (const std::string_view v : r.values("x-A")) values.emplace_back(v);
    CHECK(values == std::vector<std::string>{"1", "2", ""});
    CHECK(r.values("missing").begin() == r.values("missing").end());
    CHECK(r.header("X-A") == std::string_view("1"));
    CHECK(r.has_token("connection", "UPGRADE")); // on the second Connection line
    CHECK(r.has_token("connection", "keep-alive"));
    CHECK_FALSE(r.has_token("connection", "close"));

    CHECK(list_contains_token("keep-alive, Upgrade", "upgrade"));
    CHECK(list_contains_token(" \tupgrade\t ", "Upgrade"));
    CHECK_FALSE(list_contains_token("upgrades, xupgrade, up grade", "upgrade"));
    CHECK_FALSE(list_contains_token("", "upgrade"));
    CHECK_FALSE(list_contains_token(", ,", ""));
    std::vector<std::string> elements;
    CHECK_FALSE(any_list_element(" a ,, b\t,c d ,", [&](std::string_view e) {
        elements.emplace_back(e);
        return false;
    }));
    CHECK(elements == std::vector<std::string>{"a", "b", "c d"});
}

TEST_CASE("http_request: field values lose their OWS and keep HTAB and obs-text inside", "[websocket][http]") {
    const std::string in = request("/", "A: \t v \t a \t \r\nB:\r\nC:   \r\nD:x\r\nE: caf\xc3\xa9\r\n");
    http_request r;
    REQUIRE(parse_http_request(in, r).status == http_parse_status::complete);
    CHECK(r.header("A") == std::string_view("v \t a"));
    CHECK(r.header("B") == std::string_view(""));
    CHECK(r.header("C") == std::string_view(""));
    CHECK(r.header("D") == std::string_view("x"));
    CHECK(r.header("E") == std::string_view("caf\xc3\xa9"));
}

TEST_CASE("http_request: control bytes in a value are refused", "[websocket][http]") {
    for (const char c : {'\0', '\x01', '\x0b', '\x1f', '\x7f'}) {
        INFO(static_cast<int>(c));
        std::string in = request("/", "X: a?b\r\n");
        in[in.find('?')] = c;
        CHECK(error_of(in) == http_parse_error::invalid_field_value);
    }
}

TEST_CASE("http_request: targets, query and the four forms", "[websocket][http]") {
    http_request r;
    std::string in = request("/ws?room=lobby&x=%20");
    REQUIRE(parse_http_request(in, r).status == http_parse_status::complete);
    CHECK(r.path == "/ws");
    CHECK(r.query == "room=lobby&x=%20");
    in = request("/ws?");
    REQUIRE(parse_http_request(in, r).status == http_parse_status::complete);
    CHECK(r.path == "/ws");
    CHECK(r.query.empty());
    in = request("//a/b?c?d");
    REQUIRE(parse_http_request(in, r).status == http_parse_status::complete);
    CHECK(r.path == "//a/b");
    CHECK(r.query == "c?d");

    in = request("http://chat.example:8080/ws?x");
    REQUIRE(parse_http_request(in, r).status == http_parse_status::complete);
    CHECK(r.form == http_target_form::absolute);
    CHECK(r.path == "/ws");
    CHECK(r.query == "x");
    in = request("https://chat.example");
    REQUIRE(parse_http_request(in, r).status == http_parse_status::complete);
    CHECK(r.form == http_target_form::absolute);
    CHECK(r.path.empty());
    in = request("*", "", "OPTIONS");
    REQUIRE(parse_http_request(in, r).status == http_parse_status::complete);
    CHECK(r.form == http_target_form::asterisk);
    in = request("chat.example:443", "", "CONNECT");
    REQUIRE(parse_http_request(in, r).status == http_parse_status::complete);
    CHECK(r.form == http_target_form::authority);
    CHECK(r.path.empty());

    CHECK(error_of(request("*")) == http_parse_error::invalid_target);
    CHECK(error_of(request("chat.example/ws")) == http_parse_error::invalid_target);
    CHECK(error_of(request("chat.example", "", "CONNECT")) == http_parse_error::invalid_target);
    CHECK(error_of(request("1http://x/")) == http_parse_error::invalid_target);
    CHECK(error_of(request("/a#frag")) == http_parse_error::invalid_target);
    CHECK(error_of(request("/caf\xc3\xa9")) == http_parse_error::invalid_target);
    CHECK(error_of(request("/a\x7f")) == http_parse_error::invalid_target);
}

TEST_CASE("http_request: the request line", "[websocket][http]") {
    CHECK(is_complete("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    CHECK(is_complete("M-SEARCH * HTTP/1.1\r\nHost: h\r\n\r\n") == false); // * is for OPTIONS only
    CHECK(is_complete("PATCH /x HTTP/1.1\r\nHost: h\r\n\r\n"));
    CHECK(error_of("GET  / HTTP/1.1\r\n\r\n") == http_parse_error::invalid_request_line);
    CHECK(error_of("GET /  HTTP/1.1\r\n\r\n") == http_parse_error::invalid_version);
    CHECK(error_of(" GET / HTTP/1.1\r\n\r\n") == http_parse_error::invalid_request_line);
    CHECK(error_of("GET /\r\n\r\n") == http_parse_error::invalid_request_line);
    CHECK(error_of("GET\r\n\r\n") == http_parse_error::invalid_request_line);
    CHECK(error_of("G(T / HTTP/1.1\r\n\r\n") == http_parse_error::invalid_method);
    CHECK(error_of("GET\t/ HTTP/1.1\r\n\r\n") == http_parse_error::invalid_method);
    // A TLS ClientHello on the plain port fails on its first byte.
    CHECK(error_of("\x16\x03\x01") == http_parse_error::invalid_method);
    CHECK(error_of(std::string_view("\x16", 1)) == http_parse_error::invalid_method);
}

TEST_CASE("http_request: versions", "[websocket][http]") {
    http_request r;
    std::string in = "GET / HTTP/1.0\r\n\r\n"; // HTTP/1.0 needs no Host
    REQUIRE(parse_http_request(in, r).status == http_parse_status::complete);
    CHECK(r.version == "HTTP/1.0");
    CHECK(r.version_minor == 0);
    in = "GET / HTTP/1.2\r\nHost: h\r\n\r\n"; // a later 1.x is 1.1-compatible (RFC 9110 2.5)
    REQUIRE(parse_http_request(in, r).status == http_parse_status::complete);
    CHECK(r.version_minor == 2);
    CHECK(error_of("GET / HTTP/2.0\r\n\r\n") == http_parse_error::unsupported_version);
    CHECK(error_of("GET / HTTP/0.9\r\n\r\n") == http_parse_error::unsupported_version);
    CHECK(parse("GET / HTTP/2").http_status() == 505);
    CHECK(error_of("GET / http/1.1\r\n\r\n") == http_parse_error::invalid_version);
    CHECK(error_of("GET / HTTP/1.1 \r\n\r\n") == http_parse_error::invalid_version);
    CHECK(error_of("GET / HTTP/11\r\n\r\n") == http_parse_error::invalid_version);
    CHECK(error_of("GET / HTTP/1.10\r\n\r\n") == http_parse_error::invalid_version);
    CHECK(error_of("GET / HTTP/1.x\r\n\r\n") == http_parse_error::invalid_version);
    CHECK(error_of("GET / HTTPS/1.1\r\n\r\n") == http_parse_error::invalid_version);
}

TEST_CASE("http_request: line endings (bare LF and bare CR are refused)", "[websocket][http]") {
    CHECK(error_of("GET / HTTP/1.1\nHost: h\r\n\r\n") == http_parse_error::invalid_line_ending);
    CHECK(error_of("GET / HTTP/1.1\r\nHost: h\n\r\n") == http_parse_error::invalid_line_ending);
    CHECK(error_of("GET / HTTP/1.1\r\nHost: h\r\n\n") == http_parse_error::invalid_line_ending);
    CHECK(error_of("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n") == http_parse_error::invalid_line_ending);
    CHECK(error_of("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\r\n\r\n") == http_parse_error::invalid_line_ending);
    CHECK(error_of("GET / HTTP/1.1\rX") == http_parse_error::invalid_line_ending);
    CHECK(error_of("GET / HTTP/1.1\r\nHost: h\r\n\rX") == http_parse_error::invalid_line_ending);
    CHECK(error_of("\nGET / HTTP/1.1\r\n\r\n") == http_parse_error::invalid_line_ending);
    CHECK(error_of("\r\rGET / HTTP/1.1\r\n\r\n") == http_parse_error::invalid_line_ending);
    // A CR at the end of the bytes so far may still be a CRLF.
    CHECK(parse("GET / HTTP/1.1\r").status == http_parse_status::partial);
    CHECK(parse("GET / HTTP/1.1\r\nHost: h\r").status == http_parse_status::partial);
    CHECK(parse("GET / HTTP/1.1\r\nHost: h\r\n\r").status == http_parse_status::partial);
}

TEST_CASE("http_request: empty lines before the request line are skipped", "[websocket][http]") {
    const std::string in = "\r\n\r\n" + request("/x");
    http_request r;
    const http_parse_result res = parse_http_request(in, r);
    REQUIRE(res.status == http_parse_status::complete);
    CHECK(res.consumed == in.size());
    CHECK(r.target == "/x");
    CHECK(parse("\r\n").status == http_parse_status::partial);
}

TEST_CASE("http_request: header names", "[websocket][http]") {
    CHECK(is_complete(request("/", "X-Custom_1.~!#$%&'*+^`|: v\r\n")));
    CHECK(error_of(request("/", "Host : x\r\n")) == http_parse_error::whitespace_before_colon);
    CHECK(error_of(request("/", "X\t: x\r\n")) == http_parse_error::whitespace_before_colon);
    CHECK(error_of(request("/", "X Y: x\r\n")) == http_parse_error::whitespace_before_colon);
    CHECK(error_of(request("/", ": x\r\n")) == http_parse_error::invalid_field_name);
    CHECK(error_of(request("/", "X(y): x\r\n")) == http_parse_error::invalid_field_name);
    CHECK(error_of(request("/", "X\xc3\xa9: x\r\n")) == http_parse_error::invalid_field_name);
    CHECK(error_of(request("/", "NoColon\r\n")) == http_parse_error::missing_colon);
    CHECK(error_of(request("/", "NoColon\n")) == http_parse_error::missing_colon);
}

TEST_CASE("http_request: obs-fold and whitespace after the request line are refused", "[websocket][http]") {
    CHECK(error_of(request("/", "X: a\r\n b\r\n")) == http_parse_error::obsolete_line_folding);
    CHECK(error_of(request("/", "X: a\r\n\tb\r\n")) == http_parse_error::obsolete_line_folding);
    CHECK(error_of("GET / HTTP/1.1\r\n Host: h\r\n\r\n") == http_parse_error::obsolete_line_folding);
    CHECK(parse(request("/", "X: a\r\n b\r\n")).http_status() == 400);
}

TEST_CASE("http_request: Host (RFC 9112 3.2)", "[websocket][http]") {
    CHECK(error_of("GET / HTTP/1.1\r\n\r\n") == http_parse_error::missing_host);
    CHECK(error_of("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n") == http_parse_error::duplicate_host);
    CHECK(error_of("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n") == http_parse_error::duplicate_host);
    CHECK(error_of("GET / HTTP/1.1\r\nHost: a b\r\n\r\n") == http_parse_error::invalid_host);
    CHECK(error_of("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n") == http_parse_error::invalid_host);
    CHECK(is_complete("GET / HTTP/1.1\r\nHost:\r\n\r\n")); // empty is allowed by RFC 9112 3.2
    http_request_options lax;
    lax.require_host = false;
    CHECK(is_complete("GET / HTTP/1.1\r\n\r\n", lax));
    CHECK(is_complete("GET / HTTP/1.1\r\nHost: a\r\nHost: b c\r\n\r\n", lax));

    for (const char* good : {"example.com", "example.com:8080", "EXAMPLE.com:", "127.0.0.1:1", "[::1]",
                             "[::1]:443", "[v1.x]", "a-b_c~d%20!$&'()*+,;=", ""})
        CHECK(is_valid_host(good));
    for (const char* bad : {"a b", "a:b", "a:123456", "[::1", "[]", "[::1]x", "[::1]:x", "a/b", "a@b", "a:1:2",
                            "caf\xc3\xa9"})
        CHECK_FALSE(is_valid_host(bad));
}

TEST_CASE("http_request: every prefix of a valid head is partial", "[websocket][http]") {
    const std::string_view in = http_test::chromium_upgrade;
    for (std::size_t n = 0; n < in.size(); ++n) {
        INFO("prefix of " << n << " bytes");
        const http_parse_result r = parse(in.substr(0, n));
        CHECK(r.status == http_parse_status::partial);
        CHECK(r.consumed == 0);
    }
}

TEST_CASE("http_request: byte-at-a-time and random chunks give the one-chunk result", "[websocket][http]") {
    const std::vector<std::string> inputs = {
        std::string(http_test::chromium_upgrade), std::string(http_test::firefox_upgrade),
        std::string(http_test::curl_upgrade) + "\x81\x05hello", "\r\n" + request("/a?b", "X:  y \r\n"),
        request("/", "X: a\r\n b\r\n"), "GET / HTTP/1.1\r\nHost: h\r\nBad\x01: v\r\n\r\n",
        "GET /" + std::string(3000, 'a') + " HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        std::string(9000, 'A')};
    std::mt19937 rng(20240607);
    for (const std::string& in : inputs) {
        INFO(in.substr(0, 40));
        http_request whole_request;
        const http_parse_result whole = parse_http_request(in, whole_request);
        for (int round = 0; round < 4; ++round) {
            http_request_parser p;
            http_request split_request;
            http_parse_result split;
            std::string buffer; // grows (and moves) like a connection's input buffer
            std::size_t pos = 0;
            while (pos < in.size()) {
                const std::size_t n = round == 0 ? 1 : 1 + rng() % 97;
                buffer.append(in, pos, n);
                pos += n;
                buffer.shrink_to_fit();
                split = p.parse(buffer, split_request);
                if (split.status != http_parse_status::partial) break;
            }
            CHECK(split.status == whole.status);
            CHECK(split.error == whole.error);
            CHECK(split.consumed == whole.consumed);
            if (whole.status == http_parse_status::complete) {
                // Same positions in a different buffer.
                CHECK(split_request.header_count() == whole_request.header_count());
                CHECK(split_request.target == whole_request.target);
                CHECK(split_request.header("Sec-WebSocket-Key") == whole_request.header("Sec-WebSocket-Key"));
            }
        }
    }
}

TEST_CASE("http_request: the head's length, with frame bytes after it", "[websocket][http]") {
    // A masked text frame whose payload itself holds CRLFCRLF follows the head in the same read.
    const std::string frame = "\x81\x84\x01\x02\x03\x04\r\n\r\n";
    const std::string in = std::string(http_test::curl_upgrade) + frame;
    http_request r;
    const http_parse_result res = parse_http_request(in, r);
    REQUIRE(res.status == http_parse_status::complete);
    CHECK(res.consumed == http_test::curl_upgrade.size());
    CHECK(std::string_view(in).substr(res.consumed) == frame);

    // Split: the parser reports the same length whichever read completed the head.
    http_request_parser p;
    http_request r2;
    CHECK(p.parse(std::string_view(in).substr(0, 10), r2).status == http_parse_status::partial);
    const http_parse_result res2 = p.parse(in, r2);
    CHECK(res2.status == http_parse_status::complete);
    CHECK(res2.consumed == res.consumed);
    CHECK(same(r, r2));
    // Once complete it stays complete (and fills `out` again); reset() starts a new head.
    http_request r3;
    CHECK(p.parse(in, r3).consumed == res.consumed);
    CHECK(same(r, r3));
    p.reset();
    CHECK(p.parse("GET /next HTTP/1.1\r\n", r3).status == http_parse_status::partial);
    // An error is final too.
    http_request_parser q;
    CHECK(q.parse("GET / HTTP/1.1\n", r3).error == http_parse_error::invalid_line_ending);
    CHECK(q.parse("GET / HTTP/1.1\nHost: h\r\n\r\n", r3).error == http_parse_error::invalid_line_ending);
}

TEST_CASE("http_request: max_head_bytes, at the bound and one past", "[websocket][http]") {
    const std::string in = request("/", "X-Pad: " + std::string(100, 'p') + "\r\n");
    http_request_options o;
    o.max_head_bytes = in.size();
    CHECK(parse(in, o).status == http_parse_status::complete);
    CHECK(parse(in, o).consumed == in.size());
    // Bytes after the bound are never read: a head that fits is complete whatever follows.
    CHECK(parse(in + "\x01\x02garbage", o).status == http_parse_status::complete);
    o.max_head_bytes = in.size() - 1;
    CHECK(error_of(in, o) == http_parse_error::head_too_large);
    CHECK(parse(in, o).http_status() == 431);
    // Partial with the buffer at the bound is 431; one byte short of it is still partial.
    CHECK(error_of(in.substr(0, in.size() - 1), o) == http_parse_error::head_too_large);
    CHECK(parse(in.substr(0, in.size() - 2), o).status == http_parse_status::partial);
    // The byte past the bound would be an error of its own: it is not looked at.
    std::string bad = in.substr(0, in.size() - 1) + "\x01";
    CHECK(error_of(bad, o) == http_parse_error::head_too_large);

    // The default: 8192 bytes.
    const std::string fixed = request("/", "X-Pad: \r\n");
    const std::string big = request("/", "X-Pad: " + std::string(8192 - fixed.size(), 'p') + "\r\n");
    REQUIRE(big.size() == 8192);
    CHECK(is_complete(big));
    const std::string too_big = request("/", "X-Pad: " + std::string(8193 - fixed.size(), 'p') + "\r\n");
    CHECK(error_of(too_big) == http_parse_error::head_too_large);
    CHECK(error_of(std::string(8192, 'A')) == http_parse_error::head_too_large);
    CHECK(parse(std::string(8191, 'A')).status == http_parse_status::partial);
    o.max_head_bytes = 0;
    CHECK(error_of("", o) == http_parse_error::head_too_large);
}

TEST_CASE("http_request: max_headers, at the bound and one past", "[websocket][http]") {
    std::string lines;
    for (int i = 1; i < 64; ++i) lines += "X" + std::to_string(i) + ": v\r\n"; // + Host = 64
    http_request r;
    REQUIRE(parse_http_request(request("/", lines), r).status == http_parse_status::complete);
    CHECK(r.header_count() == 64);
    CHECK(error_of(request("/", lines + "One-More: v\r\n")) == http_parse_error::too_many_headers);
    CHECK(parse(request("/", lines + "One-More: v\r\n")).http_status() == 431);
    // Refused on the first byte of the 65th line, before it ends.
    CHECK(error_of("GET / HTTP/1.1\r\nHost: h\r\n" + lines + "O") == http_parse_error::too_many_headers);
    // The final empty line is not a header.
    CHECK(parse("GET / HTTP/1.1\r\nHost: h\r\n" + lines + "\r").status == http_parse_status::partial);

    http_request_options o;
    o.max_headers = 2;
    CHECK(is_complete(request("/", "A: 1\r\n"), o));
    CHECK(error_of(request("/", "A: 1\r\nB: 2\r\n"), o) == http_parse_error::too_many_headers);
    // Above the capacity, the capacity is the bound.
    o.max_headers = 100000;
    o.max_head_bytes = 1 << 16;
    std::string many;
    for (std::size_t i = 1; i < http_request::capacity; ++i) many += "X: v\r\n";
    REQUIRE(parse_http_request(request("/", many), r, o).status == http_parse_status::complete);
    CHECK(r.header_count() == http_request::capacity);
    CHECK(error_of(request("/", many + "X: v\r\n"), o) == http_parse_error::too_many_headers);
}

TEST_CASE("http_request: max_target, at the bound and one past", "[websocket][http]") {
    const std::string at = "/" + std::string(2047, 'a');
    http_request r;
    REQUIRE(parse_http_request(request(at), r).status == http_parse_status::complete);
    CHECK(r.target.size() == 2048);
    CHECK(error_of(request(at + "a")) == http_parse_error::uri_too_long);
    CHECK(parse(request(at + "a")).http_status() == 414);
    // Refused as soon as the target passes the bound, before the line ends.
    CHECK(error_of("GET " + at + "a") == http_parse_error::uri_too_long);
    CHECK(parse("GET " + at).status == http_parse_status::partial);
    http_request_options o;
    o.max_target = 3;
    CHECK(is_complete(request("/ab"), o));
    CHECK(error_of(request("/abc"), o) == http_parse_error::uri_too_long);
}
