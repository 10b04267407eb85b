// Offline inbox and acknowledgements (issue #11, D and E) on the core with memory_inbox.
#include "line_client.hpp"

#include <switchboard/memory_inbox.hpp>

#include <catch2/catch.hpp>

#include <chrono>

using switchboard::memory_inbox;
using switchboard::memory_inbox_options;
using switchboard::router;
using switchboard::router_options;
using switchboard::session_policy;
using switchboard_test::line_client;
using switchboard_test::lines_t;

namespace {
router_options offline(memory_inbox& inbox, session_policy p = session_policy::exclusive) {
    return switchboard_test::with_inbox(inbox, p);
}
} // namespace

TEST_CASE("inbox_acks: a known offline user's messages are queued and replayed after ok register, once",
          "[inbox]") {
    memory_inbox inbox;
    router r(offline(inbox));
    line_client a(r);
    a.say("/register alice");
    a.say("/msg bob hello"); // bob never registered: unknown
    CHECK(a.lines() == lines_t{"ok register alice", "err user-not-found bob"});
    { line_client b(r); b.say("/register bob"); }
    a.say("/msg bob one");
    a.say("/msg BOB two");
    CHECK(a.lines() == lines_t{"ok queued bob", "ok queued bob"});
    {
        line_client b(r);
        b.say("/register bob");
        a.say("/msg bob three"); // live, after the replay
        CHECK(b.lines() == lines_t{"ok register bob", "msg alice one", "msg alice two", "msg alice three"});
    }
    line_client b(r);
    b.say("/register bob");
    CHECK(b.lines() == lines_t{"ok register bob"}); // at-most-once: removed
}

TEST_CASE("inbox_acks: inbox full refuses and stores nothing; TTL drops old messages", "[inbox]") {
    memory_inbox_options io;
    io.max_per_user = 2;
    io.ttl = std::chrono::seconds{10};
    memory_inbox inbox(io);
    router r(offline(inbox));
    line_client a(r);
    a.say("/register alice", 0);
    { line_client b(r); b.say("/register bob", 0); }
    a.say("/msg bob 1", 1000);
    a.say("/msg bob 2", 2000);
    a.say("/msg bob 3", 3000);
    CHECK(a.lines() == lines_t{"ok register alice", "ok queued bob", "ok queued bob", "err inbox-full bob"});
    r.tick(11000); // the first is 10 s old
    CHECK(inbox.message_count() == 1);
    line_client b(r);
    b.say("/register bob", 11500);
    CHECK(b.lines() == lines_t{"ok register bob", "msg alice 2"});
}

TEST_CASE("inbox_acks: acked messages stay until acknowledged and come back on reconnect, same seq",
          "[acks]") {
    memory_inbox inbox;
    router r(offline(inbox));
    line_client a(r);
    a.say("/register alice");
    (void)a.lines();
    {
        line_client b(r);
        b.say("/ack on");
        b.say("/register bob");
        a.say("/msg bob one");
        a.say("/msg bob two");
        CHECK(b.lines() == lines_t{"ok ack on", "ok register bob", "dm 1 alice one", "dm 2 alice two"});
        b.say("/ack 1");
        b.say("/ack 1"); // again: no-op
        b.say("/ack 3");
        b.say("/ack x");
        b.say("/ack 0");
        b.say("/ack");
        CHECK(b.lines() == lines_t{"err ack-invalid 3", "err ack-invalid x", "err ack-invalid 0", "err usage ack"});
    } // crashes before acking 2
    a.say("/msg bob three");
    CHECK(a.lines() == lines_t{"ok queued bob"});
    line_client b(r);
    b.say("/ack on");
    b.say("/register bob");
    a.say("/msg bob four");
    CHECK(b.lines() == lines_t{"ok ack on", "ok register bob", "dm 2 alice two", "dm 3 alice three",
                               "dm 4 alice four"});
    b.say("/ack 4");
    CHECK(inbox.stored(*switchboard::name::parse("bob")) == 0);
}

