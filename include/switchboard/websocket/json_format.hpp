/// @file
/// @brief The JSON wire format of the WebSocket transport (subprotocol `switchboard.json`),
/// sans-I/O: one JSON object per WebSocket text message (docs/protocol.md, "JSON wire format").
///
/// - `parse_json_command()` reads a client's message into a format-neutral `protocol::command`
///   (simdjson's On-Demand parser, nesting bounded; what simdjson refuses is decided by nlohmann's
///   SAX parser, so that exactly nlohmann's JSON is accepted), which `protocol::command_session`
///   applies with exactly the semantics of the line protocol. simdjson costs about a tenth of
///   nlohmann's instructions per command (docs/performance.md, "Where the time goes").
/// - `json_object()` / `json_text()` write a `reply` or an `event` as a JSON object (nlohmann's
///   serializer: every string escaped, invalid UTF-8 replaced by U+FFFD). The two events of the
///   hot path, `msg` and `room`, are written by hand (`detail::json_hot_event`): byte for byte
///   what nlohmann writes (tests/unit/json_writer.cpp compares both over many texts), straight
///   into the framed payload. Measured, as this header asks of such a writer: nlohmann's object
///   and `dump()` cost about 14,000 instructions per routed message, the hand-written writer
///   about 470 with the frame (docs/performance.md, "WebSocket (issue #13)").
/// - `basic_json_format` is the format's `event_encoder` and `reply_encoder` in one, with a
///   pluggable frame step (`Frame`); `json_format` (alias `json_event_encoder`,
///   `json_reply_encoder`) outputs the bare JSON text, unframed.
/// - `json_session` ties the parser and a `command_session` together for one session.
///
/// No framing here: the WebSocket frame codec (protocol/websocket_frame.hpp) bounds a message's
/// size (`max_message`) and checks the UTF-8 of a fragmented message before it reaches this
/// parser; a single-frame message's UTF-8 is checked by the parse itself
/// (`json_session::on_unchecked_message()`: simdjson's stage 1 validates it anyway).
#pragma once

#include "../config.hpp"
#include "../event.hpp"
#include "../names.hpp"
#include "../payload.hpp"
#include "../router.hpp"
#include "../session_id.hpp"
#include "../status.hpp"
#include "../protocol/command.hpp"
#include "../protocol/command_session.hpp"
#include "../protocol/reply.hpp"
#include "../protocol/utf8_validator.hpp"
#include "../text.hpp" // SWITCHBOARD_TEXT_SSE2

#include <nlohmann/json.hpp>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace switchboard::websocket {

/// @brief Default deepest nesting of objects and arrays a command may have: 16 (the command
/// object itself is level 1). Commands need 1; the rest is room for fields a client adds and the
/// server ignores. Deeper messages are answered `invalid-json`.
inline constexpr std::size_t default_max_json_depth = 16;

/// @brief Readable bytes after a message that let `parse_json_command()` read it where it lies
/// (simdjson reads up to this many past the end of its input: `simdjson::SIMDJSON_PADDING`, 64 in
/// simdjson 3). A message without them is first copied.
inline constexpr std::size_t json_read_padding = simdjson::SIMDJSON_PADDING;

class json_command_buffer;

namespace detail {

// The fields a command may have (docs/protocol.md, "JSON wire format"); strings first.
enum class json_key : std::uint8_t { type, user, to, room, text, secret, id, stop, on, seq, other };
inline constexpr std::size_t json_string_keys = 7; // type .. id
inline constexpr std::size_t json_keys = 10;       // type .. seq

// What a field held (absent: not in the message).
enum class json_value : std::uint8_t { absent, string, boolean, unsigned_number, other };

// The field names, in json_key order.
inline constexpr std::string_view json_key_names[json_keys] = {"type", "user", "to", "room", "text",
                                                               "secret", "id", "stop", "on", "seq"};

[[nodiscard]] constexpr json_key json_key_of(std::string_view k) noexcept {
    for (std::size_t i = 0; i < json_keys; ++i)
        if (k == json_key_names[i]) return static_cast<json_key>(i);
    return json_key::other;
}

// True when the bytes at `p` are `name` then the closing '"' (a constant-size compare).
template <std::size_t N>
[[nodiscard]] inline bool json_key_is(const char* p, const char (&name)[N]) noexcept {
    return std::memcmp(p, name, N - 1) == 0 && p[N - 1] == '"';
}

// The field whose name is spelled out, unescaped, at `p` (the bytes after a key's opening quote,
// up to its closing quote); `other` for any other key, escaped ones included (the caller then
// unescapes and asks json_key_of()). Reads at most 7 bytes from `p`: the caller's input is padded.
// The names are json_key_names' (tests/unit/json_parse_fast.cpp reads each, plain and escaped).
[[nodiscard]] inline json_key json_key_at(const char* p) noexcept {
    switch (p[0]) {
    case 't':
        if (json_key_is(p, "type")) return json_key::type;
        if (json_key_is(p, "to")) return json_key::to;
        if (json_key_is(p, "text")) return json_key::text;
        break;
    case 'u':
        if (json_key_is(p, "user")) return json_key::user;
        break;
    case 'r':
        if (json_key_is(p, "room")) return json_key::room;
        break;
    case 's':
        if (json_key_is(p, "secret")) return json_key::secret;
        if (json_key_is(p, "stop")) return json_key::stop;
        if (json_key_is(p, "seq")) return json_key::seq;
        break;
    case 'i':
        if (json_key_is(p, "id")) return json_key::id;
        break;
    case 'o':
        if (json_key_is(p, "on")) return json_key::on;
        break;
    default: break;
    }
    return json_key::other;
}

class json_command_reader;
class json_fast_reader;
class json_batch;
struct json_command_access;

} // namespace detail

/// @brief The storage a parsed JSON command's views point into: the known fields' values.
///
/// Keep one per session and pass it to every `parse_json_command()` call: it keeps its capacity
/// (at most the largest message read), so in the steady state parsing a command allocates
/// nothing. (`json_session` copies only values with escapes into it; the others stay views into
/// the message, which it uses while the message is valid.)
///
/// Thread safety: none; one buffer per session.
class json_command_buffer {
public:
    json_command_buffer() = default;

private:
    friend class detail::json_command_reader;
    friend class detail::json_fast_reader;
    friend class detail::json_batch;
    friend struct detail::json_command_access;

    // Before reading a message of `message_size` bytes.
    void clear(std::size_t message_size) noexcept {
        held_.fill(detail::json_value::absent);
        values_.fill(std::string_view());
        copies_.clear();
        message_size_ = message_size;
        stop_ = on_ = false;
        seq_ = 0;
    }
    [[nodiscard]] detail::json_value held(detail::json_key k) const noexcept {
        return held_[static_cast<std::size_t>(k)];
    }
    [[nodiscard]] std::string_view string(detail::json_key k) const noexcept {
        return values_[static_cast<std::size_t>(k)];
    }
    // String field `k` (a string key) is `s`, copied into this buffer. The copies of one message
    // fit in its size (each of its bytes is in at most one string, and unescaping never makes a
    // string longer), so reserving that much once keeps the earlier copies' views valid.
    // False, nothing copied, when `s` would not fit: never for the strings of the message being
    // read, only for a document running past its message in a json_batch, which then refuses it.
    bool copy_string(detail::json_key k, std::string_view s) {
        if (copies_.capacity() < message_size_) copies_.reserve(message_size_);
        if (s.size() > copies_.capacity() - copies_.size()) return false; // never reallocate: views stay valid
        const std::size_t at = copies_.size();
        copies_.append(s.data(), s.size());
        values_[static_cast<std::size_t>(k)] = std::string_view(copies_.data() + at, s.size());
        return true;
    }
    // String field `k` (a string key) is `s` where it lies: the caller guarantees that `s` stays
    // valid for as long as the command's views are used (json_session: the message, during apply()).
    void view_string(detail::json_key k, std::string_view s) noexcept { values_[static_cast<std::size_t>(k)] = s; }

