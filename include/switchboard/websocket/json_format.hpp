/// @file
/// @brief The JSON wire format of the WebSocket transport (subprotocol `switchboard.json`),
/// sans-I/O: one JSON object per WebSocket text message (docs/protocol.md, "JSON wire format").
///
/// - `parse_json_command()` reads a client's message into a format-neutral `protocol::command`
///   (nlohmann's SAX parser, nesting bounded), which `protocol::command_session` applies with
///   exactly the semantics of the line protocol.
/// - `json_object()` / `json_text()` write a `reply` or an `event` as a JSON object (nlohmann's
///   serializer: every string escaped, invalid UTF-8 replaced by U+FFFD).
/// - `basic_json_format` is the format's `event_encoder` and `reply_encoder` in one, with a
///   pluggable frame step (`Frame`); `json_format` (alias `json_event_encoder`,
///   `json_reply_encoder`) outputs the bare JSON text, unframed.
/// - `json_session` ties the parser and a `command_session` together for one session.
///
/// No framing here: the WebSocket frame codec (protocol/websocket_frame.hpp) bounds a message's
/// size (`max_message`) and checks its UTF-8 before a message reaches this parser.
#pragma once

#include "../event.hpp"
#include "../names.hpp"
#include "../payload.hpp"
#include "../router.hpp"
#include "../session_id.hpp"
#include "../status.hpp"
#include "../protocol/command.hpp"
#include "../protocol/command_session.hpp"
#include "../protocol/reply.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

namespace switchboard::websocket {

/// @brief Default deepest nesting of objects and arrays a command may have: 16 (the command
/// object itself is level 1). Commands need 1; the rest is room for fields a client adds and the
/// server ignores. Deeper messages are answered `invalid-json`.
inline constexpr std::size_t default_max_json_depth = 16;

class json_command_buffer;

namespace detail {

// The fields a command may have (docs/protocol.md, "JSON wire format"); strings first.
enum class json_key : std::uint8_t { type, user, to, room, text, secret, id, stop, on, seq, other };
inline constexpr std::size_t json_string_keys = 7; // type .. id
inline constexpr std::size_t json_keys = 10;       // type .. seq

// What a field held (absent: not in the message).
enum class json_value : std::uint8_t { absent, string, boolean, unsigned_number, other };

[[nodiscard]] constexpr json_key json_key_of(std::string_view k) noexcept {
    constexpr std::string_view names[json_keys] = {"type", "user", "to", "room", "text",
                                                   "secret", "id", "stop", "on", "seq"};
    for (std::size_t i = 0; i < json_keys; ++i)
        if (k == names[i]) return static_cast<json_key>(i);
    return json_key::other;
}

class json_command_reader;

} // namespace detail

/// @brief The storage a parsed JSON command's views point into: the known fields' values.
///
/// Keep one per session and pass it to every `parse_json_command()` call: its strings keep their
/// capacity, so in the steady state parsing a command allocates nothing.
///
/// Thread safety: none; one buffer per session.
class json_command_buffer {
public:
    json_command_buffer() = default;

private:
    friend class detail::json_command_reader;
    friend protocol::command parse_json_command(std::string_view, json_command_buffer&, std::size_t);

    void clear() noexcept {
        held_.fill(detail::json_value::absent);
        for (std::string& s : strings_) s.clear();
        stop_ = on_ = false;
        seq_ = 0;
    }
    [[nodiscard]] detail::json_value held(detail::json_key k) const noexcept {
        return held_[static_cast<std::size_t>(k)];
    }
    [[nodiscard]] std::string_view string(detail::json_key k) const noexcept {
        return strings_[static_cast<std::size_t>(k)];
    }

    std::array<detail::json_value, detail::json_keys> held_{};
    std::array<std::string, detail::json_string_keys> strings_;
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
        if (static_cast<std::size_t>(pending_) < json_string_keys) b_->strings_[static_cast<std::size_t>(pending_)].assign(v);
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
/// - fields the command does not read, and fields nested deeper, are ignored.
/// @param text one complete WebSocket text message (its size bounded by the frame codec's
///        `max_message`); nlohmann checks it is valid UTF-8 JSON.
/// @param buffer where the field values are kept; the returned views point into it and stay
///        valid until the next call with this buffer, or its destruction.
/// @param max_depth deepest nesting of objects and arrays accepted (1 or more; default 16).
/// @return the command. `malformed == "invalid-json"` when `text` is not JSON (syntax, invalid
///         UTF-8 or escapes), not an object, or nests deeper than `max_depth` (parsing stops
///         there); `unknown` with an empty `word` when `"type"` is missing or not a string;
///         `unknown` with `word` = the type for any other type; else the command, `usage_error`
///         set per the rules above.
/// @throws std::bad_alloc when memory runs out; never anything else (a JSON error is a value).
/// @note Thread-safe for distinct buffers. Stack use does not grow with the nesting (nlohmann's
///       parser keeps its own stack), and no DOM is built.
[[nodiscard]] inline protocol::command parse_json_command(std::string_view text, json_command_buffer& buffer,
                                                          std::size_t max_depth = default_max_json_depth) {
    using detail::json_key;
    using detail::json_value;
    using protocol::command_kind;
    protocol::command c;
    buffer.clear();
    detail::json_command_reader reader(buffer, max_depth == 0 ? 1 : max_depth);
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
    if (!parsed || !reader.object_read()) {
        c.malformed = protocol::error_token::invalid_json;
        return c;
    }
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
/// (`protocol::send_outcome_reply()`).
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
    case event_kind::send_outcome: break;
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

/// @brief The frame step that adds nothing: the payload is the bare JSON text (for tests, and for
/// transports that frame messages themselves). A WebSocket transport uses a step that writes a
/// text frame around the body (e.g. one calling `encode_websocket_text()`).
///
/// A `Frame` type provides `static payload frame(std::string_view json)`: the bytes to send for
/// one JSON text, which it must carry as exactly one message.
struct bare_json {
    /// @brief `json` copied into a payload. @throws std::bad_alloc when memory runs out.
    [[nodiscard]] static payload frame(std::string_view json) { return payload::copy_of(json); }
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
    [[nodiscard]] payload encode(const event& e) const override { return Frame::frame(json_text(e)); }

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
    /// @return `quit` once `quit` was applied (or after `on_end_of_input()`; the message is then
    ///         ignored), else `keep_reading`. Errors are replies, not results.
    /// @throws std::bad_alloc when memory runs out.
    protocol::input_result on_message(std::string_view text,
                                      std::chrono::nanoseconds now = std::chrono::nanoseconds::zero()) {
        if (commands_.quit()) return protocol::input_result::quit;
        const bool go_on = commands_.apply(parse_json_command(text, buffer_, max_depth_), now);
        return go_on ? protocol::input_result::keep_reading : protocol::input_result::quit;
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
