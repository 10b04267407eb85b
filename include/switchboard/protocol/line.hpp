/// @file
/// @brief The line protocol v1 codec, sans-I/O: bytes in -> lines -> commands; events and replies
/// -> encoded lines. No sockets, clocks or threads (docs/protocol.md is the specification).
///
/// - `line_framer` cuts a byte stream into lines (LF, optional CR before it), with a length limit.
/// - `parse_command()` turns one line into a `command` (command.hpp).
/// - `is_valid_text()` checks a message body (UTF-8, no control bytes but TAB).
/// - `encode_*()`, `line_reply_encoder` and `line_event_encoder` build the server's lines as
///   `payload`s.
#pragma once

#include "../event.hpp"
#include "../names.hpp"
#include "../payload.hpp"
#include "../status.hpp"
#include "../text.hpp"
#include "command.hpp"
#include "reply.hpp"

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::protocol {

/// @brief The message text contract (see `switchboard::is_valid_text`, text.hpp); the line
/// protocol carries exactly the texts it accepts, one line each.
using switchboard::is_valid_text;

/// @brief Default longest accepted line, in bytes, terminator (LF or CRLF) excluded.
inline constexpr std::size_t default_max_line = 4096;

/// @brief Splits a byte stream into lines (docs/protocol.md, "Framing").
///
/// A line ends at LF; one CR right before the LF is dropped. Lines may arrive split over any
/// number of `feed()` calls or many in one call. A line longer than `max_line()` bytes is
/// reported once through `on_too_long` and discarded up to its next LF; the framer buffers at
/// most `max_line() + 1` bytes (the +1 is a CR that may turn out to be part of a CRLF).
/// Complete lines that sit whole inside one `feed()` chunk are passed as views into that chunk,
/// without copying.
///
/// Thread safety: none; one framer per connection, used by one thread at a time.
class line_framer {
public:
    /// @brief A framer for lines of at most `max_line` bytes (1 or more; 0 is treated as 1).
    explicit line_framer(std::size_t max_line = default_max_line) noexcept
        : max_line_(max_line == 0 ? 1 : max_line) {}

    /// @brief Longest accepted line in bytes, terminator excluded.
    [[nodiscard]] std::size_t max_line() const noexcept { return max_line_; }
    /// @brief Bytes of an unfinished line held since the last call (0 to `max_line() + 1`).
    [[nodiscard]] std::size_t buffered() const noexcept { return buffer_.size(); }
    /// @brief True while the rest of an over-long line is being skipped.
    [[nodiscard]] bool discarding() const noexcept { return discarding_; }

    /// @brief Consumes bytes and reports each complete line.
    /// @param bytes    the next chunk of the stream, any size.
    /// @param on_line  `bool(std::string_view line)`: a complete line without its terminator
    ///                 (may be empty). Return false to stop: the rest of the chunk is not read.
    /// @param on_too_long `void()`: called once for each line longer than `max_line()`, when the
    ///                 excess is first seen (possibly before its LF has arrived).
    /// @return number of bytes consumed: `bytes.size()` unless `on_line` returned false.
    /// @note The views passed to `on_line` are valid only during the call.
    template <class OnLine, class OnTooLong>
    std::size_t feed(std::string_view bytes, OnLine&& on_line, OnTooLong&& on_too_long) {
        const char* const begin = bytes.data();
        const std::size_t n = bytes.size();
        std::size_t pos = 0;
        while (pos < n) {
            const void* hit = std::memchr(begin + pos, '\n', n - pos);
            if (discarding_) {
                if (!hit) return n;
                discarding_ = false;
                pos = static_cast<std::size_t>(static_cast<const char*>(hit) - begin) + 1;
                continue;
            }
            if (!hit) { // an unfinished line: keep it, within the bound
                const std::string_view rest(begin + pos, n - pos);
                if (fits_unfinished(buffer_.size() + rest.size(), rest.back())) {
                    buffer_.append(rest.data(), rest.size());
                } else {
                    buffer_.clear();
                    buffer_.shrink_to_fit();
                    discarding_ = true;
                    on_too_long();
                }
                return n;
            }
            const std::size_t lf = static_cast<std::size_t>(static_cast<const char*>(hit) - begin);
            std::string_view segment(begin + pos, lf - pos);
            pos = lf + 1;
            std::string_view line;
            if (buffer_.empty()) {
                line = segment;
            } else if (buffer_.size() + segment.size() <= max_line_ + 1) {
                buffer_.append(segment.data(), segment.size());
                line = buffer_;
            } else {
                buffer_.clear();
                on_too_long();
                continue;
            }
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            if (line.size() > max_line_) {
                buffer_.clear();
                on_too_long();
                continue;
            }
            const bool go_on = on_line(line);
            buffer_.clear();
            if (!go_on) return pos;
        }
        return n;
    }

    /// @brief Ends the stream (peer half-closed): reports the unterminated last line, if any.
    /// @param on_line `void(std::string_view line)` or `bool(...)`, called at most once, with
    ///        one trailing CR dropped as for a terminated line.
    template <class OnLine>
    void finish(OnLine&& on_line) {
        const bool had = !discarding_ && !buffer_.empty();
        discarding_ = false;
        if (had) {
            std::string_view line = buffer_;
            if (line.back() == '\r') line.remove_suffix(1);
            if (!line.empty()) (void)on_line(line);
        }
        buffer_.clear();
    }

private:
    // Could an unfinished line of `size` bytes ending in `last` still turn out to be valid?
    bool fits_unfinished(std::size_t size, char last) const noexcept {
        return size <= max_line_ || (size == max_line_ + 1 && last == '\r');
    }

    std::string buffer_;
    std::size_t max_line_;
    bool discarding_ = false;
};

namespace detail {
// Splits "<target> <text>" at the first space; a missing space, target or text is a usage error.
// Views are made from pointers, not substr(): this runs for every message, and substr()'s range
// check (which cannot fail here) kept it out of line.
inline void split_target_text(command& c, std::string_view rest, bool has_rest) noexcept {
    const char* const p = rest.data();
    const std::size_t n = rest.size();
    const void* const hit = has_rest && n != 0 ? std::memchr(p, ' ', n) : nullptr;
    const std::size_t sp = hit ? static_cast<std::size_t>(static_cast<const char*>(hit) - p) : 0;
    if (sp == 0 || sp + 1 == n) { // no space, or it is the first or the last byte
        c.usage_error = true;
        return;
    }
    c.target = std::string_view(p, sp);
    c.text = std::string_view(p + sp + 1, n - sp - 1);
}
} // namespace detail

/// @brief Parses one line (terminator already removed) into a command.
///
/// Grammar (docs/protocol.md, "Commands"): the command word is case-insensitive and ends at the
/// first space; the argument is everything after exactly one space. `/join` and `/leave` take
/// the whole rest as their name; `/msg` and `/say` split the rest at its first space into a
/// target and a non-empty text; `/register` splits it at its first space into a non-empty name
/// and an optional secret (`text`). `/who` and `/quit` ignore any argument. v1.2: `/watch`,
/// `/unwatch` and `/ack` take the whole rest; `/typing` a name and optionally ` stop` (anything
/// else after the name is a usage error); `/send` a client id (a malformed one is a usage error),
/// then a target and a text as `/msg`.
/// @param line a non-empty line (empty lines are ignored by callers before parsing).
/// @return the command; `usage_error` set when an argument is missing or a text is empty.
///         Names and text are not validated here (that order is the session's: usage ->
///         not-registered -> invalid-name -> invalid-text).
/// @note Thread-safe (pure function). Never allocates.
[[nodiscard]] inline command parse_command(std::string_view line) noexcept {
    command c;
    if (line.empty()) return c;
    const char* const p = line.data();
    const std::size_t n = line.size();
    if (p[0] == '@' || p[0] == '#') {
        c.kind = p[0] == '@' ? command_kind::msg : command_kind::say;
        detail::split_target_text(c, std::string_view(p + 1, n - 1), true);
        return c;
    }
    if (p[0] != '/') return c; // unknown, no word
    // The word ends at the first space (the '/' is not one); views from pointers, as above.
    const void* const hit = std::memchr(p + 1, ' ', n - 1);
    const bool has_rest = hit != nullptr;
    const std::size_t sp = has_rest ? static_cast<std::size_t>(static_cast<const char*>(hit) - p) : n;
    const std::string_view word(p + 1, sp - 1);
    const std::string_view rest = has_rest ? std::string_view(p + sp + 1, n - sp - 1) : std::string_view{};
    const command_kind k = command_kind_of(word);
    if (k != command_kind::unknown) {
        c.kind = k;
        switch (k) {
        case command_kind::msg:
        case command_kind::say: detail::split_target_text(c, rest, has_rest); break;
        case command_kind::register_name: {
            const std::size_t name_end = rest.find(' ');
            c.target = rest.substr(0, name_end);
            if (c.target.empty()) c.usage_error = true;
            else if (name_end != std::string_view::npos) c.text = rest.substr(name_end + 1);
            break;
        }
        case command_kind::join:
        case command_kind::leave:
        case command_kind::watch:
        case command_kind::unwatch:
        case command_kind::ack:
            if (rest.empty()) c.usage_error = true;
            else c.target = rest;
            break;
        case command_kind::typing: {
            const std::size_t name_end = rest.find(' ');
            c.target = rest.substr(0, name_end);
            if (c.target.empty()) c.usage_error = true;
            else if (name_end != std::string_view::npos) {
                c.stop = rest.substr(name_end + 1) == "stop";
                c.usage_error = !c.stop;
            }
            break;
        }
        case command_kind::send: {
            const std::size_t id_end = rest.find(' ');
            const std::string_view id = rest.substr(0, id_end);
            if (id.empty() || id.size() > max_name_length || !is_valid_name(id) || id_end == std::string_view::npos) {
                c.usage_error = true;
                break;
            }
            c.id = id;
            detail::split_target_text(c, rest.substr(id_end + 1), true);
            break;
        }
        default: break;
        }
        return c;
    }
    c.word = word;
    return c;
}

/// @brief Builds a line from parts: their bytes joined by single spaces, then LF.
///
/// Always exactly one line: a control byte in a part (LF, CR, ESC, ... — anything
/// `is_valid_text()` refuses for being below 0x20 but TAB, or 0x7F) is written as `?`, so an
/// echoed argument or a host's notice text can never end the line early or start another one.
/// @param parts views to join; empty views are skipped (no double space).
/// @param lower_from index of the first part to ASCII-lowercase (for `unknown-command <word>`);
///        parts before it are copied as they are. Pass `SIZE_MAX` to lowercase nothing.
/// @return the line as one payload (one allocation).
/// @throws std::bad_alloc when memory runs out.
[[nodiscard]] inline payload encode_line(std::initializer_list<std::string_view> parts,
                                         std::size_t lower_from = static_cast<std::size_t>(-1)) {
    std::size_t size = 1, count = 0;
    for (std::string_view s : parts)
        if (!s.empty()) size += s.size() + (count++ ? 1 : 0);
    return payload::build(size, [&](char* out) {
        std::size_t i = 0, written = 0;
        for (std::string_view s : parts) {
            const bool lower = i++ >= lower_from;
            if (s.empty()) continue;
            if (written++) *out++ = ' ';
            for (char ch : s) {
                const auto byte = static_cast<unsigned char>(ch);
                if ((byte < 0x20 && ch != '\t') || byte == 0x7F) *out++ = '?';
                else *out++ = lower ? fold_ascii(ch) : ch;
            }
        }
        *out = '\n';
    });
}

/// @brief `ok <verb> [<name>]` — success reply to the sender.
/// @param verb the command that succeeded (its protocol word, e.g. `join`).
/// @param folded_name the user or room name it applied to, folded; empty for none.
/// @throws std::bad_alloc when memory runs out.
[[nodiscard]] inline payload encode_ok(command_kind verb, std::string_view folded_name = {}) {
    return encode_line({"ok", to_string(verb), folded_name});
}

/// @brief `err <code> [<argument>]` — error reply to the sender.
/// @param code the status (its protocol token is used, e.g. `name-taken`).
/// @param argument the folded name, or for `invalid-name` the argument exactly as sent.
/// @throws std::bad_alloc when memory runs out.
[[nodiscard]] inline payload encode_error(status code, std::string_view argument = {}) {
    return encode_line({"err", to_string(code), argument});
}

/// @brief `err <code> [<argument>]` for the protocol-only codes that are not router statuses:
/// `usage`, `invalid-text`, `line-too-long`, `unknown-command`.
/// @param code the error token, written as given.
/// @param argument the argument that follows it; empty for none.
/// @throws std::bad_alloc when memory runs out.
[[nodiscard]] inline payload encode_error(std::string_view code, std::string_view argument = {}) {
    return encode_line({"err", code, argument});
}

/// @brief `* <text>` — an informational line (greeting, notices); never a reply to a command.
/// @param text the notice; a control byte in it is written as `?` (see `encode_line()`).
/// @throws std::bad_alloc when memory runs out.
[[nodiscard]] inline payload encode_info(std::string_view text) { return encode_line({"*", text}); }

/// @brief `who <u1> <u2> ...` from names already in ascending byte order (`who` when empty).
/// @param sorted_names folded user names, as `router::users()` returns them.
/// @throws std::bad_alloc when memory runs out.
[[nodiscard]] inline payload encode_who(const std::vector<std::string_view>& sorted_names) {
    std::size_t size = 4;
    for (std::string_view n : sorted_names) size += 1 + n.size();
    return payload::build(size, [&](char* out) {
        std::memcpy(out, "who", 3);
        out += 3;
        for (std::string_view n : sorted_names) {
            *out++ = ' ';
            std::memcpy(out, n.data(), n.size());
            out += n.size();
        }
        *out = '\n';
    });
}

/// @brief The line protocol format of replies (docs/protocol.md, "Server lines"): `ok <command>
/// [<name>]`, `ok queued <user>`, `err <code> [<argument>]`, `who ...`, `sent <cid> <outcome>`,
/// `* <text>`; one LF-terminated line each.
///
/// Every reply is exactly one line: a control byte in an echoed argument or a notice is written
/// as `?` (`encode_line()`); the word of `err unknown-command <word>` is ASCII-lowercased.
///
/// Thread safety: stateless; one instance may be shared by any number of sessions and threads.
class line_reply_encoder final : public reply_encoder {
public:
    /// @brief Encodes `r` as one line.
    /// @param r the reply; its views are read during the call only.
    /// @return the line, LF included; never empty.
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] payload encode(const reply& r) const override {
        switch (r.kind) {
        case reply_kind::ok: return encode_ok(r.command, r.argument);
        case reply_kind::queued: return encode_line({"ok", "queued", r.argument});
        case reply_kind::error:
            return encode_line({"err", r.code, r.command_is_argument ? to_string(r.command) : r.argument},
                               r.code == error_token::unknown_command ? 2 : static_cast<std::size_t>(-1));
        case reply_kind::who: return encode_who(r.users ? *r.users : std::vector<std::string_view>{});
        case reply_kind::sent: return encode_line({"sent", r.argument, r.outcome});
        case reply_kind::info: break;
        }
        return encode_info(r.argument);
    }

    /// @brief The process-wide instance, for `command_session` of a line-protocol session.
    [[nodiscard]] static const line_reply_encoder& instance() noexcept {
        static const line_reply_encoder encoder;
        return encoder;
    }
};