    std::array<detail::json_value, detail::json_keys> held_{};
    // The string fields' values: views into copies_, or (json_session only) into the message.
    std::array<std::string_view, detail::json_string_keys> values_{};
    std::string copies_;           // the copied values, one after the other (kept for its capacity)
    std::size_t message_size_ = 0; // of the message being read
    bool stop_ = false;
    bool on_ = false;
    std::uint64_t seq_ = 0;
    char seq_digits_[20] = {}; // the decimal form of seq_ (2^64 - 1 has 20 digits)
};

namespace detail {

// nlohmann SAX handler: keeps the top-level fields of an object in a json_command_buffer and
// nothing else (no DOM), and stops at the first level past the depth bound.
class json_command_reader final : public nlohmann::json_sax<nlohmann::json> {
public:
    using json = nlohmann::json;

    json_command_reader(json_command_buffer& b, std::size_t max_depth) noexcept : b_(&b), max_depth_(max_depth) {}

    [[nodiscard]] bool object_read() const noexcept { return root_object_; }

    bool null() override { return scalar(json_value::other); }
    bool boolean(bool v) override {
        if (pending_ == json_key::stop) b_->stop_ = v;
        if (pending_ == json_key::on) b_->on_ = v;
        return scalar(json_value::boolean);
    }
    bool number_integer(json::number_integer_t) override { return scalar(json_value::other); }
    bool number_unsigned(json::number_unsigned_t v) override {
        if (pending_ == json_key::seq) b_->seq_ = v;
        return scalar(json_value::unsigned_number);
    }
    bool number_float(json::number_float_t, const json::string_t&) override { return scalar(json_value::other); }
    bool string(json::string_t& v) override {
        if (static_cast<std::size_t>(pending_) < json_string_keys) {
            const bool copied = b_->copy_string(pending_, v);
            SWITCHBOARD_ASSERT(copied, "the copies of a message fit in its size");
            (void)copied;
        }
        return scalar(json_value::string);
    }
    bool binary(json::binary_t&) override { return scalar(json_value::other); }
    bool start_object(std::size_t) override { return open(true); }
    bool start_array(std::size_t) override { return open(false); }
    bool end_object() override { return close(); }
    bool end_array() override { return close(); }
    bool key(json::string_t& k) override {
        pending_ = depth_ == 1 && root_object_ ? json_key_of(k) : json_key::other;
        return true;
    }
    bool parse_error(std::size_t, const std::string&, const json::exception&) override { return false; }

private:
    // A value for the pending key (a top-level field), if any.
    bool scalar(json_value v) noexcept {
        if (pending_ != json_key::other) b_->held_[static_cast<std::size_t>(pending_)] = v;
        pending_ = json_key::other;
        return true;
    }
    bool open(bool object) noexcept {
        if (depth_ == 0) root_object_ = object;
        else (void)scalar(json_value::other); // an object or array as a field's value
        return ++depth_ <= max_depth_;        // false stops the parser: too deep
    }
    bool close() noexcept {
        --depth_;
        pending_ = json_key::other;
        return true;
    }

    json_command_buffer* b_;
    std::size_t max_depth_;
    std::size_t depth_ = 0;
    json_key pending_ = json_key::other;
    bool root_object_ = false;
};

// What a reader made of a message: an object whose top-level fields are in the buffer, not a
// command object (`invalid-json`), or, for the fast reader only, left to the reference reader.
enum class json_read : std::uint8_t { object, invalid, undecided };

// The reference reader: nlohmann's SAX parser (json_command_reader). It decides every message the
// fast reader leaves undecided, so that `parse_json_command()` accepts and refuses exactly what
// nlohmann accepts and refuses (tests/unit/json_parse_fast.cpp and tests/fuzz/websocket_json_fuzz.cpp
// compare both readers).
inline json_read read_json_reference(std::string_view text, json_command_buffer& buffer, std::size_t max_depth) {
    json_command_reader reader(buffer, max_depth);
    bool parsed = false;
    // nlohmann's lexer takes a NUL byte for the end of the input; JSON allows none outside a
    // string (and inside one only escaped), so a message holding one is refused whole.
    if (!text.empty() && std::memchr(text.data(), '\0', text.size()) == nullptr) {
        try {
            parsed = nlohmann::json::sax_parse(text.data(), text.data() + text.size(), &reader);
        } catch (const nlohmann::json::exception&) {
            parsed = false;
        }
    }
    return parsed && reader.object_read() ? json_read::object : json_read::invalid;
}

/// Messages above this size skip the fast reader (nlohmann reads them, as before): the fast
/// reader's per-thread buffers grow to the largest message it read, so this bounds them (about
/// 7 bytes per byte of message: the padded copy, simdjson's structural index and string buffer).
inline constexpr std::size_t json_fast_max_message = std::size_t{1} << 20;
/// Deepest nesting the fast reader walks (it recurses once per level, about 200 bytes of stack
/// each); a message nested deeper under a larger `max_depth` is left to nlohmann.
inline constexpr std::size_t json_fast_max_depth = 32;

// The fast reader: simdjson's On-Demand API (stage 1 with SIMD instructions chosen at run time,
// then one walk over the document). Every value is visited and read, so the whole document is
// validated, not only the fields a command uses (On-Demand checks only what is read). Anything
// simdjson refuses is undecided, and nlohmann decides: simdjson refuses a few documents nlohmann
// accepts (integers beyond 64 bits, which nlohmann reads as floating point; a UTF-8 byte order
// mark) and gives no reason nlohmann's reply would not also give. The converse (simdjson
// accepting what nlohmann refuses) is what the differential tests and fuzz target check.
//
// simdjson reads up to SIMDJSON_PADDING bytes past the end of its input: a message with that many
// readable bytes after it (`readable`; the WebSocket frame decoder keeps them when its options ask,
// `websocket_decoder_options::padding`) is read where it lies, any other is first copied into a
// padded per-thread buffer. The parser and the
// buffer are per thread because parsing is synchronous: one per session would cost each idle
// connection their memory. The fields are copied into the session's buffer as before, so the
// views of the returned command stay valid until that buffer's next parse; or, with
// `views_into_text` (json_session only), a string value without an escape is left where it lies
// in `text` (no copy), so the command's views are valid only while `text` is.
//
// A string without a backslash needs no unescaping: simdjson's stage 1 has validated its UTF-8
// and refused control characters in it (UNESCAPED_CHARS), and its end is the first '"'. Such keys
// and values are read raw (no copy into simdjson's string buffer); a string holding an escape is
// unescaped by simdjson, which also checks the escape.
class json_fast_reader {
public:
    json_fast_reader(json_command_buffer& b, std::size_t max_depth, bool views_into_text = false) noexcept
        : b_(&b), max_depth_(max_depth), views_(views_into_text) {}

