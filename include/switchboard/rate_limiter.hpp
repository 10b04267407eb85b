/// @file
/// @brief `switchboard::rate_limiter`: a per-session token bucket, sans-I/O (the caller passes the
/// time; the limiter never reads a clock).
#pragma once

#include <chrono>
#include <cstdint>

namespace switchboard {

/// @brief Rate and burst of a `rate_limiter`.
struct rate_limit {
    /// @brief Sustained rate in events per second; 0 turns the limit off (every event passes).
    std::uint32_t per_second = 0;
    /// @brief Events that may pass back to back after a quiet period (the bucket size), 1 or more
    /// (0 is treated as 1).
    std::uint32_t burst = 1;

    /// @brief True when a rate is set.
    [[nodiscard]] constexpr bool enabled() const noexcept { return per_second != 0; }
};

/// @brief Token bucket of `burst` tokens refilled at `per_second`, in the equivalent "virtual
/// scheduling" form of the Generic Cell Rate Algorithm (ITU-T Recommendation I.371, GCRA): one
/// time value per session instead of a token count and a refill time, integer arithmetic only.
///
/// An event at time `now` conforms when the theoretical arrival time `tat` is at most
/// `(burst - 1) * interval` ahead of `now`; a conforming event moves `tat` to
/// `max(tat, now) + interval`, with `interval = 1 s / per_second`. A refused event changes
/// nothing, so a client that keeps sending while limited is not punished further: it gets through
/// again at the configured rate.
///
/// Time: any monotonic clock, as a duration since a fixed epoch of the caller's choosing (for
/// example `steady_clock::now().time_since_epoch()`). It must not go backwards: events would be
/// refused until it caught up again.
///
/// Thread safety: none; one limiter per session, used under the session's serialisation.
class rate_limiter {
public:
    /// @brief A limiter for `limit` (off when `limit.per_second` is 0).
    explicit rate_limiter(rate_limit limit = {}) noexcept
        : interval_(limit.per_second ? std::chrono::nanoseconds(std::chrono::seconds(1)) / limit.per_second
                                     : std::chrono::nanoseconds::zero()),
          tolerance_(interval_ * (limit.burst ? limit.burst - 1 : 0)) {}

    /// @brief Asks for one event at time `now`.
    /// @param now the current time (nanoseconds since the caller's fixed epoch).
    /// @return true when the event conforms (and is counted), false when it exceeds the rate.
    [[nodiscard]] bool try_acquire(std::chrono::nanoseconds now) noexcept {
        if (interval_.count() == 0) return true;
        if (!started_) { // the bucket starts full
            started_ = true;
            tat_ = now;
        }
        if (tat_ - now > tolerance_) return false;
        tat_ = (tat_ > now ? tat_ : now) + interval_;
        return true;
    }

    /// @brief True when a rate is set.
    [[nodiscard]] bool enabled() const noexcept { return interval_.count() != 0; }

private:
    std::chrono::nanoseconds interval_;  // time one event uses up
    std::chrono::nanoseconds tolerance_; // how far ahead of now tat_ may run: (burst - 1) events
    std::chrono::nanoseconds tat_{0};    // theoretical arrival time of the next conforming event
    bool started_ = false;
};

} // namespace switchboard
