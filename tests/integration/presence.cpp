// Presence without a grace period (issue #11, B): `/watch <user>` answers `ok watch <user>` and at
// once the current state (online / offline <last-seen> / offline when never seen); then one event
// per transition; `<last-seen>` is the Unix time in ms of the last line or end-of-input received
// from the user's last session, never the time a dead peer was reaped; no event when a second
// session comes or goes while another remains; `/unwatch`; the errors and their order; watches
// belong to the session; watching oneself.
#include "test_server.hpp"

#include <string>

using namespace switchboard_test;

TEST_CASE("presence: /watch reports the current state at once", "[integration][v1.2][presence]") {
    test_server server;
    client alice = registered(server.port(), "alice");
    alice.send("/watch bob\n"); // never seen since the server started
    REQUIRE(alice.read_line() == "ok watch bob");
    REQUIRE(alice.read_line() == "presence bob offline");

    client bob = registered(server.port(), "bob");
    REQUIRE(alice.read_line() == "presence bob online");
    client carol = registered(server.port(), "carol");
    carol.send("/watch Bob\n"); // folded, like every name in a reply
    REQUIRE(carol.read_line() == "ok watch bob");
    REQUIRE(carol.read_line() == "presence bob online");

    const std::int64_t before = unix_ms();
    bob.close(); // end-of-input: bob's last-seen
    const std::int64_t seen = expect_offline_since(alice.read_line(), "bob", before, unix_ms());
    REQUIRE(carol.read_line() == "presence bob offline " + std::to_string(seen));

    // Seen since the server started: offline with the same last-seen.
    client dave = registered(server.port(), "dave");
    dave.send("/watch bob\n");
    REQUIRE(dave.read_line() == "ok watch bob");
    REQUIRE(dave.read_line() == "presence bob offline " + std::to_string(seen));
}

TEST_CASE("presence: watching oneself is allowed", "[integration][v1.2][presence]") {
    test_server server;
    client alice = registered(server.port(), "alice");
    alice.send("/watch alice\n");
    REQUIRE(alice.read_line() == "ok watch alice");
    REQUIRE(alice.read_line() == "presence alice online");
    alice.send("/unwatch alice\n");
    REQUIRE(alice.read_line() == "ok unwatch alice");
}

TEST_CASE("presence: one event per transition; last-seen is when the last line or EOF was received",
          "[integration][v1.2][presence]") {
    test_server server;
    client watcher = registered(server.port(), "watcher");
    watcher.send("/watch bob\n");
    REQUIRE(watcher.read_line() == "ok watch bob");
    REQUIRE(watcher.read_line() == "presence bob offline");

    {   // A connection that never registers is not bob: no event.
        client anon(server.port());
        anon.send("/who\n");
        REQUIRE(anon.read_line() == "who watcher");
    }
    REQUIRE(server.wait_disconnect("").has_value());
    expect_who(watcher, "who watcher");

    SECTION("/quit: the /quit line is the last line received") {
        client bob = registered(server.port(), "bob");
        REQUIRE(watcher.read_line() == "presence bob online");
        const std::int64_t before = unix_ms();
        bob.send("/quit\n");
        REQUIRE(bob.read_line() == "ok quit");
        bob.expect_closed();
        const std::int64_t after = unix_ms();
        expect_offline_since(watcher.read_line(), "bob", before, after);
    }
    SECTION("EOF: the end of input is stamped when it is received") {
        client bob = registered(server.port(), "bob");
        REQUIRE(watcher.read_line() == "presence bob online");
        bob.send("/who\n");
        REQUIRE(bob.read_line() == "who bob watcher");
        const std::int64_t before = unix_ms();
        bob.shutdown_write();
        bob.expect_closed();
        expect_offline_since(watcher.read_line(), "bob", before, unix_ms());
    }
    SECTION("reset: an abrupt close") {
        client bob = registered(server.port(), "bob");
        REQUIRE(watcher.read_line() == "presence bob online");
        const std::int64_t before = unix_ms();
        bob.reset();
        expect_offline_since(watcher.read_line(), "bob", before, unix_ms());
    }
    // Online and offline again, alternating, one line each.
    client bob = registered(server.port(), "bob");
    REQUIRE(watcher.read_line() == "presence bob online");
    const std::int64_t before = unix_ms();
    bob.close();
    expect_offline_since(watcher.read_line(), "bob", before, unix_ms());
    expect_who(watcher, "who watcher");
}

