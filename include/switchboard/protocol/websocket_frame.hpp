/// @file
/// @brief The WebSocket frame codec (RFC 6455 section 5), sans-I/O, server side: client frames
/// in -> whole messages, pings, pongs and a close; server frames out as `payload`s.
///
/// - `websocket_decoder` reads the frames a client sends (masked, section 5.3), joins fragments
///   (section 5.4), checks every rule of sections 5.2-5.6 and 7.4 and reports the first broken
///   one as a `websocket_error` carrying the close code to send (1002, 1007 or 1009).
/// - `websocket_header_size()`, `write_websocket_header()` and the `encode_websocket_*()`
///   builders write the frames a server sends: unmasked (section 5.1), so one payload holds the
///   same bytes for every recipient and a room's fan-out shares it (see `payload`).
///
/// The codec knows no socket, handshake, clock or thread; the HTTP upgrade and the connection
/// engine are elsewhere. No exceptions for bad input: only buffering may throw `std::bad_alloc`.
#pragma once

#include "../config.hpp"
#include "../payload.hpp"
#include "../text.hpp" // SWITCHBOARD_TEXT_SSE2
#include "utf8_validator.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <type_traits>

namespace switchboard::protocol {

// ---- vocabulary -----------------------------------------------------------------------------------

/// @brief The frame opcodes RFC 6455 defines (section 5.2); the others (0x3-0x7, 0xB-0xF) are
/// reserved and refused by the decoder.
enum class websocket_opcode : std::uint8_t {
    continuation = 0x0, ///< a later fragment of a text or binary message
    text = 0x1,         ///< a text message (UTF-8), or its first fragment
    binary = 0x2,       ///< a binary message, or its first fragment
    close = 0x8,        ///< control: the closing handshake (section 5.5.1)
    ping = 0x9,         ///< control: asks for a pong with the same payload (section 5.5.2)
    pong = 0xA,         ///< control: answers a ping, or a unidirectional heartbeat (section 5.5.3)
};

/// @brief The opcode's name: `"continuation"`, `"text"`, `"binary"`, `"close"`, `"ping"`,
/// `"pong"`; `"reserved"` for any other value.
/// @note Thread-safe (pure function).
[[nodiscard]] constexpr std::string_view to_string(websocket_opcode op) noexcept {
    switch (op) {
    case websocket_opcode::continuation: return "continuation";
    case websocket_opcode::text: return "text";
    case websocket_opcode::binary: return "binary";
    case websocket_opcode::close: return "close";
    case websocket_opcode::ping: return "ping";
    case websocket_opcode::pong: return "pong";
    }
    return "reserved";
}

/// @brief True for control opcodes (high bit of the opcode set: close, ping, pong and the
/// reserved 0xB-0xF), which may not be fragmented and carry at most 125 bytes (section 5.5).
/// @note Thread-safe (pure function).
[[nodiscard]] constexpr bool is_control(websocket_opcode op) noexcept {
    return (static_cast<std::uint8_t>(op) & 0x8u) != 0;
}

/// @brief The close status codes switchboard names (RFC 6455 section 7.4.1).
///
/// The underlying type is the 16-bit code, so a code a client sent that has no name here (for
/// example 3000-4999, section 7.4.2) is carried as `static_cast<websocket_close_code>(n)`.
enum class websocket_close_code : std::uint16_t {
    normal = 1000,           ///< the purpose of the connection is fulfilled
    going_away = 1001,       ///< the server shuts down, or the browser leaves the page
    protocol_error = 1002,   ///< a frame broke RFC 6455 (every `websocket_error` but three)
    unsupported_data = 1003, ///< a message of a type the endpoint does not accept (e.g. binary)
    no_status = 1005,        ///< received only: the close frame had no payload; never sent
    abnormal = 1006,         ///< reported only: the connection ended without a close frame
    invalid_data = 1007,     ///< a text message (or close reason) that is not UTF-8
    policy_violation = 1008, ///< a message breaks the server's policy (e.g. rate limits)
    message_too_big = 1009,  ///< a message longer than the decoder's `max_message`
    internal_error = 1011,   ///< the server hit an unexpected condition
};

/// @brief The code's name in lowercase words joined by `-` (`"normal"`, `"going-away"`,
/// `"protocol-error"`, ...); `""` for a code without a name here.
/// @note Thread-safe (pure function).
[[nodiscard]] constexpr std::string_view to_string(websocket_close_code code) noexcept {
    switch (code) {
    case websocket_close_code::normal: return "normal";
    case websocket_close_code::going_away: return "going-away";
    case websocket_close_code::protocol_error: return "protocol-error";
    case websocket_close_code::unsupported_data: return "unsupported-data";
    case websocket_close_code::no_status: return "no-status";
    case websocket_close_code::abnormal: return "abnormal";
    case websocket_close_code::invalid_data: return "invalid-data";
    case websocket_close_code::policy_violation: return "policy-violation";
    case websocket_close_code::message_too_big: return "message-too-big";
    case websocket_close_code::internal_error: return "internal-error";
    }
    return "";
}

/// @brief True when `code` may appear in a close frame (RFC 6455 sections 7.4.1 and 7.4.2, and
/// the IANA "WebSocket Close Code Number Registry"): 1000-1003, 1007-1014 and 3000-4999.
///
/// Refused: 0-999 (unused), 1004 (reserved), 1005, 1006 and 1015 (must never be sent: they
/// report a missing status, a dropped connection and a TLS failure locally), 1016-2999 (reserved
/// for future RFCs), 5000 and above (undefined).
/// @note Thread-safe (pure function).
[[nodiscard]] constexpr bool is_valid_close_code(std::uint16_t code) noexcept {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/// @brief Why the decoder failed the connection: the first rule of RFC 6455 a client broke.
///
/// Each error names the close code to send (`close_code_for()`) and a short reason for the close
/// frame (`to_string()`), as section 7.1.7 ("Fail the WebSocket Connection") asks.
enum class websocket_error : std::uint8_t {
    none,                    ///< no error
    reserved_bits,           ///< RSV1, RSV2 or RSV3 set, and no extension was negotiated (5.2)
    reserved_opcode,         ///< opcode 0x3-0x7 or 0xB-0xF (5.2)
    fragmented_control,      ///< a control frame with FIN = 0 (5.4, 5.5)
    unexpected_continuation, ///< a continuation frame while no fragmented message is open (5.4)
    expected_continuation,   ///< a text or binary frame while a fragmented message is open (5.4)
    unmasked_frame,          ///< server role: a client frame without the mask bit (5.1, 5.3)
    masked_frame,            ///< client role: a server frame with the mask bit (5.1)
    control_too_long,        ///< a control frame with a payload above 125 bytes (5.5)
    length_high_bit,         ///< a 64-bit payload length with its most significant bit set (5.2)
    non_minimal_length,      ///< a length in 16 or 64 bits that fits a shorter form (5.2)
    bad_close_payload,       ///< a close frame with a 1-byte payload (5.5.1)
    invalid_close_code,      ///< a close code `is_valid_close_code()` refuses (7.4)
    invalid_close_reason,    ///< a close reason that is not UTF-8 (5.5.1, 8.1): 1007
    invalid_utf8,            ///< a text message that is not UTF-8 (5.6, 8.1): 1007
    message_too_big,         ///< a message above `max_message` bytes (7.4.1): 1009
};

/// @brief A short reason for the close frame (ASCII, at most 40 bytes), e.g. `"unmasked frame"`;
/// `""` for `none`.
/// @note Thread-safe (pure function).
[[nodiscard]] constexpr std::string_view to_string(websocket_error e) noexcept {
    switch (e) {
    case websocket_error::none: return "";
    case websocket_error::reserved_bits: return "reserved bits set";
    case websocket_error::reserved_opcode: return "reserved opcode";
    case websocket_error::fragmented_control: return "fragmented control frame";
    case websocket_error::unexpected_continuation: return "continuation without a message";
    case websocket_error::expected_continuation: return "new message inside a fragmented one";
    case websocket_error::unmasked_frame: return "unmasked frame";
    case websocket_error::masked_frame: return "masked frame";
    case websocket_error::control_too_long: return "control frame too long";
    case websocket_error::length_high_bit: return "length high bit set";
    case websocket_error::non_minimal_length: return "non-minimal length";
    case websocket_error::bad_close_payload: return "1-byte close payload";
    case websocket_error::invalid_close_code: return "invalid close code";
    case websocket_error::invalid_close_reason: return "close reason not UTF-8";
    case websocket_error::invalid_utf8: return "text not UTF-8";
    case websocket_error::message_too_big: return "message too big";
    }
    return "";
}

/// @brief The close code to send for an error (section 7.4.1): `invalid_data` (1007) for
/// `invalid_utf8` and `invalid_close_reason`, `message_too_big` (1009) for `message_too_big`,
/// `protocol_error` (1002) for every other error; `normal` (1000) for `none`.
///
/// A close reason that is not UTF-8 gets 1007 rather than 1002: section 5.5.1 defines the reason
/// as UTF-8 data, section 8.1 fails the connection on any byte stream that should be UTF-8 and is
/// not, and 1007 is the code for "data not consistent with its type" (Autobahn accepts both).
/// @note Thread-safe (pure function).
[[nodiscard]] constexpr websocket_close_code close_code_for(websocket_error e) noexcept {
    switch (e) {
    case websocket_error::none: return websocket_close_code::normal;
    case websocket_error::invalid_close_reason:
    case websocket_error::invalid_utf8: return websocket_close_code::invalid_data;
    case websocket_error::message_too_big: return websocket_close_code::message_too_big;
    default: return websocket_close_code::protocol_error;
    }
}

/// @brief Which end's frames a decoder reads (RFC 6455 section 5.1: clients mask, servers do not).
enum class websocket_role : std::uint8_t {
    server, ///< the decoder runs in a server and reads client frames: each must be masked
    client, ///< the decoder runs in a client (tests, tools) and reads server frames: none may be
};

/// @brief Default longest message payload the decoder accepts, in bytes (as the line protocol's
/// `default_max_line`).
inline constexpr std::size_t default_max_message = 4096;
/// @brief Longest payload of a control frame, in bytes (section 5.5).
inline constexpr std::size_t websocket_max_control_payload = 125;
/// @brief Longest frame header, in bytes: 2 + 8 (64-bit length) + 4 (masking key) (section 5.2).
inline constexpr std::size_t websocket_max_header = 14;

/// @brief Limits and role of a `websocket_decoder`.
struct websocket_decoder_options {
    /// @brief Longest message payload accepted, in bytes, summed over its fragments (control
    /// frames are not counted). 0 accepts only empty messages; any value up to `SIZE_MAX` is
    /// valid (16 MiB = 16777216 is a sensible upper choice). A frame whose header would take the
    /// message past it fails with `message_too_big` (1009) before any of its payload is read.
    std::size_t max_message = default_max_message;
    /// @brief Which end's frames are read; `server` (the default) requires masked frames.
    websocket_role role = websocket_role::server;
    /// @brief Bytes of message buffer kept allocated between messages; a larger buffer (left by
    /// a large message) is freed once that message has been delivered, so an idle connection
    /// holds at most this much.
    std::size_t retained_buffer = default_max_message;
    /// @brief Initialized bytes kept readable after every data message delivered (default 0;
    /// at most 4096): the message buffer is allocated this much longer than its capacity, so a
    /// parser that reads past the end of its input (simdjson reads up to 64 bytes,
    /// `simdjson::SIMDJSON_PADDING`) can read the message where it lies instead of a padded copy.
    /// Their content is unspecified (zeros or bytes of an earlier message).
    std::size_t padding = 0;
    /// @brief When true, a text message sent as one frame (FIN = 1 on its first frame: nothing
    /// to join) is delivered without the decoder's UTF-8 check, with
    /// `websocket_message::utf8_unchecked` set: the receiver checks it itself before using it and
    /// fails the connection with 1007 (`websocket_error::invalid_utf8`) when it is not UTF-8
    /// (RFC 6455 section 8.1). For a receiver whose parser validates UTF-8 anyway (simdjson's
    /// stage 1 for `switchboard.json`), so it is not checked twice. Fragmented text messages and
    /// close reasons are always checked here, as they arrive. Default false: every text message
    /// is checked.
    bool defer_single_frame_utf8 = false;
};

/// @brief One thing the decoder delivers: a whole data message, a ping, a pong or a close.
///
/// `data` is valid only during the handler call: it points into the decoder's buffer.
struct websocket_message {
    /// @brief `text` or `binary` (a whole message, fragments joined), `ping`, `pong` or `close`.
    websocket_opcode opcode = websocket_opcode::text;
    /// @brief The unmasked payload: the message (text: valid UTF-8, checked, unless
    /// `utf8_unchecked`), the ping or pong
    /// payload (0-125 bytes), or the close reason (valid UTF-8, 0-123 bytes). After a non-empty
    /// text or binary message, `websocket_decoder_options::padding` more bytes are readable.
    std::string_view data;
    /// @brief `close` only: the status code sent, `no_status` (1005) when the close frame had no
    /// payload; always `is_valid_close_code()` or 1005. `normal` for the other opcodes.
    websocket_close_code code = websocket_close_code::normal;
    /// @brief `text` only: true when the decoder did not check the message's UTF-8 (a single-frame
    /// message under `websocket_decoder_options::defer_single_frame_utf8`); the receiver must
    /// check it and fail the connection with 1007 if it is not UTF-8. False otherwise.
    bool utf8_unchecked = false;
};

/// @brief Where a whole single-frame text message lies in the input (see
/// `websocket_decoder::whole_text_frame()`); `size == 0`: none.
struct websocket_text_frame {
    /// @brief Bytes of the frame, header and payload (0: no such frame at the start of the input).
    std::size_t size = 0;
    /// @brief Bytes of its header (2 or 4: 7-bit or 16-bit length, then the masking key).
    std::size_t header = 0;
    /// @brief Bytes of its payload (`size - header`).
    std::size_t payload = 0;
};

/// @brief What a `websocket_decoder::feed()` call ended with.
enum class websocket_decode_status : std::uint8_t {
    need_more, ///< every byte was read; the decoder waits for the next frame or the rest of one
    paused,    ///< the handler returned false: the bytes from `consumed` on were not read
    closed,    ///< a close frame was delivered: the client's stream has ended; the bytes after
               ///< it (from `consumed` on) were not read and never will be
    failed,    ///< a frame broke RFC 6455: `error` says how; the decoder stays failed
};

/// @brief The status's name: `"need-more"`, `"paused"`, `"closed"` or `"failed"`.
/// @note Thread-safe (pure function).
[[nodiscard]] constexpr std::string_view to_string(websocket_decode_status s) noexcept {
    switch (s) {
    case websocket_decode_status::need_more: return "need-more";
    case websocket_decode_status::paused: return "paused";
    case websocket_decode_status::closed: return "closed";
    case websocket_decode_status::failed: return "failed";
    }
    return "";
}

/// @brief The result of one `websocket_decoder::feed()` call.
struct websocket_decode_result {
    /// @brief Bytes of the input read: the whole input for `need_more`; up to the end of the
    /// frame that completed the last delivered message for `paused` and `closed`; up to the
    /// byte (or, inside a payload, the read slice) that revealed the error for `failed`.
    std::size_t consumed = 0;
    /// @brief How the call ended.
    websocket_decode_status status = websocket_decode_status::need_more;
    /// @brief The broken rule when `status == failed`, else `none`.
    websocket_error error = websocket_error::none;

    /// @brief True when the connection must be failed (send `close_code()`, `reason()`).
    [[nodiscard]] bool failed() const noexcept { return status == websocket_decode_status::failed; }
    /// @brief The close code to send for `error` (see `close_code_for()`).
    [[nodiscard]] websocket_close_code close_code() const noexcept { return close_code_for(error); }
    /// @brief A short reason for the close frame (see `to_string(websocket_error)`).
    [[nodiscard]] std::string_view reason() const noexcept { return to_string(error); }
};

namespace detail {

// Copies n payload bytes, unmasking them with the 4-byte key starting at key[offset % 4]
// (section 5.3: octet i is XORed with key[i % 4]); 16 bytes per step with SSE2, else 8.
inline void websocket_unmask_copy(char* out, const char* in, std::size_t n, const unsigned char (&key)[4],
                                  std::size_t offset) noexcept {
    // The key rotated by the offset, repeated: pattern[i] = key[(offset + i) % 4].
    unsigned char twice[8], pattern[16];
    std::memcpy(twice, key, 4);
    std::memcpy(twice + 4, key, 4);
    for (std::size_t k = 0; k < 16; k += 4) std::memcpy(pattern + k, twice + (offset & 3u), 4);
    std::uint64_t word_mask;
    std::memcpy(&word_mask, pattern, 8);
    std::size_t i = 0;
#if defined(SWITCHBOARD_TEXT_SSE2)
    const __m128i block_mask = _mm_loadu_si128(reinterpret_cast<const __m128i*>(pattern));
    for (; i + 16 <= n; i += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm_xor_si128(v, block_mask));
    }
#endif
    for (; i + 8 <= n; i += 8) {
        std::uint64_t w;
        std::memcpy(&w, in + i, 8);
        w ^= word_mask;
        std::memcpy(out + i, &w, 8);
    }
    for (; i < n; ++i) out[i] = static_cast<char>(static_cast<unsigned char>(in[i]) ^ pattern[i & 7u]);
}

} // namespace detail

// ---- decoding -------------------------------------------------------------------------------------

/// @brief Decodes the frames of one WebSocket connection (RFC 6455 section 5) from a byte stream
/// fed in chunks of any size, and delivers whole messages.
///
/// Delivered, in stream order, to the handler of `feed()`:
/// - a text or binary message once its last fragment (FIN = 1) has arrived, unmasked and joined
///   (sections 5.3, 5.4); a text message only if it is valid UTF-8 (section 5.6);
/// - a ping or pong with its payload, and a close with its code and reason (section 5.5), also
///   between the fragments of a data message, as soon as their frame is complete (section 5.4).
///
/// Rules checked, each failing the connection with a `websocket_error` at the first byte that
/// breaks it (so feeding the bytes one at a time gives the same messages and the same error as
/// feeding them at once), in this order within a header:
/// byte 0: `reserved_bits`, `reserved_opcode`, `fragmented_control`, `unexpected_continuation`,
/// `expected_continuation`; byte 1: `unmasked_frame` (server role) / `masked_frame` (client
/// role), `control_too_long`; the length: `length_high_bit`, `non_minimal_length`,
/// `message_too_big`. In a payload: `invalid_utf8` as soon as a text message's bytes (across
/// fragments, a code point may be split between them) cannot be UTF-8, or at its last fragment
/// when a sequence is left unfinished (not for a single-frame text message under
/// `websocket_decoder_options::defer_single_frame_utf8`: its receiver checks it); in a close frame: `bad_close_payload`,
/// `invalid_close_code`, `invalid_close_reason`.
///
/// Memory: `max_message` is checked against the length in the header, before any payload byte is
/// read or any memory is reserved for it, so a header claiming 2^63 - 1 bytes fails at once. The
/// decoder holds at most one unfinished header (up to 14 bytes), the current message's payload
/// (up to `max_message`) and one control frame's payload (up to 125 bytes, a fixed array); its
/// message buffer grows with the bytes received, doubling (at most twice what was received, so a
/// claimed length reserves nothing and many small fragments cost linear copying), and its
/// capacity never exceeds `max_message` (allocated with `padding` bytes more).
///
/// Backpressure: the handler may return `false` after any delivery; `feed()` then returns
/// `paused` with the number of bytes read, and the caller feeds the rest (and later bytes) when
/// it is ready. A close frame ends the stream: `feed()` returns `closed` and reads nothing more.
/// A failed decoder stays failed: every later `feed()` reads nothing and returns the same error.
///
/// Thread safety: none; one decoder per connection, used by one thread at a time.
class websocket_decoder {
public:
    /// @brief A decoder at the start of a stream.
    /// @param options the limits and role (see `websocket_decoder_options`).
    explicit websocket_decoder(const websocket_decoder_options& options = {}) noexcept : options_(options) {}

