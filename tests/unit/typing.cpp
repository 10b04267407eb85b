// Typing (issue #11, C) on the core: ephemeral, every session of the user, the stop on close.
#include "line_client.hpp"

#include <catch2/catch.hpp>

using switchboard::router;
using switchboard_test::line_client;
using switchboard_test::lines_t;

TEST_CASE("typing: start and stop, no reply, usage", "[typing]") {
    router r;
    line_client a(r), b(r);
    a.say("/register alice", 0);
    b.say("/register bob", 0);
    (void)a.lines();
    (void)b.lines();
    a.say("/typing bob", 10);
    a.say("/typing bob stop", 11);
    a.say("/typing bob later");
    a.say("/typing nobody");
    a.say("/typing");
    a.say("/typing b@d");
    CHECK(b.lines() == lines_t{"typing alice", "typing alice stop"});
    CHECK(a.lines() == lines_t{"err usage typing", "err usage typing", "err invalid-name b@d"});
}

TEST_CASE("typing: a session closing within 5 s of a start sends the stop; not after a message or later",
          "[typing]") {
    router r;
    line_client b(r);
    b.say("/register bob", 0);
    {
        line_client a(r);
        a.say("/register alice", 1000);
        a.say("/typing bob", 1000);
        r.tick(5999);
        (void)b.lines();
    } // crashes 4999 ms after the start
    CHECK(b.lines() == lines_t{"typing alice stop"});
    {
        line_client a(r);
        a.say("/register alice", 10000);
        a.say("/typing bob", 10000);
        a.say("@bob done", 10001); // a message ends the indicator
        (void)b.lines();
    }
    CHECK(b.lines().empty());
    {
        line_client a(r);
        a.say("/register alice", 20000);
        a.say("/typing bob", 20000);
        r.tick(25000); // 5 s later: the client has expired it itself
        (void)b.lines();
    }
    CHECK(b.lines().empty());
}

TEST_CASE("typing: dropped for a backed-up session, which keeps its connection", "[typing]") {
    // A transport that says its output is backed up: it drops ephemeral events.
    class backed_up_transport final : public switchboard::transport {
    public:
        switchboard::delivery deliver(const switchboard::payload& p) noexcept override {
            got.push_back(std::string(p.view()));
            return switchboard::delivery::queued;
        }
        switchboard::delivery deliver_ephemeral(const switchboard::payload&) noexcept override {
            return switchboard::delivery::backed_up;
        }
        void close(switchboard::close_mode) noexcept override { closed = true; }
        std::vector<std::string> got;
        bool closed = false;
    } slow;
    router r;
    const auto s = r.open_session(slow, switchboard::protocol::line_event_encoder::instance());
    REQUIRE(r.register_name(s, "bob") == switchboard::status::ok);
    line_client a(r);
    a.say("/register alice", 0);
    a.say("/typing bob", 0);
    a.say("@bob hi", 0);
    CHECK(slow.got == std::vector<std::string>{"msg alice hi\n"});
    CHECK_FALSE(slow.closed);
    CHECK(r.counters().typing_dropped == 1);
    (void)r.close_session(s);
}

TEST_CASE("typing: a closed session's watches and indicators end with it, and its reused slot starts with none",
          "[typing][presence]") {
    router r;
    line_client b(r);
    b.say("/register bob", 0);
    switchboard::session_id first;
    {
        line_client a(r);
        first = a.id();
        a.say("/register alice", 100);
        a.say("/watch bob", 100);
        a.say("/typing bob", 100);
        CHECK(a.lines() == lines_t{"ok register alice", "ok watch bob", "presence bob online"});
        CHECK(b.lines() == lines_t{"ok register bob", "typing alice"});
    } // closes within 5 s of the start: bob gets the stop
    CHECK(b.lines() == lines_t{"typing alice stop"});
    line_client c(r);
    REQUIRE(c.id().index() == first.index()); // the freed slot, reused
    c.say("/register carol", 200);
    c.say("/unwatch bob", 200); // the slot's former watch is gone
    c.say("@bob hi", 200);     // no typing indicator to end
    CHECK(c.lines() == lines_t{"ok register carol", "err not-watching bob"});
    CHECK(b.lines() == lines_t{"msg carol hi"});
    c.say("/typing bob", 300); // indicators and watches come back on first use
    c.say("/watch bob", 300);
    CHECK(c.lines() == lines_t{"ok watch bob", "presence bob online"});
    CHECK(b.lines() == lines_t{"typing carol"});
    c.say("/unwatch bob", 300);
    CHECK(c.lines() == lines_t{"ok unwatch bob"});
    b.close(); // nobody watches bob now: the reused slot hears nothing of the first session's watch
    CHECK(c.lines().empty());
}