    // `readable`: bytes readable from text.data() on (text.size() or more).
    [[nodiscard]] json_read read(std::string_view text, std::size_t readable) {
        if (text.empty() || text.size() > json_fast_max_message) return json_read::undecided;
        thread_state& t = state();
        const std::size_t padded = text.size() + simdjson::SIMDJSON_PADDING;
        const char* input = text.data();
        if (readable < padded) {
            if (t.capacity < padded) {
                t.copy.reset(new char[padded]);
                t.capacity = padded;
            }
            std::memcpy(t.copy.get(), text.data(), text.size());
            // Zeros, as simdjson's padded_string (simdjson ignores the padding's content; zeros
            // keep it initialized).
            std::memset(t.copy.get() + text.size(), 0, simdjson::SIMDJSON_PADDING);
            input = t.copy.get();
            readable = t.capacity;
        }
        input_ = input;
        text_ = text.data();
        simdjson::ondemand::document doc;
        if (t.parser.iterate(input, text.size(), readable).get(doc) != simdjson::SUCCESS)
            return json_read::undecided;
        simdjson::ondemand::object root;
        if (doc.get_object().get(root) != simdjson::SUCCESS) return json_read::undecided;
        const json_read r = object(root, 1);
        if (r != json_read::object) return r;
        // Nothing after the object but whitespace.
        return doc.current_location().error() == simdjson::OUT_OF_BOUNDS ? json_read::object : json_read::undecided;
    }

    // The command object of a document of a stream (json_batch), whose input starts at `base`
    // (string values without escapes are left as views into it when the reader keeps views).
    // Nothing after the object is checked here: json_batch checks where the document ends.
    [[nodiscard]] json_read read_object(simdjson::ondemand::object& root, const char* base) {
        input_ = text_ = base;
        return object(root, 1);
    }

private:
    struct thread_state {
        simdjson::ondemand::parser parser;
        std::unique_ptr<char[]> copy;
        std::size_t capacity = 0;
    };
    static thread_state& state() {
        static thread_local thread_state t;
        return t;
    }

    // The members of an object at `depth` (the command object is 1); only its own fields are
    // arguments.
    json_read object(simdjson::ondemand::object& o, std::size_t depth) {
        for (auto member : o) {
            simdjson::ondemand::field f;
            if (std::move(member).get(f) != simdjson::SUCCESS) return json_read::undecided;
            // A command field's name is matched where it lies. Any other key: its bytes up to its
            // closing quote (stage 1 found it), unless an escape comes first: then simdjson
            // unescapes (and checks) it.
            const char* const first = f.key().raw();
            json_key key = depth == 1 ? json_key_at(first) : json_key::other;
            if (key == json_key::other) {
                const char* end = first;
                while (*end != '"' && *end != '\\') ++end;
                std::string_view k(first, static_cast<std::size_t>(end - first));
                if (*end == '\\' && f.unescaped_key().get(k) != simdjson::SUCCESS) return json_read::undecided;
                if (depth == 1) key = json_key_of(k);
            }
            const json_read r = value(f.value(), depth, key);
            if (r != json_read::object) return r;
        }
        return json_read::object;
    }

    // One value inside a container at `depth`; `key` is the field it is the value of (`other`
    // when not a top-level field). Kept as json_command_reader keeps it: the last duplicate wins.
    json_read value(simdjson::ondemand::value v, std::size_t depth, json_key key) {
        using simdjson::SUCCESS;
        using simdjson::ondemand::json_type;
        // The value's token (its first byte up to the next structural one) gives its type as
        // type() would, without the call: '"' string, '{' object, '[' array, 't' or 'f' boolean,
        // 'n' null, anything else a number (whose parse refuses what is not one, as type() would).
        std::string_view raw = v.raw_json_token();
        json_type type = json_type::number;
        switch (raw.empty() ? '\0' : raw.front()) {
        case '"': type = json_type::string; break;
        case '{': type = json_type::object; break;
        case '[': type = json_type::array; break;
        case 't':
        case 'f': type = json_type::boolean; break;
        case 'n': type = json_type::null; break;
        default: break;
        }
        json_value held = json_value::other;
        switch (type) {
        case json_type::object:
        case json_type::array: {
            if (depth + 1 > max_depth_) return json_read::invalid; // as nlohmann's reader: too deep
            if (depth + 1 > json_fast_max_depth) return json_read::undecided; // the walk's own bound
            mark(key, json_value::other);
            if (type == json_type::object) {
                simdjson::ondemand::object o;
                if (v.get_object().get(o) != SUCCESS) return json_read::undecided;
                return object(o, depth + 1);
            }
            simdjson::ondemand::array a;
            if (v.get_array().get(a) != SUCCESS) return json_read::undecided;
            for (auto element : a) {
                simdjson::ondemand::value e;
                if (std::move(element).get(e) != SUCCESS) return json_read::undecided;
                const json_read r = value(e, depth + 1, json_key::other);
                if (r != json_read::object) return r;
            }
            return json_read::object;
        }
        case json_type::string: {
            // The token is the string with its quotes, then any whitespace before the next one.
            while (raw.back() != '"') raw.remove_suffix(1);
            const std::string_view inner(raw.data() + 1, raw.size() - 2);
            const bool keep = static_cast<std::size_t>(key) < json_string_keys;
            if (!has_backslash(inner)) { // nothing to unescape
                simdjson::ondemand::raw_json_string consumed;
                if (v.get_raw_json_string().get(consumed) != SUCCESS) return json_read::undecided;
                if (keep && views_) b_->view_string(key, std::string_view(text_ + (inner.data() - input_), inner.size()));
                else if (keep && !b_->copy_string(key, inner)) return json_read::undecided;
            } else {
                std::string_view s;
                if (v.get_string().get(s) != SUCCESS) return json_read::undecided;
                if (keep && !b_->copy_string(key, s)) return json_read::undecided;
            }
            held = json_value::string;
            break;
        }
        case json_type::number: {
            // As nlohmann: an integer without a minus sign is unsigned (when it fits in 64 bits;
            // above, simdjson refuses it and nlohmann reads a float), any other number is not.
            const bool negative = v.is_negative();
            simdjson::ondemand::number n;
            if (v.get_number().get(n) != SUCCESS) return json_read::undecided;
            using simdjson::ondemand::number_type;
            const number_type nt = n.get_number_type();
            // simdjson: signed for what fits in int64_t, unsigned only above.
            if (nt == number_type::unsigned_integer || (nt == number_type::signed_integer && !negative)) {
                if (key == json_key::seq)
                    b_->seq_ = nt == number_type::unsigned_integer ? n.get_uint64() : static_cast<std::uint64_t>(n.get_int64());
                held = json_value::unsigned_number;
            }
            break;
        }
        case json_type::boolean: {
            bool b = false;
            if (v.get_bool().get(b) != SUCCESS) return json_read::undecided;
            if (key == json_key::stop) b_->stop_ = b;
            if (key == json_key::on) b_->on_ = b;
            held = json_value::boolean;
            break;
        }
        case json_type::null: {
            bool is_null = false;
            if (v.is_null().get(is_null) != SUCCESS || !is_null) return json_read::undecided;
            break;
        }
        }
        mark(key, held);
        return json_read::object;
    }

    // True when `s` (inside the input, so SIMDJSON_PADDING readable bytes follow it) holds a '\\'.
    static bool has_backslash(std::string_view s) noexcept {
#if defined(SWITCHBOARD_TEXT_SSE2)
        // 16 bytes per step, the last block read past the end (the padding) and masked.
        static_assert(simdjson::SIMDJSON_PADDING >= 16, "a block may be read past the end");
        const __m128i backslash = _mm_set1_epi8('\\');
        const auto found = [&s, backslash](std::size_t i) noexcept {
            const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
            return static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, backslash)));
        };
        std::size_t i = 0;
        for (; i + 16 <= s.size(); i += 16)
            if (found(i) != 0) return true;
        return i < s.size() && (found(i) & ((1u << (s.size() - i)) - 1u)) != 0;
#else
        return std::memchr(s.data(), '\\', s.size()) != nullptr;
#endif
    }

    void mark(json_key key, json_value v) noexcept {
        if (key != json_key::other) b_->held_[static_cast<std::size_t>(key)] = v;
    }

    json_command_buffer* b_;
    std::size_t max_depth_;
    bool views_;                   // string values without escapes are views into the message
    const char* input_ = nullptr;  // what simdjson reads: the message, or its padded copy
    const char* text_ = nullptr;   // the message
};

