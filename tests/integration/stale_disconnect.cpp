// The stale-disconnect race of the Map-based demo: a dead connection's disconnect must release
// only what that connection holds, never the name a newer connection registered since.
#include "test_server.hpp"

#include <memory>
#include <string>
#include <vector>

using namespace switchboard_test;

namespace {
// Sends /register <user> until it succeeds (the old holder's disconnect may not be processed
// yet: name-taken until then). Bounded by `deadline`.
void register_when_free(client& c, const std::string& user, clock::time_point deadline = deadline_in()) {
    for (;;) {
        c.send("/register " + user + "\n");
        const std::string reply = c.read_line(deadline);
        if (reply == "ok register " + user) return;
        REQUIRE(reply == "err name-taken " + user);
        if (clock::now() >= deadline) FAIL("name " << user << " still taken at the deadline");
    }
}

// C messages alice and B must receive it: alice routes to B.
void expect_routes_to(client& from, client& to, const std::string& tag) {
    from.send("/msg alice " + tag + "\n");
    REQUIRE(to.read_line() == "msg c " + tag);
}
} // namespace

TEST_CASE("stale disconnect: the reset of an old connection never releases the name of the new owner",
          "[integration][stale]") {
    test_server server;
    client c = registered(server.port(), "c");
    auto a = std::make_unique<client>(registered(server.port(), "alice"));
    a->send("/join room\n");
    REQUIRE(a->read_line() == "ok join room");

    client b(server.port());
    b.send("/register alice\n");
    REQUIRE(b.read_line() == "err name-taken alice"); // A still holds it

    a->reset(); // abrupt
    register_when_free(b, "alice");
    expect_routes_to(c, b, "ping-0");

    // Make sure A's disconnect has been processed in full (hook called, connection forgotten),
    // then check that alice still routes to B and is still registered.
    REQUIRE(server.wait_disconnect("alice") == switchboard::disconnect_reason::error);
    REQUIRE(wait_until([&] { return server.connection_count() == 2; }, deadline_in()));
    for (int i = 1; i <= 5; ++i) expect_routes_to(c, b, "ping-" + std::to_string(i));
    expect_who(c, "who alice c");
    // B did not inherit A's room.
    b.send("/leave room\n");
    REQUIRE(b.read_line() == "err not-member room");
    REQUIRE(server.with_router([](switchboard::router& r) { return r.room_count(); }) == 0);
}

TEST_CASE("stale disconnect: a clean close racing with re-registration", "[integration][stale]") {
    test_server server;
    client c = registered(server.port(), "c");
    client b(server.port());
    {
        client a = registered(server.port(), "alice");
        a.close(); // FIN, and B registers at once: it may well win before A's EOF is handled
    }
    register_when_free(b, "alice");
    REQUIRE(server.wait_disconnect("alice") == switchboard::disconnect_reason::peer_closed);
    REQUIRE(wait_until([&] { return server.connection_count() == 2; }, deadline_in()));
    expect_routes_to(c, b, "after-close");
    expect_who(b, "who alice c");
}

TEST_CASE("stale disconnect: many reconnect cycles keep alice on the newest connection",
          "[integration][stale]") {
    test_server server(2);
    client c = registered(server.port(), "c");
    constexpr int cycles = 60;
    auto holder = std::make_unique<client>(registered(server.port(), "alice"));
    for (int i = 0; i < cycles; ++i) {
        auto next = std::make_unique<client>(server.port());
        if (i % 2 == 0) {
            next->send("/register alice\n");
            REQUIRE(next->read_line() == "err name-taken alice");
        }
        if (i % 3 == 0) holder->close();
        else holder->reset();
        register_when_free(*next, "alice");
        expect_routes_to(c, *next, "cycle-" + std::to_string(i));
        holder = std::move(next);
    }
    // Every old connection's disconnect has been processed now.
    REQUIRE(server.wait_disconnects(cycles) == cycles);
    REQUIRE(wait_until([&] { return server.connection_count() == 2; }, deadline_in()));
    expect_routes_to(c, *holder, "final");
    expect_who(c, "who alice c");
    REQUIRE(server.with_router([](switchboard::router& r) { return r.session_count(); }) == 2);
}
