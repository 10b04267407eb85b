/// @file
/// @brief `switchboard::detail::lifecycle`: the state machine of one connection, with its one
/// close path. Internal to the connection engine (asio/detail/connection.hpp). Sans-I/O: it only
/// decides; the connection carries out the action it returns.
///
/// States (`lifecycle_state`), in the only order they are entered:
///
/// | state | meaning | output | input |
/// |---|---|---|---|
/// | `accepted` | stream handshake (TLS) or protocol handshake (WebSocket) under way; no router session yet | raw protocol bytes only | handshake bytes only |
/// | `open` | a router session; the normal life | queued and written | read and processed |
/// | `draining` | a graceful close was asked: what is queued is still written | still accepted and written | no longer processed |
/// | `closing` | output is cut: nothing more is written, the queue is dropped once no write is in flight, `finish()` is posted | refused (`delivery::closed`) | over |
/// | `closed` | `finish()` ran on the strand: stream closed, session released, connection forgotten | refused | over |
///
/// Transitions (every close request goes through `request_close()`; the reason and error of the
/// first one are kept, later ones only escalate a drain into a cut):
///
/// | from | event | to | action for the connection |
/// |---|---|---|---|
/// | accepted | handshake done (`open()`) | open | open the router session, greet, read |
/// | accepted, open | `request_close(after_flush, ...)`: `/quit`, EOF, kick, `stop()`, timeout | draining | `drain`: queue the protocol's farewell, wake the writer |
/// | accepted, open, draining | `request_close(abort, ...)`: slow consumer, socket error, failed handshake, kick with abort, stop timeout | closing | `cut`: drop the queue unless a write is in flight, post `finish()` |
/// | draining | the writer found the queue empty (`drained()`) | closing | `cut` |
/// | closing | `finish()` on the strand (`finished()`) | closed | — |
/// | draining | `request_close(after_flush, ...)` | draining | none |
/// | closing, closed | any `request_close()` | unchanged | none |
///
/// The router session is released (`router::close_session()`, exactly once, with the recorded
/// reason) when input ends (EOF, `/quit`, read error) or in `finish()`, whichever comes first.
///
/// Thread safety: every member function but `state()` is called with the owner's output mutex
/// held; `state()` may be read without it (a stale value only delays a decision by one step).
#pragma once

#include "../server_options.hpp"
#include "../../transport.hpp"

#include <atomic>
#include <cstdint>
#include <system_error>

namespace switchboard::detail {

/// @brief The states of a connection (see the table in this file).
enum class lifecycle_state : std::uint8_t { accepted, open, draining, closing, closed };

/// @brief What the connection must do after a transition.
enum class lifecycle_action : std::uint8_t {
    none,  ///< Nothing changed.
    drain, ///< Entered `draining`: queue the farewell, make sure the writer runs.
    cut,   ///< Entered `closing`: drop the queue unless a write is in flight, post `finish()`.
};

/// @brief One connection's lifecycle: its state, and why and how it ended.
class lifecycle {
public:
    /// @brief The current state (may be read without the lock).
    [[nodiscard]] lifecycle_state state() const noexcept { return state_.load(std::memory_order_acquire); }
    /// @brief Deliveries are queued (open or draining; accepted for raw handshake bytes).
    [[nodiscard]] bool accepts_output() const noexcept { return state() < lifecycle_state::closing; }
    /// @brief Input is no longer processed (draining or later).
    [[nodiscard]] bool input_stopped() const noexcept { return state() >= lifecycle_state::draining; }
    /// @brief Output is cut (closing or closed).
    [[nodiscard]] bool cut() const noexcept { return state() >= lifecycle_state::closing; }

    /// @brief accepted -> open. False when a close came first (the session must not be opened).
    bool open() noexcept {
        if (state() != lifecycle_state::accepted) return false;
        set(lifecycle_state::open);
        return true;
    }

    /// @brief The one close path: records the first reason and error, then drains or cuts.
    /// @param mode `after_flush` drains (queued output is still written), `abort` cuts.
    /// @param why recorded if no reason was recorded before.
    /// @param error the socket error, recorded with the first reason (or later, if none was).
    lifecycle_action request_close(close_mode mode, disconnect_reason why, const std::error_code& error) noexcept {
        const lifecycle_state s = state();
        if (s >= lifecycle_state::closing) return lifecycle_action::none;
        if (!has_reason_) {
            reason_ = why;
            has_reason_ = true;
        }
        if (error && !error_) error_ = error;
        if (mode == close_mode::abort) {
            set(lifecycle_state::closing);
            return lifecycle_action::cut;
        }
        if (s == lifecycle_state::draining) return lifecycle_action::none;
        set(lifecycle_state::draining);
        return lifecycle_action::drain;
    }

    /// @brief The writer found nothing left to write while draining: draining -> closing.
    lifecycle_action drained() noexcept {
        if (state() != lifecycle_state::draining) return lifecycle_action::none;
        set(lifecycle_state::closing);
        return lifecycle_action::cut;
    }

    /// @brief `finish()` ran: closing -> closed.
    void finished() noexcept { set(lifecycle_state::closed); }

    /// @brief The recorded reason, or `fallback` when none was recorded.
    [[nodiscard]] disconnect_reason reason_or(disconnect_reason fallback) const noexcept {
        return has_reason_ ? reason_ : fallback;
    }
    /// @brief The recorded socket error (empty if none).
    [[nodiscard]] const std::error_code& error() const noexcept { return error_; }

private:
    void set(lifecycle_state s) noexcept { state_.store(s, std::memory_order_release); }

    std::atomic<lifecycle_state> state_{lifecycle_state::accepted};
    disconnect_reason reason_ = disconnect_reason::error;
    bool has_reason_ = false;
    std::error_code error_;
};

} // namespace switchboard::detail
