// Typing indicators (issue #11, C): `/typing <user>` and `/typing <user> stop` reach each session of
// the user with no reply; anything else after the name is `err usage typing`; errors otherwise as
// `/msg`; a user with no session gets nothing and the sender no reply; never stored; dropped rather
// than queued for a recipient whose output is backed up (never costs it its connection); a sender
// closing within 5 s of a `/typing` not followed by a stop or a direct message to that user sends
// that user `typing <from> stop`, never later than that.
#include "test_server.hpp"

#include <string>

using namespace switchboard_test;

TEST_CASE("typing: /typing <user> and stop reach every session of the user, with no reply",
          "[integration][v1.2][typing][multi]") {
    switchboard::router_options ro;
    ro.sessions = switchboard::session_policy::multi;
    test_server server(ro);
    client a1 = registered(server.port(), "alice");
    client a2 = registered(server.port(), "alice");
    client b1 = registered(server.port(), "bob");
    client b2 = registered(server.port(), "bob");

    a1.send("/typing bob\n");
    REQUIRE(b1.read_line() == "typing alice");
    REQUIRE(b2.read_line() == "typing alice");
    a1.send("/typing BOB stop\n");
    REQUIRE(b1.read_line() == "typing alice stop");
    REQUIRE(b2.read_line() == "typing alice stop");
    a1.send("/TYPING bob\n"); // the command word is case-insensitive, as in v1
    REQUIRE(b1.read_line() == "typing alice");
    REQUIRE(b2.read_line() == "typing alice");
    // No reply to the sender, no copy to its other session.
    expect_who(a1, "who alice bob");
    expect_who(a2, "who alice bob");
    expect_who(b1, "who alice bob");
    expect_who(b2, "who alice bob");
}

TEST_CASE("typing: errors in /msg's order; a user with no session gets nothing and no reply",
          "[integration][v1.2][typing]") {
    test_server server;
    client anon(server.port());
    anon.send("/typing\n");
    REQUIRE(anon.read_line() == "err usage typing");
    anon.send("/typing bob now\n"); // usage before not-registered
    REQUIRE(anon.read_line() == "err usage typing");
    anon.send("/typing bob\n");
    REQUIRE(anon.read_line() == "err not-registered");
    anon.send("/typing b@d\n"); // not-registered before invalid-name
    REQUIRE(anon.read_line() == "err not-registered");
    anon.send("/typing bob stop\n");
    REQUIRE(anon.read_line() == "err not-registered");

    client alice = registered(server.port(), "alice");
    client bob = registered(server.port(), "bob");
    alice.send("/typing\n");
    REQUIRE(alice.read_line() == "err usage typing");
    alice.send("/typing \n");
    REQUIRE(alice.read_line() == "err usage typing");
    alice.send("/typing bob now\n");
    REQUIRE(alice.read_line() == "err usage typing");
    alice.send("/typing bob stop now\n");
    REQUIRE(alice.read_line() == "err usage typing");
    alice.send("/typing bob stopped\n");
    REQUIRE(alice.read_line() == "err usage typing");
    alice.send("/typing b@d now\n"); // usage before invalid-name
    REQUIRE(alice.read_line() == "err usage typing");
    alice.send("/typing b@d\n");
    REQUIRE(alice.read_line() == "err invalid-name b@d");
    alice.send("/typing " + std::string(41, 'T') + "\n");
    REQUIRE(alice.read_line() == "err invalid-name " + std::string(41, 'T'));
    alice.send("/typing b@d stop\n");
    REQUIRE(alice.read_line() == "err invalid-name b@d");
    alice.send("/typing nobody\n/typing nobody stop\n"); // no session: nothing, no reply
    expect_who(alice, "who alice bob");
    expect_who(bob, "who alice bob"); // none of that reached bob
}

TEST_CASE("typing: a sender closing after /typing sends typing <from> stop", "[integration][v1.2][typing]") {
    test_server server;
    client bob = registered(server.port(), "bob");
    client carol = registered(server.port(), "carol");
    SECTION("close") {
        client alice = registered(server.port(), "alice");
        alice.send("/typing bob\n/typing carol\n");
        REQUIRE(bob.read_line() == "typing alice");
        REQUIRE(carol.read_line() == "typing alice");
        alice.close();
    }
    SECTION("reset") {
        client alice = registered(server.port(), "alice");
        alice.send("/typing bob\n/typing carol\n");
        REQUIRE(bob.read_line() == "typing alice");
        REQUIRE(carol.read_line() == "typing alice");
        alice.reset();
    }
    SECTION("/quit") {
        client alice = registered(server.port(), "alice");
        alice.send("/typing bob\n/typing carol\n/quit\n");
        REQUIRE(alice.read_line() == "ok quit");
        REQUIRE(bob.read_line() == "typing alice");
        REQUIRE(carol.read_line() == "typing alice");
    }
    REQUIRE(bob.read_line() == "typing alice stop");
    REQUIRE(carol.read_line() == "typing alice stop");
    REQUIRE(server.wait_disconnect("alice").has_value());
    expect_who(bob, "who bob carol");
    expect_who(carol, "who bob carol");
}