TEST_CASE("inbox_acks: turning acks on after registering replays the unacked ones at once", "[acks]") {
    memory_inbox inbox;
    router r(offline(inbox, session_policy::multi));
    line_client a(r), phone(r), laptop(r);
    a.say("/register alice");
    phone.say("/ack on");
    phone.say("/register bob");
    a.say("/msg bob one");
    laptop.say("/register bob"); // another session is online: no at-most-once replay
    CHECK(laptop.lines() == lines_t{"ok register bob"});
    a.say("/msg bob two");
    laptop.say("/ack on");
    CHECK(laptop.lines() == lines_t{"msg alice two", "ok ack on", "dm 1 alice one", "dm 2 alice two"});
    laptop.say("/ack on"); // idempotent: no second replay
    CHECK(laptop.lines() == lines_t{"ok ack on"});
}

TEST_CASE("inbox_acks: not supported without an inbox; not-registered first", "[acks]") {
    router r;
    line_client a(r);
    a.say("/ack on");
    a.say("/ack 1");
    memory_inbox inbox;
    router r2(offline(inbox));
    line_client b(r2);
    b.say("/ack 1");
    CHECK(a.lines() == lines_t{"err not-supported ack", "err not-supported ack"});
    CHECK(b.lines() == lines_t{"err not-registered"});
}

TEST_CASE("inbox_acks: multi — each ack-on session gets each dm, an ack from any removes it", "[acks]") {
    memory_inbox inbox;
    router r(offline(inbox, session_policy::multi));
    line_client a(r), phone(r), laptop(r), plain(r);
    a.say("/register alice");
    phone.say("/ack on");
    phone.say("/register bob");
    laptop.say("/ack on");
    laptop.say("/register bob");
    plain.say("/register bob");
    (void)phone.lines();
    (void)laptop.lines();
    (void)plain.lines();
    a.say("/msg bob hi");
    CHECK(phone.lines() == lines_t{"dm 1 alice hi"});
    CHECK(laptop.lines() == lines_t{"dm 1 alice hi"});
    CHECK(plain.lines() == lines_t{"msg alice hi"});
    laptop.say("/ack 1");
    CHECK(inbox.message_count() == 0);
}

TEST_CASE("inbox_acks: a full inbox of an online ack-on user delivers nothing to anyone", "[acks]") {
    memory_inbox_options io;
    io.max_per_user = 1;
    memory_inbox inbox(io);
    router r(offline(inbox));
    line_client a(r), b(r);
    a.say("/register alice");
    b.say("/ack on");
    b.say("/register bob");
    a.say("/msg bob 1");
    a.say("/msg bob 2");
    CHECK(a.lines() == lines_t{"ok register alice", "err inbox-full bob"});
    CHECK(b.lines() == lines_t{"ok ack on", "ok register bob", "dm 1 alice 1"});
}

TEST_CASE("inbox_acks: /send outcomes and de-duplication", "[send]") {
    memory_inbox inbox;
    router r(offline(inbox));
    line_client a(r);
    a.say("/send c1 bob hi", 0);
    a.say("/register alice", 0);
    a.say("/send c1 bob hi", 0);
    a.say("/send c2 b@d hi", 0);
    a.say("/send bad!id bob hi", 0);
    a.say("/send c3 bob", 0);
    CHECK(a.lines() == lines_t{"err not-registered", "ok register alice", "sent c1 user-not-found",
                               "sent c2 invalid-name", "err usage send", "err usage send"});
    line_client b(r);
    b.say("/register bob", 0);
    a.say("/send c4 bob one", 1);
    a.say("/send c4 bob one", 2); // the retry
    a.say("/send C4 bob one", 3); // byte for byte: another id
    CHECK(a.lines() == lines_t{"sent c4 delivered", "sent c4 delivered", "sent C4 delivered"});
    CHECK(b.lines() == lines_t{"ok register bob", "msg alice one", "msg alice one"});
    b.close();
    a.say("/send q1 bob later", 10);
    a.say("/send q1 bob later", 11);
    CHECK(a.lines() == lines_t{"sent q1 queued", "sent q1 queued"});
    CHECK(inbox.stored(*switchboard::name::parse("bob")) == 1);
    a.say("/send c4 bob one", 600010); // ten minutes later: a new message
    CHECK(a.lines() == lines_t{"sent c4 queued"});
}

