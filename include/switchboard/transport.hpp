/// @file
/// @brief `switchboard::transport`: the interface through which a router hands bytes to one
/// session and asks to close it. Adapters (TCP, TLS, WebSocket, in-memory) implement it.
#pragma once

#include "payload.hpp"

#include <cstdint>
#include <string_view>

namespace switchboard {

/// @brief What a transport did with a delivered payload.
enum class delivery : std::uint8_t {
    queued,        ///< Accepted; it will be written in order after everything queued before it.
    closed,        ///< Dropped: the session is closing or closed.
    slow_consumer, ///< Dropped: the output bound was exceeded; the transport is closing itself.
    backed_up,     ///< Dropped, session kept: an ephemeral event (`deliver_ephemeral()`) met a
                   ///< backed-up output queue.
    unavailable,   ///< Dropped, session kept: a remote session's transport (a cluster backplane)
                   ///< cannot reach the node holding the real session now (docs/design.md,
                   ///< "Clusters: the directory hook and remote sessions").
};

/// @brief The protocol token of a delivery result (`"queued"`, `"closed"`, `"slow-consumer"`,
/// `"backed-up"`, `"unavailable"`).
/// @note Thread-safe (pure function).
[[nodiscard]] constexpr std::string_view to_string(delivery d) noexcept {
    switch (d) {
    case delivery::queued: return "queued";
    case delivery::closed: return "closed";
    case delivery::slow_consumer: return "slow-consumer";
    case delivery::backed_up: return "backed-up";
    case delivery::unavailable: return "unavailable";
    }
    return "unknown";
}

/// @brief How a transport should close.
enum class close_mode : std::uint8_t {
    after_flush, ///< Write everything queued so far, then close (e.g. after `ok quit`).
    abort,       ///< Drop queued output and close at once.
};

/// @brief One session's outbound side, as seen by the router.
///
/// The router owns no sockets: it calls `deliver()` with an encoded, immutable payload and
/// `close()` when a session is to go. One transport object serves one session; a router mixes
/// sessions of any transport types freely (a TCP session can message an in-memory one).
///
/// Contract for implementers (docs/design.md, "Writing a transport adapter"):
/// - `deliver()` must not block: queue the payload (keep the `payload` copy, do not copy the
///   bytes) and return. Payloads of one session must be written in the order of the `deliver()`
///   calls. It may call back into the router (a bot answering, a host-side filter); the router
///   allows that (docs/design.md, "Ordering and re-entrancy": its deliveries are queued behind the current one).
///   A network adapter normally does not: it queues and returns.
/// - `deliver()` bounds its queue: past the bound it returns `delivery::slow_consumer` and closes
///   itself, so one client that stops reading cannot grow the server's memory.
/// - `close()` is a request (it may call back into the router too). When the session is really gone
///   (socket closed, peer reset, EOF), the adapter calls `router::close_session()` exactly once;
///   the transport object must stay valid until that call returns.
///
/// Thread safety: the router calls a transport only from the thread that holds the router
/// (see `router`); an adapter whose I/O runs on other threads synchronises its own queue.
class transport {
public:
    transport() = default;
    transport(const transport&) = delete;
    transport& operator=(const transport&) = delete;
    virtual ~transport() = default;

    /// @brief Queues one payload for the session.
    /// @param bytes the encoded bytes; shared, never modified, kept alive by the copy the
    ///        transport keeps.
    /// @return `queued`, `closed` or `slow_consumer` (see `delivery`).
    virtual delivery deliver(const payload& bytes) noexcept = 0;

    /// @brief Queues an ephemeral event (typing), one that may be lost: a transport whose output
    /// is backed up drops it and returns `delivery::backed_up` instead of queuing it, and never
    /// closes the session for it (issue #11, "Typing": an ephemeral event never costs a
    /// recipient its connection). The default queues it like `deliver()`, which suits transports
    /// without a bound.
    /// @param bytes the encoded bytes, as for `deliver()`.
    /// @return `queued`, `closed` or `backed_up`; never `slow_consumer` from an overriding
    ///         network transport.
    virtual delivery deliver_ephemeral(const payload& bytes) noexcept { return deliver(bytes); }

    /// @brief Asks the transport to close the session.
    /// @param mode flush queued output first, or drop it.
    virtual void close(close_mode mode) noexcept = 0;
};

} // namespace switchboard