// The field rules of parse_json_command(), applied to a buffer a reader filled, and the entry of
// both readers.
struct json_command_access {
    enum class reader : std::uint8_t { fast, reference };

    // `views`: see json_fast_reader. `not_utf8`: null when `text` is known to be UTF-8; else the
    // UTF-8 is checked here (by simdjson's stage 1 when the fast reader decides, else by
    // protocol::is_valid_utf8()), and when it is not UTF-8 nothing is parsed: *not_utf8 is set
    // and the command is invalid-json.
    [[nodiscard]] static protocol::command parse(std::string_view text, json_command_buffer& buffer,
                                                 std::size_t max_depth, reader which, std::size_t readable = 0,
                                                 bool views = false, bool* not_utf8 = nullptr) {
        if (max_depth == 0) max_depth = 1;
        buffer.clear(text.size());
        json_read r = json_read::undecided;
        if (which == reader::fast)
            r = json_fast_reader(buffer, max_depth, views).read(text, std::max(readable, text.size()));
        if (r == json_read::undecided) {
            if (not_utf8 != nullptr && !protocol::is_valid_utf8(text)) {
                *not_utf8 = true;
                protocol::command c;
                c.malformed = protocol::error_token::invalid_json;
                return c;
            }
            buffer.clear(text.size());
            r = read_json_reference(text, buffer, max_depth);
        }
        protocol::command c;
        if (r != json_read::object) {
            c.malformed = protocol::error_token::invalid_json;
            return c;
        }
        return command_of(buffer);
    }

    [[nodiscard]] static protocol::command command_of(json_command_buffer& buffer) {
        using protocol::command_kind;
        protocol::command c;
        if (buffer.held(json_key::type) != json_value::string) return c; // err unknown-command
        const std::string_view type = buffer.string(json_key::type);
        c.kind = protocol::command_kind_of(type);
        if (c.kind == command_kind::unknown) {
            c.word = type;
            return c;
        }
        // A required, non-empty string field; false when missing, mistyped or empty.
        const auto required = [&](json_key k, std::string_view& out) {
            if (buffer.held(k) != json_value::string || buffer.string(k).empty()) return false;
            out = buffer.string(k);
            return true;
        };
        const auto optional_is = [&](json_key k, json_value v) {
            return buffer.held(k) == json_value::absent || buffer.held(k) == v;
        };
        bool ok = true;
        switch (c.kind) {
        case command_kind::register_name:
            ok = required(json_key::user, c.target) && optional_is(json_key::secret, json_value::string);
            c.text = buffer.string(json_key::secret);
            break;
        case command_kind::msg: ok = required(json_key::to, c.target) && required(json_key::text, c.text); break;
        case command_kind::say: ok = required(json_key::room, c.target) && required(json_key::text, c.text); break;
        case command_kind::join:
        case command_kind::leave: ok = required(json_key::room, c.target); break;
        case command_kind::watch:
        case command_kind::unwatch: ok = required(json_key::user, c.target); break;
        case command_kind::typing:
            ok = required(json_key::to, c.target) && optional_is(json_key::stop, json_value::boolean);
            c.stop = buffer.stop_;
            break;
        case command_kind::send:
            ok = required(json_key::id, c.id) && is_valid_name(c.id) && required(json_key::to, c.target) &&
                 required(json_key::text, c.text);
            if (!ok) c.id = {};
            break;
        case command_kind::ack: {
            const json_value on = buffer.held(json_key::on), seq = buffer.held(json_key::seq);
            if (on == json_value::boolean && buffer.on_ && seq == json_value::absent) {
                c.target = "on";
            } else if (seq == json_value::unsigned_number && on == json_value::absent) {
                char* const first = buffer.seq_digits_;
                const auto r = std::to_chars(first, first + sizeof buffer.seq_digits_, buffer.seq_);
                c.target = std::string_view(first, static_cast<std::size_t>(r.ptr - first));
            } else {
                ok = false;
            }
            break;
        }
        case command_kind::who:
        case command_kind::quit:
        case command_kind::unknown: break;
        }
        if (!ok) {
            c.usage_error = true;
            c.target = c.text = {};
            c.stop = false;
        }
        return c;
    }
};

// Several whole messages of one read parsed with one simdjson stage 1 (an `iterate_many()`
// document stream over the messages laid out one after another, each followed by a space), then
// read one by one, in order, as json_session reads a single message (views into the batch).
// Stage 1 has a large fixed cost per call (SIMD blocks of 64 bytes, set-up): a small message pays
// it whole, a batch shares it (docs/performance.md, "One stage 1 for the JSON frames of a read").
//
// A message is taken from the batch only when that gives exactly what reading it alone gives:
// stage 1 classifies each byte from the state at the start of its message (in a string or not,
// an escape pending, the byte before a scalar), and every message starts in the state a message
// read alone starts in as long as every message before it was proven to be one object followed
// by whitespace only: its document starts inside it (first structural character), the walk reads
// the whole object, and the object's closing '}' is the last non-space byte before the next
// document (or the end), with that next document starting after the message. A message that fails
// any of this (not JSON, not an object, more than one value, a string or object running into the
// next message, nesting past the reader's bound, anything simdjson refuses) is not decided here:
// it and every message after it are read alone, by the caller (json_session's per-message path),
// so one malformed message never changes how another is read. If stage 1 refuses the batch (e.g.
// one message is not UTF-8, or a string is left open at the end) every message is read alone.
// The `[batch]` tests of tests/unit/websocket_protocol.cpp and tests/fuzz/websocket_json_fuzz.cpp
// compare both ways.
//
// Per thread (parsing is synchronous), as json_fast_reader's parser: a buffer of max_bytes plus
// SIMDJSON_PADDING and a parser sized for max_bytes (about 6 bytes per byte: the structural index
// and the string buffer), allocated at the first batch. One batch at a time per thread: a batch
// opened while another is open on the thread is refused (the caller reads alone).
class json_batch {
public:
    // Bounds of one batch: the messages' bytes plus one separator each, and the messages.
    static constexpr std::size_t max_bytes = 8192;
    static constexpr std::size_t max_messages = 64;

    json_batch() noexcept : t_(&state()) {
        if (t_->open) t_ = nullptr; // a batch is open on this thread: refuse
        else t_->open = true;
        if (t_ != nullptr) {
            t_->count = t_->size = t_->next = 0;
            t_->failed = false;
        }
    }
    ~json_batch() {
        if (t_ != nullptr) t_->open = false; // the stream stays (it points into the thread's buffer)
    }
    json_batch(const json_batch&) = delete;
    json_batch& operator=(const json_batch&) = delete;

    // False when this thread's batch was in use (then add() gives null).
    [[nodiscard]] bool usable() const noexcept { return t_ != nullptr; }

    // Room for the next message, `n` bytes, which the caller writes there; null when it would
    // take the batch past max_bytes or max_messages (or the batch is not usable). Before parse().
    // @throws std::bad_alloc the first time a thread's buffer is allocated.
    [[nodiscard]] char* add(std::size_t n) {
        if (t_ == nullptr || t_->count == max_messages || n + 1 > max_bytes - t_->size) return nullptr;
        if (!t_->buffer) {
            t_->buffer.reset(new char[max_bytes + sentinel.size() + simdjson::SIMDJSON_PADDING]);
            std::memset(t_->buffer.get(), ' ', max_bytes + sentinel.size() + simdjson::SIMDJSON_PADDING);
        }
        char* const at = t_->buffer.get() + t_->size;
        t_->starts[t_->count] = static_cast<std::uint32_t>(t_->size);
        t_->ends[t_->count] = static_cast<std::uint32_t>(t_->size + n);
        ++t_->count;
        t_->size += n + 1;
        at[n] = ' '; // the separator
        return at;
    }