    websocket_decoder(const websocket_decoder&) = delete;
    websocket_decoder& operator=(const websocket_decoder&) = delete;
    /// @brief Moves a decoder with its state; `other` must not be used afterwards.
    websocket_decoder(websocket_decoder&&) noexcept = default;
    /// @brief Moves a decoder with its state; `other` must not be used afterwards.
    websocket_decoder& operator=(websocket_decoder&&) noexcept = default;
    ~websocket_decoder() = default;

    /// @brief The options the decoder was made with.
    [[nodiscard]] const websocket_decoder_options& options() const noexcept { return options_; }
    /// @brief Bytes held since the last call: the unfinished header, the unfinished message and
    /// the unfinished control frame; at most `max_message + 125` (or `max_message + 14`).
    [[nodiscard]] std::size_t buffered() const noexcept { return header_have_ + size_ + control_len_; }
    /// @brief Bytes of message the buffer holds without growing (at most `max_message`); the
    /// allocation is `options().padding` bytes larger when it is not 0.
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
    /// @brief True while a data message has begun and its last fragment has not been read.
    [[nodiscard]] bool in_message() const noexcept { return in_message_; }
    /// @brief True once a close frame has been delivered.
    [[nodiscard]] bool closed() const noexcept { return phase_ == phase::closed; }
    /// @brief True once a rule was broken (then `error()` says which).
    [[nodiscard]] bool failed() const noexcept { return phase_ == phase::failed; }
    /// @brief The rule broken, or `none`.
    [[nodiscard]] websocket_error error() const noexcept { return error_; }

