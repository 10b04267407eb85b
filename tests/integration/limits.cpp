// Limits over real sockets (issue 4, "Limits"): connections in total and per address, register and
// idle timeouts, the per-session rate limit, rooms per session, and their counters.
#include "test_server.hpp"

#include <string>
#include <vector>

using namespace switchboard_test;
using switchboard::disconnect_reason;
using namespace std::chrono_literals;

TEST_CASE("limits: over max_connections a client gets `* server full` and is closed; service goes on",
          "[integration][limits]") {
    switchboard::tcp_server_options o;
    o.max_connections = 3;
    test_server server(1, o);
    std::vector<client> in;
    for (const char* user : {"a", "b", "c"}) in.push_back(registered(server.port(), user));
    client refused(server.port());
    CHECK(refused.read_line() == "* server full");
    refused.expect_closed();
    client refused_again(server.port());
    CHECK(refused_again.read_line() == "* server full");
    refused_again.expect_closed();
    CHECK(server.server().counters().refused_full == 2);
    CHECK(server.server().counters().accepted == 3);
    // Those inside are served as before.
    in[0].send("@b still here\n");
    CHECK(in[1].read_line() == "msg a still here");
    // When one leaves, a new client gets its place.
    in[2].send("/quit\n");
    CHECK(in[2].read_line() == "ok quit");
    in[2].expect_closed();
    REQUIRE(wait_until([&] { return server.connection_count() == 2; }, deadline_in()));
    client d = registered(server.port(), "d");
    d.send("@a hi\n");
    CHECK(in[0].read_line() == "msg d hi");
}

TEST_CASE("limits: max_connections_per_address counts each remote address on its own",
          "[integration][limits]") {
    switchboard::tcp_server_options o;
    o.max_connections_per_address = 2;
    test_server server(1, o);
    client a1 = registered(server.port(), "a1");
    client a2 = registered(server.port(), "a2");
    client a3(server.port());
    CHECK(a3.read_line() == "* server full");
    a3.expect_closed();
    CHECK(server.server().counters().refused_per_address == 1);
    // Another source address (loopback is 127.0.0.0/8) has its own budget.
    client b1(server.port(), 0, "127.0.0.2");
    b1.send("/register b1\n");
    CHECK(b1.read_line() == "ok register b1");
    client b2(server.port(), 0, "127.0.0.2");
    b2.send("/register b2\n");
    CHECK(b2.read_line() == "ok register b2");
    client b3(server.port(), 0, "127.0.0.2");
    CHECK(b3.read_line() == "* server full");
    CHECK(server.server().counters().refused_per_address == 2);
    // A freed place is given back to that address.
    a1.close();
    REQUIRE(server.wait_disconnect("a1").has_value());
    REQUIRE(wait_until([&] { return server.connection_count() == 3; }, deadline_in()));
    client a4 = registered(server.port(), "a4");
    a4.send("@b2 from a4\n");
    CHECK(b2.read_line() == "msg a4 from a4");
}

TEST_CASE("limits: a connection that does not register in time is told and closed; registered ones stay",
          "[integration][limits][timeout]") {
    switchboard::tcp_server_options o;
    o.register_timeout = 200ms;
    test_server server(1, o);
    client r = registered(server.port(), "r");
    client u(server.port());
    u.send("/who\n"); // activity does not count: only a name does
    CHECK(u.read_line() == "who r");
    CHECK(u.read_line(deadline_in(3s)) == "* register timeout");
    u.expect_closed();
    CHECK(server.wait_disconnect("") == disconnect_reason::register_timeout);
    // A second one times out too, by which time `r` has been connected for well over the timeout.
    client u2(server.port());
    CHECK(u2.read_line(deadline_in(3s)) == "* register timeout");
    u2.expect_closed();
    CHECK(server.server().counters().register_timeouts == 2);
    r.send("/who\n");
    CHECK(r.read_line() == "who r");
}

TEST_CASE("limits: an idle registered session is reaped and its name freed; an active one is not",
          "[integration][limits][timeout]") {
    switchboard::tcp_server_options o;
    o.register_timeout = 0ms;
    o.idle_timeout = 300ms;
    test_server server(1, o);
    client quiet = registered(server.port(), "alice");
    client busy = registered(server.port(), "bob");
    const auto until = clock::now() + 3s;
    bool reaped = false;
    while (!reaped && clock::now() < until) {
        busy.send("/who\n"); // bob keeps talking every 50 ms
        const std::string who = busy.read_line();
        CHECK((who == "who alice bob" || who == "who bob"));
        reaped = server.wait_disconnect("alice", deadline_in(50ms)).has_value();
    }
    REQUIRE(reaped);
    CHECK(server.wait_disconnect("alice") == disconnect_reason::idle_timeout);
    CHECK(quiet.read_line() == "* idle timeout");
    quiet.expect_closed();
    // The name is free again; the new holder is a new session, which the old one's reaping never
    // touches: it keeps its name while it talks, past another idle period.
    client again = registered(server.port(), "alice");
    for (int i = 0; i < 12; ++i) { // 12 x ~50 ms > 300 ms
        again.send("/who\n");
        CHECK(again.read_line() == "who alice bob");
        busy.send("@alice ping-" + std::to_string(i) + "\n");
        CHECK(again.read_line() == "msg bob ping-" + std::to_string(i));
        CHECK_FALSE(server.wait_disconnect("bob", deadline_in(50ms)).has_value());
    }
    CHECK(server.server().counters().idle_timeouts == 1);
}

