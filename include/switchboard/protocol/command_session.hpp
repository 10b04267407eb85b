/// @file
/// @brief `switchboard::protocol::command_session`: the semantics of the chat commands for one
/// session, apart from any wire format. A parsed `command` in (command.hpp); router calls and
/// `reply` values out, spelled by the session's `reply_encoder` (reply.hpp) and sent through
/// `router::send()`. The line protocol (line_session.hpp) and the JSON format
/// (websocket/json_format.hpp) both drive it, so they answer alike (docs/protocol.md).
#pragma once

#include "../config.hpp"
#include "../names.hpp"
#include "../payload.hpp"
#include "../rate_limiter.hpp"
#include "../router.hpp"
#include "../session_id.hpp"
#include "../status.hpp"
#include "command.hpp"
#include "reply.hpp"

#include <charconv>
#include <chrono>
#include <cstdint>
#include <string_view>
#include <system_error>
#include <vector>

namespace switchboard::protocol {

/// @brief What the connection should do after input was processed.
enum class input_result : std::uint8_t {
    keep_reading, ///< Go on reading.
    quit,         ///< `/quit` was processed (or the input ended): stop reading, flush, close.
    paused,       ///< The pause predicate asked to stop after a command; the rest of the input is
                  ///< held by the session. Stop reading; call `resume()` when output has drained.
};

/// @brief Options of a `command_session`.
struct command_session_options {
    /// @brief Per-session command rate (default off). Every command but `quit` takes one token,
    /// unknown and malformed ones included; a command past the limit is not applied and is
    /// answered `err rate-limited` (docs/protocol.md, "Rate limit").
    rate_limit rate;
    /// @brief Incremented once per command refused by the rate limit; null for nowhere. Must
    /// outlive the session; guarded by the router's serialisation (it may be shared by sessions).
    std::uint64_t* rate_limited = nullptr;
    /// @brief Longest message text in bytes (`msg`, `send`, `say`), 0 for no bound (default).
    /// A longer text is not applied and is answered `err line-too-long`, as the line protocol
    /// answers a line over `max_line`: a format whose messages may be longer than a line (JSON
    /// over WebSocket) sets it to `max_line`, so that no client relays a text that a line client
    /// could not have sent. Checked after the rate limit, before everything else.
    std::size_t max_text = 0;
    /// @brief Incremented once per command refused by `max_text`; null for nowhere (as
    /// `rate_limited`).
    std::uint64_t* too_long = nullptr;
};

/// @brief Applies parsed commands for one session of a router: the check order, the rate limit,
/// the router calls and their replies (docs/protocol.md, "Commands", "Check order", v1.2).
///
/// A wire format parses its input into `command`s and hands each to `apply()`; every answer goes
/// through `router::send()` to the session's own transport, encoded by the session's
/// `reply_encoder`, so it is ordered with the events routed to the session. Each command runs
/// under `router::hold()`, so its reply comes before any event the command caused (a bot
/// answering from its callback; docs/design.md, "Ordering and re-entrancy").
///
/// Checks run in the order the protocol fixes: rate-limited -> malformed input -> unknown command
/// -> usage -> not-registered -> invalid-name -> invalid-text -> the command's own outcome.
///
/// Cost: no allocation and no virtual call of its own for a command that is not answered (a
/// successful `msg`, `say` or `typing`); one `reply_encoder::encode()` call per reply. A
/// well-formed `msg` (the message hot path, issue #11) goes straight from the rate limit to one
/// name parse and `router::route()`, which makes the not-registered check itself, so the session
/// is looked up once; every other command, and every refusal, is kept out of line
/// (`SWITCHBOARD_NOINLINE`, `SWITCHBOARD_COLD`), in the same check order.
///
/// Thread safety: none of its own. Call it only while holding the router (the same
/// serialisation as for `router` itself); one object per session.
class command_session {
public:
    /// @brief Binds the command state of session `id` of router `r`.
    /// @param r the router; must outlive this object.
    /// @param id an open session of `r`.
    /// @param replies the session's reply format; must outlive this object.
    /// @param options limits; read during construction only.
    command_session(router& r, session_id id, const reply_encoder& replies, const command_session_options& options)
        : router_(&r), id_(id), replies_(&replies), limiter_(options.rate), rate_limited_(options.rate_limited),
          max_text_(options.max_text), too_long_(options.too_long) {}

    /// @brief The router session this state drives.
    [[nodiscard]] session_id id() const noexcept { return id_; }

    /// @brief True once `quit` was applied or `end()` called: apply nothing more; flush and close.
    [[nodiscard]] bool quit() const noexcept { return quit_; }

