// /msg and @ over TCP: delivery as `msg <from> <text>`, nothing to the sender, folding, the text
// after exactly one space, /msg to oneself, and every error row in the protocol's check order.
#include "test_server.hpp"

#include <string>

using namespace switchboard_test;

TEST_CASE("msg: the recipient gets msg <from> <text> and the sender nothing", "[integration][msg]") {
    test_server server;
    client alice = registered(server.port(), "alice");
    client bob = registered(server.port(), "bob");
    alice.send("/msg bob hello bob\n");
    REQUIRE(bob.read_line() == "msg alice hello bob");
    expect_who(alice, "who alice bob"); // nothing came back to the sender before this
    bob.send("@alice hi, @ form\n");
    REQUIRE(alice.read_line() == "msg bob hi, @ form");
    expect_who(bob, "who alice bob");
}

TEST_CASE("msg: target names and the command word are case-insensitive and replies use folded names",
          "[integration][msg]") {
    test_server server;
    client alice = registered(server.port(), "Alice");
    client bob = registered(server.port(), "bob");
    alice.send("/MSG BOB one\n");
    REQUIRE(bob.read_line() == "msg alice one");
    alice.send("@Bob two\n");
    REQUIRE(bob.read_line() == "msg alice two");
    alice.send("/msg NoBody three\n");
    REQUIRE(alice.read_line() == "err user-not-found nobody");
}

TEST_CASE("msg: the text is the rest after exactly one space byte for byte", "[integration][msg]") {
    test_server server;
    client alice = registered(server.port(), "alice");
    client bob = registered(server.port(), "bob");
    alice.send("/msg bob  leading space\n");
    REQUIRE(bob.read_line() == "msg alice  leading space");
    alice.send("/msg bob a  b   c\n");
    REQUIRE(bob.read_line() == "msg alice a  b   c");
    alice.send("@bob /msg bob not a command\n");
    REQUIRE(bob.read_line() == "msg alice /msg bob not a command");
    alice.send("/msg bob *\n");
    REQUIRE(bob.read_line() == "msg alice *");
}

TEST_CASE("msg: a message to oneself is delivered to oneself", "[integration][msg]") {
    test_server server;
    client alice = registered(server.port(), "alice");
    alice.send("/msg alice note to self\n");
    REQUIRE(alice.read_line() == "msg alice note to self");
    alice.send("@ALICE again\n");
    REQUIRE(alice.read_line() == "msg alice again");
}

TEST_CASE("msg: user-not-found", "[integration][msg]") {
    test_server server;
    client alice = registered(server.port(), "alice");
    alice.send("/msg carol hi\n");
    REQUIRE(alice.read_line() == "err user-not-found carol");
    alice.send("@carol hi\n");
    REQUIRE(alice.read_line() == "err user-not-found carol");
}

TEST_CASE("msg: not-registered", "[integration][msg]") {
    test_server server;
    client bob = registered(server.port(), "bob");
    client anon(server.port());
    anon.send("/msg bob hi\n");
    REQUIRE(anon.read_line() == "err not-registered");
    anon.send("@bob hi\n");
    REQUIRE(anon.read_line() == "err not-registered");
    expect_who(bob, "who bob"); // nothing was delivered
}

TEST_CASE("msg: invalid-name echoes the target as sent", "[integration][msg]") {
    test_server server;
    client alice = registered(server.port(), "alice");
    alice.send("/msg B@D hi\n");
    REQUIRE(alice.read_line() == "err invalid-name B@D");
    alice.send("@" + std::string(41, 'x') + " hi\n");
    REQUIRE(alice.read_line() == "err invalid-name " + std::string(41, 'x'));
}

TEST_CASE("msg: usage when the target or the text is missing or empty", "[integration][msg]") {
    test_server server;
    client alice = registered(server.port(), "alice");
    client bob = registered(server.port(), "bob");
    for (const char* line : {"/msg\n", "/msg \n", "/msg bob\n", "/msg bob \n", "@bob\n", "@bob \n", "@ hi\n",
                             "@\n", "/msg  bob hi\n"}) {
        INFO("sent: " << printable(line));
        alice.send(line);
        REQUIRE(alice.read_line() == "err usage msg");
    }
    expect_who(bob, "who alice bob"); // nothing was delivered
}

TEST_CASE("msg: checks run usage -> not-registered -> invalid-name -> invalid-text -> outcome",
          "[integration][msg][order]") {
    test_server server;
    client anon(server.port());
    anon.send("/msg bob\n"); // usage before not-registered
    REQUIRE(anon.read_line() == "err usage msg");
    anon.send("/msg b@d \x1b[2J\n"); // not-registered before invalid-name and invalid-text
    REQUIRE(anon.read_line() == "err not-registered");

    client alice = registered(server.port(), "alice");
    alice.send("/msg b@d \x1b[2J\n"); // invalid-name before invalid-text
    REQUIRE(alice.read_line() == "err invalid-name b@d");
    alice.send("/msg nobody \x1b[2J\n"); // invalid-text before user-not-found
    REQUIRE(alice.read_line() == "err invalid-text");
    alice.send("/msg nobody fine\n");
    REQUIRE(alice.read_line() == "err user-not-found nobody");
}

TEST_CASE("msg: the user-not-found handler of the router sees the target and text", "[integration][msg]") {
    test_server server;
    std::string seen;
    server.with_router([&](switchboard::router& r) {
        r.on_user_not_found([&seen](switchboard::session_id, std::string_view target, std::string_view text) {
            seen = std::string(target) + "|" + std::string(text);
        });
    });
    client alice = registered(server.port(), "alice");
    alice.send("/msg GHOST boo hoo\n");
    REQUIRE(alice.read_line() == "err user-not-found ghost");
    REQUIRE(server.with_router([&](switchboard::router&) { return seen; }) == "ghost|boo hoo");
}