TEST_CASE("inbox_acks: the ack window paces a replay and live messages; more come with each ack", "[acks]") {
    memory_inbox inbox;
    router_options o = offline(inbox);
    o.ack_window = 2;
    router r(o);
    line_client a(r);
    a.say("/register alice");
    { line_client b(r); b.say("/register bob"); }
    for (int i = 1; i <= 4; ++i) a.say("/msg bob m" + std::to_string(i));
    (void)a.lines();
    line_client b(r);
    b.say("/ack on");
    b.say("/register bob");
    CHECK(b.lines() == lines_t{"ok ack on", "ok register bob", "dm 1 alice m1", "dm 2 alice m2"});
    a.say("/send c5 bob m5"); // window full: stored, handed out later
    CHECK(a.lines() == lines_t{"sent c5 queued"});
    b.say("/ack 1");
    CHECK(b.lines() == lines_t{"dm 3 alice m3"});
    b.say("/ack 3");
    CHECK(b.lines() == lines_t{"dm 4 alice m4", "dm 5 alice m5"});
    b.say("/ack 5");
    a.say("/send c6 bob m6");
    CHECK(a.lines() == lines_t{"sent c6 delivered"});
    CHECK(b.lines() == lines_t{"dm 6 alice m6"});
}

TEST_CASE("inbox_acks: an at-most-once replay takes what fits, never cuts, and keeps the rest in order",
          "[inbox]") {
    memory_inbox inbox;
    router r(offline(inbox));
    line_client a(r);
    a.say("/register alice");
    { line_client b(r); b.say("/register bob"); }
    for (int i = 1; i <= 3; ++i) a.say("/msg bob message" + std::to_string(i));
    // bob's transport takes 40 bytes: "ok register bob\n" (16) and "msg alice message1\n" (19);
    // message2 does not fit, so the replay stops there without cutting the session.
    switchboard::in_memory_transport small(40);
    const auto s = r.open_session(small, switchboard::protocol::line_event_encoder::instance());
    {
        const auto hold = r.hold();
        REQUIRE(r.register_name(s, "bob") == switchboard::status::ok);
        REQUIRE(r.send(s, switchboard::protocol::encode_ok(switchboard::protocol::command_kind::register_name, "bob")) ==
                switchboard::status::ok);
    }
    CHECK_FALSE(small.closed());
    CHECK(small.take_lines() == lines_t{"ok register bob", "msg alice message1"});
    CHECK(inbox.stored(*switchboard::name::parse("bob")) == 2); // message2 and message3 kept
    (void)a.lines();
    a.say("/msg bob message4"); // while the replay is unfinished: stored behind it
    CHECK(a.lines() == lines_t{"ok queued bob"});
    r.output_drained(s); // the transport has room again: the replay goes on where it stopped
    CHECK(small.take_lines() == lines_t{"msg alice message2", "msg alice message3"}); // 38 of 40 bytes
    (void)r.close_session(s);
    line_client b(r);
    b.say("/register bob");
    CHECK(b.lines() == lines_t{"ok register bob", "msg alice message4"});
    CHECK(inbox.stored(*switchboard::name::parse("bob")) == 0);
}

TEST_CASE("inbox_acks: /send says delivered only when a session took it", "[send]") {
    memory_inbox inbox;
    router r(offline(inbox));
    line_client a(r);
    a.say("/register alice");
    switchboard::in_memory_transport tiny(20); // "ok register bob\n" and nothing more
    const auto s = r.open_session(tiny, switchboard::protocol::line_event_encoder::instance());
    REQUIRE(r.register_name(s, "bob") == switchboard::status::ok);
    (void)a.lines();
    a.say("/send c1 bob this line does not fit bob's output bound");
    CHECK(a.lines() == lines_t{"sent c1 queued"}); // cut as a slow consumer: stored instead
    CHECK(tiny.closed());
    (void)r.close_session(s);
    line_client b(r);
    b.say("/register bob");
    CHECK(b.lines() == lines_t{"ok register bob", "msg alice this line does not fit bob's output bound"});

    router plain; // no inbox: not delivered, nowhere to keep it
    line_client a2(plain);
    a2.say("/register alice");
    switchboard::in_memory_transport tiny2(4);
    const auto s2 = plain.open_session(tiny2, switchboard::protocol::line_event_encoder::instance());
    REQUIRE(plain.register_name(s2, "bob") == switchboard::status::ok);
    (void)a2.lines();
    a2.say("/send c1 bob hello");
    CHECK(a2.lines() == lines_t{"sent c1 user-not-found"});
    (void)plain.close_session(s2);
}

