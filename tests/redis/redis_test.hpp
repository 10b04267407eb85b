// Helpers of the Redis client's tests: a real redis-server (redis_server.hpp) per test, and
// running the io_context until a condition holds, with a deadline (no sleeps as synchronisation).
#pragma once

#include "redis_server.hpp"

#include <switchboard/redis/connection.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <string_view>

namespace redis_test {

namespace net = switchboard::net;
using namespace std::chrono_literals;

// Runs `io` until `done()` holds or `limit` passes; returns whether it held.
template <class Predicate>
bool run_until(net::io_context& io, Predicate done, std::chrono::milliseconds limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        io.restart();
        io.run_one_for(10ms);
    }
    return true;
}

// Runs `io` for `d` (to check that something does NOT happen).
inline void run_for(net::io_context& io, std::chrono::milliseconds d) {
    io.restart();
    io.run_for(d);
}

inline switchboard::redis::connection_options options_for(const switchboard::test::redis_server& s) {
    switchboard::redis::connection_options o;
    o.host = s.host();
    o.port = s.port();
    return o;
}

// Options with short reconnect delays (10 to 100 ms), for the tests that kill or restart Redis.
inline switchboard::redis::connection_options fast_options(const switchboard::test::redis_server& s) {
    auto o = options_for(s);
    o.backoff_min = 10ms;
    o.backoff_max = 100ms;
    return o;
}

// Counts the on_up and on_down calls of a connection or a subscriber.
struct up_down {
    int ups = 0;
    int downs = 0;
    template <class Client>
    explicit up_down(Client& c) {
        c.on_up([this] { ++ups; });
        c.on_down([this] { ++downs; });
    }
    up_down(const up_down&) = delete;
    up_down& operator=(const up_down&) = delete;
};

// The reply as text (status, string, error), or the integer in decimal; "(nil)", "(null)".
inline std::string text(const redisReply* r) {
    if (r == nullptr) return "(null)";
    switch (r->type) {
    case REDIS_REPLY_INTEGER: return std::to_string(r->integer);
    case REDIS_REPLY_NIL: return "(nil)";
    case REDIS_REPLY_ARRAY: return "(array)";
    default: return std::string(r->str, r->len);
    }
}

} // namespace redis_test