    /// @brief Reads the next chunk of the stream and delivers what it completes.
    /// @param bytes   the next bytes from the client, any size (0 is allowed).
    /// @param handler callable as `handler(const websocket_message&)`, returning `bool` (false:
    ///                stop after this delivery) or `void` (never stops). It must not call `feed()`
    ///                on this decoder; the message's `data` is valid during the call only.
    /// @return `consumed` and `status`: `need_more` (all read), `paused` (the handler returned
    ///         false), `closed` (a close frame was delivered, or had been before: then 0 bytes are
    ///         read) or `failed` (with `error`; also for every call after a failure).
    /// @throws std::bad_alloc when the message buffer cannot grow; whatever the handler throws.
    template <class Handler>
    websocket_decode_result feed(std::string_view bytes, Handler&& handler) {
        static_assert(std::is_invocable_v<Handler&, const websocket_message&>,
                      "the handler of websocket_decoder::feed() must be callable as handler(const websocket_message&)");
        if (phase_ == phase::failed) return {0, websocket_decode_status::failed, error_};
        if (phase_ == phase::closed) return {0, websocket_decode_status::closed, websocket_error::none};
        const char* const in = bytes.data();
        const std::size_t n = bytes.size();
        std::size_t pos = 0;
        while (pos < n) {
            if (phase_ == phase::header) {
                if (header_have_ == 0 && n - pos >= 2) pos += take_whole_header(in + pos, n - pos);
                while (header_have_ < header_need_ && pos < n) {
                    header_[header_have_++] = static_cast<unsigned char>(in[pos++]);
                    const websocket_error e = check_header_byte();
                    if (e != websocket_error::none) return fail(e, pos);
                }
                if (header_have_ < header_need_) break;
                start_payload();
            } else {
                const std::size_t take =
                    static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, n - pos));
                const websocket_error e = read_payload(in + pos, take);
                pos += take;
                if (e != websocket_error::none) return fail(e, pos);
            }
            if (phase_ == phase::payload && remaining_ == 0) {
                const websocket_decode_status s = finish_frame(handler);
                if (s != websocket_decode_status::need_more) {
                    if (s == websocket_decode_status::failed) return fail(error_, pos);
                    return {pos, s, websocket_error::none};
                }
            }
        }
        return {pos, websocket_decode_status::need_more, websocket_error::none};
    }

    /// @brief The frame at the start of `bytes`, when it is a whole text message in one frame
    /// that `feed()` would deliver at once with `websocket_message::utf8_unchecked`: the decoder
    /// is between messages (no header, payload or fragment pending; not failed or closed), its
    /// options are `role == server` and `defer_single_frame_utf8`, and the frame is complete in
    /// `bytes` with FIN = 1, no RSV bit, opcode text, masked, a 7-bit or minimal 16-bit length
    /// and a payload within `max_message`. Feeding those `size` bytes would deliver exactly one
    /// text message, its payload unmasked (`unmask_text_frame()`), and leave the decoder as it is
    /// now; so a caller may read such frames itself and feed only the bytes after them. Any other
    /// frame, a 64-bit length, or a partial frame: `size == 0` (feed() reads it as always).
    /// @param bytes the next bytes of the stream, not yet fed.
    /// @return the frame's sizes, or `size == 0`.
    /// @note Reads `bytes` only; changes nothing. Costs a few comparisons (no payload byte read).
    [[nodiscard]] websocket_text_frame whole_text_frame(std::string_view bytes) const noexcept {
        if (phase_ != phase::header || header_have_ != 0 || in_message_ || !options_.defer_single_frame_utf8 ||
            options_.role != websocket_role::server || bytes.size() < 6)
            return {};
        const auto* in = reinterpret_cast<const unsigned char*>(bytes.data());
        // FIN, no RSV bit, text; MASK set.
        if (in[0] != (0x80u | static_cast<unsigned>(websocket_opcode::text)) || (in[1] & 0x80u) == 0) return {};
        std::size_t len = in[1] & 0x7Fu, header = 6;
        if (len == 127) return {}; // 64-bit lengths: left to feed()
        if (len == 126) {
            len = (std::size_t{in[2]} << 8) | in[3];
            header = 8;
            if (len < 126) return {}; // not minimal: feed() fails it
        }
        if (len > options_.max_message || bytes.size() < header || bytes.size() - header < len) return {};
        return {header + len, header, len};
    }

    /// @brief Writes the unmasked payload of a frame `whole_text_frame()` found.
    /// @param frame the frame's first byte (where `bytes` began).
    /// @param f     what `whole_text_frame()` returned for it (`size != 0`).
    /// @param out   where to write `f.payload` bytes.
    /// @note Thread-safe (reads `frame`, writes `out` only).
    static void unmask_text_frame(const char* frame, const websocket_text_frame& f, char* out) noexcept {
        unsigned char key[4];
        std::memcpy(key, frame + f.header - 4, 4);
        detail::websocket_unmask_copy(out, frame + f.header, f.payload, key, 0);
    }

