// websocket_upgrade_fuzz: libFuzzer target for the HTTP request-head parser
// (protocol/http_request.hpp), the WebSocket upgrade validator (websocket/handshake.hpp) and the
// response builders (protocol/http_response.hpp).
//
// 1. The data is parsed whole (`parse_http_request`) and fed to an `http_request_parser` in
//    chunks whose sizes come from the input, each call on a fresh exact-size copy of the bytes so
//    far (so AddressSanitizer sees any view kept from an earlier buffer, and any read past its
//    end). Same outcome split and whole (status, error, consumed); every call before the last is
//    `partial`; once final, more bytes change nothing.
// 2. The bounds: the result on the data equals the result on an exact-size copy of its first
//    `max_head_bytes` bytes (nothing beyond the bound is read); consumed <= size and
//    <= max_head_bytes; a complete head ends in CRLFCRLF; header count <= max_headers (and the
//    capacity); target <= max_target.
// 3. A complete head: every view (method, target, path, query, version, names, values) lies inside
//    the head; path and query inside the target; the head re-split by a plain reference (lines at
//    CRLF, skipping leading empty lines; `name:value` with OWS trimmed) gives the same header
//    lines in the same order; names are tokens, values hold no CTL but HTAB and no edge OWS;
//    `header()`, `count()`, `values()` and `has_token()` agree with the reference.
// 4. The outcome's response is well-formed (status line, header lines, CRLFCRLF; Content-Length
//    equal to the body for a refusal): `validate_upgrade()` on a complete head (a 101 with the
//    right Sec-WebSocket-Accept, or a refusal with its status), `http_error_response()` on an
//    error.
//
// Input format (any byte string is valid):
//   byte 0   max_head_bytes: bit 7 set: 8192, else 1 + (byte & 0x7F) * 8 (1..1017)
//   byte 1   max_headers: byte >= 250: 100000 (capped at the capacity), else byte % 70
//   byte 2   max_target: byte >= 200: 2048, else byte * 4
//   byte 3   flags: bit 0 require_host; bit 1 allow_missing_origin; bit 2 allowed_origins =
//            {"http://localhost:8080"}; bit 3 default_subprotocol "switchboard.line"; bit 4 any
//            path; bit 5 no server subprotocols
//   byte 4   n = byte % 16: number of chunk-plan bytes that follow
//   n bytes  chunk sizes, used cyclically (0 = an empty feed; a plan of zeros feeds the rest)
//   the rest the data (with n = 0: one chunk)
// Built with -fsanitize=fuzzer (SWITCHBOARD_BUILD_FUZZ, scripts/fuzz), or with replay_main.cpp
// as websocket_upgrade_fuzz_replay, which replays tests/fuzz/corpus/websocket_upgrade_fuzz/.
#include "fuzz_support.hpp"

#include <switchboard/protocol/http_request.hpp>
#include <switchboard/protocol/http_response.hpp>
#include <switchboard/websocket/handshake.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

using switchboard::protocol::http_header;
using switchboard::protocol::http_parse_result;
using switchboard::protocol::http_parse_status;
using switchboard::protocol::http_request;
using switchboard::protocol::http_request_options;
using switchboard::protocol::http_request_parser;
using switchboard::websocket::upgrade_options;
using switchboard::websocket::upgrade_result;
using switchboard_fuzz::escaped;
using switchboard_fuzz::trace;

// An exact-size heap copy of bytes: reading one byte past it is an ASan report.
struct exact_copy {
    explicit exact_copy(std::string_view bytes) : data(new char[bytes.size() + (bytes.empty() ? 1 : 0)]), size(bytes.size()) {
        if (size) std::memcpy(data.get(), bytes.data(), size);
    }
    std::string_view view() const { return {data.get(), size}; }
    std::unique_ptr<char[]> data;
    std::size_t size;
};

std::string describe(const http_parse_result& r) {
    static const char* const names[] = {"partial", "complete", "error"};
    return std::string(names[static_cast<int>(r.status)]) + "/" + std::string(to_string(r.error)) + "/" +
           std::to_string(r.consumed);
}

