// Acknowledgements (issue #11, E; with the inbox on): `/ack on` (before or after /register,
// idempotent); a session with acks on gets direct messages as `dm <seq> <from> <text>`, seq being
// the recipient user's sequence number (1, 2, 3... never reused); every such message stays stored
// until acknowledged; `/ack <seq>` is cumulative, silent, a no-op when repeated; `err ack-invalid`,
// `err usage ack`, `err not-registered` (before ack-invalid); any session of the user may
// acknowledge; an acks-on session that registers (or turns acks on) gets every unacked message,
// same seq, sender and text, in seq order, before any newer one; with several sessions each
// acks-on session gets each dm and an ack from any removes it for all; a message to a user with an
// acks-on session whose inbox is full is refused and delivered to nobody.
#include "test_server.hpp"

#include <string>

using namespace switchboard_test;

namespace {
switchboard::router_options multi() {
    switchboard::router_options o;
    o.sessions = switchboard::session_policy::multi;
    return o;
}
} // namespace

TEST_CASE("acks: /ack on before or after /register, idempotent", "[integration][v1.2][ack]") {
    const store_kind kind = GENERATE(store_kind::memory, store_kind::sqlite);
    INFO("store: " << to_string(kind));
    test_inbox inbox(kind);
    test_server server(inbox);
    client bob(server.port());
    bob.send("/ack on\n");
    REQUIRE(bob.read_line() == "ok ack on");
    bob.send("/ack on\n");
    REQUIRE(bob.read_line() == "ok ack on");
    bob.send("/register bob\n");
    REQUIRE(bob.read_line() == "ok register bob");
    bob.send("/ack on\n");
    REQUIRE(bob.read_line() == "ok ack on");
    client carol = registered(server.port(), "carol");
    carol.send("/ack on\n"); // after registering
    REQUIRE(carol.read_line() == "ok ack on");
    client alice = registered(server.port(), "alice");
    alice.send("/msg bob b\n/msg carol c\n");
    REQUIRE(bob.read_line() == "dm 1 alice b");
    REQUIRE(carol.read_line() == "dm 1 alice c");
    expect_nothing_before_marker(alice);
}

TEST_CASE("acks: dm <seq> <from> <text>, seq 1, 2, 3 per recipient user, no reply to the sender",
          "[integration][v1.2][ack]") {
    const store_kind kind = GENERATE(store_kind::memory, store_kind::sqlite);
    INFO("store: " << to_string(kind));
    test_inbox inbox(kind);
    test_server server(inbox);
    client alice = registered(server.port(), "alice");
    client bob = registered_with_acks(server.port(), "bob");
    client carol = registered_with_acks(server.port(), "carol");
    alice.send("/msg bob first\n");
    REQUIRE(bob.read_line() == "dm 1 alice first");
    alice.send("@bob second one\n");
    REQUIRE(bob.read_line() == "dm 2 alice second one");
    carol.send("/msg bob from carol\n");
    REQUIRE(bob.read_line() == "dm 3 carol from carol");
    alice.send("/msg carol hi\n");
    REQUIRE(carol.read_line() == "dm 1 alice hi"); // carol's own sequence
    bob.send("/msg bob to myself\n");
    REQUIRE(bob.read_line() == "dm 4 bob to myself");
    expect_nothing_before_marker(alice);
    expect_nothing_before_marker(carol);
    expect_nothing_before_marker(bob);
}

TEST_CASE("acks: unacked messages are redelivered, same seq, sender and text, before newer ones",
          "[integration][v1.2][ack]") {
    const store_kind kind = GENERATE(store_kind::memory, store_kind::sqlite);
    INFO("store: " << to_string(kind));
    test_inbox inbox(kind);
    test_server server(inbox);
    client alice = registered(server.port(), "alice");
    client carol = registered(server.port(), "carol");
    {
        client bob = registered_with_acks(server.port(), "bob");
        alice.send("/msg bob a\n");
        REQUIRE(bob.read_line() == "dm 1 alice a");
        carol.send("/msg bob b \xC3\xA9\t.\n");
        REQUIRE(bob.read_line() == "dm 2 carol b \xC3\xA9\t.");
        // bob goes away without acknowledging
    }
    REQUIRE(server.wait_disconnects(1) == 1);
    alice.send("/msg bob c\n");
    REQUIRE(alice.read_line() == "ok queued bob");
    {
        client bob(server.port());
        bob.send("/ack on\n/register bob\n/msg bob d\n");
        REQUIRE(bob.read_line() == "ok ack on");
        REQUIRE(bob.read_line() == "ok register bob");
        REQUIRE(bob.read_line() == "dm 1 alice a");
        REQUIRE(bob.read_line() == "dm 2 carol b \xC3\xA9\t.");
        REQUIRE(bob.read_line() == "dm 3 alice c");
        REQUIRE(bob.read_line() == "dm 4 bob d");
        bob.send("/ack 2\n"); // cumulative: 1 and 2; no reply
        expect_who(bob, "who alice bob carol");
    }
    REQUIRE(server.wait_disconnects(2) == 2);
    {
        client bob = registered_with_acks(server.port(), "bob");
        REQUIRE(bob.read_line() == "dm 3 alice c");
        REQUIRE(bob.read_line() == "dm 4 bob d");
        bob.send("/ack 4\n");
        expect_nothing_before_marker(bob);
    }
    REQUIRE(server.wait_disconnects(3) == 3);
    client bob = registered_with_acks(server.port(), "bob");
    expect_nothing_before_marker(bob);
    // Acknowledging what is already acknowledged: a no-op, no reply.
    bob.send("/ack 4\n/ack 1\n");
    expect_nothing_before_marker(bob);
    alice.send("/msg bob e\n");
    REQUIRE(bob.read_line() == "dm 5 alice e"); // never reused
}

