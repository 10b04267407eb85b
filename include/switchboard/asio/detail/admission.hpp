/// @file
/// @brief `switchboard::detail::admission` and `accept_backoff`: who may connect (the total and
/// per-address connection limits, with the per-address counts) and how long the accept loop waits
/// after an accept error. Internal to the engine; no I/O.
#pragma once

#include "../../protocol/policy.hpp"
#include "../server_options.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <map>
#include <optional>

namespace switchboard::detail {

/// @brief Connection limits and the open connections per remote address.
/// Thread safety: none; the server calls it under its connections mutex.
class admission {
public:
    /// @param max_connections 0 for no limit.
    /// @param max_per_address 0 for no limit.
    admission(std::size_t max_connections, std::size_t max_per_address) noexcept
        : max_connections_(max_connections), max_per_address_(max_per_address) {}

    /// @brief Admits a connection from `address` while `open` connections are open, counting it
    /// against its address; or says which limit refuses it.
    /// @return empty when admitted, else the reason of the refusal.
    /// @throws std::bad_alloc when the per-address map cannot grow.
    std::optional<protocol::refusal_reason> admit(const net::ip::address& address, std::size_t open) {
        if (max_connections_ != 0 && open >= max_connections_) return protocol::refusal_reason::server_full;
        if (max_per_address_ == 0) return std::nullopt; // no per-address bookkeeping needed
        std::size_t& from_address = per_address_[address];
        if (from_address >= max_per_address_) return protocol::refusal_reason::per_address;
        ++from_address;
        return std::nullopt;
    }

    /// @brief A connection admitted from `address` is gone.
    void release(const net::ip::address& address) noexcept {
        const auto it = per_address_.find(address);
        if (it != per_address_.end() && --it->second == 0) per_address_.erase(it);
    }

private:
    std::size_t max_connections_;
    std::size_t max_per_address_;
    std::map<net::ip::address, std::size_t> per_address_; // open connections per remote address
};

/// @brief The accept loop's back-off: when `async_accept` fails (EMFILE, ENFILE, ENOBUFS...) the
/// pending connection stays in the backlog, so accepting again at once would fail at once and
/// spin a core. Waits `min`, doubling on each further error up to `max`; a success resets it.
/// Thread safety: none; the acceptor's strand only.
class accept_backoff {
public:
    /// @param min first delay; @param max longest delay.
    accept_backoff(std::chrono::milliseconds min, std::chrono::milliseconds max) noexcept : min_(min), max_(max) {}
    /// @brief The delay before the next attempt after an error.
    std::chrono::milliseconds next() noexcept {
        delay_ = delay_.count() == 0 ? min_ : std::min(delay_ * 2, max_);
        return delay_;
    }
    /// @brief An accept succeeded.
    void reset() noexcept { delay_ = std::chrono::milliseconds{0}; }

private:
    std::chrono::milliseconds min_, max_, delay_{0};
};

} // namespace switchboard::detail