    // Stage 1 over the messages added. False when simdjson refuses it (then every message is
    // read alone; next() gives false).
    [[nodiscard]] bool parse() noexcept {
        if (t_ == nullptr || t_->count == 0) return false;
#if defined(SIMDJSON_THREADS_ENABLED)
        t_->parser.threaded = false; // one batch: no stage 1 thread
#endif
        // A last document after the messages (see `sentinel`).
        std::memcpy(t_->buffer.get() + t_->size, sentinel.data(), sentinel.size());
        if (t_->parser.iterate_many(t_->buffer.get(), t_->size + sentinel.size(), max_bytes + sentinel.size())
                .get(t_->stream) != simdjson::SUCCESS)
            return fail();
        t_->it = t_->stream.begin();
        if (!(t_->it != t_->stream.end()) || t_->it.error() != simdjson::SUCCESS) return fail();
        return true;
    }

    // Reads the next message's fields into `buffer` (its command: json_command_access::command_of()),
    // string values without escapes left as views into the batch (valid until this batch is
    // destroyed). False when the batch does not decide this message: the caller reads it, and
    // every later one, alone.
    [[nodiscard]] bool next(json_command_buffer& buffer, std::size_t max_depth) {
        using simdjson::SUCCESS;
        if (t_ == nullptr || t_->failed || t_->next == t_->count) return false;
        const std::size_t k = t_->next++;
        if (k != 0) ++t_->it;
        if (!(t_->it != t_->stream.end())) return fail();
        simdjson::ondemand::document_reference doc;
        if ((*t_->it).get(doc) != SUCCESS) return fail();
        const std::size_t start = t_->starts[k], end = t_->ends[k];
        const std::size_t first = t_->it.current_index(); // the document's first structural byte
        if (first < start || first >= end) return fail();
        buffer.clear(end - start);
        simdjson::ondemand::object root;
        if (doc.get_object().get(root) != SUCCESS) return fail();
        const char* const base = t_->buffer.get();
        if (json_fast_reader(buffer, max_depth == 0 ? 1 : max_depth, true).read_object(root, base) != json_read::object)
            return fail();
        // Where the next document starts (there is one: the sentinel at least): past this
        // message, with only whitespace between it and the object's closing '}', which lies in
        // this message. (No next document means stage 1 dropped the structural characters after
        // this object, as it does for an unfinished last document in a stream: undecided.)
        const simdjson::simdjson_result<const char*> location = doc.current_location();
        if (location.error() != SUCCESS) return fail();
        const auto after = static_cast<std::size_t>(location.value_unsafe() - base);
        if (after < end) return fail();
        std::size_t close = after;
        while (close > start && is_space(base[close - 1])) --close;
        return close != start && close <= end && base[close - 1] == '}' ? true : fail();
    }

private:
    struct thread_state {
        simdjson::ondemand::parser parser;
        simdjson::ondemand::document_stream stream;
        simdjson::ondemand::document_stream::iterator it;
        std::unique_ptr<char[]> buffer; // max_bytes + SIMDJSON_PADDING
        std::array<std::uint32_t, max_messages> starts{}, ends{};
        std::size_t count = 0, size = 0, next = 0;
        bool open = false, failed = false;
    };
    static thread_state& state() {
        static thread_local thread_state t;
        return t;
    }
    static bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
    // After the last message's separator: a complete document, so that every message is followed
    // by one. simdjson's stage 1 in a stream drops the structural characters of an unfinished
    // last document (from where it judges that document to start); with the sentinel that can
    // only happen when the messages end unfinished (then no next document is found: undecided),
    // and a valid message is always followed by a structural character next() can read.
    static constexpr std::string_view sentinel = "0 ";
    bool fail() noexcept {
        t_->failed = true;
        return false;
    }

    thread_state* t_;
};

// parse_json_command() with nlohmann's parser only: the reference the fast reader is compared
// with (tests/unit/json_parse_fast.cpp, tests/fuzz/websocket_json_fuzz.cpp).
[[nodiscard]] inline protocol::command parse_json_command_reference(std::string_view text, json_command_buffer& buffer,
                                                                    std::size_t max_depth = default_max_json_depth) {
    return json_command_access::parse(text, buffer, max_depth, json_command_access::reader::reference);
}

} // namespace detail

/// @brief Reads one client message of the JSON format into a command (docs/protocol.md, "JSON
/// wire format": one object; `"type"` names the command, matched ASCII case-insensitively as the
/// line protocol's command word; the other fields are its arguments).
///
/// Field rules, so that `command_session` applies the line protocol's semantics:
/// - a required string field (`user`, `to`, `room`, `text`) that is missing, not a string or
///   empty is `usage_error` (as an empty target or text in the line protocol); its content is not
///   validated here (names: `invalid-name`, texts: `invalid-text`, in the session's check order);
/// - optional fields: `secret` (string) for `register`, `stop` (boolean) for `typing`; of the
///   wrong type they are a usage error too;
/// - `send` needs `id`, 1-40 bytes of `[A-Za-z0-9_.-]`, else usage error;
/// - `ack` needs exactly one of `"on": true` or `"seq": <integer 0..2^64-1>`; `target` is then
///   `on` or the decimal digits of seq;
/// - fields the command does not read, and fields nested deeper, are ignored; of a field given
///   twice, the last counts.
///
/// Parsing: simdjson's On-Demand API reads the message and validates all of it (SIMD stage 1,
/// then a walk over every value); whatever simdjson refuses is read again by nlohmann's SAX
/// parser, which then decides. So the accepted and refused messages are exactly nlohmann's (RFC
/// 8259; a leading UTF-8 byte order mark allowed; integers beyond 64 bits read as numbers, not
/// refused; numbers beyond the range of a double refused), and a refused message costs both
/// parsers (docs/performance.md, "Where the time goes").
/// @param text one complete WebSocket text message (its size bounded by the frame codec's
///        `max_message`); it must be valid UTF-8 JSON.
/// @param buffer where the field values are kept; the returned views point into it and stay
///        valid until the next call with this buffer, or its destruction.
/// @param max_depth deepest nesting of objects and arrays accepted (1 or more; default 16).
/// @param readable bytes readable (and initialized) from `text.data()` on; 0 or anything below
///        `text.size() + json_read_padding` means just the message. With that padding after it the
///        message is read where it lies (the WebSocket decoder keeps it:
///        `protocol::websocket_decoder_options::padding`); otherwise it is first copied into a
///        padded per-thread buffer. The padding's content does not matter and is not changed.
/// @return the command. `malformed == "invalid-json"` when `text` is not JSON (syntax, invalid
///         UTF-8 or escapes), not an object, or nests deeper than `max_depth` (parsing stops
///         there); `unknown` with an empty `word` when `"type"` is missing or not a string;
///         `unknown` with `word` = the type for any other type; else the command, `usage_error`
///         set per the rules above.
/// @throws std::bad_alloc when memory runs out; never anything else (a JSON error is a value).
/// @note Thread-safe for distinct buffers. No DOM is built. Per thread, simdjson's parser and a
///       padded copy of the message (when `readable` is short) are kept, sized for the largest message read on that thread
///       up to 1 MiB (`detail::json_fast_max_message`; larger ones go to nlohmann only). Stack use
///       is bounded: simdjson's walk recurses at most 32 levels (`detail::json_fast_max_depth`;
///       deeper, under a larger `max_depth`, nlohmann reads), nlohmann keeps its own stack.
[[nodiscard]] inline protocol::command parse_json_command(std::string_view text, json_command_buffer& buffer,
                                                          std::size_t max_depth = default_max_json_depth,
                                                          std::size_t readable = 0) {
    return detail::json_command_access::parse(text, buffer, max_depth, detail::json_command_access::reader::fast,
                                              readable);
}

