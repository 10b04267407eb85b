// websocket_frame_fuzz: libFuzzer target for the WebSocket frame codec (protocol/websocket_frame.hpp)
// and the incremental UTF-8 validator under it (protocol/utf8_validator.hpp).
//
// 1. The stream is decoded three ways: in one feed(), in chunks whose sizes come from the input
//    (the handler returning false after some messages, the caller then feeding the rest), and one
//    byte at a time. All three must deliver the same messages and end the same way (need-more,
//    closed, or failed with the same error); buffered() <= max_message + 14 + 125 and capacity()
//    <= max_message after every feed.
// 2. A reference decoder written here (plain, whole-buffer, RFC 6455 section 5 read literally)
//    must agree on every message and on the error.
// 3. Every delivery obeys the contract: text is valid UTF-8 (checked against a byte-by-byte table),
//    messages fit max_message, control payloads 125 bytes, close codes are valid or 1005, reasons
//    UTF-8. Each is encoded back as a server frame (encode_websocket_frame / _pong / _close) and
//    decoded by a client-role decoder, which must give it back unchanged.
// 4. With `defer_single_frame_utf8` (what a switchboard.json connection uses), decoded whole and
//    byte by byte: only text messages may be flagged `utf8_unchecked`; with the receiver's check
//    added (a flagged message that is not UTF-8 fails with invalid_utf8 there), the outcome is
//    the default decoder's, except that an unfinished single frame whose bytes already cannot be
//    UTF-8 is noticed when it is complete, not before (the default fails, this one needs more).
//
// Input format (any byte string is valid):
//   byte 0        max_message = (b & 0x7F) << (b & 0x80 ? 9 : 0): 0..127, or 0..65024 by 512
//   byte 1        flags: bit 0 client role (the stream holds server frames: unmasked);
//                 bit 1 structured stream (below)
//   byte 2        n = byte % 16: number of chunk-plan bytes that follow
//   n bytes       the chunk plan, used cyclically: size = (p & 0x3F) << 2 * (p >> 6)
//                 (0 = an empty feed)
//   1 byte        stop mask: the handler returns false for delivery i when bit (i % 8) is set
//   4 bytes       masking key (structured stream)
//   the rest      raw: the byte stream itself. Structured: records [b0][b1][payload], each made
//                 into a frame with first byte b0, b1 & 0x7F payload bytes (fewer at the end),
//                 the length in 16 bits when b1 & 0x80 (non-minimal below 126), masked with the
//                 key in the server role.
// Built with -fsanitize=fuzzer (SWITCHBOARD_BUILD_FUZZ, scripts/fuzz), or with replay_main.cpp
// as websocket_frame_fuzz_replay, which replays tests/fuzz/corpus/websocket_frame_fuzz/ under CTest.
#include "fuzz_support.hpp"

#include <switchboard/protocol/utf8_validator.hpp>
#include <switchboard/protocol/websocket_frame.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

using switchboard::payload;
using switchboard::protocol::websocket_close_code;
using switchboard::protocol::websocket_decode_result;
using switchboard::protocol::websocket_decode_status;
using switchboard::protocol::websocket_decoder;
using switchboard::protocol::websocket_decoder_options;
using switchboard::protocol::websocket_error;
using switchboard::protocol::websocket_message;
using switchboard::protocol::websocket_opcode;
using switchboard::protocol::websocket_role;
using switchboard_fuzz::escaped;
using switchboard_fuzz::reference_valid_utf8;
using switchboard_fuzz::trace;

// One delivery, owned.
struct delivery {
    websocket_opcode opcode;
    std::string data;
    unsigned code;
    bool operator==(const delivery& o) const { return opcode == o.opcode && data == o.data && code == o.code; }
};

struct outcome {
    std::vector<delivery> got;
    websocket_decode_status status = websocket_decode_status::need_more; // need_more, closed, failed
    websocket_error error = websocket_error::none;
    std::size_t consumed = 0;
};

