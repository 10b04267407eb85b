/// @file
/// @brief `switchboard::protocol::command`: one client command, parsed but not yet applied, in a
/// form no wire format owns. The line parser (`parse_command()`, line.hpp) and the JSON parser
/// (`websocket::parse_json_command()`, websocket/json_format.hpp) both produce it, and
/// `command_session` (command_session.hpp) applies it, so every format gets the same semantics
/// (docs/protocol.md, "Commands" and "Check order").
#pragma once

#include "../names.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace switchboard::protocol {

/// @brief The command a client asks for.
enum class command_kind : std::uint8_t {
    register_name, ///< `/register <user>` or `/register <user> <secret>`
    msg,           ///< `/msg <user> <text>` or `@<user> <text>`
    join,          ///< `/join <room>`
    leave,         ///< `/leave <room>`
    say,           ///< `/say <room> <text>` or `#<room> <text>`
    who,           ///< `/who`
    quit,          ///< `/quit`
    watch,         ///< `/watch <user>` (v1.2)
    unwatch,       ///< `/unwatch <user>` (v1.2)
    typing,        ///< `/typing <user>` or `/typing <user> stop` (v1.2)
    ack,           ///< `/ack on` or `/ack <seq>` (v1.2)
    send,          ///< `/send <cid> <user> <text>` (v1.2)
    unknown,       ///< any other `/<word>`, or a line not starting with `/`, `@` or `#`
};

/// @brief The protocol word of a command (`"register"`, `"msg"`, ...; `""` for `unknown`): the
/// line protocol's command word and the JSON format's `"type"`.
/// @note Thread-safe (pure function).
[[nodiscard]] constexpr std::string_view to_string(command_kind k) noexcept {
    switch (k) {
    case command_kind::register_name: return "register";
    case command_kind::msg: return "msg";
    case command_kind::join: return "join";
    case command_kind::leave: return "leave";
    case command_kind::say: return "say";
    case command_kind::who: return "who";
    case command_kind::quit: return "quit";
    case command_kind::watch: return "watch";
    case command_kind::unwatch: return "unwatch";
    case command_kind::typing: return "typing";
    case command_kind::ack: return "ack";
    case command_kind::send: return "send";
    case command_kind::unknown: return "";
    }
    return "";
}

namespace detail {
/// @brief The bytes of a word of 1 to 8 bytes packed into one integer, first byte lowest, each
/// ORed with 0x20 (which lowercases an ASCII letter), the unused high bytes 0.
/// @param word 1 to 8 bytes.
/// @note For `command_kind_of()`: every command word is ASCII letters, and `x | 0x20` equals a
/// lowercase letter only for that letter in either case, so one integer comparison is the
/// case-insensitive match; a word's length is in the packing (its last byte is never 0), so
/// words of different lengths never compare equal.
[[nodiscard]] constexpr std::uint64_t pack_folded_word(std::string_view word) noexcept {
    std::uint64_t w = 0;
    for (std::size_t i = 0; i < word.size(); ++i)
        w |= std::uint64_t{static_cast<unsigned char>(word[i] | 0x20)} << (8 * i);
    return w;
}
} // namespace detail

/// @brief The command a protocol word names, matched ASCII case-insensitively (`MSG`, `Msg` and
/// `msg` are `command_kind::msg`; docs/protocol.md, "Commands").
/// @param word the word as sent, any bytes.
/// @return the kind; `unknown` for any other word, the empty one included.
/// @note Thread-safe (pure function). Never allocates and never calls out: it runs for every
/// command, so the word (at most 8 bytes for a command) is packed into one integer
/// (`detail::pack_folded_word()`) and matched by a switch over the packed command words.
[[nodiscard]] constexpr command_kind command_kind_of(std::string_view word) noexcept {
    if (word.empty() || word.size() > 8) return command_kind::unknown;
    using detail::pack_folded_word;
    switch (pack_folded_word(word)) {
    case pack_folded_word("msg"): return command_kind::msg;
    case pack_folded_word("register"): return command_kind::register_name;
    case pack_folded_word("join"): return command_kind::join;
    case pack_folded_word("leave"): return command_kind::leave;
    case pack_folded_word("say"): return command_kind::say;
    case pack_folded_word("who"): return command_kind::who;
    case pack_folded_word("quit"): return command_kind::quit;
    case pack_folded_word("watch"): return command_kind::watch;
    case pack_folded_word("unwatch"): return command_kind::unwatch;
    case pack_folded_word("typing"): return command_kind::typing;
    case pack_folded_word("ack"): return command_kind::ack;
    case pack_folded_word("send"): return command_kind::send;
    default: return command_kind::unknown;
    }
}

/// @brief One parsed command, as views into storage owned by whoever parsed it (the line for
/// `parse_command()`, a `websocket::json_command_buffer` for the JSON format); valid as long as
/// that storage is unchanged.
///
/// Only the syntax is checked by a parser (`usage_error`, a malformed client id); names and texts
/// are validated by `command_session`, in the protocol's check order.
struct command {
    /// @brief An `unknown` command: every view empty, every flag false (the values the members'
    /// initialisers give).
    ///
    /// Written out member by member on purpose (issue #11): with only the default member
    /// initialisers, GCC 12 (-O2, -O3) clears a `command` (96 bytes; 88 or more) with `rep stosq`
    /// and then stores `kind`, once per parsed line. That is 13 instructions by callgrind's count
    /// but a microcoded string instruction with a start-up cost of its own on x86; with this
    /// list, and not `constexpr` (GCC folds a constexpr one into the same clear), GCC writes the
    /// members with plain stores. (A consequence: `command` is not an aggregate; set its members
    /// after constructing it.)
    /// @note Thread-safe; never throws.
    command() noexcept
        : kind(command_kind::unknown), usage_error(false), target(), text(), word(), id(), malformed(),
          stop(false) {}

    command_kind kind = command_kind::unknown; ///< What the client asks for.
    bool usage_error = false; ///< An argument is missing or the text is empty: `err usage <kind>`.
    std::string_view target;  ///< User or room argument exactly as sent (not yet validated); for
                              ///< `ack`, `on` or the sequence number's decimal digits as sent.
    std::string_view text;    ///< Message body, byte for byte; for `register`, the secret
                              ///< (possibly empty: none was given).
    std::string_view word;    ///< For `unknown`: the command word as sent (echoed in
                              ///< `err unknown-command <word>`); empty when there was none.
    std::string_view id;      ///< For `send`: the client id, 1-40 bytes of `[A-Za-z0-9_.-]`
                              ///< (checked by the parser), byte for byte; else empty.
    std::string_view malformed; ///< Non-empty when the format could not read the input at all
                                ///< (JSON: `invalid-json`): the error token to answer, after the
                                ///< rate limit; `kind` is then `unknown`. The line parser never
                                ///< sets it (every line is some command).
    bool stop = false;        ///< `typing` with stop (`/typing <user> stop`).
};

/// @brief The former name of `command`, from when only the line protocol produced it.
using line_command = command;

} // namespace switchboard::protocol
