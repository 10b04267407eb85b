// The offline inbox (issue #11, D; `--offline`: router_options::inbox = a memory_inbox, and the
// same tests against the SQLite store of issue #12, `--offline sqlite:PATH`): a message
// to a known user with no session is stored and answered `ok queued <user>`; a full inbox is
// `err inbox-full <user>` and stores nothing; an unknown user with no session is user-not-found;
// right after `ok register`, an acks-off session whose user had no other session gets every stored
// message as `msg <from> <text>` in the order sent, before anything sent after the registration,
// and they are removed; a name the store was told about (the --users file) is known; room
// messages, typing and presence are never stored; stored messages expire after the TTL.
#include "test_server.hpp"

#include <string>

using namespace switchboard_test;

TEST_CASE("inbox: a message to a known user with no session is queued and replayed after ok register",
          "[integration][v1.2][inbox]") {
    const store_kind kind = GENERATE(store_kind::memory, store_kind::sqlite);
    INFO("store: " << to_string(kind));
    test_inbox inbox(kind);
    test_server server(inbox);
    client alice = registered(server.port(), "alice");
    client carol = registered(server.port(), "carol");
    register_then_leave(server, "bob", 0);

    alice.send("/msg bob one\n");
    REQUIRE(alice.read_line() == "ok queued bob");
    carol.send("/msg BOB two\n");
    REQUIRE(carol.read_line() == "ok queued bob");
    alice.send("@bob three\n");
    REQUIRE(alice.read_line() == "ok queued bob");

    // bob's own message to himself, sent right after /register in the same write, comes after
    // the replayed ones; so does alice's, sent once bob is registered.
    client bob(server.port());
    bob.send("/register bob\n/msg bob four\n");
    REQUIRE(bob.read_line() == "ok register bob");
    alice.send("/msg bob five\n");
    REQUIRE(bob.read_line() == "msg alice one");
    REQUIRE(bob.read_line() == "msg carol two");
    REQUIRE(bob.read_line() == "msg alice three");
    REQUIRE(bob.read_line() == "msg bob four");
    REQUIRE(bob.read_line() == "msg alice five");
    expect_nothing_before_marker(alice); // live deliveries get no reply
    bob.close();
    REQUIRE(server.wait_disconnects(2) == 2);

    // Replayed with acks off: removed (at-most-once).
    client again = registered(server.port(), "bob");
    expect_who(again, "who alice bob carol");
}

TEST_CASE("inbox: an unknown user with no session is user-not-found", "[integration][v1.2][inbox]") {
    const store_kind kind = GENERATE(store_kind::memory, store_kind::sqlite);
    INFO("store: " << to_string(kind));
    test_inbox inbox(kind);
    test_server server(inbox);
    client alice = registered(server.port(), "alice");
    alice.send("/msg nobody hi\n");
    REQUIRE(alice.read_line() == "err user-not-found nobody");
    client nobody = registered(server.port(), "nobody");
    expect_who(nobody, "who alice nobody"); // nothing was stored
}

TEST_CASE("inbox: a name the store remembers (the --users file) is known before it registers",
          "[integration][v1.2][inbox]") {
    const store_kind kind = GENERATE(store_kind::memory, store_kind::sqlite);
    INFO("store: " << to_string(kind));
    test_inbox inbox(kind);
    inbox.get()->remember(*switchboard::name::parse("carol"));
    test_server server(inbox);
    client alice = registered(server.port(), "alice");
    alice.send("/msg Carol welcome\n");
    REQUIRE(alice.read_line() == "ok queued carol");
    client carol = registered(server.port(), "carol");
    REQUIRE(carol.read_line() == "msg alice welcome");
    expect_nothing_before_marker(carol);
}

TEST_CASE("inbox: a full inbox is inbox-full and stores nothing", "[integration][v1.2][inbox]") {
    const store_kind kind = GENERATE(store_kind::memory, store_kind::sqlite);
    INFO("store: " << to_string(kind));
    switchboard::memory_inbox_options io;
    io.max_per_user = 2;
    test_inbox inbox(kind, io);
    test_server server(inbox);
    client alice = registered(server.port(), "alice");
    register_then_leave(server, "bob", 0);
    alice.send("/msg bob 1\n/msg bob 2\n/msg bob 3\n");
    // With the SQLite store the two late answers (after their commit) may follow the third's.
    expect_answers(alice, kind, {"ok queued bob", "ok queued bob", "err inbox-full bob"});
    {
        client bob = registered(server.port(), "bob");
        REQUIRE(bob.read_line() == "msg alice 1");
        REQUIRE(bob.read_line() == "msg alice 2");
        expect_who(bob, "who alice bob");
    }
    REQUIRE(server.wait_disconnects(2) == 2);
    // The replay emptied the inbox: room again.
    alice.send("/msg bob 4\n");
    REQUIRE(alice.read_line() == "ok queued bob");
}

