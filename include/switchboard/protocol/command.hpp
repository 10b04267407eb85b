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

/// @brief The command a protocol word names, matched ASCII case-insensitively (`MSG`, `Msg` and
/// `msg` are `command_kind::msg`; docs/protocol.md, "Commands").
/// @param word the word as sent, any bytes.
/// @return the kind; `unknown` for any other word, the empty one included.
/// @note Thread-safe (pure function). Never allocates; one comparison decides, since it runs for
/// every command (the candidate is picked by length and first letter).
[[nodiscard]] constexpr command_kind command_kind_of(std::string_view word) noexcept {
    command_kind k = command_kind::unknown;
    const char first = word.empty() ? '\0' : static_cast<char>(word[0] | 0x20);
    switch (word.size()) {
    case 3:
        k = first == 'm' ? command_kind::msg
            : first == 's' ? command_kind::say
            : first == 'w' ? command_kind::who
                           : command_kind::ack;
        break;
    case 4:
        k = first == 'j' ? command_kind::join : first == 'q' ? command_kind::quit : command_kind::send;
        break;
    case 5: k = first == 'l' ? command_kind::leave : command_kind::watch; break;
    case 6: k = command_kind::typing; break;
    case 7: k = command_kind::unwatch; break;
    case 8: k = command_kind::register_name; break;
    default: break;
    }
    return k != command_kind::unknown && equals_folded(word, to_string(k)) ? k : command_kind::unknown;
}

/// @brief One parsed command, as views into storage owned by whoever parsed it (the line for
/// `parse_command()`, a `websocket::json_command_buffer` for the JSON format); valid as long as
/// that storage is unchanged.
///
/// Only the syntax is checked by a parser (`usage_error`, a malformed client id); names and texts
/// are validated by `command_session`, in the protocol's check order.
struct command {
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