TEST_CASE("limits: over the rate a line is dropped with `err rate-limited`, the session kept",
          "[integration][limits][rate]") {
    switchboard::tcp_server_options o;
    o.rate = switchboard::rate_limit{1, 5}; // 5 at once, then one per second
    test_server server(1, o);
    client b = registered(server.port(), "b"); // uses one token of b's own bucket
    client a(server.port());
    std::string burst = "/register a\n";
    for (int i = 0; i < 20; ++i) burst += "@b m" + std::to_string(i) + "\n";
    a.send(burst);
    CHECK(a.read_line() == "ok register a");
    for (int i = 0; i < 4; ++i) CHECK(b.read_line() == "msg a m" + std::to_string(i));
    for (int i = 4; i < 20; ++i) CHECK(a.read_line() == "err rate-limited");
    CHECK(server.server().counters().rate_limited == 16);
    // /quit is never limited; nothing else reached b.
    a.send("/quit\n");
    CHECK(a.read_line() == "ok quit");
    a.expect_closed();
    CHECK(server.wait_disconnect("a") == disconnect_reason::quit);
    CHECK_FALSE(b.readable_now());
}

TEST_CASE("limits: a session may join 64 rooms; the 65th is `err too-many-rooms`", "[integration][limits]") {
    test_server server;
    client a = registered(server.port(), "a");
    std::string joins;
    for (int i = 0; i < 65; ++i) joins += "/join r" + std::to_string(i) + "\n";
    a.send(joins);
    for (int i = 0; i < 64; ++i) REQUIRE(a.read_line() == "ok join r" + std::to_string(i));
    CHECK(a.read_line() == "err too-many-rooms r64");
    CHECK(server.with_router([](switchboard::router& r) { return r.counters().too_many_rooms; }) == 1);
}

TEST_CASE("limits: 100 clients that never read are each cut at the output bound; others keep chatting",
          "[integration][limits][slow-consumer]") {
    // Each silent client is sent up to 10 MiB (40 KiB messages) until the server reports it gone.
    // The server holds at most max_output_bytes for each, so its memory stays bounded by
    // 100 x 64 KiB of queued output plus kernel socket buffers, and the pair below keeps chatting.
    switchboard::tcp_server_options o;
    o.max_output_bytes = 64 * 1024;
    o.max_line = 64 * 1024;
    test_server server(1, o);
    constexpr int silent_count = 100;
    std::vector<client> silent;
    silent.reserve(silent_count);
    for (int i = 0; i < silent_count; ++i) silent.push_back(registered(server.port(), "s" + std::to_string(i), 4096));
    client sender = registered(server.port(), "sender");
    client a = registered(server.port(), "a");
    client b = registered(server.port(), "b");
    const std::string chunk(40 * 1024, 'x');
    std::size_t total_sent = 0;
    for (int i = 0; i < silent_count; ++i) {
        const std::string target = "s" + std::to_string(i);
        std::size_t sent = 0;
        bool gone = false;
        while (!gone && sent < (std::size_t{10} << 20)) {
            sender.send("@" + target + " " + chunk + "\n");
            sent += chunk.size();
            // Gone once the server answers user-not-found (the cut released the name).
            // (Late replies for earlier targets may still arrive: messages sent before we noticed.)
            while (!gone && sender.readable_now()) {
                const std::string reply = sender.read_line();
                REQUIRE(reply.rfind("err user-not-found s", 0) == 0);
                gone = reply == "err user-not-found " + target;
            }
        }
        INFO("client " << target << " was sent " << sent << " bytes");
        CHECK(gone);
        CHECK(server.wait_disconnect(target) == disconnect_reason::slow_consumer);
        total_sent += sent;
        if (i % 10 == 0) { // the pair is served all along
            a.send("@b round " + std::to_string(i) + "\n");
            REQUIRE(b.read_line() == "msg a round " + std::to_string(i));
        }
    }
    CHECK(server.server().counters().slow_consumers == silent_count);
    a.send("@b done\n");
    CHECK(b.read_line() == "msg a done");
    INFO("sent to the 100 silent clients in total: " << total_sent << " bytes");
    CHECK(total_sent < std::size_t{silent_count} * (std::size_t{10} << 20));
}

TEST_CASE("limits: a connection closing gracefully that never reads is cut after drain_timeout",
          "[integration][limits][timeout]") {
    // An attacker's try: 5 unregistered clients that pipeline megabytes of commands and never read
    // held their --max-conns slots for about 2 minutes after the register timeout, because the
    // timeout only started a drain that TCP alone ended. drain_timeout bounds the drain.
    switchboard::tcp_server_options o;
    o.register_timeout = 200ms;
    o.drain_timeout = 300ms;
    o.max_output_bytes = 64 * 1024;
    test_server server(1, o);
    client c(server.port(), 2048); // a small receive window, and it never reads
    std::string lines;
    for (int i = 0; i < (2 << 20); ++i) lines += "x\n"; // 4 MB of commands, each answered
    (void)c.try_send(lines, deadline_in(1s)); // the server stops reading once its replies back up
    CHECK(server.wait_disconnect("", deadline_in(3s)) == disconnect_reason::register_timeout);
    CHECK(wait_until([&] { return server.connection_count() == 0; }, deadline_in(5s)));
}