    /// @brief True while the session's registration waits for the cluster's answer
    /// (`router::register_name()` returned `pending`, docs/design.md, "Clusters: the directory
    /// hook and remote sessions"): the wire format applies no further command until it is false
    /// again, so pipelined commands after `register` behave as on a single node. It turns false
    /// when the router queues the `register_outcome` event, before the event reaches the
    /// transport; a paused connection resumes on the output that event causes.
    /// Costs one flag test per command when no registration was answered `pending`.
    [[nodiscard]] bool waiting() const noexcept { return awaiting_ && still_waiting(); }

    /// @brief Marks the input as ended (the peer half-closed or the format gave up): `quit()`
    /// becomes true and later `apply()` calls do nothing.
    void end() noexcept { quit_ = true; }

    /// @brief Applies one command received at `now`, and answers it when the protocol says so.
    /// @param c the parsed command; its views must stay valid during the call.
    /// @param now the time the command was read, from a monotonic clock, as a duration since a
    ///        fixed epoch (e.g. `steady_clock::now().time_since_epoch()`); only the rate limit
    ///        reads it, so any value does when `command_session_options::rate` is off.
    /// @return false when the caller should stop reading: `c` was `quit` (answered `ok quit`), or
    ///         the session had quit already (nothing done); true otherwise, whatever the outcome
    ///         (errors are replies, not results).
    /// @throws std::bad_alloc when memory runs out.
    bool apply(const command& c, std::chrono::nanoseconds now) {
        if (quit_) return false;
        const router::hold_guard held = router_->hold();
        if (c.kind != command_kind::quit && !limiter_.try_acquire(now)) return refuse_rate_limited(c.kind);
        // The message hot path: a well-formed `msg` within `max_text` passes every check before
        // not-registered, so it goes straight on (same order, same answers as apply_command()).
        if (c.kind == command_kind::msg && !c.usage_error && c.malformed.empty() &&
            (max_text_ == 0 || c.text.size() <= max_text_))
            return apply_msg(c);
        return apply_command(c);
    }

    /// @brief Sends a greeting as notices: each LF-separated line of `greeting` as one `info`
    /// reply (`* <line>` on lines, `{"type":"info",...}` in JSON); empty lines skipped, nothing
    /// for an empty greeting.
    /// @param greeting the text, read during the call only (one copy can serve every connection).
    /// @throws std::bad_alloc when memory runs out.
    void greet(std::string_view greeting) {
        while (!greeting.empty()) {
            const std::size_t lf = greeting.find('\n');
            const std::string_view line = greeting.substr(0, lf);
            if (!line.empty()) reply_with(reply::info(line));
            if (lf == std::string_view::npos) break;
            greeting.remove_prefix(lf + 1);
        }
    }

    /// @brief Sends `r` to this session, encoded by its reply format (for what the format itself
    /// answers: a greeting, `line-too-long`, a notice).
    /// @param r the reply; read during the call only.
    /// @throws std::bad_alloc when memory runs out.
    void reply_with(const reply& r) { send(replies_->encode(r)); }

    /// @brief Sends bytes already in the session's format through `router::send()`. A closed or
    /// backed-up transport is not an error here: the router handles it (docs/design.md).
    /// @param p the bytes.
    void send(const payload& p) { (void)router_->send(id_, p); }

    /// @brief The session's reply format.
    [[nodiscard]] const reply_encoder& replies() const noexcept { return *replies_; }

private:
    // `msg` past the checks of the parsed form (see apply()): not-registered -> invalid-name ->
    // the router's checks and outcome. The router's own first check is the registration, so
    // the session is looked up once: a name that does not parse asks the router only then, to
    // answer not-registered before invalid-name as the protocol fixes.
    bool apply_msg(const command& c) {
        name n;
        if (!name::parse(c.target, n)) return refuse_target(c);
        const route_result r = router_->route(id_, n, c.text);
        // pending: the router answers once the store has committed it (event send_outcome)
        if (r.queued && !r.pending) reply_with(reply::queued(n.view()));
        if (r.code != status::ok) return refuse_msg(r.code, n);
        return true;
    }

    SWITCHBOARD_COLD bool refuse_target(const command& c) {
        if (!router_->is_registered(id_)) return fail(status::not_registered, c.kind, {});
        if (c.kind == command_kind::send) return answer(reply::sent(c.id, to_string(status::invalid_name)));
        return fail(status::invalid_name, c.kind, c.target);
    }

    SWITCHBOARD_COLD bool refuse_msg(status st, const name& n) {
        // unknown_session: a session closed for every call (retired), which is_registered()
        // answers as not registered, as for any other command.
        if (st == status::not_registered || st == status::unknown_session)
            return fail(status::not_registered, command_kind::msg, {});
        if (st == status::invalid_text) return fail(st, command_kind::msg, {});
        return fail(st, command_kind::msg, n.view());
    }

    // waiting() once a registration was answered pending: asks the router whether it still is.
    SWITCHBOARD_COLD bool still_waiting() const noexcept {
        if (!router_->registration_pending(id_)) awaiting_ = false;
        return awaiting_;
    }