TEST_CASE("acks: ack-invalid, usage and not-registered, and nothing is removed on an error",
          "[integration][v1.2][ack]") {
    const store_kind kind = GENERATE(store_kind::memory, store_kind::sqlite);
    INFO("store: " << to_string(kind));
    test_inbox inbox(kind);
    test_server server(inbox);
    client alice = registered(server.port(), "alice");
    client anon(server.port());
    anon.send("/ack\n");
    REQUIRE(anon.read_line() == "err usage ack");
    anon.send("/ack 1\n");
    REQUIRE(anon.read_line() == "err not-registered");
    anon.send("/ack abc\n"); // not-registered before ack-invalid
    REQUIRE(anon.read_line() == "err not-registered");
    anon.send("/ack 0\n");
    REQUIRE(anon.read_line() == "err not-registered");
    {
        client bob = registered_with_acks(server.port(), "bob");
        alice.send("/msg bob one\n/msg bob two\n");
        REQUIRE(bob.read_line() == "dm 1 alice one");
        REQUIRE(bob.read_line() == "dm 2 alice two");
        bob.send("/ack\n");
        REQUIRE(bob.read_line() == "err usage ack");
        bob.send("/ack \n");
        REQUIRE(bob.read_line() == "err usage ack");
        for (const std::string arg : {"0", "off", "-1", "+1", "x1", "1x", "1.0", "0x1", "3", "99",
                                      "18446744073709551616", "99999999999999999999999"}) {
            bob.send("/ack " + arg + "\n");
            REQUIRE(bob.read_line() == "err ack-invalid " + arg);
        }
        expect_nothing_before_marker(bob);
    }
    REQUIRE(server.wait_disconnect("bob").has_value());
    client bob = registered_with_acks(server.port(), "bob");
    REQUIRE(bob.read_line() == "dm 1 alice one");
    REQUIRE(bob.read_line() == "dm 2 alice two");
    expect_nothing_before_marker(bob);
    // A user who was never sent anything: every seq is above the highest.
    client carol = registered(server.port(), "carol");
    carol.send("/ack 1\n");
    REQUIRE(carol.read_line() == "err ack-invalid 1");
}

TEST_CASE("acks: seq numbers are the user's, taken by every stored message whoever receives it",
          "[integration][v1.2][ack][inbox]") {
    const store_kind kind = GENERATE(store_kind::memory, store_kind::sqlite);
    INFO("store: " << to_string(kind));
    test_inbox inbox(kind);
    test_server server(inbox);
    client alice = registered(server.port(), "alice");
    register_then_leave(server, "bob", 0);
    alice.send("/msg bob a\n/msg bob b\n");
    REQUIRE(alice.read_line() == "ok queued bob"); // seq 1
    REQUIRE(alice.read_line() == "ok queued bob"); // seq 2
    {
        client bob = registered(server.port(), "bob"); // acks off: replayed as msg, removed
        REQUIRE(bob.read_line() == "msg alice a");
        REQUIRE(bob.read_line() == "msg alice b");
        expect_nothing_before_marker(bob);
    }
    REQUIRE(server.wait_disconnects(2) == 2);
    alice.send("/msg bob c\n");
    REQUIRE(alice.read_line() == "ok queued bob");
    client bob = registered_with_acks(server.port(), "bob");
    REQUIRE(bob.read_line() == "dm 3 alice c");
    bob.send("/ack 2\n"); // already gone: a no-op, not invalid (2 was sent to bob)
    expect_nothing_before_marker(bob);
    bob.send("/ack 4\n");
    REQUIRE(bob.read_line() == "err ack-invalid 4");
}