std::string show(const outcome& o) {
    std::string s = std::to_string(o.got.size()) + " deliveries, " + std::string(to_string(o.status)) + " " +
                    std::string(to_string(o.error)) + ", consumed " + std::to_string(o.consumed);
    if (!o.got.empty()) {
        const delivery& d = o.got.back();
        s += "; last " + std::string(to_string(d.opcode)) + " \"" + escaped(d.data.substr(0, 40)) + "\"";
    }
    return s;
}

delivery record(const websocket_message& m) {
    return {m.opcode, std::string(m.data), m.opcode == websocket_opcode::close ? static_cast<unsigned>(m.code) : 0};
}

// ---- the reference decoder --------------------------------------------------------------------------

// True when some continuation could make `s` valid UTF-8: the next missing byte of a cut sequence
// is 80, 90 or A0 at best (E0 wants A0.., F0 90.., ED and F4 ..8F / ..9F), the rest 80.
bool reference_utf8_prefix(const std::string& s) {
    if (reference_valid_utf8(s)) return true;
    for (std::size_t missing = 1; missing <= 3; ++missing)
        for (const char first : {'\x80', '\x90', '\xA0'})
            if (reference_valid_utf8(s + first + std::string(missing - 1, '\x80'))) return true;
    return false;
}

// RFC 6455 section 5 on the whole stream at once: the same rules in the order the decoder
// documents, each applied as soon as the bytes it needs are present.
outcome reference_decode(std::string_view data, std::size_t max_message, bool server) {
    outcome out;
    const auto fail = [&](websocket_error e) {
        out.status = websocket_decode_status::failed;
        out.error = e;
        return out;
    };
    const auto need_more = [&] { // the decoder holds the rest: all of it is consumed
        out.consumed = data.size();
        return out;
    };
    std::size_t pos = 0;
    bool in_message = false;
    unsigned message_op = 0;
    std::string message;
    while (pos < data.size()) {
        const auto* h = reinterpret_cast<const unsigned char*>(data.data() + pos);
        const std::size_t avail = data.size() - pos;
        const bool fin = (h[0] & 0x80) != 0;
        const unsigned op = h[0] & 0x0F;
        const bool control = op >= 8;
        if ((h[0] & 0x70) != 0) return fail(websocket_error::reserved_bits);
        if (!(op <= 2 || (op >= 8 && op <= 10))) return fail(websocket_error::reserved_opcode);
        if (control && !fin) return fail(websocket_error::fragmented_control);
        if (op == 0 && !in_message) return fail(websocket_error::unexpected_continuation);
        if ((op == 1 || op == 2) && in_message) return fail(websocket_error::expected_continuation);
        if (avail < 2) return need_more();
        const bool masked = (h[1] & 0x80) != 0;
        if (masked != server) return fail(server ? websocket_error::unmasked_frame : websocket_error::masked_frame);
        const unsigned len7 = h[1] & 0x7F;
        if (control && len7 > 125) return fail(websocket_error::control_too_long);
        const std::size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
        if (ext == 8 && avail >= 3 && (h[2] & 0x80) != 0) return fail(websocket_error::length_high_bit);
        if (avail < 2 + ext) return need_more();
        std::uint64_t len = ext == 0 ? len7 : 0;
        for (std::size_t k = 0; k < ext; ++k) len = len * 256 + h[2 + k];
        if ((ext == 2 && len < 126) || (ext == 8 && len < 65536)) return fail(websocket_error::non_minimal_length);
        const std::size_t before = op == 0 ? message.size() : 0;
        if (!control && len > max_message - before) return fail(websocket_error::message_too_big);
        const std::size_t header = 2 + ext + (masked ? 4 : 0);
        if (avail < header) return need_more();
        const std::size_t got = static_cast<std::size_t>(std::min<std::uint64_t>(len, avail - header));
        std::string body(data.substr(pos + header, got));
        if (masked)
            for (std::size_t i = 0; i < body.size(); ++i)
                body[i] = static_cast<char>(body[i] ^ static_cast<char>(h[2 + ext + i % 4]));
        if (!control) {
            const unsigned kind = op == 0 ? message_op : op;
            std::string joined = (op == 0 ? message : std::string()) + body;
            if (kind == 1 && !reference_utf8_prefix(joined)) return fail(websocket_error::invalid_utf8);
            if (got < len) return need_more();
            message = std::move(joined);
            message_op = kind;
            in_message = true;
            if (fin) {
                if (kind == 1 && !reference_valid_utf8(message)) return fail(websocket_error::invalid_utf8);
                out.got.push_back({static_cast<websocket_opcode>(kind), message, 0});
                message.clear();
                in_message = false;
            }
        } else {
            if (got < len) return need_more();
            if (op == 8) {
                unsigned code = 1005;
                if (body.size() == 1) return fail(websocket_error::bad_close_payload);
                if (body.size() >= 2) {
                    code = static_cast<unsigned char>(body[0]) * 256u + static_cast<unsigned char>(body[1]);
                    const bool known = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                                       (code >= 3000 && code <= 4999);
                    if (!known) return fail(websocket_error::invalid_close_code);
                    body.erase(0, 2);
                    if (!reference_valid_utf8(body)) return fail(websocket_error::invalid_close_reason);
                }
                out.got.push_back({websocket_opcode::close, body, code});
                out.status = websocket_decode_status::closed;
                out.consumed = pos + header + got;
                return out;
            }
            out.got.push_back({static_cast<websocket_opcode>(op), body, 0});
        }
        pos += header + got;
    }
    out.consumed = pos;
    return out;
}

