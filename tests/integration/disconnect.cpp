// Disconnect over TCP (EOF, reset, /quit, half-close, and a kick through router::disconnect):
// the user is released, each of its rooms tells the remaining members `leave <room> <user>`, the
// name can be registered again, and /msg to it answers err user-not-found.
#include "test_server.hpp"

#include <string>

using namespace switchboard_test;
using switchboard::disconnect_reason;

TEST_CASE("disconnect: EOF or reset or /quit or half-close releases the name and the rooms",
          "[integration][disconnect]") {
    test_server server;
    client bob = registered(server.port(), "bob");
    client carol = registered(server.port(), "carol");
    client alice = registered(server.port(), "alice");
    alice.send("/join r1\n/join r2\n");
    REQUIRE(alice.read_line() == "ok join r1");
    REQUIRE(alice.read_line() == "ok join r2");
    bob.send("/join r1\n");
    REQUIRE(bob.read_line() == "ok join r1");
    REQUIRE(alice.read_line() == "join r1 bob");
    carol.send("/join R2\n");
    REQUIRE(carol.read_line() == "ok join r2");
    REQUIRE(alice.read_line() == "join r2 carol");

    disconnect_reason expected{};
    SECTION("EOF (close)") {
        alice.close();
        expected = disconnect_reason::peer_closed;
    }
    SECTION("reset (RST)") {
        alice.reset();
        expected = disconnect_reason::error;
    }
    SECTION("/quit") {
        alice.send("/quit\n");
        REQUIRE(alice.read_line() == "ok quit");
        alice.expect_closed();
        expected = disconnect_reason::quit;
    }
    SECTION("half-close") {
        alice.shutdown_write();
        alice.expect_closed();
        expected = disconnect_reason::peer_closed;
    }

    REQUIRE(bob.read_line() == "leave r1 alice");
    REQUIRE(carol.read_line() == "leave r2 alice");
    REQUIRE(server.wait_disconnect("alice") == expected);
    bob.send("/msg alice are you there\n");
    REQUIRE(bob.read_line() == "err user-not-found alice");
    expect_who(bob, "who bob carol");

    // The name is free again; the new alice is in no room.
    client alice2 = registered(server.port(), "ALICE");
    bob.send("@alice welcome back\n");
    REQUIRE(alice2.read_line() == "msg bob welcome back");
    bob.send("#r1 only bob here\n");
    carol.send("#r2 only carol here\n");
    expect_who(bob, "who alice bob carol");
    expect_who(carol, "who alice bob carol");
    expect_who(alice2, "who alice bob carol"); // no room message reached her
    REQUIRE(server.with_router([](switchboard::router& r) { return r.session_count(); }) == 3);
}

TEST_CASE("disconnect: the disconnect of the last member deletes the room", "[integration][disconnect]") {
    test_server server;
    {
        client alice = registered(server.port(), "alice");
        alice.send("/join solo\n");
        REQUIRE(alice.read_line() == "ok join solo");
        alice.reset();
        REQUIRE(server.wait_disconnect("alice") == disconnect_reason::error);
    }
    REQUIRE(server.with_router([](switchboard::router& r) { return r.room_count() + r.user_count(); }) == 0);
    client bob = registered(server.port(), "bob");
    client carol = registered(server.port(), "carol");
    bob.send("/join solo\n");
    REQUIRE(bob.read_line() == "ok join solo");
    carol.send("/join solo\n");
    REQUIRE(carol.read_line() == "ok join solo");
    REQUIRE(bob.read_line() == "join solo carol"); // nothing about alice
}

TEST_CASE("disconnect: an unregistered connection leaves nothing behind", "[integration][disconnect]") {
    test_server server;
    client bob = registered(server.port(), "bob");
    {
        client anon(server.port());
        expect_who(anon, "who bob");
        anon.reset();
    }
    REQUIRE(server.wait_disconnect("") == disconnect_reason::error);
    REQUIRE(server.with_router([](switchboard::router& r) { return r.session_count(); }) == 1);
    expect_who(bob, "who bob");
}

TEST_CASE("disconnect: a kick through router::disconnect closes after flushing and rooms are told",
          "[integration][disconnect]") {
    test_server server;
    client bob = registered(server.port(), "bob");
    client alice = registered(server.port(), "alice");
    for (client* c : {&bob, &alice}) {
        c->send("/join r\n");
        REQUIRE(c->read_line() == "ok join r");
    }
    REQUIRE(bob.read_line() == "join r alice");
    server.with_router([](switchboard::router& r) {
        const auto s = r.find("alice");
        REQUIRE(s);
        REQUIRE(r.send(s, switchboard::protocol::encode_info("kicked")) == switchboard::status::ok);
        REQUIRE(r.disconnect(s) == switchboard::status::ok);
    });
    REQUIRE(alice.read_line() == "* kicked"); // queued before the kick: flushed first
    alice.expect_closed();
    REQUIRE(bob.read_line() == "leave r alice");
    REQUIRE(server.wait_disconnect("alice") == disconnect_reason::closed);
    bob.send("/msg alice hi\n");
    REQUIRE(bob.read_line() == "err user-not-found alice");
}