private:
    enum class phase : std::uint8_t { header, payload, closed, failed };

    websocket_decode_result fail(websocket_error e, std::size_t consumed) noexcept {
        phase_ = phase::failed;
        error_ = e;
        return {consumed, websocket_decode_status::failed, e};
    }

    // Checks the header byte just stored at header_[header_have_ - 1]; sets header_need_ once
    // the length's size is known.
    websocket_error check_header_byte() noexcept {
        const std::size_t i = header_have_ - 1u;
        if (i == 0) return check_first_byte();
        if (i == 1) {
            const websocket_error e = check_second_byte();
            if (e != websocket_error::none) return e;
        } else if (i == 2 && length_end_ == 10 && (header_[2] & 0x80u) != 0) {
            return websocket_error::length_high_bit;
        }
        if (header_have_ == length_end_) return check_length();
        return websocket_error::none;
    }

    // The whole header of the next frame is in `in` (`avail` bytes, at least 2): reads it at once,
    // with the checks of check_header_byte(). Returns its size; 0 (nothing read, the header state
    // as before) when it is not all there or breaks a rule, so that the byte-at-a-time path
    // reports the error at the byte that reveals it.
    std::size_t take_whole_header(const char* in, std::size_t avail) noexcept {
        const unsigned len7 = static_cast<unsigned char>(in[1]) & 0x7Fu;
        const std::size_t need =
            (len7 == 126 ? 4u : len7 == 127 ? 10u : 2u) + ((static_cast<unsigned char>(in[1]) & 0x80u) != 0 ? 4u : 0u);
        if (avail < need) return 0;
        std::memcpy(header_, in, need);
        websocket_error e = check_first_byte();
        if (e == websocket_error::none) e = check_second_byte();
        if (e == websocket_error::none && length_end_ == 10 && (header_[2] & 0x80u) != 0)
            e = websocket_error::length_high_bit;
        if (e == websocket_error::none) e = check_length();
        if (e != websocket_error::none) {
            header_need_ = 2;
            length_end_ = 2;
            return 0;
        }
        header_have_ = static_cast<std::uint8_t>(need);
        return need;
    }

    // Byte 0 of a header: FIN, RSV1-3, the opcode.
    websocket_error check_first_byte() noexcept {
        const unsigned b = header_[0];
        const unsigned code = b & 0x0Fu;
        const auto op = static_cast<websocket_opcode>(code);
        if ((b & 0x70u) != 0) return websocket_error::reserved_bits;
        if ((code > 0x2u && code < 0x8u) || code > 0xAu) return websocket_error::reserved_opcode;
        if (is_control(op)) {
            if ((b & 0x80u) == 0) return websocket_error::fragmented_control;
        } else if (op == websocket_opcode::continuation) {
            if (!in_message_) return websocket_error::unexpected_continuation;
        } else if (in_message_) {
            return websocket_error::expected_continuation;
        }
        frame_op_ = op;
        frame_fin_ = (b & 0x80u) != 0;
        return websocket_error::none;
    }

    // Byte 1 of a header: MASK, the 7-bit length; sets where the length and the header end.
    websocket_error check_second_byte() noexcept {
        const bool masked = (header_[1] & 0x80u) != 0;
        const bool want_mask = options_.role == websocket_role::server;
        if (masked != want_mask)
            return want_mask ? websocket_error::unmasked_frame : websocket_error::masked_frame;
        const unsigned len7 = header_[1] & 0x7Fu;
        if (is_control(frame_op_) && len7 > websocket_max_control_payload)
            return websocket_error::control_too_long;
        length_end_ = static_cast<std::uint8_t>(len7 == 126 ? 4 : len7 == 127 ? 10 : 2);
        header_need_ = static_cast<std::uint8_t>(length_end_ + (masked ? 4 : 0));
        return websocket_error::none;
    }

    // The payload length is complete in header_[0, length_end_).
    websocket_error check_length() noexcept {
        std::uint64_t len = header_[1] & 0x7Fu;
        if (length_end_ == 4) {
            len = (std::uint64_t{header_[2]} << 8) | header_[3];
            if (len < 126) return websocket_error::non_minimal_length;
        } else if (length_end_ == 10) {
            len = 0; // below 2^63: check_header_byte() refused the high bit
            for (std::size_t k = 2; k < 10; ++k) len = (len << 8) | header_[k];
            if (len <= 0xFFFFu) return websocket_error::non_minimal_length;
        }
        if (!is_control(frame_op_)) {
            // A continuation adds to the open message; a text or binary frame starts a new one.
            const std::size_t before = frame_op_ == websocket_opcode::continuation ? size_ : 0;
            if (len > options_.max_message - before)
                return websocket_error::message_too_big;
        }
        remaining_ = len;
        return websocket_error::none;
    }

    // The header is complete: take the masking key, open a message for a first fragment.
    void start_payload() noexcept {
        if (header_need_ > length_end_) std::memcpy(mask_, header_ + length_end_, 4);
        mask_offset_ = 0;
        header_have_ = 0;
        header_need_ = 2;
        length_end_ = 2;
        phase_ = phase::payload;
        if (is_control(frame_op_)) {
            control_len_ = 0;
        } else {
            if (frame_op_ != websocket_opcode::continuation) {
                in_message_ = true;
                message_op_ = frame_op_;
                size_ = 0;
                // A single-frame text message may be left to the receiver (see the option).
                check_utf8_ = !(options_.defer_single_frame_utf8 && frame_fin_);
                if (check_utf8_) utf8_.reset();
            }
            frame_end_ = size_ + remaining_; // <= max_message, so it fits a size_t
        }
    }

    // Stores `take` (<= remaining_) payload bytes, unmasked; checks a text message's UTF-8.
    websocket_error read_payload(const char* in, std::size_t take) {
        char* out;
        if (is_control(frame_op_)) {
            out = control_ + control_len_;
            control_len_ += take;
        } else {
            reserve(size_ + take);
            out = data_.get() + size_;
            size_ += take;
        }
        if (options_.role == websocket_role::server) {
            detail::websocket_unmask_copy(out, in, take, mask_, mask_offset_);
            mask_offset_ = (mask_offset_ + take) & 3u;
        } else if (take != 0) {
            std::memcpy(out, in, take);
        }
        remaining_ -= take;
        if (!is_control(frame_op_) && message_op_ == websocket_opcode::text && check_utf8_ &&
            !utf8_.feed(std::string_view(out, take)))
            return websocket_error::invalid_utf8;
        return websocket_error::none;
    }

    // Makes room for `needed` message bytes (<= frame_end_ <= max_message): at least doubling,
    // never past the end of the current frame (or a small minimum within max_message), so the
    // memory follows the bytes received, not the lengths claimed.
    void reserve(std::size_t needed) {
        if (needed <= capacity_) return;
        // Doubling, so that a message arriving in many small fragments costs linear copying (each
        // fragment growing the buffer to its own end made 1-byte fragments quadratic: a stall of
        // seconds for a 1 MiB message). At most twice the bytes received, never past max_message.
        constexpr std::size_t min_capacity = 64;
        const std::size_t limit = std::max(needed, options_.max_message);
        const std::size_t grown = std::min(std::max({needed, capacity_ * 2, min_capacity}), limit);
        const std::size_t padding = std::min<std::size_t>(options_.padding, 4096);
        std::unique_ptr<char[]> fresh(new char[grown + padding]);
        if (size_ != 0) std::memcpy(fresh.get(), data_.get(), size_);
        // Initialized past the message too: the padding (and what the message has not reached)
        // may be read by a parser that ignores it, and a read of uninitialized bytes is a finding.
        std::memset(fresh.get() + size_, 0, grown + padding - size_);
        data_ = std::move(fresh);
        capacity_ = grown;
    }

    // The current frame's payload is complete: deliver what it completes.
    template <class Handler>
    websocket_decode_status finish_frame(Handler& handler) {
        phase_ = phase::header;
        if (is_control(frame_op_)) {
            websocket_message m{frame_op_, std::string_view(control_, control_len_), websocket_close_code::normal};
            if (frame_op_ == websocket_opcode::close) {
                error_ = parse_close(m);
                if (error_ != websocket_error::none) return websocket_decode_status::failed;
                phase_ = phase::closed;
            }
            const bool go_on = deliver(handler, m);
            control_len_ = 0;
            if (phase_ == phase::closed) return websocket_decode_status::closed;
            return go_on ? websocket_decode_status::need_more : websocket_decode_status::paused;
        }
        if (!frame_fin_) return websocket_decode_status::need_more;
        const bool text = message_op_ == websocket_opcode::text;
        if (text && check_utf8_ && !utf8_.complete()) {
            error_ = websocket_error::invalid_utf8;
            return websocket_decode_status::failed;
        }
        in_message_ = false;
        const bool go_on = deliver(handler, websocket_message{message_op_, std::string_view(data_.get(), size_),
                                                              websocket_close_code::normal, text && !check_utf8_});
        size_ = 0;
        if (capacity_ > options_.retained_buffer) {
            data_.reset();
            capacity_ = 0;
        }
        return go_on ? websocket_decode_status::need_more : websocket_decode_status::paused;
    }

    // Section 5.5.1: no payload, or a 2-byte code then a UTF-8 reason.
    static websocket_error parse_close(websocket_message& m) noexcept {
        if (m.data.empty()) {
            m.code = websocket_close_code::no_status;
            return websocket_error::none;
        }
        if (m.data.size() == 1) return websocket_error::bad_close_payload;
        const auto code = static_cast<std::uint16_t>((static_cast<unsigned char>(m.data[0]) << 8) |
                                                     static_cast<unsigned char>(m.data[1]));
        if (!is_valid_close_code(code)) return websocket_error::invalid_close_code;
        m.code = static_cast<websocket_close_code>(code);
        m.data.remove_prefix(2);
        if (!is_valid_utf8(m.data)) return websocket_error::invalid_close_reason;
        return websocket_error::none;
    }

    template <class Handler>
    static bool deliver(Handler& handler, const websocket_message& m) {
        if constexpr (std::is_void_v<std::invoke_result_t<Handler&, const websocket_message&>>) {
            handler(m);
            return true;
        } else {
            return static_cast<bool>(handler(m));
        }
    }

    websocket_decoder_options options_;
    phase phase_ = phase::header;
    websocket_error error_ = websocket_error::none;

    // The frame header being read.
    unsigned char header_[websocket_max_header] = {};
    std::uint8_t header_have_ = 0; // bytes of it read
    std::uint8_t header_need_ = 2; // its size, once byte 1 is known
    std::uint8_t length_end_ = 2;  // where its length field ends

    // The frame whose payload is being read.
    websocket_opcode frame_op_ = websocket_opcode::text;
    bool frame_fin_ = false;
    unsigned char mask_[4] = {};
    std::size_t mask_offset_ = 0;  // payload bytes read so far, modulo 4
    std::uint64_t remaining_ = 0;  // payload bytes still to read
    std::size_t frame_end_ = 0;    // message size once this frame is read

    // The data message being received.
    bool in_message_ = false;
    websocket_opcode message_op_ = websocket_opcode::text;
    utf8_validator utf8_;
    bool check_utf8_ = true; // the decoder checks this message's UTF-8 (see defer_single_frame_utf8)
    std::unique_ptr<char[]> data_;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;

    // The control frame being received.
    char control_[websocket_max_control_payload] = {};
    std::size_t control_len_ = 0;
};

