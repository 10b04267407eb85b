// /register over TCP: ok, case folding, the name rules, name-taken, already-registered, usage, and
// the command word's case-insensitivity.
#include "test_server.hpp"

#include <string>

using namespace switchboard_test;

TEST_CASE("register: ok register <user> and visible in /who", "[integration][register]") {
    test_server server;
    client alice(server.port());
    alice.send("/register alice\n");
    REQUIRE(alice.read_line() == "ok register alice");
    expect_who(alice, "who alice");
}

TEST_CASE("register: names are folded to lowercase in every reply", "[integration][register]") {
    test_server server;
    client a(server.port());
    a.send("/register AliCE\n");
    REQUIRE(a.read_line() == "ok register alice");
    client b(server.port());
    b.send("/register ALICE\n");
    REQUIRE(b.read_line() == "err name-taken alice");
    b.send("/register Bob\n");
    REQUIRE(b.read_line() == "ok register bob");
    expect_who(b, "who alice bob");
}

TEST_CASE("register: the command word is case-insensitive", "[integration][register]") {
    test_server server;
    client a(server.port());
    a.send("/REGISTER alice\n");
    REQUIRE(a.read_line() == "ok register alice");
    client b(server.port());
    b.send("/ReGiStEr bob\n");
    REQUIRE(b.read_line() == "ok register bob");
}

TEST_CASE("register: every allowed character, names of 1 and 40 bytes, a dashed UUID", "[integration][register]") {
    test_server server;
    client a(server.port());
    a.send("/register Az09_.-\n");
    REQUIRE(a.read_line() == "ok register az09_.-");
    client b(server.port());
    b.send("/register x\n");
    REQUIRE(b.read_line() == "ok register x");
    client c(server.port());
    const std::string n40(40, 'N');
    c.send("/register " + n40 + "\n");
    REQUIRE(c.read_line() == "ok register " + std::string(40, 'n'));
    client d(server.port());
    d.send("/register 550E8400-e29b-41d4-a716-446655440000\n");
    REQUIRE(d.read_line() == "ok register 550e8400-e29b-41d4-a716-446655440000");
    b.send("@550e8400-E29B-41d4-a716-446655440000 hello uuid\n");
    REQUIRE(d.read_line() == "msg x hello uuid");
}

TEST_CASE("register: invalid names echo the argument exactly as sent", "[integration][register]") {
    test_server server;
    client a(server.port());
    const std::string n41(41, 'A');
    a.send("/register " + n41 + "\n");
    REQUIRE(a.read_line() == "err invalid-name " + n41);
    // The name ends at the first space (a secret may follow); only the name is echoed.
    a.send("/register al@ice\n");
    REQUIRE(a.read_line() == "err invalid-name al@ice");
    a.send("/register al@ice secret\n");
    REQUIRE(a.read_line() == "err invalid-name al@ice");
    a.send("/register  alice\n"); // exactly one space separates the argument: empty name
    REQUIRE(a.read_line() == "err usage register");
    a.send("/register \xC3\xA9t\xC3\xA9\n");
    REQUIRE(a.read_line() == "err invalid-name \xC3\xA9t\xC3\xA9");
    // Still unregistered after all of that.
    expect_who(a, "who");
    a.send("/register alice\n");
    REQUIRE(a.read_line() == "ok register alice");
}

TEST_CASE("register: name-taken for a name held by another connection", "[integration][register]") {
    test_server server;
    client a = registered(server.port(), "alice");
    client b(server.port());
    b.send("/register alice\n");
    REQUIRE(b.read_line() == "err name-taken alice");
    expect_who(b, "who alice");
}

TEST_CASE("register: already-registered names the current name", "[integration][register]") {
    test_server server;
    client a = registered(server.port(), "Alice");
    a.send("/register carol\n");
    REQUIRE(a.read_line() == "err already-registered alice");
    a.send("/register ALICE\n"); // even the same name
    REQUIRE(a.read_line() == "err already-registered alice");
    expect_who(a, "who alice"); // carol was not registered
}

TEST_CASE("register: usage error when the argument is missing", "[integration][register]") {
    test_server server;
    client a(server.port());
    a.send("/register\n");
    REQUIRE(a.read_line() == "err usage register");
    a.send("/register \n");
    REQUIRE(a.read_line() == "err usage register");
    // Usage is checked before already-registered.
    a.send("/register alice\n/register\n");
    REQUIRE(a.read_line() == "ok register alice");
    REQUIRE(a.read_line() == "err usage register");
}