TEST_CASE("inbox: a live message to a user whose sessions all have acks off is not stored",
          "[integration][v1.2][inbox]") {
    const store_kind kind = GENERATE(store_kind::memory, store_kind::sqlite);
    INFO("store: " << to_string(kind));
    test_inbox inbox(kind);
    test_server server(inbox);
    client alice = registered(server.port(), "alice");
    {
        client bob = registered(server.port(), "bob");
        alice.send("/msg bob live\n");
        REQUIRE(bob.read_line() == "msg alice live");
        expect_nothing_before_marker(alice); // delivered live: no reply, as in v1
    }
    REQUIRE(server.wait_disconnect("bob").has_value());
    client bob = registered(server.port(), "bob");
    expect_who(bob, "who alice bob");
}

TEST_CASE("inbox: no replay to a session whose user has another session (multi)",
          "[integration][v1.2][inbox][multi]") {
    const store_kind kind = GENERATE(store_kind::memory, store_kind::sqlite);
    INFO("store: " << to_string(kind));
    test_inbox inbox(kind);
    switchboard::router_options ro;
    ro.sessions = switchboard::session_policy::multi;
    test_server server(inbox, ro);
    client alice = registered(server.port(), "alice");
    client b1 = registered_with_acks(server.port(), "bob");
    alice.send("/msg bob kept until acked\n");
    REQUIRE(b1.read_line() == "dm 1 alice kept until acked");
    client b2 = registered(server.port(), "bob"); // acks off, but bob already has a session
    expect_who(b2, "who alice bob");
    expect_nothing_before_marker(b1);
}

TEST_CASE("inbox: room messages, typing and presence are never stored", "[integration][v1.2][inbox]") {
    const store_kind kind = GENERATE(store_kind::memory, store_kind::sqlite);
    INFO("store: " << to_string(kind));
    test_inbox inbox(kind);
    test_server server(inbox);
    client alice = registered(server.port(), "alice");
    alice.send("/join lobby\n");
    REQUIRE(alice.read_line() == "ok join lobby");
    {
        client bob = registered(server.port(), "bob");
        bob.send("/join lobby\n/watch carol\n");
        REQUIRE(bob.read_line() == "ok join lobby");
        REQUIRE(bob.read_line() == "ok watch carol");
        REQUIRE(bob.read_line() == "presence carol offline");
        REQUIRE(alice.read_line() == "join lobby bob");
    }
    REQUIRE(alice.read_line() == "leave lobby bob");
    REQUIRE(server.wait_disconnect("bob").has_value());

    alice.send("#lobby room message\n/typing bob\n/typing bob stop\n");
    expect_who(alice, "who alice"); // no reply to any of it
    register_then_leave(server, "carol", 1); // a presence transition bob watched

    client bob = registered(server.port(), "bob");
    expect_who(bob, "who alice bob");
}

TEST_CASE("inbox: a stored message expires within 1 s of its TTL, not before",
          "[integration][v1.2][inbox][ttl]") {
    const store_kind kind = GENERATE(store_kind::memory, store_kind::sqlite);
    INFO("store: " << to_string(kind));
    switchboard::memory_inbox_options io;
    io.ttl = std::chrono::seconds(1);
    test_inbox inbox(kind, io);
    switchboard::router_options ro;
    // The clock witness: dave's offline event, due 2.1 s after dave closes (after the message was
    // stored), so more than 1 s after the message's TTL ran out (the 100 ms more cover the
    // server's whole-millisecond clock).
    ro.presence_grace = std::chrono::milliseconds(2100);
    switchboard::tcp_server_options o;
    o.tick_interval = std::chrono::milliseconds(50);
    test_server server(inbox, ro, 1, o);
    client alice = registered(server.port(), "alice");
    register_then_leave(server, "bob", 0);

    // Before the TTL: still there.
    const auto stored_early = clock::now();
    alice.send("/msg bob early\n");
    REQUIRE(alice.read_line() == "ok queued bob");
    {
        client bob = registered(server.port(), "bob");
        REQUIRE(clock::now() - stored_early < std::chrono::milliseconds(1000));
        REQUIRE(bob.read_line() == "msg alice early");
        expect_nothing_before_marker(bob);
    }
    REQUIRE(server.wait_disconnects(2) == 2);

    client dave = registered(server.port(), "dave");
    client watcher = registered(server.port(), "watcher");
    watcher.send("/watch dave\n");
    REQUIRE(watcher.read_line() == "ok watch dave");
    REQUIRE(watcher.read_line() == "presence dave online");
    alice.send("/msg bob late\n");
    REQUIRE(alice.read_line() == "ok queued bob");
    const auto stored_late = clock::now();
    const std::int64_t before = unix_ms();
    dave.close();
    REQUIRE(server.wait_disconnect("dave").has_value());
    const std::int64_t after = unix_ms();
    expect_offline_since(watcher.read_line(clock::now() + std::chrono::milliseconds(2100 + 1000)), "dave", before,
                         after);
    REQUIRE(clock::now() - stored_late >= std::chrono::milliseconds(2100) - clock_tolerance);

    client bob = registered(server.port(), "bob");
    expect_who(bob, "who alice bob watcher"); // expired: nothing replayed
    // The expired message no longer counts: a new one queues.
    bob.close();
    REQUIRE(server.wait_disconnects(4) == 4);
    alice.send("/msg bob after expiry\n");
    REQUIRE(alice.read_line() == "ok queued bob");
}