/// @brief The line protocol format of routed events (docs/protocol.md, "Events"): v1
/// `msg <from> <text>`, `room <room> <from> <text>`, `join <room> <user>`, `leave <room> <user>`;
/// v1.2 `dm <seq> <from> <text>`, `presence <user> online`, `presence <user> offline [<ms>]`,
/// `typing <from>`, `typing <from> stop`, `bye replaced`, and the late answers of a durable store
/// (`send_outcome`): `ok queued <user>` or `err <token> <user>` for `/msg`,
/// `sent <cid> <outcome>` for `/send`, and the late answer of a registration a cluster decided
/// (`register_outcome`): `ok register <name>` or `err <token> <name>`.
///
/// It emits exactly one line per event or nothing: it refuses (returns an empty payload) an event
/// whose text breaks the text contract (`is_message_text()`: empty, invalid UTF-8, LF, CR or
/// another control byte) or whose user or room is not a valid name, so no caller — the router or
/// a host calling it directly — can make it forge a second line (docs/security.md, "The API
/// path").
///
/// Thread safety: stateless; one instance may be shared by any number of routers and threads.
class line_event_encoder final : public event_encoder {
public:
    /// @brief Encodes `e` as one LF-terminated line (text byte for byte).
    /// @param e the event; its views are read during the call only.
    /// @return the line; empty when `e` is refused (see the class comment).
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] payload encode(const event& e) const override {
        const bool has_room = e.kind == event_kind::room_message || e.kind == event_kind::member_joined ||
                              e.kind == event_kind::member_left;
        const bool has_text = e.kind == event_kind::direct_message || e.kind == event_kind::room_message ||
                              e.kind == event_kind::acked_message;
        if (!is_valid_name(e.user) || (has_room && !is_valid_name(e.room)) || (has_text && !is_message_text(e.text)))
            return {};
        if (e.kind == event_kind::send_outcome && !e.text.empty() && !is_valid_name(e.text))
            return {}; // a client id has the syntax of a name (docs/protocol.md, `/send`)
        return encode_checked(e);
    }

