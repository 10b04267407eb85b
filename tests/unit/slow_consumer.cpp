// Backpressure: an in_memory_transport with a byte bound refuses past it (slow_consumer) and closes;
// the router counts the drop and keeps serving everyone else.
#include <switchboard/in_memory_transport.hpp>
#include <switchboard/router.hpp>
#include <switchboard/protocol/line.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using switchboard::close_mode;
using switchboard::delivery;
using switchboard::in_memory_transport;
using switchboard::payload;
using switchboard::route_result;
using switchboard::router;
using switchboard::session_id;
using switchboard::status;
using lines = std::vector<std::string>;

TEST_CASE("slow_consumer: in_memory_transport bound is exact, past it slow_consumer and abort-close",
          "[slow]") {
    using switchboard::to_string;
    CHECK(to_string(delivery::queued) == "queued");
    CHECK(to_string(delivery::closed) == "closed");
    CHECK(to_string(delivery::slow_consumer) == "slow-consumer");

    in_memory_transport t(10);
    CHECK(t.deliver(payload::copy_of("12345")) == delivery::queued);
    CHECK(t.deliver(payload::copy_of("67890")) == delivery::queued); // exactly at the bound
    CHECK(t.queued_bytes() == 10);
    CHECK_FALSE(t.closed());
    CHECK(t.deliver(payload::copy_of("x")) == delivery::slow_consumer);
    CHECK(t.closed());
    CHECK(t.closed_with() == close_mode::abort);
    CHECK(t.deliver(payload::copy_of("y")) == delivery::closed);
    CHECK(t.received().size() == 2);
    CHECK(t.take_bytes() == "1234567890");
    // Taking the bytes frees room, but a closed transport stays closed.
    CHECK(t.deliver(payload::copy_of("z")) == delivery::closed);

    // Taking output makes room again while open.
    in_memory_transport u(4);
    CHECK(u.deliver(payload::copy_of("abcd")) == delivery::queued);
    CHECK(u.take_bytes() == "abcd");
    CHECK(u.queued_bytes() == 0);
    CHECK(u.deliver(payload::copy_of("efgh")) == delivery::queued);
    CHECK_FALSE(u.closed());

    // A single payload larger than the bound is refused even when nothing is queued.
    in_memory_transport v(3);
    CHECK(v.deliver(payload::copy_of("abcd")) == delivery::slow_consumer);
    CHECK(v.received().empty());

    // The first close mode is the one recorded.
    in_memory_transport w;
    w.close(close_mode::after_flush);
    w.close(close_mode::abort);
    CHECK(w.closed_with() == close_mode::after_flush);
}

TEST_CASE("slow_consumer: the router counts the drop and keeps serving others", "[slow]") {
    router r;
    in_memory_transport fast;
    in_memory_transport slow(64); // stops "reading": nobody takes its bytes
    in_memory_transport other;
    const session_id f = r.open_session(fast, switchboard::protocol::line_event_encoder::instance());
    const session_id s = r.open_session(slow, switchboard::protocol::line_event_encoder::instance());
    const session_id o = r.open_session(other, switchboard::protocol::line_event_encoder::instance());
    REQUIRE(r.register_name(f, "fast") == status::ok);
    REQUIRE(r.register_name(s, "slow") == status::ok);
    REQUIRE(r.register_name(o, "other") == status::ok);

    // "msg fast 0123456789\n" is 20 bytes: 3 fit in 64, the 4th does not.
    const std::string text = "0123456789";
    for (int i = 0; i < 3; ++i) {
        const route_result res = r.route(f, "slow", text);
        REQUIRE(res.delivered == 1);
    }
    const route_result res = r.route(f, "slow", text);
    CHECK(res.code == status::ok);
    CHECK(res.delivered == 0);
    CHECK(res.dropped == 1);
    CHECK(slow.closed());
    CHECK(slow.closed_with() == close_mode::abort);
    CHECK(slow.queued_bytes() == 60);
    CHECK(r.counters().dropped == 1);
    CHECK(r.counters().delivered == 3);

    // Later messages to the slow session are dropped (closed) and counted; others are served.
    CHECK(r.route(f, "slow", "more").dropped == 1);
    CHECK(r.counters().dropped == 2);
    for (int i = 0; i < 100; ++i) REQUIRE(r.route(f, "other", std::to_string(i)).delivered == 1);
    CHECK(other.take_lines().size() == 100);
    CHECK(r.route(o, "fast", "still fine").delivered == 1);
    CHECK(fast.take_lines() == lines{"msg other still fine"});

    // The adapter notices the closed connection and closes the session; the name is released.
    REQUIRE(r.close_session(s) == status::ok);
    CHECK(r.route(f, "slow", "x").code == status::user_not_found);
    CHECK(slow.queued_bytes() == 60); // memory stayed bounded
}

TEST_CASE("slow_consumer: a slow member of a room is dropped from a fan-out, others get it", "[slow]") {
    router r;
    in_memory_transport a, b, c(30);
    const session_id sa = r.open_session(a, switchboard::protocol::line_event_encoder::instance());
    const session_id sb = r.open_session(b, switchboard::protocol::line_event_encoder::instance());
    const session_id sc = r.open_session(c, switchboard::protocol::line_event_encoder::instance());
    REQUIRE(r.register_name(sa, "a") == status::ok);
    REQUIRE(r.register_name(sb, "b") == status::ok);
    REQUIRE(r.register_name(sc, "c") == status::ok);
    for (session_id s : {sc, sa, sb}) REQUIRE(r.join(s, "room") == status::ok);
    CHECK(c.take_lines() == lines{"join room a", "join room b"}); // c reads these, then stops
    (void)a.take_bytes();

    // "room room a 0123456789012\n" = 26 bytes: fits in 30 once, not twice.
    route_result res = r.publish(sa, "room", "0123456789012");
    CHECK(res.delivered == 2);
    res = r.publish(sa, "room", "0123456789012");
    CHECK(res.delivered == 1);
    CHECK(res.dropped == 1);
    CHECK(c.closed());
    CHECK(b.take_lines() == lines{"room room a 0123456789012", "room room a 0123456789012"});

    // The adapter closes the slow session: the others are told it left.
    REQUIRE(r.close_session(sc) == status::ok);
    CHECK(a.take_lines() == lines{"leave room c"});
    CHECK(b.take_lines() == lines{"leave room c"});
    CHECK(r.room_size(*switchboard::name::parse("room")) == 2);
    CHECK(r.publish(sb, "room", "ok").delivered == 1);
    CHECK(a.take_lines() == lines{"room room b ok"});
}
