// switchboard::rate_limiter (GCRA token bucket) and the line protocol's per-session rate limit:
// `err rate-limited`, the line dropped, the session kept.
#include <switchboard/in_memory_transport.hpp>
#include <switchboard/protocol/line_session.hpp>
#include <switchboard/rate_limiter.hpp>
#include <switchboard/router.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

using namespace switchboard;
using namespace std::chrono_literals;
using lines = std::vector<std::string>;

TEST_CASE("rate_limiter: off by default, every event passes", "[rate]") {
    rate_limiter l;
    CHECK_FALSE(l.enabled());
    for (int i = 0; i < 100000; ++i) REQUIRE(l.try_acquire(0ns));
}

TEST_CASE("rate_limiter: a full bucket of `burst`, then one event per interval", "[rate]") {
    rate_limiter l(rate_limit{10, 5}); // 10/s: one every 100 ms, 5 back to back
    const auto t0 = std::chrono::nanoseconds(5s);
    for (int i = 0; i < 5; ++i) CHECK(l.try_acquire(t0));
    CHECK_FALSE(l.try_acquire(t0));
    CHECK_FALSE(l.try_acquire(t0 + 99ms));
    CHECK(l.try_acquire(t0 + 100ms)); // one token back after one interval
    CHECK_FALSE(l.try_acquire(t0 + 100ms));
    // Refusals cost nothing: after a flood of refused events the rate is still the configured one.
    for (int i = 0; i < 1000; ++i) CHECK_FALSE(l.try_acquire(t0 + 150ms));
    CHECK(l.try_acquire(t0 + 200ms));
    // A long quiet period refills the bucket to `burst`, never more.
    const auto later = t0 + 60s;
    for (int i = 0; i < 5; ++i) CHECK(l.try_acquire(later));
    CHECK_FALSE(l.try_acquire(later));
}

TEST_CASE("rate_limiter: sustained rate over a long run matches per_second", "[rate]") {
    rate_limiter l(rate_limit{1000, 1});
    int passed = 0;
    // Offer one event every 100 us (10x the rate) for 10 s of simulated time.
    for (std::int64_t us = 0; us < 10'000'000; us += 100)
        passed += l.try_acquire(std::chrono::microseconds(us)) ? 1 : 0;
    CHECK(passed == 10000);
}

TEST_CASE("rate_limiter: burst 0 is treated as 1", "[rate]") {
    rate_limiter l(rate_limit{2, 0});
    CHECK(l.try_acquire(0ns));
    CHECK_FALSE(l.try_acquire(1ms));
    CHECK(l.try_acquire(500ms));
}

TEST_CASE("line_session: over the rate a line gets `err rate-limited` and is dropped; /quit is never limited",
          "[rate][session]") {
    router r;
    in_memory_transport ta, tb;
    const session_id a = r.open_session(ta, switchboard::protocol::line_event_encoder::instance()), b = r.open_session(tb, switchboard::protocol::line_event_encoder::instance());
    protocol::line_counters counters;
    protocol::line_session_options o;
    o.rate = rate_limit{1, 3};
    o.counters = &counters;
    protocol::line_session la(r, a, o), lb(r, b, {});
    lb.on_input("/register bob\n");
    (void)tb.take_lines();
    const auto t0 = std::chrono::nanoseconds(1s);
    la.on_input("/register alice\n@bob one\n@bob two\n@bob three\n/who\n", t0);
    CHECK(ta.take_lines() == lines{"ok register alice", "err rate-limited", "err rate-limited"});
    CHECK(tb.take_lines() == lines{"msg alice one", "msg alice two"}); // "three" was dropped
    CHECK(counters.rate_limited == 2);
    // Empty lines are free; the session is still registered and works again a second later.
    la.on_input("\n\n\n", t0 + 500ms);
    CHECK(ta.take_lines().empty());
    la.on_input("@bob four\n", t0 + 1s);
    CHECK(tb.take_lines() == lines{"msg alice four"});
    CHECK(r.name_of(a) == "alice");
    // /quit passes even with an empty bucket.
    CHECK(la.on_input("@bob five\n/quit\n", t0 + 1s) == protocol::input_result::quit);
    CHECK(ta.take_lines() == lines{"err rate-limited", "ok quit"});
    CHECK(counters.rate_limited == 3);
}

TEST_CASE("line_session: line-too-long is counted", "[session]") {
    router r;
    in_memory_transport t;
    const session_id s = r.open_session(t, switchboard::protocol::line_event_encoder::instance());
    protocol::line_counters counters;
    protocol::line_session_options o;
    o.max_line = 4;
    o.counters = &counters;
    protocol::line_session ls(r, s, o);
    ls.on_input("/who is this\n/who\n");
    CHECK(t.take_lines() == lines{"err line-too-long", "who"});
    CHECK(counters.line_too_long == 1);
}