private:
    // The router has checked the names and the text of its own events (event_encoder).
    // The two message kinds are the hot path (every routed and fanned-out message): their line
    // is built here; every other kind in encode_other(), kept out of line so that this stays
    // small enough to be inlined into its callers' loops.
    [[nodiscard]] payload encode_checked(const event& e) const override {
        if (e.kind == event_kind::direct_message) return words({"msg", e.user, e.text});
        if (e.kind == event_kind::room_message) return words({"room", e.room, e.user, e.text});
        return encode_other(e);
    }

#if defined(__GNUC__) || defined(__clang__)
    __attribute__((noinline))
#endif
    static payload encode_other(const event& e) {
        switch (e.kind) {
        case event_kind::direct_message:
        case event_kind::room_message: break; // encode_checked()
        case event_kind::member_joined: return words({"join", e.room, e.user});
        case event_kind::member_left: return words({"leave", e.room, e.user});
        case event_kind::acked_message: {
            char digits[24];
            return words({"dm", number(digits, e.seq), e.user, e.text});
        }
        case event_kind::presence_online: return words({"presence", e.user, "online"});
        case event_kind::presence_offline: {
            if (e.last_seen < 0) return words({"presence", e.user, "offline"});
            char digits[24];
            return words({"presence", e.user, "offline", number(digits, static_cast<std::uint64_t>(e.last_seen))});
        }
        case event_kind::typing_started: return words({"typing", e.user});
        case event_kind::typing_stopped: return words({"typing", e.user, "stop"});
        case event_kind::session_replaced: return words({"bye", "replaced"});
        case event_kind::session_closed: return words({"bye", to_string(e.code)});
        case event_kind::send_outcome:
            // `ok queued <user>`, the answer to every /msg stored for an offline user: the user is
            // the router's folded, valid name, so the words are joined as they are (what
            // encode_line() gives for it, without its byte-by-byte check).
            if (e.text.empty() && e.code == status::ok && !e.user.empty()) return words({"ok", "queued", e.user});
            return line_reply_encoder::instance().encode(send_outcome_reply(e));
        case event_kind::register_outcome: return line_reply_encoder::instance().encode(register_outcome_reply(e));
        }
        return {};
    }

    // Decimal digits of v in `buffer` (24 bytes).
    static std::string_view number(char (&buffer)[24], std::uint64_t v) noexcept {
        const auto r = std::to_chars(buffer, buffer + sizeof buffer, v);
        return {buffer, static_cast<std::size_t>(r.ptr - buffer)};
    }

    // The words of a checked event (each non-empty), joined by spaces, then LF.
    template <std::size_t N>
    SWITCHBOARD_HOT_INLINE static payload words(const std::string_view (&w)[N]) {
        std::size_t size = N; // N - 1 spaces and the LF
        for (const std::string_view s : w) size += s.size();
        return payload::build(size, [&](char* out) SWITCHBOARD_HOT_LAMBDA {
            for (std::size_t i = 0; i < N; ++i) {
                std::memcpy(out, w[i].data(), w[i].size());
                out += w[i].size();
                *out++ = i + 1 == N ? '\n' : ' ';
            }
        });
    }

public:
    /// @brief The process-wide instance: the format to name in `router::open_session()` for a
    /// line-protocol session.
    [[nodiscard]] static const line_event_encoder& instance() noexcept {
        static const line_event_encoder encoder;
        return encoder;
    }
};

} // namespace switchboard::protocol