// ---- the decoder, three ways ------------------------------------------------------------------------

struct setup {
    websocket_decoder_options options;
    std::vector<std::uint8_t> plan;
    std::uint8_t stop_mask = 0;
};

void check_bounds(const websocket_decoder& d, const websocket_decoder_options& o) {
    FUZZ_CHECK_MSG(d.buffered() <= o.max_message + 14 + 125, "buffered() " + std::to_string(d.buffered()));
    FUZZ_CHECK_MSG(d.capacity() <= o.max_message, "capacity() " + std::to_string(d.capacity()));
}

// Feeds the chunks (plan empty: one chunk; plan {1}: bytes one at a time); the handler stops after
// the deliveries the stop mask selects, and the caller feeds the rest of the chunk again.
outcome decode_planned(std::string_view data, const setup& s, const std::vector<std::uint8_t>& plan, bool may_stop) {
    websocket_decoder d(s.options);
    outcome out;
    std::size_t index = 0, pos = 0, k = 0, idle = 0;
    bool stopped = false; // the handler returned false during the current feed()
    const auto handler = [&](const websocket_message& m) {
        FUZZ_CHECK_MSG(!stopped, "a delivery after the handler asked to stop");
        out.got.push_back(record(m));
        stopped = may_stop && ((s.stop_mask >> (index++ % 8)) & 1u);
        return !stopped;
    };
    while (pos < data.size()) {
        std::size_t size = data.size() - pos;
        if (!plan.empty()) {
            const std::uint8_t p = plan[k++ % plan.size()];
            size = static_cast<std::size_t>(p & 0x3Fu) << (2 * (p >> 6));
            if (size == 0 && ++idle > plan.size()) size = data.size() - pos; // a plan of zeros only
            else if (size != 0) idle = 0;
            size = std::min(size, data.size() - pos);
        }
        std::string_view chunk = data.substr(pos, size);
        for (;;) {
            stopped = false;
            const websocket_decode_result r = d.feed(chunk, handler);
            check_bounds(d, s.options);
            // A stop is honoured at once (a close ends the stream anyway).
            FUZZ_CHECK(!stopped || r.status == websocket_decode_status::paused ||
                       r.status == websocket_decode_status::closed);
            FUZZ_CHECK(r.consumed <= chunk.size());
            pos += r.consumed;
            chunk.remove_prefix(r.consumed);
            if (r.status == websocket_decode_status::paused) {
                FUZZ_CHECK(stopped);
                if (!chunk.empty()) continue;
                break;
            }
            if (r.status == websocket_decode_status::need_more) {
                FUZZ_CHECK(chunk.empty());
                break;
            }
            out.status = r.status;
            out.error = r.error;
            FUZZ_CHECK(r.failed() == (r.error != websocket_error::none));
            FUZZ_CHECK(r.failed() == d.failed() && (r.status == websocket_decode_status::closed) == d.closed());
            // Terminal: nothing more is read, the same answer again.
            const websocket_decode_result again = d.feed(data.substr(pos), handler);
            FUZZ_CHECK(again.consumed == 0 && again.status == r.status && again.error == r.error);
            out.consumed = pos;
            return out;
        }
    }
    out.consumed = pos;
    return out;
}

