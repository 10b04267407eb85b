// cluster_format_fuzz: libFuzzer target for the bytes nodes of a cluster exchange
// (cluster_format.hpp; issue #14): decode_cluster_event() must never trust its input, and what it
// accepts must reach a session as exactly one event.
//
// Input: any bytes, used twice.
//   1. As a cluster-format encoding: decode_cluster_event() must agree with a reference decoder
//      written here (accept / refuse, every field); an accepted input re-encodes to exactly the
//      same bytes (the encoding is canonical) and its views lie inside the input; every strict
//      prefix is refused. An accepted event is then handed to router::relay() for a room with a
//      line-protocol member and to the line encoder directly: each gives that member at most one
//      LF-terminated line (or nothing), never a second, forged one.
//   2. As the fields of an event (kind, code, queued, seq, last_seen from the first 19 bytes, the
//      rest cut into room, user and text at two points the input picks): encode, then decode, must
//      give back every field.
//
// Built by scripts/fuzz (libFuzzer, clang) and replayed from tests/fuzz/corpus/cluster_format_fuzz/
// by CTest (cluster_format_fuzz_replay).
#include "fuzz_support.hpp"

#include <switchboard/cluster_format.hpp>
#include <switchboard/in_memory_transport.hpp>
#include <switchboard/protocol/line.hpp>
#include <switchboard/router.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

using switchboard::cluster_format;
using switchboard::decode_cluster_event;
using switchboard::event;
using switchboard::event_kind;
using switchboard::status;
using switchboard_fuzz::escaped;

namespace {

std::uint64_t le(std::string_view b, std::size_t at, std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t{static_cast<unsigned char>(b[at + i])} << (8 * i);
    return v;
}

// The layout read independently of the library: every field, or nothing.
std::optional<event> reference_decode(std::string_view b) {
    if (b.size() < 31) return std::nullopt;
    const unsigned kind = static_cast<unsigned char>(b[0]), code = static_cast<unsigned char>(b[1]),
                   queued = static_cast<unsigned char>(b[2]);
    if (kind > static_cast<unsigned>(event_kind::session_closed) || code > static_cast<unsigned>(status::pending) ||
        queued > 1)
        return std::nullopt;
    event e;
    e.kind = static_cast<event_kind>(kind);
    e.code = static_cast<status>(code);
    e.queued = queued == 1;
    e.seq = le(b, 3, 8);
    e.last_seen = static_cast<std::int64_t>(le(b, 11, 8));
    std::size_t at = 19;
    std::string_view* parts[] = {&e.room, &e.user, &e.text};
    for (std::string_view* part : parts) {
        if (b.size() < at + 4) return std::nullopt;
        const std::uint64_t n = le(b, at, 4);
        at += 4;
        if (n > b.size() - at) return std::nullopt;
        *part = b.substr(at, static_cast<std::size_t>(n));
        at += static_cast<std::size_t>(n);
    }
    if (at != b.size()) return std::nullopt;
    return e;
}

bool same(const event& a, const event& b) {
    return a.kind == b.kind && a.code == b.code && a.queued == b.queued && a.seq == b.seq &&
           a.last_seen == b.last_seen && a.room == b.room && a.user == b.user && a.text == b.text;
}

bool inside(std::string_view part, std::string_view whole) {
    return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

// At most one line, LF-terminated, no other LF.
bool one_line_or_nothing(const std::string& bytes) {
    if (bytes.empty()) return true;
    return bytes.back() == '\n' && bytes.find('\n') == bytes.size() - 1;
}

void check_decode(std::string_view b) {
    event e;
    const bool ok = decode_cluster_event(b, e);
    const std::optional<event> ref = reference_decode(b);
    FUZZ_CHECK_MSG(ok == ref.has_value(), "decode " + std::to_string(ok) + " for " + escaped(b));
    if (!ok) return;
    FUZZ_CHECK(same(e, *ref));
    FUZZ_CHECK(inside(e.room, b) && inside(e.user, b) && inside(e.text, b));
    FUZZ_CHECK_MSG(cluster_format::instance().encode(e).view() == b, "not canonical: " + escaped(b));
    event scratch;
    for (std::size_t cut = 0; cut < b.size(); cut += 1 + b.size() / 16)
        FUZZ_CHECK_MSG(!decode_cluster_event(b.substr(0, cut), scratch), "a prefix decoded: " + std::to_string(cut));

    // What a node does with it: relay a room event, or encode it for one session.
    switchboard::router r;
    switchboard::in_memory_transport t;
    const switchboard::session_id s = r.open_session(t, switchboard::protocol::line_event_encoder::instance());
    if (r.register_name(s, "member") != status::ok || r.join(s, *switchboard::name::parse("lobby")) != status::ok)
        FUZZ_CHECK(false);
    (void)t.take_bytes();
    const switchboard::route_result rr = r.relay(*switchboard::name::parse("lobby"), e);
    const std::string relayed = t.take_bytes();
    FUZZ_CHECK_MSG(one_line_or_nothing(relayed), "relay wrote " + escaped(relayed));
    FUZZ_CHECK(rr.ok() == !relayed.empty());
    const std::string direct(switchboard::protocol::line_event_encoder::instance().encode(e).view());
    FUZZ_CHECK_MSG(one_line_or_nothing(direct), "line encoder wrote " + escaped(direct));
    (void)r.close_session(s);
}

void check_round_trip(std::string_view b) {
    if (b.size() < 21) return;
    event e;
    e.kind = static_cast<event_kind>(static_cast<unsigned char>(b[0]) % (static_cast<unsigned>(switchboard::detail::last_event_kind) + 1));
    e.code = static_cast<status>(static_cast<unsigned char>(b[1]) % (static_cast<unsigned>(switchboard::detail::last_status) + 1));
    e.queued = (b[2] & 1) != 0;
    e.seq = le(b, 3, 8);
    e.last_seen = static_cast<std::int64_t>(le(b, 11, 8));
    std::string_view rest = b.substr(21);
    const std::size_t cut1 = rest.empty() ? 0 : static_cast<unsigned char>(b[19]) % (rest.size() + 1);
    e.room = rest.substr(0, cut1);
    rest.remove_prefix(cut1);
    const std::size_t cut2 = rest.empty() ? 0 : static_cast<unsigned char>(b[20]) % (rest.size() + 1);
    e.user = rest.substr(0, cut2);
    e.text = rest.substr(cut2);
    const switchboard::payload p = cluster_format::instance().encode(e);
    event back;
    FUZZ_CHECK(decode_cluster_event(p.view(), back));
    FUZZ_CHECK(same(e, back));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view b(reinterpret_cast<const char*>(data), size);
    check_decode(b);
    check_round_trip(b);
    return 0;
}