TEST_CASE("presence: last-seen of a connection reaped by the idle timeout is its last line, not the reap",
          "[integration][v1.2][presence]") {
    switchboard::tcp_server_options o;
    o.idle_timeout = std::chrono::milliseconds(300);
    test_server server(1, o);
    client watcher = registered(server.port(), "watcher");
    watcher.send("/watch bob\n");
    REQUIRE(watcher.read_line() == "ok watch bob");
    REQUIRE(watcher.read_line() == "presence bob offline");
    client bob = registered(server.port(), "bob");
    REQUIRE(watcher.read_line() == "presence bob online");

    const std::int64_t before = unix_ms();
    const auto sent = clock::now();
    bob.send("/who\n");
    REQUIRE(bob.read_line() == "who bob watcher");
    const std::int64_t after = unix_ms();
    // bob now sends nothing and is reaped after 300 ms. The watcher must stay active meanwhile
    // (it is registered too, so the idle timeout applies to it): one /who per 100 ms of waiting
    // for the event, whose replies are skipped.
    std::string event;
    const auto deadline = deadline_in();
    while (event.empty()) {
        watcher.send("/who\n");
        std::string line;
        for (;;) {
            const auto status = watcher.try_read_line(line, std::min(deadline, clock::now() + std::chrono::milliseconds(100)));
            if (status == client::read_status::closed) FAIL("the watcher was disconnected");
            if (status == client::read_status::timeout) {
                if (clock::now() >= deadline) FAIL("no presence event within 5 s");
                break;
            }
            if (line.rfind("who", 0) == 0) continue;
            event = line;
            break;
        }
    }
    REQUIRE(clock::now() - sent >= std::chrono::milliseconds(300) - clock_tolerance);
    REQUIRE(server.wait_disconnect("bob") == switchboard::disconnect_reason::idle_timeout);
    expect_offline_since(event, "bob", before, after);
}

TEST_CASE("presence: no event when a second session comes or goes while another remains",
          "[integration][v1.2][presence][multi]") {
    switchboard::router_options ro;
    ro.sessions = switchboard::session_policy::multi;
    test_server server(ro);
    client carol = registered(server.port(), "carol");
    carol.send("/watch bob\n");
    REQUIRE(carol.read_line() == "ok watch bob");
    REQUIRE(carol.read_line() == "presence bob offline");

    client b1 = registered(server.port(), "bob");
    REQUIRE(carol.read_line() == "presence bob online");
    {
        client b2 = registered(server.port(), "bob");
        b2.send("/who\n");
        REQUIRE(b2.read_line() == "who bob carol");
    }
    REQUIRE(server.wait_disconnect("bob").has_value());
    expect_who(carol, "who bob carol"); // neither b2's arrival nor its departure was announced

    // The last session's end is the transition; last-seen is from that session.
    const std::int64_t before = unix_ms();
    b1.send("/quit\n");
    REQUIRE(b1.read_line() == "ok quit");
    b1.expect_closed();
    expect_offline_since(carol.read_line(), "bob", before, unix_ms());
    expect_who(carol, "who carol");
}

TEST_CASE("presence: /unwatch stops the events", "[integration][v1.2][presence]") {
    test_server server;
    client alice = registered(server.port(), "alice");
    alice.send("/watch bob\n");
    REQUIRE(alice.read_line() == "ok watch bob");
    REQUIRE(alice.read_line() == "presence bob offline");
    alice.send("/unwatch BOB\n");
    REQUIRE(alice.read_line() == "ok unwatch bob");
    {
        client bob = registered(server.port(), "bob");
        expect_who(bob, "who alice bob");
    }
    REQUIRE(server.wait_disconnect("bob").has_value());
    expect_who(alice, "who alice"); // neither online nor offline was sent
    alice.send("/unwatch bob\n");
    REQUIRE(alice.read_line() == "err not-watching bob");
}

