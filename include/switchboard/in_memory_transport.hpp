/// @file
/// @brief `switchboard::in_memory_transport`: a transport that keeps what it is given, for unit
/// tests (yours and ours) and for hosts that poll their sessions from a game loop.
#pragma once

#include "payload.hpp"
#include "transport.hpp"

#include <cstddef>
#include <limits>
#include <new>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard {

/// @brief Stores every delivered payload in order; `close()` only records that it was asked.
///
/// It is the worked example of docs/design.md, "Writing a transport adapter": it honours the
/// transport contract (no blocking, no call back into the router, a bounded queue) with no I/O.
///
/// Thread safety: none; use it from the thread that holds the router.
class in_memory_transport final : public transport {
public:
    /// @brief A transport that holds at most `max_queued_bytes` not yet taken.
    /// @param max_queued_bytes output bound in bytes; past it `deliver()` returns
    ///        `delivery::slow_consumer` and the transport closes (as a socket adapter would).
    explicit in_memory_transport(
        std::size_t max_queued_bytes = std::numeric_limits<std::size_t>::max()) noexcept
        : max_queued_bytes_(max_queued_bytes) {}

    /// @brief Keeps `bytes` (shared, not copied).
    /// @param bytes the payload; counts in full against the bound until taken.
    /// @return `queued`; `closed` after `close()`; `slow_consumer` when the bound would be
    ///         exceeded (the transport is then closed, as with `close_mode::abort`).
    delivery deliver(const payload& bytes) noexcept override {
        if (closed_) return delivery::closed;
        if (bytes.size() > max_queued_bytes_ - queued_bytes_) {
            close(close_mode::abort);
            return delivery::slow_consumer;
        }
        try {
            received_.push_back(bytes);
        } catch (const std::bad_alloc&) {
            close(close_mode::abort);
            return delivery::slow_consumer;
        }
        queued_bytes_ += bytes.size();
        return delivery::queued;
    }

    /// @brief Records the request; later deliveries return `delivery::closed`.
    /// @param mode recorded the first time only (see `closed_with()`).
    void close(close_mode mode) noexcept override {
        if (!closed_) close_mode_ = mode;
        closed_ = true;
    }

    /// @brief Queues `bytes` like `deliver()` when they fit the bound; otherwise drops them and
    /// returns `delivery::backed_up`, keeping the session (transport.hpp).
    /// @param bytes the payload.
    /// @return `queued`, `closed` or `backed_up`.
    delivery deliver_ephemeral(const payload& bytes) noexcept override {
        if (closed_) return delivery::closed;
        if (bytes.size() > max_queued_bytes_ - queued_bytes_) return delivery::backed_up;
        return deliver(bytes);
    }

    /// @brief True after `close()` (or a slow-consumer drop).
    [[nodiscard]] bool closed() const noexcept { return closed_; }
    /// @brief The mode of the first `close()`; meaningful only when `closed()`.
    [[nodiscard]] close_mode closed_with() const noexcept { return close_mode_; }
    /// @brief Payloads received and not yet taken, in delivery order.
    [[nodiscard]] const std::vector<payload>& received() const noexcept { return received_; }
    /// @brief Bytes received and not yet taken.
    [[nodiscard]] std::size_t queued_bytes() const noexcept { return queued_bytes_; }

    /// @brief Takes everything received, concatenated.
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] std::string take_bytes() {
        std::string out;
        out.reserve(queued_bytes_);
        for (const payload& p : received_) out.append(p.data(), p.size());
        received_.clear();
        queued_bytes_ = 0;
        return out;
    }

    /// @brief Takes everything received, split into lines at LF (terminators removed; a final
    /// unterminated piece is returned as a line too).
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] std::vector<std::string> take_lines() {
        const std::string all = take_bytes();
        std::vector<std::string> lines;
        std::size_t start = 0;
        while (start < all.size()) {
            std::size_t lf = all.find('\n', start);
            if (lf == std::string::npos) lf = all.size();
            lines.emplace_back(all, start, lf - start);
            start = lf + 1;
        }
        return lines;
    }

private:
    std::vector<payload> received_;
    std::size_t queued_bytes_ = 0;
    std::size_t max_queued_bytes_;
    bool closed_ = false;
    close_mode close_mode_ = close_mode::after_flush;
};

} // namespace switchboard