/// @brief The JSON object of a reply (docs/protocol.md, "JSON wire format"): `"type"` first,
/// then the reply's fields.
///
/// - `ok`: `{"type":"ok","command":<command>}` plus `"user"` (register, watch, unwatch), `"room"`
///   (join, leave) or `"on":true` (ack);
/// - `queued`: `{"type":"ok","command":"msg","queued":true,"to":<user>}`;
/// - `error`: `{"type":"error","error":<token>}` plus `"command"` (when known) and `"argument"`
///   (when any; the word of `unknown-command` ASCII-lowercased);
/// - `who`: `{"type":"who","users":[...]}`; `sent`: `{"type":"sent","id":..,"outcome":..}`;
///   `info`: `{"type":"info","text":..}`.
/// @param r the reply; its strings are copied into the object.
/// @return the object (keys in that order).
/// @throws std::bad_alloc when memory runs out.
/// @note Thread-safe (pure function).
[[nodiscard]] inline nlohmann::ordered_json json_object(const protocol::reply& r) {
    using protocol::command_kind;
    using protocol::reply_kind;
    nlohmann::ordered_json j;
    switch (r.kind) {
    case reply_kind::ok:
        j["type"] = "ok";
        j["command"] = to_string(r.command);
        switch (r.command) {
        case command_kind::register_name:
        case command_kind::watch:
        case command_kind::unwatch: j["user"] = r.argument; break;
        case command_kind::join:
        case command_kind::leave: j["room"] = r.argument; break;
        case command_kind::ack: j["on"] = true; break;
        default:
            if (!r.argument.empty()) j["argument"] = r.argument;
            break;
        }
        break;
    case reply_kind::queued:
        j["type"] = "ok";
        j["command"] = to_string(r.command);
        j["queued"] = true;
        j["to"] = r.argument;
        break;
    case reply_kind::error: {
        j["type"] = "error";
        j["error"] = r.code;
        if (r.command != command_kind::unknown) j["command"] = to_string(r.command);
        if (!r.argument.empty()) {
            std::string argument(r.argument);
            if (r.code == protocol::error_token::unknown_command)
                for (char& ch : argument) ch = fold_ascii(ch);
            j["argument"] = std::move(argument);
        }
        break;
    }
    case reply_kind::who: {
        j["type"] = "who";
        nlohmann::ordered_json& users = j["users"] = nlohmann::ordered_json::array();
        if (r.users)
            for (const std::string_view u : *r.users) users.push_back(u);
        break;
    }
    case reply_kind::sent:
        j["type"] = "sent";
        j["id"] = r.argument;
        j["outcome"] = r.outcome;
        break;
    case reply_kind::info:
        j["type"] = "info";
        j["text"] = r.argument;
        break;
    }
    return j;
}

/// @brief The JSON object of an event (docs/protocol.md, "JSON wire format", events):
/// `msg` {from, text}, `room` {room, from, text}, `join`/`leave` {room, user}, `dm` {seq, from,
/// text}, `presence` {user, online, last_seen (omitted when never seen)}, `typing` {from, stop},
/// `bye` {reason}; a `send_outcome` is the object of the reply it stands for
/// (`protocol::send_outcome_reply()`), a `register_outcome` too (`protocol::register_outcome_reply()`).
/// @param e the event; its strings are copied into the object.
/// @return the object, `"type"` first.
/// @throws std::bad_alloc when memory runs out.
/// @note Thread-safe (pure function).
[[nodiscard]] inline nlohmann::ordered_json json_object(const event& e) {
    using object = nlohmann::ordered_json;
    switch (e.kind) {
    case event_kind::direct_message: return object{{"type", "msg"}, {"from", e.user}, {"text", e.text}};
    case event_kind::room_message: return object{{"type", "room"}, {"room", e.room}, {"from", e.user}, {"text", e.text}};
    case event_kind::member_joined: return object{{"type", "join"}, {"room", e.room}, {"user", e.user}};
    case event_kind::member_left: return object{{"type", "leave"}, {"room", e.room}, {"user", e.user}};
    case event_kind::acked_message: return object{{"type", "dm"}, {"seq", e.seq}, {"from", e.user}, {"text", e.text}};
    case event_kind::presence_online: return object{{"type", "presence"}, {"user", e.user}, {"online", true}};
    case event_kind::presence_offline: {
        object j{{"type", "presence"}, {"user", e.user}, {"online", false}};
        if (e.last_seen >= 0) j["last_seen"] = e.last_seen; // omitted: never seen
        return j;
    }
    case event_kind::typing_started: return object{{"type", "typing"}, {"from", e.user}, {"stop", false}};
    case event_kind::typing_stopped: return object{{"type", "typing"}, {"from", e.user}, {"stop", true}};
    case event_kind::session_replaced: return object{{"type", "bye"}, {"reason", "replaced"}};
    case event_kind::session_closed: return object{{"type", "bye"}, {"reason", to_string(e.code)}};
    case event_kind::send_outcome: break;
    case event_kind::register_outcome: return json_object(protocol::register_outcome_reply(e));
    }
    return json_object(protocol::send_outcome_reply(e));
}

/// @brief The JSON text of a reply or an event: `json_object(x)` serialized compactly (no
/// spaces), non-ASCII written as UTF-8, control characters escaped, invalid UTF-8 replaced by
/// U+FFFD (never for what the router sends: names are ASCII, texts valid UTF-8).
/// @param x a `protocol::reply` or an `event`.
/// @return the text, one JSON object, no terminator.
/// @throws std::bad_alloc when memory runs out.
/// @note Thread-safe (pure function).
template <class ReplyOrEvent>
[[nodiscard]] std::string json_text(const ReplyOrEvent& x) {
    return json_object(x).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

namespace detail {

// True when none of the 8 bytes in `x` needs an escape or is outside ASCII: no byte below 0x20,
// no '"' (0x22), no '\\' (0x5C), none at 0x80 or above (exact for the word as a whole).
[[nodiscard]] constexpr bool json_plain8(std::uint64_t x) noexcept {
    constexpr std::uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    const std::uint64_t quote = x ^ (ones * 0x22u), backslash = x ^ (ones * 0x5Cu);
    const std::uint64_t below_space = (x - ones * 0x20u) & ~x;
    const std::uint64_t has_quote = (quote - ones) & ~quote;
    const std::uint64_t has_backslash = (backslash - ones) & ~backslash;
    return ((below_space | has_quote | has_backslash | x) & high) == 0;
}

// The JSON escape of control byte `c` (below 0x20) as nlohmann's serializer writes it: the short
// forms \b \t \n \f \r, else \u00XX with lowercase hex digits. Returns its length (2 or 6).
inline std::size_t json_escape_control(unsigned char c, char* out) noexcept {
    char short_form = 0;
    switch (c) {
    case '\b': short_form = 'b'; break;
    case '\t': short_form = 't'; break;
    case '\n': short_form = 'n'; break;
    case '\f': short_form = 'f'; break;
    case '\r': short_form = 'r'; break;
    default: break;
    }
    out[0] = '\\';
    if (short_form) {
        out[1] = short_form;
        return 2;
    }
    constexpr char hex[] = "0123456789abcdef";
    out[1] = 'u';
    out[2] = '0';
    out[3] = '0';
    out[4] = hex[c >> 4];
    out[5] = hex[c & 0xF];
    return 6;
}

// The size of `s` written as the contents of a JSON string the way nlohmann's serializer writes
// it with `ensure_ascii` off: '"' and '\\' escaped, control bytes as in json_escape_control(),
// everything else (UTF-8 included) as is. `npos` when `s` holds a byte at 0x80 or above and is not
// valid UTF-8: nlohmann replaces those (U+FFFD), and the caller leaves such a text to it.
[[nodiscard]] inline std::size_t json_escaped_size(std::string_view s) noexcept {
    const char* p = s.data();
    const std::size_t n = s.size();
    std::size_t size = n, i = 0;
    bool non_ascii = false;
    // Bytes [from, to) one at a time: what each adds to the size, and whether any is non-ASCII.
    const auto count = [&](std::size_t from, std::size_t to) noexcept {
        for (std::size_t k = from; k < to; ++k) {
            const auto c = static_cast<unsigned char>(p[k]);
            if (c < 0x20) size += c == '\b' || c == '\t' || c == '\n' || c == '\f' || c == '\r' ? 1 : 5;
            else if (c == '"' || c == '\\') size += 1;
            else if (c >= 0x80) non_ascii = true;
        }
    };
#if defined(SWITCHBOARD_TEXT_SSE2)
    // 16 bytes per step (every x86-64 CPU has SSE2): the signed compare flags bytes below 0x20
    // and, being negative, every byte at 0x80 or above; '"' and '\\' are compared for equality.
    const auto flagged = [](const char* block) noexcept {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block));
        return _mm_movemask_epi8(_mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                                              _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                                           _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))))) != 0;
    };
    for (; i + 16 <= n; i += 16)
        if (flagged(p + i)) count(i, i + 16);
    if (i < n) { // the last 1-15 bytes (a name is all of it)
        if (n >= 8) {
            // Two 8-byte words covering them, overlapping each other or bytes already counted
            // (a flag from those only costs the byte loop over the last bytes).
            std::uint64_t head, tail;
            std::memcpy(&head, p + std::min(i, n - 8), 8);
            std::memcpy(&tail, p + n - 8, 8);
            if (!json_plain8(head) || !json_plain8(tail)) count(i, n);
        } else {
            count(i, n); // under 8 bytes in all
        }
        i = n;
    }