// ---- encoding -------------------------------------------------------------------------------------

/// @brief Size in bytes of the header of a server frame (unmasked) with `payload_size` bytes of
/// payload: 2 (up to 125), 4 (up to 65535) or 10 (above), the minimal form section 5.2 requires.
/// @note Thread-safe (pure function).
[[nodiscard]] constexpr std::size_t websocket_header_size(std::uint64_t payload_size) noexcept {
    return payload_size <= 125 ? 2 : payload_size <= 0xFFFFu ? 4 : 10;
}

/// @brief Writes the header of an unfragmented, unmasked server frame (section 5.2): FIN = 1,
/// RSV = 0, `op`, and the length in its minimal form.
/// @param out          where to write `websocket_header_size(payload_size)` bytes.
/// @param op           any opcode but `continuation` (asserted); for a control opcode
///                     `payload_size` must be at most 125 (asserted).
/// @param payload_size payload bytes that follow, below 2^63.
/// @return the bytes written (`websocket_header_size(payload_size)`).
/// @note Thread-safe (writes only `out`).
inline std::size_t write_websocket_header(char* out, websocket_opcode op, std::uint64_t payload_size) noexcept {
    SWITCHBOARD_ASSERT(op != websocket_opcode::continuation, "a server frame is never a continuation");
    SWITCHBOARD_ASSERT(!is_control(op) || payload_size <= websocket_max_control_payload,
                       "a control frame carries at most 125 bytes");
    out[0] = static_cast<char>(0x80u | static_cast<unsigned>(op));
    if (payload_size <= 125) {
        out[1] = static_cast<char>(payload_size);
        return 2;
    }
    if (payload_size <= 0xFFFFu) {
        out[1] = 126;
        out[2] = static_cast<char>(payload_size >> 8);
        out[3] = static_cast<char>(payload_size & 0xFFu);
        return 4;
    }
    out[1] = 127;
    for (std::size_t k = 0; k < 8; ++k) out[2 + k] = static_cast<char>((payload_size >> (56 - 8 * k)) & 0xFFu);
    return 10;
}