// ---- the contract of each delivery, and the way back ------------------------------------------------

void check_delivery(const delivery& m, const websocket_decoder_options& o) {
    switch (m.opcode) {
    case websocket_opcode::text:
        FUZZ_CHECK_MSG(reference_valid_utf8(m.data), "a text message that is not UTF-8: \"" + escaped(m.data) + "\"");
        [[fallthrough]];
    case websocket_opcode::binary: FUZZ_CHECK(m.data.size() <= o.max_message); break;
    case websocket_opcode::ping:
    case websocket_opcode::pong: FUZZ_CHECK(m.data.size() <= 125); break;
    case websocket_opcode::close:
        FUZZ_CHECK(m.data.size() <= 123 && reference_valid_utf8(m.data));
        FUZZ_CHECK(m.code == 1005 ? m.data.empty() : switchboard::protocol::is_valid_close_code(
                                                         static_cast<std::uint16_t>(m.code)));
        break;
    default: FUZZ_CHECK_MSG(false, "delivered opcode " + std::string(to_string(m.opcode)));
    }

    // Encode it as the server would answer or relay it, read it back as a client.
    payload frame;
    delivery want = m;
    if (m.opcode == websocket_opcode::close) {
        frame = switchboard::protocol::encode_websocket_close(static_cast<websocket_close_code>(m.code), m.data);
        if (m.code == 1005) want.data.clear();
    } else if (m.opcode == websocket_opcode::ping) {
        frame = switchboard::protocol::encode_websocket_pong(m.data);
        want.opcode = websocket_opcode::pong;
    } else {
        frame = switchboard::protocol::encode_websocket_frame(m.opcode, m.data);
    }
    const std::size_t body = want.data.size() + (m.opcode == websocket_opcode::close && m.code != 1005 ? 2 : 0);
    FUZZ_CHECK(frame.size() == switchboard::protocol::websocket_header_size(body) + body);
    websocket_decoder_options client = o;
    client.role = websocket_role::client;
    websocket_decoder d(client);
    std::vector<delivery> back;
    const websocket_decode_result r = d.feed(frame.view(), [&](const websocket_message& x) { back.push_back(record(x)); });
    FUZZ_CHECK_MSG(!r.failed(), "a server frame fails in the client role: " + std::string(r.reason()));
    FUZZ_CHECK(r.consumed == frame.size());
    FUZZ_CHECK_MSG(back.size() == 1 && back[0] == want, "the encoded " + std::string(to_string(m.opcode)) +
                                                            " does not decode to itself");
}

// Structured stream: records [b0][b1][payload] made into frames (see the file comment).
std::string build_frames(std::string_view records, const unsigned char (&key)[4], bool server) {
    std::string out;
    std::size_t pos = 0;
    while (pos < records.size()) {
        const auto b0 = static_cast<unsigned char>(records[pos++]);
        const auto b1 = pos < records.size() ? static_cast<unsigned char>(records[pos++]) : 0u;
        const std::string_view body = records.substr(pos, b1 & 0x7Fu);
        pos += body.size();
        out += static_cast<char>(b0);
        const unsigned mask_bit = server ? 0x80u : 0u;
        if ((b1 & 0x80u) != 0 || body.size() > 125) {
            out += static_cast<char>(mask_bit | 126u);
            out += '\0';
            out += static_cast<char>(body.size());
        } else {
            out += static_cast<char>(mask_bit | body.size());
        }
        if (server) out.append(reinterpret_cast<const char*>(key), 4);
        for (std::size_t i = 0; i < body.size(); ++i)
            out += server ? static_cast<char>(body[i] ^ static_cast<char>(key[i % 4])) : body[i];
    }
    return out;
}