TEST_CASE("typing: no stop on close after a stop or a direct message to that user",
          "[integration][v1.2][typing]") {
    test_server server;
    client bob = registered(server.port(), "bob");
    client carol = registered(server.port(), "carol");
    client alice = registered(server.port(), "alice");
    SECTION("/typing <user> stop") {
        alice.send("/typing bob\n/typing bob stop\n");
        REQUIRE(bob.read_line() == "typing alice");
        REQUIRE(bob.read_line() == "typing alice stop");
    }
    SECTION("/msg") {
        alice.send("/typing bob\n/msg bob hi\n");
        REQUIRE(bob.read_line() == "typing alice");
        REQUIRE(bob.read_line() == "msg alice hi");
    }
    SECTION("@") {
        alice.send("/typing bob\n@bob hi\n");
        REQUIRE(bob.read_line() == "typing alice");
        REQUIRE(bob.read_line() == "msg alice hi");
    }
    SECTION("/send") {
        alice.send("/typing bob\n/send t1 bob hi\n");
        REQUIRE(alice.read_line() == "sent t1 delivered");
        REQUIRE(bob.read_line() == "typing alice");
        REQUIRE(bob.read_line() == "msg alice hi");
    }
    // alice was also typing to carol and sent her nothing: only carol gets the stop.
    alice.send("/typing carol\n");
    REQUIRE(carol.read_line() == "typing alice");
    alice.close();
    REQUIRE(carol.read_line() == "typing alice stop");
    REQUIRE(server.wait_disconnect("alice").has_value());
    expect_who(bob, "who bob carol");
    expect_who(carol, "who bob carol");
}

TEST_CASE("typing: a sender closing more than 5 s after /typing sends no stop",
          "[integration][v1.2][typing][slow]") {
    // The clock witness is dave's offline presence event, due 5.1 s after dave closed, which is
    // after alice's /typing: once the watcher has it, more than 5 s have passed (the 100 ms more
    // cover the server's whole-millisecond clock).
    switchboard::router_options ro;
    ro.presence_grace = std::chrono::milliseconds(5100);
    switchboard::tcp_server_options o;
    o.tick_interval = std::chrono::milliseconds(50);
    test_server server(ro, 1, o);
    client bob = registered(server.port(), "bob");
    client alice = registered(server.port(), "alice");
    client dave = registered(server.port(), "dave");
    client watcher = registered(server.port(), "watcher");
    watcher.send("/watch dave\n");
    REQUIRE(watcher.read_line() == "ok watch dave");
    REQUIRE(watcher.read_line() == "presence dave online");

    alice.send("/typing bob\n");
    REQUIRE(bob.read_line() == "typing alice");
    const auto typed = clock::now();
    const std::int64_t before = unix_ms();
    dave.close();
    REQUIRE(server.wait_disconnect("dave").has_value());
    const std::int64_t after = unix_ms();
    expect_offline_since(watcher.read_line(clock::now() + std::chrono::milliseconds(5100 + 1000)), "dave",
                         before, after);
    REQUIRE(clock::now() - typed > std::chrono::milliseconds(5000));
    alice.close();
    REQUIRE(server.wait_disconnect("alice").has_value());
    expect_who(bob, "who bob watcher"); // no typing alice stop
}

TEST_CASE("typing: a recipient whose output is backed up keeps its connection; /typing is dropped",
          "[integration][v1.2][typing][slow-consumer]") {
    constexpr std::size_t max_output = 64 * 1024;
    switchboard::tcp_server_options o;
    o.max_output_bytes = max_output;
    test_server server(1, o);
    const std::string sender_name(40, 's'); // long sender name: 48 bytes out per 10 bytes in
    client x = registered(server.port(), "x", 4096); // small receive buffer; stops reading now
    client sender = registered(server.port(), sender_name);

    // Far more typing output than the kernel buffers and the output bound can hold together.
    const std::string typing_line = "typing " + sender_name;
    const std::size_t lines = (2 * (tcp_wmem_max() + max_output) + (std::size_t{1} << 20)) / (typing_line.size() + 1);
    const std::string command = "/typing x\n";
    std::string burst;
    for (int i = 0; i < 4096; ++i) burst += command;
    const auto flood_deadline = deadline_in(std::chrono::milliseconds(20000));
    for (std::size_t sent = 0; sent < lines; sent += 4096) sender.send(burst, flood_deadline);
    const std::size_t sent_lines = (lines + 4095) / 4096 * 4096;

    sender.send("/msg x hello after the flood\n");
    expect_who(sender, "who " + sender_name + " x"); // x is still connected and registered
    REQUIRE(server.connection_count() == 2);
    for (const auto& d : server.disconnects()) REQUIRE(d.user != "x");

    // x reads now: typing lines (some, not all: the rest was dropped), then the message.
    std::size_t typing_seen = 0;
    for (;;) {
        const std::string line = x.read_line();
        if (line == typing_line) {
            ++typing_seen;
            continue;
        }
        REQUIRE(line == "msg " + sender_name + " hello after the flood");
        break;
    }
    INFO("typing lines sent " << sent_lines << ", received " << typing_seen);
    REQUIRE(typing_seen < sent_lines);
    expect_who(x, "who " + sender_name + " x");
    sender.send("/msg x and one more\n");
    REQUIRE(x.read_line() == "msg " + sender_name + " and one more");
}