    SWITCHBOARD_COLD bool refuse_rate_limited(command_kind k) {
        if (rate_limited_) ++*rate_limited_;
        return fail(status::rate_limited, k, {});
    }

    // Every command but the hot `msg`, after the rate limit, in the protocol's check order.
    SWITCHBOARD_NOINLINE bool apply_command(const command& c) {
        if (max_text_ != 0 && c.text.size() > max_text_ &&
            (c.kind == command_kind::msg || c.kind == command_kind::send || c.kind == command_kind::say)) {
            if (too_long_) ++*too_long_;
            return answer(reply::error(error_token::line_too_long));
        }
        if (!c.malformed.empty()) return answer(reply::error(c.malformed));
        if (c.kind == command_kind::unknown) return answer(reply::unknown_command(c.word));
        if (c.usage_error) return answer(reply::about_command(error_token::usage, c.kind));
        switch (c.kind) {
        case command_kind::who: {
            const std::vector<std::string_view> users = router_->users();
            return answer(reply::who(users));
        }
        case command_kind::quit:
            reply_with(reply::ok(command_kind::quit));
            quit_ = true;
            return false;
        case command_kind::register_name: {
            const auto n = name::parse(c.target);
            if (!n) return fail(status::invalid_name, c.kind, c.target);
            const status st = router_->register_name(id_, *n, c.text);
            // The cluster decides: the answer is the register_outcome event, spelled as the line
            // below would have been; the format holds the next commands meanwhile (waiting()).
            if (st == status::pending) {
                awaiting_ = true;
                return true;
            }
            if (st == status::already_registered) return fail(st, c.kind, router_->name_of(id_));
            if (st != status::ok) return fail(st, c.kind, n->view());
            return answer(reply::ok(c.kind, n->view()));
        }
        case command_kind::ack: return apply_ack(c.target);
        case command_kind::msg: return apply_msg(c); // not reached: apply() takes such a msg
        default: break;
        }
        // Everything below needs a registered session.
        if (!router_->is_registered(id_)) return fail(status::not_registered, c.kind, {});
        name n;
        if (!name::parse(c.target, n)) return refuse_target(c);
        // The router checks the text (status::invalid_text) before the command's own outcome.
        status st = status::ok;
        switch (c.kind) {
        case command_kind::send: {
            const route_result r = router_->send(id_, n, c.text, c.id);
            if (r.pending) return true; // answered once the store has committed it (send_outcome)
            return answer(reply::sent(c.id, r.ok() ? (r.queued ? "queued" : "delivered") : to_string(r.code)));
        }
        case command_kind::say: st = router_->publish(id_, n, c.text).code; break;
        case command_kind::join: st = router_->join(id_, n); break;
        case command_kind::leave: st = router_->leave(id_, n); break;
        case command_kind::watch: st = router_->watch(id_, n); break;
        case command_kind::unwatch: st = router_->unwatch(id_, n); break;
        case command_kind::typing: st = router_->typing(id_, n, c.stop); break;
        default: break;
        }
        if (st == status::invalid_text) return fail(st, c.kind, {});
        if (st != status::ok) return fail(st, c.kind, n.view());
        const bool silent = c.kind == command_kind::say || c.kind == command_kind::typing;
        if (!silent) reply_with(reply::ok(c.kind, n.view()));
        return true;
    }

    // `ack on` (registered or not) and `ack <seq>`; docs/protocol.md, "Acknowledgements".
    bool apply_ack(std::string_view arg) {
        if (arg == "on") {
            const status st = router_->enable_acks(id_);
            if (st != status::ok) return answer(reply::about_command(to_string(st), command_kind::ack));
            return answer(reply::ok(command_kind::ack, "on"));
        }
        std::uint64_t seq = 0; // 0 = not a decimal >= 1: the router checks not-registered first
        const auto r = std::from_chars(arg.data(), arg.data() + arg.size(), seq);
        if (r.ec != std::errc{} || r.ptr != arg.data() + arg.size() || arg.empty() || arg[0] == '+') seq = 0;
        const status st = router_->acknowledge(id_, seq);
        if (st == status::not_supported) return answer(reply::about_command(to_string(st), command_kind::ack));
        if (st == status::not_registered) return fail(st, command_kind::ack, {});
        if (st != status::ok) return fail(st, command_kind::ack, arg);
        return true;
    }

    bool answer(const reply& r) {
        reply_with(r);
        return true;
    }

    bool fail(status st, command_kind c, std::string_view argument) { return answer(reply::error(st, c, argument)); }

    router* router_;
    session_id id_;
    const reply_encoder* replies_;
    rate_limiter limiter_;
    std::uint64_t* rate_limited_;
    std::size_t max_text_;
    std::uint64_t* too_long_;
    bool quit_ = false;
    mutable bool awaiting_ = false; // register_name() answered pending (see waiting())
};

} // namespace switchboard::protocol
