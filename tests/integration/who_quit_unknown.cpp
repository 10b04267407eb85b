// /who, /quit, unknown commands, empty lines and the greeting, over TCP.
#include "test_server.hpp"

#include <string>

using namespace switchboard_test;

TEST_CASE("who: alone before anyone registered and before registering", "[integration][who]") {
    test_server server;
    client anon(server.port());
    expect_who(anon, "who");
    anon.send("/WHO\n");
    REQUIRE(anon.read_line() == "who");
    client alice = registered(server.port(), "alice");
    expect_who(anon, "who alice"); // an unregistered session is not listed
}

TEST_CASE("who: every registered user in ascending byte order with self included", "[integration][who]") {
    test_server server;
    // Byte order: '-' < '.' < digits < '_' < letters.
    client c1 = registered(server.port(), "ab");
    client c2 = registered(server.port(), "A_B");
    client c3 = registered(server.port(), "a.b");
    client c4 = registered(server.port(), "a1");
    client c5 = registered(server.port(), "a-b");
    client c6 = registered(server.port(), "Zed");
    client c7 = registered(server.port(), "b");
    expect_who(c1, "who a-b a.b a1 a_b ab b zed");
    expect_who(c6, "who a-b a.b a1 a_b ab b zed");
}

TEST_CASE("quit: ok quit and then the server closes", "[integration][quit]") {
    test_server server;
    client anon(server.port());
    anon.send("/quit\n"); // works before registering
    REQUIRE(anon.read_line() == "ok quit");
    anon.expect_closed();

    client alice = registered(server.port(), "alice");
    alice.send("/QUIT\n");
    REQUIRE(alice.read_line() == "ok quit");
    alice.expect_closed();
    REQUIRE(server.wait_disconnect("alice") == switchboard::disconnect_reason::quit);
}

TEST_CASE("quit: nothing after /quit is processed", "[integration][quit]") {
    test_server server;
    client bob = registered(server.port(), "bob");
    client alice = registered(server.port(), "alice");
    alice.send("/quit\n/msg bob too late\n/who\n");
    REQUIRE(alice.read_line() == "ok quit");
    alice.expect_closed();
    expect_who(bob, "who bob");
}

TEST_CASE("unknown: any other /word gets its word lowercased", "[integration][unknown]") {
    test_server server;
    client anon(server.port());
    anon.send("/foo\n");
    REQUIRE(anon.read_line() == "err unknown-command foo");
    anon.send("/NiCk alice\n");
    REQUIRE(anon.read_line() == "err unknown-command nick");
    anon.send("/msgs bob hi\n");
    REQUIRE(anon.read_line() == "err unknown-command msgs");
    client alice = registered(server.port(), "alice"); // also when registered
    alice.send("/Whois bob\n");
    REQUIRE(alice.read_line() == "err unknown-command whois");
}

TEST_CASE("unknown: a line not starting with slash or at or hash", "[integration][unknown]") {
    test_server server;
    client anon(server.port());
    for (const char* line :
         {"hello\n", " /who\n", "msg bob hi\n", "*\n", "register alice\n", "\t@bob hi\n"}) {
        INFO("sent: " << printable(line));
        anon.send(line);
        REQUIRE(anon.read_line() == "err unknown-command");
    }
    client alice = registered(server.port(), "alice");
    alice.send("hello there\n");
    REQUIRE(alice.read_line() == "err unknown-command");
}

TEST_CASE("framing: empty lines are ignored with no reply", "[integration][framing]") {
    test_server server;
    client anon(server.port());
    anon.send("\n");
    anon.send("\r\n");
    anon.send("\n\n\r\n\n");
    expect_who(anon, "who");
}

TEST_CASE("greeting: informational lines start with asterisk and space", "[integration][greeting]") {
    switchboard::tcp_server_options options;
    options.greeting = "welcome to the test\nregister with: /register <name>";
    test_server server(1, options);
    client anon(server.port());
    REQUIRE(anon.read_line() == "* welcome to the test");
    REQUIRE(anon.read_line() == "* register with: /register <name>");
    expect_who(anon, "who");
    client other(server.port());
    REQUIRE(other.read_line() == "* welcome to the test");
    REQUIRE(other.read_line() == "* register with: /register <name>");
}