bool same_result(const http_parse_result& a, const http_parse_result& b) {
    return a.status == b.status && a.error == b.error && a.consumed == b.consumed;
}

bool inside(std::string_view part, std::string_view whole) {
    if (part.empty()) return part.data() == nullptr || (part.data() >= whole.data() && part.data() <= whole.data() + whole.size());
    return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

bool ows(char c) { return c == ' ' || c == '\t'; }

bool reference_tchar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool fold_equal(std::string_view a, std::string_view b) {
    return switchboard_fuzz::reference_fold(a) == switchboard_fuzz::reference_fold(b);
}

// The token-list rule, written plainly: split at commas, trim OWS, compare folded.
bool reference_list_has(std::string_view list, std::string_view token) {
    std::size_t start = 0;
    for (std::size_t i = 0; i <= list.size(); ++i) {
        if (i < list.size() && list[i] != ',') continue;
        std::string_view e = list.substr(start, i - start);
        while (!e.empty() && ows(e.front())) e.remove_prefix(1);
        while (!e.empty() && ows(e.back())) e.remove_suffix(1);
        if (!e.empty() && fold_equal(e, token)) return true;
        start = i + 1;
    }
    return false;
}

// A response as the library must build it: status line, `name: value` lines, CRLFCRLF, and
// (`with_length`) a Content-Length equal to what follows.
void check_response(std::string_view bytes, int status, bool with_length) {
    const auto what = [&] { return "response \"" + escaped(bytes) + "\""; };
    FUZZ_CHECK_MSG(bytes.size() >= 13 && bytes.substr(0, 9) == "HTTP/1.1 " &&
                       bytes.substr(9, 3) == std::to_string(status) && bytes[12] == ' ',
                   what() + " for status " + std::to_string(status));
    const std::size_t end = bytes.find("\r\n\r\n");
    FUZZ_CHECK_MSG(end != std::string_view::npos, what());
    std::size_t pos = bytes.find("\r\n") + 2;
    std::string length;
    while (pos < end + 2) {
        const std::size_t eol = bytes.find("\r\n", pos);
        const std::string_view line = bytes.substr(pos, eol - pos);
        const std::size_t colon = line.find(": ");
        FUZZ_CHECK_MSG(colon != std::string_view::npos && colon > 0, what());
        for (char c : line) FUZZ_CHECK_MSG(c != '\r' && c != '\n' && c != '\0', what());
        if (fold_equal(line.substr(0, colon), "content-length")) length = std::string(line.substr(colon + 2));
        pos = eol + 2;
    }
    if (with_length) FUZZ_CHECK_MSG(length == std::to_string(bytes.size() - end - 4), what());
    else FUZZ_CHECK_MSG(length.empty() && end + 4 == bytes.size(), what());
}

// 3: a complete head against the plain re-split.
void check_complete(std::string_view head, const http_request& r, const http_request_options& o) {
    FUZZ_CHECK(head.size() >= 4 && head.substr(head.size() - 4) == "\r\n\r\n");
    for (std::string_view v : {r.method, r.target, r.version}) FUZZ_CHECK(!v.empty() && inside(v, head));
    FUZZ_CHECK(inside(r.path, r.target) && inside(r.query, r.target));
    FUZZ_CHECK(r.target.size() <= o.max_target);
    FUZZ_CHECK(r.version.size() == 8 && r.version.substr(0, 7) == "HTTP/1.");
    FUZZ_CHECK(r.version_major == 1 && r.version_minor == r.version[7] - '0');
    const std::size_t max_headers = o.max_headers < http_request::capacity ? o.max_headers : http_request::capacity;
    FUZZ_CHECK(r.header_count() <= max_headers);

    std::size_t pos = 0;
    while (head.substr(pos, 2) == "\r\n") pos += 2; // leading empty lines
    std::size_t eol = head.find("\r\n", pos);
    const std::string_view request_line = head.substr(pos, eol - pos);
    FUZZ_CHECK(request_line == std::string(r.method) + " " + std::string(r.target) + " " + std::string(r.version));
    for (char c : r.method) FUZZ_CHECK(reference_tchar(c));
    pos = eol + 2;
    std::size_t k = 0;
    while ((eol = head.find("\r\n", pos)) != pos) {
        const std::string_view line = head.substr(pos, eol - pos);
        const std::size_t colon = line.find(':');
        FUZZ_CHECK(colon != std::string_view::npos && k < r.header_count());
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && ows(value.front())) value.remove_prefix(1);
        while (!value.empty() && ows(value.back())) value.remove_suffix(1);
        const http_header& h = r.begin()[k];
        FUZZ_CHECK_MSG(h.name == line.substr(0, colon) && h.value == value && inside(h.name, head) && inside(h.value, head),
                       "header " + std::to_string(k) + " \"" + escaped(h.name) + "\": \"" + escaped(h.value) +
                           "\", line \"" + escaped(line) + "\"");
        FUZZ_CHECK(!h.name.empty());
        for (char c : h.name) FUZZ_CHECK(reference_tchar(c));
        for (char c : h.value) {
            const auto u = static_cast<unsigned char>(c);
            FUZZ_CHECK(u == '\t' || (u >= 0x20 && u != 0x7F));
        }
        ++k;
        pos = eol + 2;
    }
    FUZZ_CHECK(k == r.header_count() && eol + 2 == head.size());

    // Lookups against a linear scan, for each name present (and one absent).
    for (const http_header& h : r) {
        std::size_t n = 0;
        std::string_view first;
        bool has_upgrade = false;
        for (const http_header& g : r)
            if (fold_equal(g.name, h.name)) {
                if (n++ == 0) first = g.value;
                has_upgrade = has_upgrade || reference_list_has(g.value, "upgrade");
            }
        FUZZ_CHECK(r.count(h.name) == n);
        FUZZ_CHECK(r.header(h.name) && r.header(h.name)->data() == first.data());
        std::size_t m = 0;
        for (const std::string_view v : r.values(h.name)) m += inside(v, head) ? 1 : 0;
        FUZZ_CHECK(m == n);
        FUZZ_CHECK(r.has_token(h.name, "upgrade") == has_upgrade);
    }
    FUZZ_CHECK(!r.header("X-Not-Sent-By-Anyone:") && r.count("") == 0);
}

