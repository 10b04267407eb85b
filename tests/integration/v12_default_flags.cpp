// Line protocol v1.2 on a server with default flags (issue #11: "Everything new is opt-in: with
// default flags a v1 client sees exactly v1.1"). Exclusive sessions (name-taken), no inbox (`/ack`
// is not-supported, a message to a user who left is user-not-found and nothing is replayed), no
// presence grace. `/send` needs no flag; `/watch` and `/typing` have no flag in the table,
// so they work on a default server too.
#include "test_server.hpp"

#include <string>

using namespace switchboard_test;

TEST_CASE("v1.2 defaults: a second /register of a held name is name-taken (exclusive)",
          "[integration][v1.2][defaults]") {
    test_server server;
    client alice = registered(server.port(), "alice");
    client second(server.port());
    second.send("/register ALICE\n");
    REQUIRE(second.read_line() == "err name-taken alice");
    expect_who(second, "who alice");
    client bob = registered(server.port(), "bob");
    bob.send("/msg alice still yours\n");
    REQUIRE(alice.read_line() == "msg bob still yours");
    expect_nothing_before_marker(second);
}

TEST_CASE("v1.2 defaults: /ack on and /ack <seq> are not-supported without an inbox",
          "[integration][v1.2][defaults][ack]") {
    test_server server;
    client bob(server.port());
    bob.send("/ack on\n"); // before /register
    REQUIRE(bob.read_line() == "err not-supported ack");
    bob.send("/register bob\n");
    REQUIRE(bob.read_line() == "ok register bob");
    bob.send("/ack on\n"); // after /register
    REQUIRE(bob.read_line() == "err not-supported ack");
    bob.send("/ack 1\n");
    REQUIRE(bob.read_line() == "err not-supported ack");
    bob.send("/ack\n"); // usage is still checked first
    REQUIRE(bob.read_line() == "err usage ack");
    // Direct messages stay v1 `msg` lines.
    client alice = registered(server.port(), "alice");
    alice.send("/msg bob hi\n");
    REQUIRE(bob.read_line() == "msg alice hi");
    expect_nothing_before_marker(alice);
}

TEST_CASE("v1.2 defaults: a message to a user who left is user-not-found and is never replayed",
          "[integration][v1.2][defaults][inbox]") {
    test_server server;
    client alice = registered(server.port(), "alice");
    {
        client bob = registered(server.port(), "bob");
        bob.close();
        REQUIRE(server.wait_disconnect("bob").has_value());
    }
    alice.send("/msg bob are you there?\n");
    REQUIRE(alice.read_line() == "err user-not-found bob");
    client bob = registered(server.port(), "bob");
    expect_who(bob, "who alice bob");
}

TEST_CASE("v1.2 defaults: /send, /watch and /typing work without a flag",
          "[integration][v1.2][defaults]") {
    test_server server;
    client alice = registered(server.port(), "alice");
    client bob = registered(server.port(), "bob");
    alice.send("/send c1 bob hi\n");
    REQUIRE(alice.read_line() == "sent c1 delivered");
    REQUIRE(bob.read_line() == "msg alice hi");
    alice.send("/send c2 carol hi\n");
    REQUIRE(alice.read_line() == "sent c2 user-not-found");
    alice.send("/watch bob\n");
    REQUIRE(alice.read_line() == "ok watch bob");
    REQUIRE(alice.read_line() == "presence bob online");
    alice.send("/typing bob\n");
    REQUIRE(bob.read_line() == "typing alice");
    alice.send("/typing bob stop\n");
    REQUIRE(bob.read_line() == "typing alice stop");
    expect_nothing_before_marker(alice);
    expect_nothing_before_marker(bob);
}

TEST_CASE("v1.2 defaults: a v1 client sees only v1.1 lines while others watch it and /send to it",
          "[integration][v1.2][defaults]") {
    test_server server;
    client alice = registered(server.port(), "alice");
    alice.send("/watch bob\n");
    REQUIRE(alice.read_line() == "ok watch bob");
    REQUIRE(alice.read_line() == "presence bob offline");

    // bob is a v1 client: it never sends a v1.2 command. Every line it gets is a v1.1 line.
    client bob = registered(server.port(), "bob");
    REQUIRE(alice.read_line() == "presence bob online");
    alice.send("/send s1 bob one\n");
    REQUIRE(alice.read_line() == "sent s1 delivered");
    REQUIRE(bob.read_line() == "msg alice one");
    alice.send("/send s1 bob one\n"); // a retry: answered, not delivered again
    REQUIRE(alice.read_line() == "sent s1 delivered");
    bob.send("/join lobby\n");
    REQUIRE(bob.read_line() == "ok join lobby");
    alice.send("/join lobby\n");
    REQUIRE(alice.read_line() == "ok join lobby");
    REQUIRE(bob.read_line() == "join lobby alice");
    alice.send("#lobby hello room\n");
    REQUIRE(bob.read_line() == "room lobby alice hello room");
    bob.send("@alice hey\n");
    REQUIRE(alice.read_line() == "msg bob hey");
    expect_who(bob, "who alice bob");
    alice.close();
    REQUIRE(bob.read_line() == "leave lobby alice");
    expect_who(bob, "who bob");
}
