/// @file
/// @brief `switchboard::protocol::line_session`: the server side of the line protocol v1 for one
/// connection, sans-I/O. Bytes in (`line_framer`), lines parsed (`parse_command()`), commands
/// applied by a `command_session` with the line reply format (`line_reply_encoder`); replies out
/// through the router to the session's own transport.
#pragma once

#include "../payload.hpp"
#include "../rate_limiter.hpp"
#include "../router.hpp"
#include "../session_id.hpp"
#include "command_session.hpp"
#include "line.hpp"
#include "reply.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace switchboard::protocol {

/// @brief Totals kept by the line sessions of one host (shared by all of them, guarded by the
/// router's serialisation), for metrics. Monotonic.
struct line_counters {
    std::uint64_t rate_limited = 0;  ///< Lines refused with `err rate-limited`.
    std::uint64_t line_too_long = 0; ///< Lines refused with `err line-too-long`.
};

/// @brief Options of a line-protocol session.
struct line_session_options {
    /// @brief Longest accepted line in bytes, terminator excluded (1 or more; default 4096).
    std::size_t max_line = default_max_line;
    /// @brief Per-session command rate (default off). Every non-empty line but `/quit` takes one
    /// token; a line past the limit is dropped with `err rate-limited` and the session is kept.
    /// Needs the time passed to `on_input()`.
    rate_limit rate;
    /// @brief Where to count refusals; null for nowhere. Must outlive the session.
    line_counters* counters = nullptr;
};

/// @brief Applies the line protocol v1 (docs/protocol.md) for one session of a router.
///
/// An adapter creates one per connection after `router::open_session()`, passes every byte it
/// reads to `on_input()`, calls `on_end_of_input()` when the peer half-closes, and closes the
/// session in the router when the connection ends. All replies (`ok ...`, `err ...`, `who ...`,
/// `* ...`) go through `router::send()` to the session's own transport, so they are ordered with
/// the messages routed to the session; each command runs under `router::hold()`, so its reply
/// comes before any event the command caused (a bot answering from its callback).
///
/// The line protocol's own part is the framing (`line_framer`, `err line-too-long`) and the
/// grammar (`parse_command()`); what a command does and how it is answered is
/// `command_session`'s, shared with the other wire formats. Checks run in the order the protocol
/// fixes: rate-limited -> usage -> not-registered -> invalid-name -> invalid-text -> the command's
/// own outcome.
///
/// Thread safety: none of its own. Call it only while holding the router (the same
/// serialisation as for `router` itself); one object per connection.
class line_session {
public:
    /// @brief Binds the protocol state of session `id` of router `r`.
    /// @param r the router; must outlive this object.
    /// @param id an open session of `r`.
    /// @param options limits; read during construction only.
    line_session(router& r, session_id id, const line_session_options& options)
        : commands_(r, id, line_reply_encoder::instance(),
                    command_session_options{options.rate, options.counters ? &options.counters->rate_limited : nullptr}),
          framer_(options.max_line), counters_(options.counters) {}

    /// @brief The router session this protocol state drives.
    [[nodiscard]] session_id id() const noexcept { return commands_.id(); }

    /// @brief Sends an informational greeting: each LF-separated line of `greeting` as
    /// `* <line>` (empty lines skipped; nothing for an empty greeting).
    /// @param greeting the text, read during the call only (one copy can serve every connection).
    /// @throws std::bad_alloc when memory runs out.
    void greet(std::string_view greeting) { commands_.greet(greeting); }

    /// @brief Processes a chunk of input: every complete line in it, in order.
    /// @param bytes what was read, any size; an unfinished last line is kept (up to the limit).
    /// @param now the time the bytes were read, from a monotonic clock, as a duration since a
    ///        fixed epoch (e.g. `steady_clock::now().time_since_epoch()`); only the rate limit
    ///        reads it, so it may be left out when `line_session_options::rate` is off.
    /// @return `quit` once `/quit` was processed (the rest of the chunk is ignored), else
    ///         `keep_reading`.
    /// @throws std::bad_alloc when memory runs out.
    input_result on_input(std::string_view bytes,
                          std::chrono::nanoseconds now = std::chrono::nanoseconds::zero()) {
        return on_input(bytes, now, [] { return false; });
    }