// 4: the upgrade decision and its response.
void check_upgrade(const http_request& r, const upgrade_options& options) {
    const upgrade_result u = switchboard::websocket::validate_upgrade(r, options);
    trace::amend("upgrade: " + std::to_string(u.status) + " " + std::string(to_string(u.refusal)));
    FUZZ_CHECK(u.status == http_status_of(u.refusal));
    if (!u.accepted()) {
        check_response(u.response.view(), u.status, true);
        FUZZ_CHECK(u.subprotocol.empty() && !u.subprotocol_negotiated);
        return;
    }
    check_response(u.response.view(), 101, false);
    FUZZ_CHECK(r.method == "GET" && r.version_minor >= 1);
    const auto key = r.header("Sec-WebSocket-Key");
    FUZZ_CHECK(key && switchboard::websocket::is_valid_websocket_key(*key));
    const std::string accept = "Sec-WebSocket-Accept: " + switchboard::websocket::websocket_accept_key(*key) + "\r\n";
    FUZZ_CHECK(u.response.view().find(accept) != std::string_view::npos);
    FUZZ_CHECK((u.response.view().find("Sec-WebSocket-Protocol: ") != std::string_view::npos) ==
               u.subprotocol_negotiated);
    if (u.subprotocol_negotiated) {
        FUZZ_CHECK(u.subprotocol_index < options.subprotocols.size() &&
                   u.subprotocol == options.subprotocols[u.subprotocol_index]);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* input, std::size_t size) {
    const trace::scope trace_for_this_input;
    switchboard_fuzz::byte_reader in(input, size);
    http_request_options o;
    const std::uint8_t b0 = in.byte(), b1 = in.byte(), b2 = in.byte(), flags = in.byte();
    o.max_head_bytes = (b0 & 0x80u) ? 8192 : 1 + (b0 & 0x7Fu) * 8u;
    o.max_headers = b1 >= 250 ? 100000 : b1 % 70u;
    o.max_target = b2 >= 200 ? 2048 : b2 * 4u;
    o.require_host = (flags & 1u) != 0;
    upgrade_options u;
    u.allow_missing_origin = (flags & 2u) != 0;
    if (flags & 4u) u.allowed_origins = {"http://localhost:8080"};
    if (flags & 8u) u.default_subprotocol = "switchboard.line";
    if (flags & 16u) u.path.clear();
    if (flags & 32u) u.subprotocols.clear();
    std::vector<std::uint8_t> plan(in.byte() % 16u);
    for (std::uint8_t& p : plan) p = in.byte();
    const std::string_view data = in.take(in.remaining());
    trace::add("options: max_head_bytes " + std::to_string(o.max_head_bytes) + ", max_headers " +
               std::to_string(o.max_headers) + ", max_target " + std::to_string(o.max_target) + ", flags " +
               std::to_string(flags) + "; " + std::to_string(data.size()) + " bytes");

    // 1 and 2: whole, bounded, split.
    http_request whole_request;
    const http_parse_result whole = switchboard::protocol::parse_http_request(data, whole_request, o);
    trace::amend("whole: " + describe(whole));
    FUZZ_CHECK(whole.consumed <= data.size() && whole.consumed <= o.max_head_bytes);
    FUZZ_CHECK((whole.status == http_parse_status::error) == (whole.error != switchboard::protocol::http_parse_error::none));
    FUZZ_CHECK(whole.status == http_parse_status::complete || whole.consumed == 0);
    {
        const exact_copy bounded(data.substr(0, o.max_head_bytes));
        http_request r;
        const http_parse_result b = switchboard::protocol::parse_http_request(bounded.view(), r, o);
        FUZZ_CHECK_MSG(same_result(b, whole), "first max_head_bytes bytes: " + describe(b));
    }

    // Each call sees a fresh exact-size buffer (the old one freed): a view kept from an earlier
    // call, or a read past the bytes so far, is an ASan report.
    http_request_parser parser(o);
    http_request split_request;
    http_parse_result split;
    std::unique_ptr<exact_copy> buffer;
    std::size_t fed = 0, k = 0, idle = 0;
    for (;;) {
        std::size_t n = plan.empty() ? data.size() : plan[k++ % plan.size()];
        if (n == 0 && ++idle > plan.size()) n = data.size();
        else if (n != 0) idle = 0;
        fed += std::min(n, data.size() - fed);
        buffer = std::make_unique<exact_copy>(data.substr(0, fed));
        split = parser.parse(buffer->view(), split_request);
        trace::add("fed " + std::to_string(fed) + ": " + describe(split));
        if (split.status != http_parse_status::partial || fed == data.size()) break;
    }
    FUZZ_CHECK_MSG(same_result(split, whole), "split " + describe(split) + ", whole " + describe(whole));
    if (split.status == http_parse_status::complete)
        check_complete(buffer->view().substr(0, split.consumed), split_request, o);
    if (split.status != http_parse_status::partial) { // final: more bytes change nothing
        const exact_copy all(data);
        http_request again;
        FUZZ_CHECK(same_result(parser.parse(all.view(), again), whole));
        if (whole.status == http_parse_status::complete) check_complete(all.view().substr(0, whole.consumed), again, o);
    }

    // 4: the response to send.
    if (whole.status == http_parse_status::complete) {
        check_complete(data.substr(0, whole.consumed), whole_request, o);
        trace::add("validate_upgrade");
        check_upgrade(whole_request, u);
    } else if (whole.status == http_parse_status::error) {
        check_response(switchboard::protocol::http_error_response(whole.error).view(), whole.http_status(), true);
    }

    // The list helper on arbitrary bytes.
    const std::string_view sample = data.substr(0, 64);
    FUZZ_CHECK(switchboard::protocol::list_contains_token(sample, "upgrade") == reference_list_has(sample, "upgrade"));
    return 0;
}
