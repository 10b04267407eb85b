/// @file
/// @brief `switchboard::redis::connection_options` and `reply_handler`: the vocabulary shared by
/// `redis::connection` and `redis::subscriber`. Target `switchboard::redis` (docs/redis-client.md).
#pragma once

#include <hiredis/hiredis.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace switchboard::redis {

/// @brief Options of `connection` and `subscriber`: where Redis is, and the time limits.
struct connection_options {
    /// @brief Redis' address: an IPv4 or IPv6 literal or a host name (resolved with a blocking
    /// `getaddrinfo()` by hiredis at each connect attempt; use a literal on the hot path).
    std::string host = "127.0.0.1";
    /// @brief Redis' TCP port.
    std::uint16_t port = 6379;
    /// @brief How long one connect attempt may take (TCP handshake), in milliseconds; past it the
    /// attempt is abandoned and the next one is scheduled with backoff. 0 = no limit.
    std::chrono::milliseconds connect_timeout{1000};
    /// @brief How long the oldest command may wait for its reply, in milliseconds. Past it the
    /// connection is dropped: every pending handler gets nullptr, `on_down` is called and a
    /// reconnect starts. This is how a frozen Redis (SIGSTOP, a hung host, a partition without
    /// RST) is detected. 0 = no limit.
    std::chrono::milliseconds command_timeout{2000};
    /// @brief The first reconnect delay, in milliseconds; doubled after each failed attempt.
    std::chrono::milliseconds backoff_min{50};
    /// @brief The cap of the reconnect delay, in milliseconds. Each delay is drawn uniformly in
    /// [d/2, d] for the current d ("equal jitter"), so nodes that lost Redis together do not
    /// reconnect in lockstep.
    std::chrono::milliseconds backoff_max{2000};
};

/// @brief The handler of one command's reply.
///
/// Called exactly once, on the io_context: with the reply (valid only during the call; hiredis
/// frees it afterwards: copy what you keep), which may be a Redis error (`r->type ==
/// REDIS_REPLY_ERROR`, `r->str` / `r->len` the message); or with nullptr when the connection was
/// lost, the command timed out, or `stop()` was called: whether Redis ran the command is then
/// unknown.
using reply_handler = std::function<void(const redisReply* r)>;

} // namespace switchboard::redis