    /// @brief As above, with flow control: after each line, `pause()` is asked whether the
    /// session's output is backed up (or its transport closed); if so the session stops at that
    /// line, keeps the rest of `bytes` (at most one read's worth) and returns `paused`. This
    /// bounds the replies one read can produce — a chunk of thousands of `/who` lines costs one
    /// line's work past the point where the client stopped reading, not thousands. A `/register`
    /// that the cluster answers later pauses the same way, whatever `pause()` says, and input read
    /// meanwhile is held: the lines after it wait for its answer (`ok register <name>`).
    /// @param bytes what was read, any size (see the overload above).
    /// @param now the time the bytes were read (see the overload above).
    /// @param pause `bool()`: true to stop after the current line. Called under the router's
    ///        serialisation; must not call back into the router.
    /// @return `quit`, `paused` (call `resume()` later) or `keep_reading`.
    /// @throws std::bad_alloc when memory runs out.
    template <class Pause>
    input_result on_input(std::string_view bytes, std::chrono::nanoseconds now, Pause&& pause) {
        if (commands_.quit()) return input_result::quit;
        if (!held_.empty() || commands_.waiting()) { // read while paused: keep the order
            held_.append(bytes.data(), bytes.size());
            return input_result::paused;
        }
        now_ = now;
        return feed(bytes, pause);
    }

    /// @brief Continues with the input held by a `paused` result, as `on_input()` would. While a
    /// registration waits for the cluster (`command_session::waiting()`) nothing is processed and
    /// the input stays held (`paused`).
    /// @param now the current time (see `on_input()`).
    /// @param pause as for `on_input()`.
    /// @return `quit`, `paused` again, or `keep_reading` once all held input was processed.
    /// @throws std::bad_alloc when memory runs out.
    template <class Pause>
    input_result resume(std::chrono::nanoseconds now, Pause&& pause) {
        if (commands_.quit()) return input_result::quit;
        if (commands_.waiting()) return held_.empty() ? input_result::keep_reading : input_result::paused;
        now_ = now;
        const std::string rest = std::move(held_);
        held_.clear();
        return feed(rest, pause);
    }

    /// @brief Bytes of input held after a `paused` result (0 when not paused).
    [[nodiscard]] std::size_t held() const noexcept { return held_.size(); }

    /// @brief The peer half-closed: processes the unterminated last line, if any.
    /// @return always `quit`: nothing more will come; flush the replies and close.
    /// @throws std::bad_alloc when memory runs out.
    input_result on_end_of_input() {
        if (!commands_.quit()) framer_.finish([this](std::string_view line) { return handle_line(line); });
        commands_.end();
        return input_result::quit;
    }

    /// @brief Bytes of an unfinished line held for this connection (at most `max_line` + 1).
    [[nodiscard]] std::size_t buffered() const noexcept { return framer_.buffered(); }

private:
    template <class Pause>
    input_result feed(std::string_view bytes, Pause& pause) {
        bool paused = false;
        const std::size_t used = framer_.feed(
            bytes,
            [&](std::string_view line) {
                if (!handle_line(line)) return false;
                if (commands_.waiting() || pause()) { // a registration the cluster answers later
                    paused = true;
                    return false;
                }
                return true;
            },
            [this] {
                if (counters_) ++counters_->line_too_long;
                commands_.reply_with(reply::error(error_token::line_too_long));
            });
        if (commands_.quit()) return input_result::quit;
        if (!paused) return input_result::keep_reading;
        if (used < bytes.size()) held_.assign(bytes.data() + used, bytes.size() - used);
        else held_.clear();
        return held_.empty() ? input_result::keep_reading : input_result::paused;
    }

    // Returns false to stop reading this input (after /quit).
    bool handle_line(std::string_view line) {
        if (line.empty()) return true;
        return commands_.apply(parse_command(line), now_);
    }

    command_session commands_;
    line_framer framer_;
    line_counters* counters_;
    std::chrono::nanoseconds now_{0};
    std::string held_; // input not yet processed after a pause
};

} // namespace switchboard::protocol