#endif
    for (; i + 8 <= n; i += 8) {
        std::uint64_t x;
        std::memcpy(&x, p + i, 8);
        if (!json_plain8(x)) count(i, i + 8);
    }
    count(i, n);
    if (non_ascii && !protocol::is_valid_utf8(s)) return std::string_view::npos;
    return size;
}

// Writes `s` escaped (json_escaped_size() bytes, which the caller computed as `escaped`).
inline char* json_write_escaped(char* out, std::string_view s, std::size_t escaped) noexcept {
    if (escaped == s.size()) { // nothing to escape: the common case
        if (!s.empty()) std::memcpy(out, s.data(), s.size());
        return out + s.size();
    }
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20) {
            out += json_escape_control(c, out);
        } else {
            if (c == '"' || c == '\\') *out++ = '\\';
            *out++ = ch;
        }
    }
    return out;
}

// The hand-written writer of the two hot events, `msg` and `room`: exactly the bytes of
// `json_text(e)` (nlohmann's serializer, compact, keys in order), without building an object.
// Any other event, or a string that is not valid UTF-8 (which the router never routes, but a
// caller may pass), is not `ok()`: the caller falls back to `json_text()`.
class json_hot_event {
public:
    explicit json_hot_event(const event& e) noexcept : e_(&e) {
        if (e.kind != event_kind::direct_message && e.kind != event_kind::room_message) return;
        room_ = e.kind == event_kind::room_message ? json_escaped_size(e.room) : 0;
        user_ = json_escaped_size(e.user);
        text_ = json_escaped_size(e.text);
        constexpr std::size_t npos = std::string_view::npos;
        if (room_ == npos || user_ == npos || text_ == npos) return;
        const std::size_t head = e.kind == event_kind::room_message ? room_literal().size() + from_literal().size()
                                                                    : msg_literal().size();
        size_ = head + room_ + user_ + text_tail().size() + text_ + end_literal().size();
        ok_ = true;
    }
    [[nodiscard]] bool ok() const noexcept { return ok_; }
    // The object's size in bytes (when ok()).
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    // Writes size() bytes at `out` (when ok()).
    void write(char* out) const noexcept {
        const auto put = [&out](std::string_view literal) {
            std::memcpy(out, literal.data(), literal.size());
            out += literal.size();
        };
        if (e_->kind == event_kind::room_message) {
            put(room_literal());
            out = json_write_escaped(out, e_->room, room_);
            put(from_literal());
        } else {
            put(msg_literal());
        }
        out = json_write_escaped(out, e_->user, user_);
        put(text_tail());
        out = json_write_escaped(out, e_->text, text_);
        put(end_literal());
    }

private:
    // {"type":"msg","from":"<user>","text":"<text>"}
    // {"type":"room","room":"<room>","from":"<user>","text":"<text>"}
    static constexpr std::string_view msg_literal() noexcept { return "{\"type\":\"msg\",\"from\":\""; }
    static constexpr std::string_view room_literal() noexcept { return "{\"type\":\"room\",\"room\":\""; }
    static constexpr std::string_view from_literal() noexcept { return "\",\"from\":\""; }
    static constexpr std::string_view text_tail() noexcept { return "\",\"text\":\""; }
    static constexpr std::string_view end_literal() noexcept { return "\"}"; }

    const event* e_;
    std::size_t room_ = 0, user_ = 0, text_ = 0, size_ = 0;
    bool ok_ = false;
};

// Whether a frame step has `static payload build(std::size_t body_size, Fill fill)`: a payload
// with room for the body, which `fill(char*)` writes in place (see `text_frame`, `bare_json`).
template <class Frame, class = void>
struct frame_builds_in_place : std::false_type {};
template <class Frame>
struct frame_builds_in_place<Frame, std::void_t<decltype(Frame::build(std::size_t{}, std::declval<void (*)(char*)>()))>>
    : std::true_type {};

} // namespace detail

/// @brief The frame step that adds nothing: the payload is the bare JSON text (for tests, and for
/// transports that frame messages themselves). A WebSocket transport uses a step that writes a
/// text frame around the body (e.g. one calling `encode_websocket_text()`).
///
/// A `Frame` type provides `static payload frame(std::string_view json)`: the bytes to send for
/// one JSON text, which it must carry as exactly one message. It may also provide
/// `template <class Fill> static payload build(std::size_t body_size, Fill&& fill)`: the same
/// payload for a body of `body_size` bytes that `fill(char* body)` writes in place, so that the
/// hot events are written straight into the payload (no intermediate string, no copy).
struct bare_json {
    /// @brief `json` copied into a payload. @throws std::bad_alloc when memory runs out.
    [[nodiscard]] static payload frame(std::string_view json) { return payload::copy_of(json); }
    /// @brief A payload of `body_size` bytes written by `fill(char*)`.
    /// @throws std::bad_alloc when memory runs out.
    template <class Fill>
    [[nodiscard]] static payload build(std::size_t body_size, Fill&& fill) {
        return payload::build(body_size, std::forward<Fill>(fill));
    }
};