/// @brief Builds one unmasked server frame (header + `body`) as a payload.
///
/// The bytes depend on `op` and `body` only, so the same payload may be written to every
/// WebSocket member of a room (one allocation per message, none per recipient).
/// @param op   any opcode but `continuation` (asserted).
/// @param body the payload; a control frame's is cut to its first 125 bytes (section 5.5). The
///             frame is at most 4 GiB - 1 bytes in all (a `payload`'s bound, asserted).
/// @throws std::bad_alloc when memory runs out.
[[nodiscard]] inline payload encode_websocket_frame(websocket_opcode op, std::string_view body) {
    if (is_control(op)) body = body.substr(0, websocket_max_control_payload);
    return payload::build(websocket_header_size(body.size()) + body.size(), [&](char* out) {
        const std::size_t h = write_websocket_header(out, op, body.size());
        if (!body.empty()) std::memcpy(out + h, body.data(), body.size());
    });
}

/// @brief A text message frame; `text` should be valid UTF-8 (a browser fails the connection
/// otherwise), which every text the router accepts is (text.hpp). See `encode_websocket_frame()`.
/// @throws std::bad_alloc when memory runs out.
[[nodiscard]] inline payload encode_websocket_text(std::string_view text) {
    return encode_websocket_frame(websocket_opcode::text, text);
}