TEST_CASE("inbox_acks: an ack-on session gets a live dm from the host's call directly; one it refuses "
          "stays stored once, for the next registration",
          "[acks][send]") {
    memory_inbox inbox;
    router r(offline(inbox));
    line_client a(r);
    a.say("/register alice");
    line_client b(r);
    b.say("/ack on");
    b.say("/register bob");
    (void)a.lines();
    (void)b.lines();
    const auto bob = *switchboard::name::parse("bob");
    // The host's own call, nothing queued: delivered now, not deferred (as a v1 message).
    const switchboard::route_result live = r.route(a.id(), bob, "now");
    CHECK(live.delivered == 1);
    CHECK(live.deferred == 0);
    CHECK_FALSE(live.queued);
    CHECK(live.seq == 1);
    CHECK(b.lines() == lines_t{"dm 1 alice now"});
    // Under a hold (as the line protocol runs each command) too: the queue is empty.
    {
        const auto held = r.hold();
        CHECK(r.route(a.id(), bob, "held").delivered == 1);
        CHECK(b.lines() == lines_t{"dm 2 alice held"});
    }
    // A session messaging itself gets its dm through the queue, after the command's reply.
    b.say("/send c0 bob to myself");
    CHECK(b.lines() == lines_t{"sent c0 delivered", "dm 3 bob to myself"});
    b.say("/ack 3");
    b.close();
    CHECK(inbox.stored(bob) == 0);

    switchboard::in_memory_transport tiny(24); // no line session writes replies here: the dm does not fit
    const auto s = r.open_session(tiny, switchboard::protocol::line_event_encoder::instance());
    REQUIRE(r.enable_acks(s) == switchboard::status::ok);
    REQUIRE(r.register_name(s, "bob") == switchboard::status::ok);
    const switchboard::route_result cut = r.send(a.id(), bob, "this line does not fit bob's output bound", "c1");
    CHECK(cut.ok());
    CHECK(cut.dropped == 1); // cut as a slow consumer...
    CHECK_FALSE(cut.queued); // ...after it was stored for him: not stored a second time
    CHECK(cut.seq == 4);
    CHECK(tiny.closed());
    CHECK(inbox.stored(bob) == 1);
    (void)r.close_session(s);
    line_client b2(r);
    b2.say("/ack on");
    b2.say("/register bob");
    CHECK(b2.lines() == lines_t{"ok ack on", "ok register bob", "dm 4 alice this line does not fit bob's output bound"});
}

TEST_CASE("inbox_acks: the router-wide bound of client ids", "[send]") {
    router_options o;
    o.max_dedup_entries = 2;
    router r(o);
    line_client a(r), b(r);
    a.say("/register alice", 0);
    b.say("/register bob", 0);
    a.say("/send c1 bob one", 1);
    a.say("/send c2 bob two", 2);
    a.say("/send c3 bob three", 3); // the router holds 2 ids: c1 makes room
    a.say("/send c2 bob two", 4);   // still remembered
    a.say("/send c1 bob one", 5);   // forgotten: sent again
    CHECK(a.lines() == lines_t{"ok register alice", "sent c1 delivered", "sent c2 delivered", "sent c3 delivered",
                               "sent c2 delivered", "sent c1 delivered"});
    CHECK(b.lines() == lines_t{"ok register bob", "msg alice one", "msg alice two", "msg alice three", "msg alice one"});
}
