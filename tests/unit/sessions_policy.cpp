// Several sessions per user (issue #11, A): exclusive, replace, multi — on the core with the line
// session, time as values.
#include "line_client.hpp"

#include <catch2/catch.hpp>

using switchboard::router;
using switchboard::router_options;
using switchboard::session_policy;
using switchboard_test::line_client;
using switchboard_test::lines_t;
using switchboard_test::with_policy;


TEST_CASE("sessions_policy: exclusive refuses a second registration (v1)", "[sessions]") {
    router r;
    line_client a1(r), a2(r);
    a1.say("/register alice");
    a2.say("/register alice");
    CHECK(a1.lines() == lines_t{"ok register alice"});
    CHECK(a2.lines() == lines_t{"err name-taken alice"});
}

TEST_CASE("sessions_policy: replace moves the name; the old session's late close never touches the new one",
          "[sessions]") {
    router r(with_policy(session_policy::replace));
    line_client old_device(r), new_device(r), bob(r), watcher(r);
    old_device.say("/register alice");
    old_device.say("/join lobby");
    bob.say("/register bob");
    bob.say("/join lobby");
    watcher.say("/register w");
    watcher.say("/watch alice");
    (void)old_device.lines();
    (void)bob.lines();
    (void)watcher.lines();

    new_device.say("/register alice");
    CHECK(new_device.lines() == lines_t{"ok register alice"});
    CHECK(old_device.lines() == lines_t{"bye replaced"});
    CHECK(old_device.transport_closed());
    CHECK(old_device.transport().closed_with() == switchboard::close_mode::after_flush);
    CHECK(bob.lines() == lines_t{"leave lobby alice"}); // released like a disconnect
    CHECK(watcher.lines().empty());                      // no presence change

    old_device.close(); // the late teardown
    bob.say("/msg alice still there?");
    CHECK(new_device.lines() == lines_t{"msg bob still there?"});
    CHECK(r.sessions_of(*switchboard::name::parse("alice")) == 1);
    CHECK(watcher.lines().empty());
}

TEST_CASE("sessions_policy: multi delivers to every session and keeps rooms per session", "[sessions]") {
    router r(with_policy(session_policy::multi, 2));
    line_client phone(r), laptop(r), third(r), bob(r);
    phone.say("/register alice");
    laptop.say("/register Alice");
    third.say("/register alice");
    CHECK(phone.lines() == lines_t{"ok register alice"});
    CHECK(laptop.lines() == lines_t{"ok register alice"});
    CHECK(third.lines() == lines_t{"err too-many-sessions alice"});

    bob.say("/register bob");
    bob.say("/msg alice hi");
    CHECK(phone.lines() == lines_t{"msg bob hi"});
    CHECK(laptop.lines() == lines_t{"msg bob hi"});

    // To oneself: every session of oneself; alice -> bob is not copied to alice's other session.
    phone.say("/msg alice note");
    CHECK(phone.lines() == lines_t{"msg alice note"});
    CHECK(laptop.lines() == lines_t{"msg alice note"});
    phone.say("/msg bob yo");
    CHECK(laptop.lines().empty());
    (void)bob.lines();

    // Rooms belong to sessions: each join and leave is announced, to the user's own sessions too.
    phone.say("/join lobby");
    laptop.say("/join lobby");
    CHECK(phone.lines() == lines_t{"ok join lobby", "join lobby alice"});
    CHECK(laptop.lines() == lines_t{"ok join lobby"});
    bob.say("/join lobby");
    (void)bob.lines();
    (void)phone.lines();
    (void)laptop.lines();
    phone.say("/say lobby from phone");
    CHECK(phone.lines().empty());
    CHECK(laptop.lines() == lines_t{"room lobby alice from phone"});
    CHECK(bob.lines() == lines_t{"room lobby alice from phone"});
    bob.say("/who");
    CHECK(bob.lines() == lines_t{"who alice bob"});
    phone.close();
    CHECK(laptop.lines() == lines_t{"leave lobby alice"});
    CHECK(bob.lines() == lines_t{"leave lobby alice"});
    bob.say("/msg alice after");
    CHECK(laptop.lines() == lines_t{"msg bob after"});
}

TEST_CASE("sessions_policy: a replaced session cannot take the name back with input it had read",
          "[sessions]") {
    router r(with_policy(session_policy::replace));
    line_client old_device(r), new_device(r);
    old_device.say("/register alice");
    (void)old_device.lines();
    new_device.say("/register alice");
    old_device.say("/register alice"); // pipelined before it saw `bye replaced`
    old_device.say("/msg alice from the old one");
    CHECK(old_device.lines() == lines_t{"bye replaced"});
    CHECK(new_device.lines() == lines_t{"ok register alice"});
    CHECK_FALSE(r.is_open(old_device.id()));
    old_device.close();
    CHECK(r.sessions_of(*switchboard::name::parse("alice")) == 1);
}