/// @brief The JSON wire format as both encoders a session needs: routed events
/// (`event_encoder`, one object per event, `json_object(const event&)`) and replies
/// (`protocol::reply_encoder`, `json_object(const reply&)`), each object passed through `Frame`.
///
/// JSON escaping carries every text as one message, so it refuses no event the router makes. The
/// name and text checks of the line encoder are not repeated: called directly with any views, it
/// still writes exactly one object (invalid UTF-8 replaced by U+FFFD).
///
/// Thread safety: stateless; one instance may be shared by any number of routers, sessions and
/// threads.
/// @tparam Frame the frame step (see `bare_json`).
template <class Frame = bare_json>
class basic_json_format final : public event_encoder, public protocol::reply_encoder {
public:
    /// @brief Encodes `e` as one framed JSON object.
    /// @param e the event; read during the call only.
    /// @return the payload; never empty.
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] payload encode(const event& e) const override {
        const detail::json_hot_event hot(e);
        if (!hot.ok()) return Frame::frame(json_text(e));
        if constexpr (detail::frame_builds_in_place<Frame>::value) {
            return Frame::build(hot.size(), [&hot](char* body) { hot.write(body); });
        } else {
            std::string text(hot.size(), '\0');
            hot.write(text.data());
            return Frame::frame(text);
        }
    }

    /// @brief Encodes `r` as one framed JSON object.
    /// @param r the reply; read during the call only.
    /// @return the payload; never empty.
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] payload encode(const protocol::reply& r) const override { return Frame::frame(json_text(r)); }

    /// @brief The process-wide instance: the format to name in `router::open_session()` and the
    /// reply format of the session's `command_session` (or `json_session`).
    [[nodiscard]] static const basic_json_format& instance() noexcept {
        static const basic_json_format format;
        return format;
    }
};

/// @brief The JSON format with bare JSON text, unframed: one object per payload, no terminator.
using json_format = basic_json_format<>;
/// @brief `json_format` named for its use as the `event_encoder` of a session.
using json_event_encoder = json_format;
/// @brief `json_format` named for its use as the `reply_encoder` of a `command_session`.
using json_reply_encoder = json_format;

/// @brief The server side of the JSON format for one session: each complete message is parsed
/// (`parse_json_command()`) and applied by a `protocol::command_session`, which answers through
/// the session's reply format.
///
/// The transport delivers whole messages (a WebSocket text message, reassembled and checked by the
/// frame codec) to `on_message()`; unlike the line protocol there is no framing state here.
///
/// Thread safety: none of its own. Call it only while holding the router; one per session.
class json_session {
public:
    /// @brief Binds to session `id` of router `r`.
    /// @param r the router; must outlive this object.
    /// @param id an open session of `r` (opened with the JSON event format, framed alike).
    /// @param replies the reply format (e.g. `json_reply_encoder::instance()` or a framed one);
    ///        must outlive this object.
    /// @param options the rate limit and its counter; read during construction only.
    /// @param max_depth deepest nesting accepted (see `parse_json_command()`).
    json_session(router& r, session_id id, const protocol::reply_encoder& replies,
                 const protocol::command_session_options& options = {},
                 std::size_t max_depth = default_max_json_depth)
        : commands_(r, id, replies, options), max_depth_(max_depth) {}

    /// @brief The router session this state drives.
    [[nodiscard]] session_id id() const noexcept { return commands_.id(); }

    /// @brief Applies one message received at `now`.
    /// @param text the message (one JSON object); read during the call only.
    /// @param now the time it was read, from a monotonic clock (see `command_session::apply()`).
    /// @param readable bytes readable from `text.data()` on (see `parse_json_command()`; 0: the
    ///        message only, which then costs a copy).
    /// @return `quit` once `quit` was applied (or after `on_end_of_input()`; the message is then
    ///         ignored), else `keep_reading`. Errors are replies, not results.
    /// @note In a cluster a `register` may be answered later (`commands().waiting()` is then
    ///       true): a host that drives this class itself holds its next messages until it is
    ///       false again, as `websocket_protocol` does (docs/design.md, "Clusters: the directory
    ///       hook and remote sessions").
    /// @throws std::bad_alloc when memory runs out.
    protocol::input_result on_message(std::string_view text,
                                      std::chrono::nanoseconds now = std::chrono::nanoseconds::zero(),
                                      std::size_t readable = 0) {
        if (commands_.quit()) return protocol::input_result::quit;
        // The command is used during apply() only, while `text` is valid: string fields without
        // escapes stay views into it.
        const bool go_on = commands_.apply(detail::json_command_access::parse(
                                               text, buffer_, max_depth_, detail::json_command_access::reader::fast,
                                               readable, true),
                                           now);
        return go_on ? protocol::input_result::keep_reading : protocol::input_result::quit;
    }

    /// @brief What `on_unchecked_message()` made of a message.
    enum class unchecked_result : std::uint8_t {
        keep_reading, ///< applied (or ignored after quit), go on
        quit,         ///< `quit` was applied, or the input had ended
        invalid_utf8, ///< not UTF-8: nothing applied; fail the connection with 1007 (RFC 6455 8.1)
    };

    /// @brief `on_message()` for a message whose UTF-8 has not been checked yet (a WebSocket
    /// text message the frame decoder left unchecked: `websocket_message::utf8_unchecked`). The
    /// check costs nothing extra when simdjson reads the message (its stage 1 validates UTF-8);
    /// a message simdjson refuses is checked with `protocol::is_valid_utf8()` before nlohmann
    /// reads it. Views of the command into `text` are used during the call only (string fields
    /// without escapes are not copied).
    /// @param text the message, read during the call only.
    /// @param now the time it was read, from a monotonic clock (as `on_message()`).
    /// @param readable bytes readable from `text.data()` on (as `on_message()`; 0: the message only).
    /// @return `invalid_utf8` (nothing applied, the session unchanged) when `text` is not UTF-8,
    ///         else as `on_message()`.
    /// @throws std::bad_alloc when memory runs out.
    unchecked_result on_unchecked_message(std::string_view text, std::chrono::nanoseconds now,
                                          std::size_t readable = 0) {
        if (commands_.quit()) return unchecked_result::quit;
        bool not_utf8 = false;
        const protocol::command c = detail::json_command_access::parse(
            text, buffer_, max_depth_, detail::json_command_access::reader::fast, readable, true, &not_utf8);
        if (not_utf8) return unchecked_result::invalid_utf8;
        return commands_.apply(c, now) ? unchecked_result::keep_reading : unchecked_result::quit;
    }

    /// @brief What `on_batched_message()` made of the next message of a batch.
    enum class batched_result : std::uint8_t {
        keep_reading, ///< applied (or ignored after quit), go on
        quit,         ///< `quit` was applied, or the input had ended
        undecided,    ///< not decided by the batch, nothing applied: read this message and every
                      ///< later one of the batch alone (`on_unchecked_message()`)
    };

    /// @brief Applies the next message of `batch` (`detail::json_batch`: the whole text messages
    /// of one read, parsed with one simdjson stage 1), received at `now`, when the batch decides
    /// it: exactly as `on_unchecked_message()` would apply that message (its UTF-8 was checked by
    /// the batch's stage 1). The command's views into the batch are used during the call only.
    /// @param batch the batch, parsed (`detail::json_batch::parse()`); its messages are taken in order.
    /// @param now the time it was read, from a monotonic clock (as `on_message()`).
    /// @return `keep_reading` or `quit` as `on_message()`; `undecided` (nothing applied, the
    ///         session unchanged) when the batch cannot decide the message.
    /// @throws std::bad_alloc when memory runs out.
    batched_result on_batched_message(detail::json_batch& batch, std::chrono::nanoseconds now) {
        if (commands_.quit()) return batched_result::quit;
        if (!batch.next(buffer_, max_depth_)) return batched_result::undecided;
        return commands_.apply(detail::json_command_access::command_of(buffer_), now) ? batched_result::keep_reading
                                                                                       : batched_result::quit;
    }

    /// @brief The input ended (the peer closed): later messages are ignored.
    /// @return always `quit`.
    protocol::input_result on_end_of_input() noexcept {
        commands_.end();
        return protocol::input_result::quit;
    }

    /// @brief The command state, e.g. to send a notice (`commands().reply_with(reply::info(..))`).
    [[nodiscard]] protocol::command_session& commands() noexcept { return commands_; }

private:
    protocol::command_session commands_;
    json_command_buffer buffer_;
    std::size_t max_depth_;
};

} // namespace switchboard::websocket