TEST_CASE("presence: errors and the check order", "[integration][v1.2][presence]") {
    test_server server;
    client anon(server.port());
    anon.send("/watch\n");
    REQUIRE(anon.read_line() == "err usage watch");
    anon.send("/watch \n");
    REQUIRE(anon.read_line() == "err usage watch");
    anon.send("/unwatch\n");
    REQUIRE(anon.read_line() == "err usage unwatch");
    anon.send("/watch bob\n");
    REQUIRE(anon.read_line() == "err not-registered");
    anon.send("/watch b@d\n"); // not-registered before invalid-name
    REQUIRE(anon.read_line() == "err not-registered");
    anon.send("/unwatch bob\n");
    REQUIRE(anon.read_line() == "err not-registered");

    client alice = registered(server.port(), "alice");
    alice.send("/watch\n");
    REQUIRE(alice.read_line() == "err usage watch");
    alice.send("/unwatch \n");
    REQUIRE(alice.read_line() == "err usage unwatch");
    alice.send("/watch b@d Name\n"); // the argument is the whole rest of the line, echoed as sent
    REQUIRE(alice.read_line() == "err invalid-name b@d Name");
    alice.send("/watch bob \n");
    REQUIRE(alice.read_line() == "err invalid-name bob ");
    alice.send("/watch " + std::string(41, 'W') + "\n");
    REQUIRE(alice.read_line() == "err invalid-name " + std::string(41, 'W'));
    alice.send("/unwatch b@d\n");
    REQUIRE(alice.read_line() == "err invalid-name b@d");
    alice.send("/unwatch bob\n");
    REQUIRE(alice.read_line() == "err not-watching bob");
    alice.send("/WATCH bob\n"); // the command word is case-insensitive, as in v1
    REQUIRE(alice.read_line() == "ok watch bob");
    REQUIRE(alice.read_line() == "presence bob offline");
    alice.send("/watch BOB\n");
    REQUIRE(alice.read_line() == "err already-watching bob");
    expect_who(alice, "who alice");
}

TEST_CASE("presence: too-many-watches per session, already-watching checked first",
          "[integration][v1.2][presence]") {
    switchboard::router_options ro;
    ro.max_watches_per_session = 2;
    test_server server(ro);
    client alice = registered(server.port(), "alice");
    alice.send("/watch bob\n/watch carol\n");
    REQUIRE(alice.read_line() == "ok watch bob");
    REQUIRE(alice.read_line() == "presence bob offline");
    REQUIRE(alice.read_line() == "ok watch carol");
    REQUIRE(alice.read_line() == "presence carol offline");
    alice.send("/watch dave\n");
    REQUIRE(alice.read_line() == "err too-many-watches dave");
    alice.send("/watch bob\n");
    REQUIRE(alice.read_line() == "err already-watching bob");
    alice.send("/unwatch carol\n");
    REQUIRE(alice.read_line() == "ok unwatch carol");
    alice.send("/watch dave\n");
    REQUIRE(alice.read_line() == "ok watch dave");
    REQUIRE(alice.read_line() == "presence dave offline");
    // The cap is per session: another session has its own.
    client erin = registered(server.port(), "erin");
    erin.send("/watch bob\n/watch dave\n");
    REQUIRE(erin.read_line() == "ok watch bob");
    REQUIRE(erin.read_line() == "presence bob offline");
    REQUIRE(erin.read_line() == "ok watch dave");
    REQUIRE(erin.read_line() == "presence dave offline");
    // The refused watch is not a watch.
    client carol = registered(server.port(), "carol");
    client dave = registered(server.port(), "dave");
    REQUIRE(alice.read_line() == "presence dave online");
    REQUIRE(erin.read_line() == "presence dave online");
    expect_who(alice, "who alice carol dave erin");
}

TEST_CASE("presence: watches belong to the session and end with it", "[integration][v1.2][presence]") {
    test_server server;
    client carol = registered(server.port(), "carol");
    carol.send("/watch bob\n");
    REQUIRE(carol.read_line() == "ok watch bob");
    REQUIRE(carol.read_line() == "presence bob offline");
    {
        client alice = registered(server.port(), "alice");
        alice.send("/watch bob\n");
        REQUIRE(alice.read_line() == "ok watch bob");
        REQUIRE(alice.read_line() == "presence bob offline");
    }
    REQUIRE(server.wait_disconnect("alice").has_value());
    client alice = registered(server.port(), "alice"); // a new session of alice: no watches
    client bob = registered(server.port(), "bob");
    REQUIRE(carol.read_line() == "presence bob online");
    expect_who(alice, "who alice bob carol"); // nothing for alice before the marker
    alice.send("/unwatch bob\n");
    REQUIRE(alice.read_line() == "err not-watching bob");
}