/// @brief A ping frame (section 5.5.2), `data` cut to 125 bytes. See `encode_websocket_frame()`.
/// @throws std::bad_alloc when memory runs out.
[[nodiscard]] inline payload encode_websocket_ping(std::string_view data = {}) {
    return encode_websocket_frame(websocket_opcode::ping, data);
}

/// @brief A pong frame (section 5.5.3) answering a ping: pass the ping's payload (at most 125
/// bytes; longer data is cut). See `encode_websocket_frame()`.
/// @throws std::bad_alloc when memory runs out.
[[nodiscard]] inline payload encode_websocket_pong(std::string_view data = {}) {
    return encode_websocket_frame(websocket_opcode::pong, data);
}

/// @brief A close frame (section 5.5.1): the code, then the reason.
/// @param code   a code `is_valid_close_code()` accepts (asserted), or `no_status` for a close
///               frame without payload (e.g. to answer a client's close that had none).
/// @param reason UTF-8, cut on a character boundary to the 123 bytes that fit (`truncate_utf8`);
///               dropped if it is not valid UTF-8, so the frame is always valid.
/// @throws std::bad_alloc when memory runs out.
[[nodiscard]] inline payload encode_websocket_close(websocket_close_code code, std::string_view reason = {}) {
    if (code == websocket_close_code::no_status) return encode_websocket_frame(websocket_opcode::close, {});
    const auto value = static_cast<std::uint16_t>(code);
    SWITCHBOARD_ASSERT(is_valid_close_code(value), "a close frame carries a valid close code");
    if (!is_valid_utf8(reason)) reason = {};
    reason = truncate_utf8(reason, websocket_max_control_payload - 2);
    char body[websocket_max_control_payload];
    body[0] = static_cast<char>(value >> 8);
    body[1] = static_cast<char>(value & 0xFFu);
    if (!reason.empty()) std::memcpy(body + 2, reason.data(), reason.size());
    return encode_websocket_frame(websocket_opcode::close, std::string_view(body, 2 + reason.size()));
}

} // namespace switchboard::protocol
