/// @file
/// @brief `switchboard::protocol::reply`: the server's answer to one command as a value, and
/// `reply_encoder`, which turns it into the bytes of one wire format. `command_session` decides
/// what to answer; the format only spells it (the line protocol's `ok ...`/`err ...` lines in
/// line.hpp, JSON objects in websocket/json_format.hpp).
#pragma once

#include "../event.hpp"
#include "../payload.hpp"
#include "../status.hpp"
#include "command.hpp"

#include <cstdint>
#include <string_view>
#include <vector>

namespace switchboard::protocol {

/// @brief Error tokens that are not router statuses: the protocol's own (docs/protocol.md,
/// "Server lines"). Every other error token is `to_string(status)`.
namespace error_token {
/// @brief A required argument is missing or malformed, or a text is empty (`err usage <command>`).
inline constexpr std::string_view usage = "usage";
/// @brief The command word (or JSON `"type"`) names no command (`err unknown-command [<word>]`).
inline constexpr std::string_view unknown_command = "unknown-command";
/// @brief A line longer than the session's `max_line` (line protocol only).
inline constexpr std::string_view line_too_long = "line-too-long";
/// @brief A WebSocket message that is not a JSON object, or nests deeper than allowed (JSON
/// format only).
inline constexpr std::string_view invalid_json = "invalid-json";
} // namespace error_token

/// @brief What kind of answer a reply is.
enum class reply_kind : std::uint8_t {
    ok,     ///< Success: `ok <command> [<argument>]` (`ok register alice`, `ok ack on`, `ok quit`).
    queued, ///< A direct message stored for an offline user: `ok queued <user>`.
    error,  ///< Failure: `err <code> [<argument>]`.
    who,    ///< The user list: `who <u1> <u2> ...`.
    sent,   ///< The outcome of `/send`: `sent <cid> <outcome>`.
    info,   ///< An informational notice, never an answer to a command: `* <text>`.
};

/// @brief One answer of the server to one client, as views valid during `reply_encoder::encode()`.
///
/// Build it with the factories; each documents the line it stands for. The fields a kind does not
/// use are empty. Thread safety: a plain value.
struct reply {
    reply_kind kind = reply_kind::info; ///< What kind of answer.
    /// @brief The command answered: `ok`'s verb, `queued`'s `msg`, the command that failed for
    /// `error` (`unknown` when there is none: an unknown command, a line too long, bad JSON).
    command_kind command = command_kind::unknown;
    std::string_view code;     ///< `error`: the error token (`to_string(status)` or `error_token`).
    /// @brief `ok`: the folded name (or `on` for `ack`), empty for none; `queued`: the folded
    /// user; `error`: the argument (folded name, or for `invalid-name` / `ack-invalid` the
    /// argument as sent; for `unknown-command` the word as sent, which formats show
    /// ASCII-lowercased), empty for none; `sent`: the client id; `info`: the text.
    std::string_view argument;
    std::string_view outcome;  ///< `sent`: `delivered`, `queued` or an error token.
    /// @brief `who`: the folded user names in ascending byte order; null for every other kind.
    /// Points at the caller's vector, valid during `encode()`.
    const std::vector<std::string_view>* users = nullptr;
    /// @brief `error`: the line protocol shows the command word as the argument (`err usage msg`,
    /// `err not-supported ack`); formats that carry `command` separately need no argument.
    bool command_is_argument = false;

