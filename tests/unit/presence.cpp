// Presence (issue #11, B) on the core: watch, last seen stamped at input, transitions, grace —
// with a fake clock (touch/tick values).
#include "line_client.hpp"

#include <catch2/catch.hpp>

#include <chrono>

using switchboard::router;
using switchboard::router_options;
using switchboard::session_policy;
using switchboard_test::line_client;
using switchboard_test::lines_t;

TEST_CASE("presence: watch reports the state at once, then each transition", "[presence]") {
    router r;
    line_client w(r);
    w.say("/register w", 1000);
    w.say("/watch bob", 1000);
    CHECK(w.lines() == lines_t{"ok register w", "ok watch bob", "presence bob offline"});
    {
        line_client bob(r);
        bob.say("/register bob", 2000);
        CHECK(w.lines() == lines_t{"presence bob online"});
        bob.say("/who", 3000);
        r.tick(9000); // the reap comes later: last seen is the last input, not this
    }
    CHECK(w.lines() == lines_t{"presence bob offline 3000"});
    line_client w2(r);
    w2.say("/register w2", 9500);
    w2.say("/watch BOB", 9500);
    CHECK(w2.lines() == lines_t{"ok register w2", "ok watch bob", "presence bob offline 3000"});
    w2.say("/watch bob");
    CHECK(w2.lines() == lines_t{"err already-watching bob"});
    w2.say("/unwatch bob");
    w2.say("/unwatch bob");
    w2.say("/watch");
    w2.say("/watch b@d");
    CHECK(w2.lines() == lines_t{"ok unwatch bob", "err not-watching bob", "err usage watch", "err invalid-name b@d"});
}

TEST_CASE("presence: a second session coming or going is not a transition (multi)", "[presence]") {
    router_options o;
    o.sessions = session_policy::multi;
    router r(o);
    line_client w(r), phone(r);
    w.say("/register w", 1);
    w.say("/watch alice", 1);
    phone.say("/register alice", 2);
    (void)w.lines();
    {
        line_client laptop(r);
        laptop.say("/register alice", 3);
        CHECK(w.lines().empty());
    }
    CHECK(w.lines().empty()); // still online on the phone
    phone.say("/who", 50);
    phone.close();
    CHECK(w.lines() == lines_t{"presence alice offline 50"});
}

TEST_CASE("presence: the grace period delays the offline event, a return within it cancels both",
          "[presence]") {
    router_options o;
    o.presence_grace = std::chrono::milliseconds{500};
    router r(o);
    line_client w(r);
    w.say("/register w", 0);
    w.say("/watch bob", 0);
    (void)w.lines();
    {
        line_client bob(r);
        bob.say("/register bob", 100);
        CHECK(w.lines() == lines_t{"presence bob online"});
        r.tick(200);
    }
    r.tick(600); // 400 ms after the close: not yet
    CHECK(w.lines().empty());
    w.say("/who", 650);
    CHECK(w.lines() == lines_t{"who w"}); // not listed during the grace period
    line_client w2(r);
    w2.say("/register w2", 650);
    w2.say("/watch bob", 650);
    CHECK(w2.lines() == lines_t{"ok register w2", "ok watch bob", "presence bob online"}); // last announced
    {
        line_client bob(r);
        bob.say("/register bob", 680); // back within the grace period: no event at all
        r.tick(2000);
        CHECK(w.lines().empty());
        bob.say("/who", 2100);
        r.tick(2200);
    }
    r.tick(2699);
    CHECK(w.lines().empty());
    r.tick(2700);
    CHECK(w.lines() == lines_t{"presence bob offline 2100"});
}

TEST_CASE("presence: too many watches; watches end with the session; the host callback", "[presence]") {
    router_options o;
    o.max_watches_per_session = 1;
    router r(o);
    std::vector<std::string> seen;
    r.on_presence([&](std::string_view user, bool online, std::int64_t last) {
        seen.push_back(std::string(user) + (online ? " on" : " off " + std::to_string(last)));
    });
    line_client w(r);
    w.say("/register w", 5);
    w.say("/watch w", 5); // oneself
    w.say("/watch w");
    w.say("/watch x");
    CHECK(w.lines() == lines_t{"ok register w", "ok watch w", "presence w online", "err already-watching w",
                               "err too-many-watches x"});
    w.close();
    CHECK(seen == std::vector<std::string>{"w on", "w off 5"});
}