TEST_CASE("inbox: a replay larger than the output bound is delivered whole (acks off)",
          "[integration][v1.2][inbox]") {
    // 300 stored messages of 4000 bytes: 1.2 MB, more than the default 1 MiB output bound.
    // Issue #11, D: "right after `ok register <user>`, a session with acks off whose user had no
    // other session gets every stored message of the user". The replay must neither cost bob his
    // session (and the messages with it) nor stop part-way.
    const store_kind kind = GENERATE(store_kind::memory, store_kind::sqlite);
    INFO("store: " << to_string(kind));
    test_inbox inbox(kind);
    test_server server(inbox);
    client alice = registered(server.port(), "alice");
    register_then_leave(server, "bob", 0);
    const std::string pad(4000, 'r');
    constexpr int count = 300;
    std::string burst;
    for (int i = 0; i < count; ++i) burst += "/msg bob " + std::to_string(i) + pad + "\n";
    alice.send(burst);
    for (int i = 0; i < count; ++i) REQUIRE(alice.read_line() == "ok queued bob");

    client bob(server.port());
    bob.send("/register bob\n");
    REQUIRE(bob.read_line() == "ok register bob");
    for (int i = 0; i < count; ++i) REQUIRE(bob.read_line() == "msg alice " + std::to_string(i) + pad);
    expect_who(bob, "who alice bob");
    for (const auto& d : server.disconnects()) REQUIRE(d.reason != switchboard::disconnect_reason::slow_consumer);
    bob.close();
    REQUIRE(server.wait_disconnects(2) == 2);
    client again = registered(server.port(), "bob");
    expect_who(again, "who alice bob"); // all of them were removed
}

TEST_CASE("inbox: the set of known users is bounded; the one empty longest is forgotten",
          "[integration][v1.2][inbox]") {
    // The bound as docs/protocol.md and memory_inbox_options state it: past it the store forgets
    // the known user whose inbox has been empty longest; when every known user has messages
    // stored, a new name stays unknown (messages to it while it is offline: user-not-found).
    const store_kind kind = GENERATE(store_kind::memory, store_kind::sqlite);
    INFO("store: " << to_string(kind));
    switchboard::memory_inbox_options io;
    io.max_known_users = 2;
    test_inbox inbox(kind, io);
    test_server server(inbox);
    register_then_leave(server, "u1", 0);
    register_then_leave(server, "u2", 1);
    register_then_leave(server, "u3", 2); // forgets u1
    client alice = registered(server.port(), "alice"); // forgets u2
    alice.send("/msg u1 hi\n/msg u2 hi\n/msg u3 one\n/msg u3 two\n");
    REQUIRE(alice.read_line() == "err user-not-found u1");
    REQUIRE(alice.read_line() == "err user-not-found u2");
    REQUIRE(alice.read_line() == "ok queued u3");
    REQUIRE(alice.read_line() == "ok queued u3");

    // u3 comes back with acks on: its two messages stay stored until acknowledged. It stores one
    // for alice, who leaves: now both known users have messages stored.
    client u3(server.port());
    u3.send("/ack on\n/register u3\n");
    REQUIRE(u3.read_line() == "ok ack on");
    REQUIRE(u3.read_line() == "ok register u3");
    REQUIRE(u3.read_line() == "dm 1 alice one");
    REQUIRE(u3.read_line() == "dm 2 alice two");
    alice.close();
    REQUIRE(server.wait_disconnects(4) == 4);
    u3.send("/msg alice for later\n");
    REQUIRE(u3.read_line() == "ok queued alice");

    register_then_leave(server, "newcomer", 4); // nobody can be forgotten: stays unknown
    u3.send("/msg newcomer hi\n/msg alice still known\n");
    REQUIRE(u3.read_line() == "err user-not-found newcomer");
    REQUIRE(u3.read_line() == "ok queued alice");
    client alice2 = registered(server.port(), "alice");
    REQUIRE(alice2.read_line() == "msg u3 for later");
    REQUIRE(alice2.read_line() == "msg u3 still known");
    expect_nothing_before_marker(alice2);
}