    /// @brief `ok <command> [<name>]`.
    /// @param c the command that succeeded; @param name its folded user or room name (`on` for
    /// `ack`), empty for none (`quit`).
    [[nodiscard]] static constexpr reply ok(command_kind c, std::string_view name = {}) noexcept {
        return make(reply_kind::ok, c, name);
    }
    /// @brief `ok queued <user>`: a `msg` stored for the offline, known `user` (folded).
    [[nodiscard]] static constexpr reply queued(std::string_view user) noexcept {
        return make(reply_kind::queued, command_kind::msg, user);
    }
    /// @brief `err <code> [<argument>]` for command `c`.
    /// @param code the error token; @param c the command that failed (`unknown` for none);
    /// @param argument see `reply::argument`; empty for none.
    [[nodiscard]] static constexpr reply error(std::string_view code, command_kind c = command_kind::unknown,
                                               std::string_view argument = {}) noexcept {
        reply r = make(reply_kind::error, c, argument);
        r.code = code;
        return r;
    }
    /// @brief `err <status token> [<argument>]` for command `c`.
    [[nodiscard]] static constexpr reply error(status s, command_kind c, std::string_view argument = {}) noexcept {
        return error(to_string(s), c, argument);
    }
    /// @brief `err <code> <command>`: `usage`, or `not-supported` for `ack`.
    [[nodiscard]] static constexpr reply about_command(std::string_view code, command_kind c) noexcept {
        reply r = error(code, c);
        r.command_is_argument = true;
        return r;
    }
    /// @brief `err unknown-command [<word>]`; @param word the word as sent, empty for none.
    [[nodiscard]] static constexpr reply unknown_command(std::string_view word) noexcept {
        return error(error_token::unknown_command, command_kind::unknown, word);
    }
    /// @brief `who <u1> ...`; @param users folded names in ascending byte order (as
    /// `router::users()` returns them); must outlive the reply.
    [[nodiscard]] static reply who(const std::vector<std::string_view>& users) noexcept {
        reply r = make(reply_kind::who, command_kind::who, {});
        r.users = &users;
        return r;
    }
    /// @brief `sent <cid> <outcome>`; @param id the client id as sent; @param outcome
    /// `delivered`, `queued` or an error token.
    [[nodiscard]] static constexpr reply sent(std::string_view id, std::string_view outcome) noexcept {
        reply r = make(reply_kind::sent, command_kind::send, id);
        r.outcome = outcome;
        return r;
    }
    /// @brief `* <text>`: a notice (greeting, timeout); @param text any bytes.
    [[nodiscard]] static constexpr reply info(std::string_view text) noexcept {
        return make(reply_kind::info, command_kind::unknown, text);
    }

private:
    static constexpr reply make(reply_kind k, command_kind c, std::string_view argument) noexcept {
        reply r;
        r.kind = k;
        r.command = c;
        r.argument = argument;
        return r;
    }
};

/// @brief The reply a `send_outcome` event stands for (the late answer of a durable store,
/// docs/protocol.md "Durable store"): `sent <cid> <outcome>` for `/send` (`e.text` is the client
/// id), `ok queued <user>` or `err <token> <user>` for `/msg`.
/// @param e an event of kind `send_outcome`; the reply's views point into it.
/// @note Thread-safe (pure function).
[[nodiscard]] constexpr reply send_outcome_reply(const event& e) noexcept {
    if (!e.text.empty())
        return reply::sent(e.text, e.code != status::ok ? to_string(e.code)
                                   : e.queued           ? std::string_view("queued")
                                                        : std::string_view("delivered"));
    if (e.code == status::ok) return reply::queued(e.user);
    return reply::error(e.code, command_kind::msg, e.user);
}

/// @brief The reply a `register_outcome` event stands for (a registration the cluster decided
/// later, docs/protocol.md "Registration in a cluster"): exactly the synchronous answer,
/// `ok register <name>` or `err <token> <name>`.
/// @param e an event of kind `register_outcome`; the reply's views point into it.
/// @note Thread-safe (pure function).
[[nodiscard]] constexpr reply register_outcome_reply(const event& e) noexcept {
    if (e.code == status::ok) return reply::ok(command_kind::register_name, e.user);
    return reply::error(e.code, command_kind::register_name, e.user);
}

/// @brief A wire format for replies: turns a `reply` into the bytes of one message of that format
/// (framing included), sent to the one session it answers through `router::send()`.
///
/// Contract for implementers: the payload is exactly one message of the format, whatever bytes
/// the reply's views hold (an echoed argument may hold control bytes or invalid UTF-8): escape or
/// replace them, never let them end the message. `encode()` must not call back into the router.
///
/// Thread safety: `encode()` is const; implementations keep no mutable state, so one instance may
/// serve every session of every router.
class reply_encoder {
public:
    virtual ~reply_encoder() = default;

    /// @brief Encodes one reply.
    /// @param r the reply; its views are valid only during the call.
    /// @return the complete bytes to write to the session; never empty.
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] virtual payload encode(const reply& r) const = 0;
};

} // namespace switchboard::protocol