// Section 4 of the file comment: the decoder with defer_single_frame_utf8, and the receiver's check.
outcome decode_deferred(std::string_view data, websocket_decoder_options o, std::size_t chunk) {
    o.defer_single_frame_utf8 = true;
    websocket_decoder d(o);
    outcome out;
    bool refused = false; // the receiver found a flagged message that is not UTF-8
    std::size_t pos = 0;
    while (pos < data.size()) {
        const std::string_view piece = data.substr(pos, chunk == 0 ? data.size() - pos : chunk);
        const websocket_decode_result r = d.feed(piece, [&](const websocket_message& m) {
            FUZZ_CHECK(!m.utf8_unchecked || m.opcode == websocket_opcode::text);
            if (m.utf8_unchecked && !reference_valid_utf8(m.data)) {
                refused = true;
                return false;
            }
            out.got.push_back(record(m));
            return true;
        });
        pos += r.consumed;
        if (refused) {
            out.status = websocket_decode_status::failed;
            out.error = websocket_error::invalid_utf8;
            break;
        }
        if (r.status != websocket_decode_status::need_more) {
            out.status = r.status;
            out.error = r.error;
            break;
        }
    }
    out.consumed = pos;
    return out;
}

void require_same(const outcome& a, const outcome& b, const char* what) {
    const bool same = a.got == b.got && a.status == b.status && a.error == b.error &&
                      (a.status == websocket_decode_status::failed || a.consumed == b.consumed);
    FUZZ_CHECK_MSG(same, std::string(what) + ": " + show(a) + " / " + show(b));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    trace::scope scope;
    switchboard_fuzz::byte_reader in(bytes, size);
    setup s;
    const std::uint8_t m = in.byte();
    s.options.max_message = static_cast<std::size_t>(m & 0x7Fu) << ((m & 0x80u) ? 9 : 0);
    const std::uint8_t flags = in.byte();
    s.options.role = (flags & 1u) ? websocket_role::client : websocket_role::server;
    const bool server = s.options.role == websocket_role::server;
    const std::size_t n = in.byte() % 16u;
    for (std::size_t i = 0; i < n; ++i) s.plan.push_back(in.byte());
    s.stop_mask = in.byte();
    unsigned char key[4];
    for (unsigned char& k : key) k = in.byte();
    const std::string_view rest = in.take(in.remaining());
    const std::string data = (flags & 2u) ? build_frames(rest, key, server) : std::string(rest);
    trace::add("max_message " + std::to_string(s.options.max_message) + (server ? ", server" : ", client") +
               ", " + std::to_string(data.size()) + " bytes: \"" + escaped(data.substr(0, 64)) + "\"");

    const outcome whole = decode_planned(data, s, {}, false);
    trace::amend("whole: " + show(whole));
    const outcome planned = decode_planned(data, s, s.plan, true);
    require_same(whole, planned, "whole / planned chunks with pauses");
    const outcome bytewise = decode_planned(data, s, {1}, false);
    require_same(whole, bytewise, "whole / byte at a time");
    const outcome reference = reference_decode(data, s.options.max_message, server);
    require_same(whole, reference, "decoder / reference");
    for (const delivery& d : whole.got) check_delivery(d, s.options);
    for (const std::size_t chunk : {std::size_t{0}, std::size_t{1}}) {
        const outcome deferred = decode_deferred(data, s.options, chunk);
        if (whole.error == websocket_error::invalid_utf8 && deferred.status == websocket_decode_status::need_more)
            FUZZ_CHECK_MSG(deferred.got == whole.got, "deferred, cut in a frame: " + show(deferred));
        else
            require_same(whole, deferred, chunk == 0 ? "whole / deferred UTF-8 check" : "whole / deferred, byte at a time");
    }

    // The validator alone, on the raw bytes cut at every plan point: same verdict as in one piece.
    switchboard::protocol::utf8_validator v;
    std::size_t pos = 0, k = 0;
    while (pos < data.size()) {
        const std::size_t step = s.plan.empty() ? data.size() : std::max<std::size_t>(1, s.plan[k++ % s.plan.size()] & 0x3Fu);
        v.feed(std::string_view(data).substr(pos, step));
        pos += step;
    }
    FUZZ_CHECK((v.valid_prefix() && v.complete()) == reference_valid_utf8(data));
    FUZZ_CHECK(v.valid_prefix() == reference_utf8_prefix(data));
    return 0;
}
