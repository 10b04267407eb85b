// websocket_json_fuzz: libFuzzer target for parse_json_command() (websocket/json_format.hpp), the
// parser of what a browser sends over `switchboard.json`: simdjson's On-Demand reader, with
// nlohmann's SAX reader deciding whatever simdjson refuses.
//
// Input: byte 0 picks the nesting bound (`max_depth` 0..47: below, at and above the default 16
// and the fast reader's own 32), byte 1 a cut point; the rest is cut there into two messages A
// and B (B empty when the cut is past the end).
//   1. A is parsed by parse_json_command() and by the nlohmann-only reference
//      (detail::parse_json_command_reference()) on fresh buffers: the commands must be equal field
//      for field (invalid-json or not, kind, usage error, target, text, id, stop, word), so the
//      fast reader accepts exactly the JSON nlohmann accepts and reads the same fields.
//   2. B is then parsed with A's buffer (reused, as a session reuses it) and compared with the
//      reference on a fresh buffer: nothing of A leaks into B.
//   3. A's views point into the buffer, not into the message (they outlive it).
//   4. A is parsed again in place, followed by `json_read_padding` bytes of B (repeated; '9' when
//      B is empty), as the WebSocket decoder hands a message with whatever its buffer holds after
//      it: the command must be the reference's again (the padding is never read as input).
//   5. A is parsed as json_session parses it (string fields without escapes left as views into
//      the message; in place and copied) and with its UTF-8 not yet checked (as a single-frame
//      WebSocket message is, since simdjson's stage 1 checks it): "not UTF-8" must be reported
//      exactly when protocol::is_valid_utf8() refuses A, and otherwise the command must be the
//      reference's.
//   6. A, B, A, then B again laid out as one batch (detail::json_batch: one simdjson stage 1 for
//      several messages, as websocket_protocol reads the whole frames of one read) and read in
//      order with a session's buffer: each message the batch decides must give the reference's
//      command (and be UTF-8); once it decides one not, the rest are read alone (nothing to
//      compare). Also A then B alone, and B then A: a message never changes how the other is
//      read, whichever comes first.
//
// Built by scripts/fuzz (libFuzzer, clang) and replayed from
// tests/fuzz/corpus/websocket_json_fuzz/ by CTest (websocket_json_fuzz_replay).
#include "fuzz_support.hpp"

#include <switchboard/websocket/json_format.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>

using switchboard::protocol::command;
using switchboard::websocket::json_command_buffer;
using switchboard::websocket::parse_json_command;
using switchboard::websocket::detail::json_batch;
using switchboard::websocket::detail::json_command_access;
using switchboard::websocket::detail::parse_json_command_reference;
using switchboard_fuzz::escaped;

namespace {

std::string describe(const command& c) {
    return "malformed=" + std::string(c.malformed) + " kind=" + std::to_string(static_cast<int>(c.kind)) +
           " usage=" + std::to_string(c.usage_error) + " target=" + escaped(c.target) + " text=" + escaped(c.text) +
           " id=" + escaped(c.id) + " stop=" + std::to_string(c.stop) + " word=" + escaped(c.word);
}

bool same(const command& a, const command& b) {
    return a.malformed == b.malformed && a.kind == b.kind && a.usage_error == b.usage_error && a.target == b.target &&
           a.text == b.text && a.id == b.id && a.stop == b.stop && a.word == b.word;
}

bool outside(std::string_view view, std::string_view message) {
    if (view.empty()) return true;
    const auto* p = view.data();
    return p + view.size() <= message.data() || p >= message.data() + message.size();
}

void check_same(std::string_view message, std::size_t depth, const command& fast) {
    json_command_buffer ref_buffer;
    const command ref = parse_json_command_reference(message, ref_buffer, depth);
    FUZZ_CHECK_MSG(same(fast, ref), "depth " + std::to_string(depth) + " message " + escaped(message) +
                                        "\n  fast:      " + describe(fast) + "\n  reference: " + describe(ref));
}

// Step 6: `messages` read as one batch; each message the batch decides is the reference's.
void check_batch(std::initializer_list<std::string_view> messages, std::size_t depth) {
    json_batch batch;
    FUZZ_CHECK(batch.usable());
    for (const std::string_view m : messages) {
        char* const out = batch.add(m.size());
        if (out == nullptr) return; // past the batch's bounds: websocket_protocol reads alone
        if (!m.empty()) std::memcpy(out, m.data(), m.size());
    }
    if (!batch.parse()) return;
    json_command_buffer buffer; // a session's: reused from message to message
    for (const std::string_view m : messages) {
        if (!batch.next(buffer, depth)) return;
        FUZZ_CHECK_MSG(switchboard::protocol::is_valid_utf8(m), "batch decided a message that is not UTF-8: " + escaped(m));
        check_same(m, depth, json_command_access::command_of(buffer));
    }
    FUZZ_CHECK(!batch.next(buffer, depth)); // nothing past the last message
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    switchboard_fuzz::trace::scope scope;
    if (size < 2) return 0;
    const std::size_t depth = data[0] % 48;
    const std::string input(reinterpret_cast<const char*>(data) + 2, size - 2);
    const std::size_t cut = data[1] < input.size() ? data[1] : input.size();
    const std::string a = input.substr(0, cut), b = input.substr(cut);
    switchboard_fuzz::trace::add("depth " + std::to_string(depth) + " A " + escaped(a) + " B " + escaped(b));

    json_command_buffer buffer;
    const command ca = parse_json_command(a, buffer, depth);
    check_same(a, depth, ca);
    FUZZ_CHECK(outside(ca.target, a) && outside(ca.text, a) && outside(ca.id, a) && outside(ca.word, a));

    const command cb = parse_json_command(b, buffer, depth);
    check_same(b, depth, cb);

    std::string in_place = a;
    const std::string_view tail = b.empty() ? std::string_view("9") : std::string_view(b);
    while (in_place.size() < a.size() + switchboard::websocket::json_read_padding) in_place += tail;
    const command cp = parse_json_command(std::string_view(in_place.data(), a.size()), buffer, depth, in_place.size());
    check_same(a, depth, cp);

    const bool utf8 = switchboard::protocol::is_valid_utf8(a);
    for (const std::size_t readable : {std::size_t{0}, in_place.size()}) {
        const std::string_view message = readable == 0 ? std::string_view(a) : std::string_view(in_place.data(), a.size());
        const command cv = json_command_access::parse(message, buffer, depth, json_command_access::reader::fast,
                                                      readable, true);
        check_same(a, depth, cv);
        bool not_utf8 = false;
        const command cu = json_command_access::parse(message, buffer, depth, json_command_access::reader::fast,
                                                      readable, true, &not_utf8);
        FUZZ_CHECK_MSG(not_utf8 == !utf8, "UTF-8 of " + escaped(a) + ": not_utf8 " + std::to_string(not_utf8));
        if (utf8) check_same(a, depth, cu);
    }

    check_batch({a, b, a, b}, depth);
    check_batch({a, b}, depth);
    check_batch({b, a}, depth);
    return 0;
}