TEST_CASE("acks: every acks-on session gets each dm; an ack from any session removes it for all",
          "[integration][v1.2][ack][multi]") {
    const store_kind kind = GENERATE(store_kind::memory, store_kind::sqlite);
    INFO("store: " << to_string(kind));
    test_inbox inbox(kind);
    test_server server(inbox, multi());
    client alice = registered(server.port(), "alice");
    client b1 = registered_with_acks(server.port(), "bob");
    client b2 = registered_with_acks(server.port(), "bob");
    client b3 = registered(server.port(), "bob"); // acks off
    alice.send("/msg bob hi all\n");
    REQUIRE(b1.read_line() == "dm 1 alice hi all");
    REQUIRE(b2.read_line() == "dm 1 alice hi all");
    REQUIRE(b3.read_line() == "msg alice hi all");
    expect_nothing_before_marker(alice);

    b3.send("/ack 1\n"); // any session of the user may acknowledge, even one with acks off
    expect_nothing_before_marker(b3);
    client b4 = registered_with_acks(server.port(), "bob");
    expect_nothing_before_marker(b4); // removed for all
    b3.send("/ack on\n");
    REQUIRE(b3.read_line() == "ok ack on");
    expect_nothing_before_marker(b3);

    alice.send("/msg bob again\n");
    REQUIRE(b1.read_line() == "dm 2 alice again");
    REQUIRE(b2.read_line() == "dm 2 alice again");
    REQUIRE(b3.read_line() == "dm 2 alice again");
    REQUIRE(b4.read_line() == "dm 2 alice again");
    b1.send("/ack 2\n");
    expect_nothing_before_marker(b1);
    client b5 = registered_with_acks(server.port(), "bob");
    expect_nothing_before_marker(b5);
}

TEST_CASE("acks: turning acks on after registering delivers the unacked messages",
          "[integration][v1.2][ack][multi]") {
    const store_kind kind = GENERATE(store_kind::memory, store_kind::sqlite);
    INFO("store: " << to_string(kind));
    test_inbox inbox(kind);
    test_server server(inbox, multi());
    client alice = registered(server.port(), "alice");
    client b1 = registered_with_acks(server.port(), "bob");
    alice.send("/msg bob one\n/msg bob two\n");
    REQUIRE(b1.read_line() == "dm 1 alice one");
    REQUIRE(b1.read_line() == "dm 2 alice two");
    client b2 = registered(server.port(), "bob"); // acks off, another session exists: no replay
    expect_nothing_before_marker(b2);
    b2.send("/ack on\n/msg bob three\n");
    REQUIRE(b2.read_line() == "ok ack on");
    REQUIRE(b2.read_line() == "dm 1 alice one");
    REQUIRE(b2.read_line() == "dm 2 alice two");
    REQUIRE(b2.read_line() == "dm 3 bob three");
    REQUIRE(b1.read_line() == "dm 3 bob three");
    expect_nothing_before_marker(b1);
}

TEST_CASE("acks: a full inbox refuses a live message to an acks-on user, delivered to nobody",
          "[integration][v1.2][ack][multi]") {
    const store_kind kind = GENERATE(store_kind::memory, store_kind::sqlite);
    INFO("store: " << to_string(kind));
    switchboard::memory_inbox_options io;
    io.max_per_user = 1;
    test_inbox inbox(kind, io);
    test_server server(inbox, multi());
    client alice = registered(server.port(), "alice");
    client b1 = registered_with_acks(server.port(), "bob");
    client b2 = registered(server.port(), "bob"); // acks off
    alice.send("/msg bob one\n");
    REQUIRE(b1.read_line() == "dm 1 alice one");
    REQUIRE(b2.read_line() == "msg alice one"); // delivered live and stored (b1 has acks on)
    expect_nothing_before_marker(alice);

    alice.send("/msg bob two\n");
    REQUIRE(alice.read_line() == "err inbox-full bob");
    alice.send("/send c2 bob two\n");
    REQUIRE(alice.read_line() == "sent c2 inbox-full");
    expect_nothing_before_marker(b1);
    expect_nothing_before_marker(b2);

    b2.send("/ack 1\n");
    alice.send("/msg bob three\n");
    REQUIRE(b1.read_line() == "dm 2 alice three");
    REQUIRE(b2.read_line() == "msg alice three");
    expect_nothing_before_marker(alice);
}

TEST_CASE("acks: a replay larger than the output bound arrives whole as the client acknowledges",
          "[integration][v1.2][ack]") {
    // 300 unacked messages of 4000 bytes (1.2 MB, over the default 1 MiB output bound): the
    // session is not cut, and gets every message in seq order as it acknowledges.
    const store_kind kind = GENERATE(store_kind::memory, store_kind::sqlite);
    INFO("store: " << to_string(kind));
    test_inbox inbox(kind);
    test_server server(inbox);
    client alice = registered(server.port(), "alice");
    register_then_leave(server, "bob", 0);
    const std::string pad(4000, 'a');
    constexpr int count = 300;
    std::string burst;
    for (int i = 1; i <= count; ++i) burst += "/msg bob " + std::to_string(i) + pad + "\n";
    alice.send(burst);
    for (int i = 1; i <= count; ++i) REQUIRE(alice.read_line() == "ok queued bob");

    client bob = registered_with_acks(server.port(), "bob");
    for (int i = 1; i <= count; ++i) {
        REQUIRE(bob.read_line() == "dm " + std::to_string(i) + " alice " + std::to_string(i) + pad);
        if (i % 50 == 0 || i == count) bob.send("/ack " + std::to_string(i) + "\n");
    }
    expect_nothing_before_marker(bob);
    for (const auto& d : server.disconnects()) REQUIRE(d.reason != switchboard::disconnect_reason::slow_consumer);
    alice.send("/msg bob after\n");
    REQUIRE(bob.read_line() == "dm " + std::to_string(count + 1) + " alice after");
}
