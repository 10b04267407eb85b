/// @file
/// @brief `switchboard::protocol::line_protocol`: the line protocol v1 as a Protocol policy of the
/// connection engine (protocol/policy.hpp): the greeting, the refusal and timeout notices, the
/// counters, and `line_session` for the rest. Sans-I/O: it never includes Asio; the adapter
/// (asio/) holds no line-protocol literal, it asks this policy.
#pragma once

#include "../event.hpp"
#include "../payload.hpp"
#include "../router.hpp"
#include "../session_id.hpp"
#include "line.hpp"
#include "line_session.hpp"
#include "policy.hpp"

#include <chrono>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace switchboard::protocol {

/// @brief The line protocol v1 (docs/protocol.md) as the engine's Protocol policy.
///
/// One object per connection: empty until the router session is opened (`open()`), then a
/// `line_session`. Thread safety: none of its own; the engine calls it under the router's
/// serialisation (except construction and `farewell()`, which touch no shared state).
class line_protocol {
public:
    /// @brief Server-wide state: session options, the greeting and the refusal totals.
    /// Guarded by the router's serialisation (the counters are written by sessions).
    struct config {
        /// @brief Built from the server's options (`tcp_server_options` or any type with
        /// `max_line`, `rate` and `greeting` members).
        /// @throws std::bad_alloc when the greeting cannot be copied.
        template <class Options>
        explicit config(const Options& o) : greeting(o.greeting) {
            session.max_line = o.max_line;
            session.rate = o.rate;
            session.counters = &totals;
        }
        config(const config&) = delete;            // session.counters points into this object
        config& operator=(const config&) = delete;

        line_counters totals;         ///< Lines refused (rate limit, length), by every session.
        line_session_options session; ///< Limits of each session; its counters point at `totals`.
        std::string greeting;         ///< Sent on connect, one informational line per LF-separated line.
    };

    /// @brief No handshake: a connection is a session as soon as its stream is ready.
    static constexpr bool has_handshake = false;

    /// @brief The wire format of events: one line per event (`line_event_encoder`).
    [[nodiscard]] static const event_encoder& format() noexcept { return line_event_encoder::instance(); }

    /// @brief What a connection over a limit is told before it is closed: `* server full` (the
    /// socket is new, so the line fits its send buffer).
    [[nodiscard]] static std::string_view refusal(refusal_reason) noexcept { return "* server full\n"; }

    /// @brief The refusal totals, for `tcp_server_counters` (read under the router's serialisation).
    [[nodiscard]] static line_counters counters(const config& c) noexcept { return c.totals; }

    /// @brief Per-connection state before the session exists; allocates nothing.
    explicit line_protocol(config&) noexcept {}

    /// @brief Not called: `has_handshake` is false. Present so that the interface is uniform.
    template <class Emit>
    handshake_result handshake(std::string_view, config&, Emit&&) noexcept {
        return {handshake_result::kind::accepted, 0};
    }

    /// @brief The router session `id` of `r` exists: binds to it and sends the greeting.
    /// @throws std::bad_alloc when memory runs out.
    void open(router& r, session_id id, config& c) {
        session_.emplace(r, id, c.session);
        session_->greet(c.greeting);
    }

    /// @brief Input once open (see `line_session::on_input()` with a pause predicate).
    /// @throws std::bad_alloc when memory runs out.
    template <class Pause>
    input_result on_input(std::string_view bytes, std::chrono::nanoseconds now, Pause&& pause) {
        if (!session_) return input_result::keep_reading;
        return session_->on_input(bytes, now, std::forward<Pause>(pause));
    }

    /// @brief Continues after `paused` (see `line_session::resume()`).
    /// @throws std::bad_alloc when memory runs out.
    template <class Pause>
    input_result resume(std::chrono::nanoseconds now, Pause&& pause) {
        if (!session_) return input_result::keep_reading;
        return session_->resume(now, std::forward<Pause>(pause));
    }

    /// @brief The peer half-closed: the unterminated last line is processed as a line.
    /// @throws std::bad_alloc when memory runs out.
    void on_end_of_input() {
        if (session_) (void)session_->on_end_of_input();
    }

    /// @brief Tells the client why it is about to be closed: `* register timeout` or
    /// `* idle timeout`. Best effort: nothing is sent when memory runs out.
    static void notify(router& r, session_id id, session_notice n) noexcept {
        try {
            (void)r.send(id, encode_info(n == session_notice::register_timeout ? "register timeout" : "idle timeout"));
        } catch (const std::bad_alloc&) {
        }
    }

    /// @brief Nothing: the line protocol has no closing message (`ok quit` is a reply).
    [[nodiscard]] payload farewell() const noexcept { return payload{}; }

    /// @brief Bytes of unfinished input held (framer and paused input), for diagnostics.
    [[nodiscard]] std::size_t buffered() const noexcept {
        return session_ ? session_->buffered() + session_->held() : 0;
    }

private:
    std::optional<line_session> session_;
};

static_assert(check_protocol_policy<line_protocol>(), "line_protocol is a Protocol policy");

} // namespace switchboard::protocol
