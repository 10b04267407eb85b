// Rooms over TCP: /join, /leave, /say and #room, the events other members get, and every error row.
#include "test_server.hpp"

#include <string>

using namespace switchboard_test;

TEST_CASE("rooms: join tells each existing member but not the joiner", "[integration][rooms]") {
    test_server server;
    client alice = registered(server.port(), "alice");
    client bob = registered(server.port(), "bob");
    client carol = registered(server.port(), "carol");
    alice.send("/join lobby\n");
    REQUIRE(alice.read_line() == "ok join lobby");
    bob.send("/join Lobby\n");
    REQUIRE(bob.read_line() == "ok join lobby");
    REQUIRE(alice.read_line() == "join lobby bob");
    carol.send("/JOIN LOBBY\n");
    REQUIRE(carol.read_line() == "ok join lobby");
    REQUIRE(alice.read_line() == "join lobby carol");
    REQUIRE(bob.read_line() == "join lobby carol");
    expect_who(carol, "who alice bob carol"); // no join event about herself
}

TEST_CASE("rooms: say reaches each other member as room <room> <from> <text>", "[integration][rooms]") {
    test_server server;
    client alice = registered(server.port(), "alice");
    client bob = registered(server.port(), "bob");
    client carol = registered(server.port(), "carol");
    client dave = registered(server.port(), "dave"); // not a member
    alice.send("/join lobby\n");
    REQUIRE(alice.read_line() == "ok join lobby");
    bob.send("/join lobby\n");
    REQUIRE(bob.read_line() == "ok join lobby");
    REQUIRE(alice.read_line() == "join lobby bob");
    carol.send("/join lobby\n");
    REQUIRE(carol.read_line() == "ok join lobby");
    REQUIRE(alice.read_line() == "join lobby carol");
    REQUIRE(bob.read_line() == "join lobby carol");

    alice.send("/say lobby hello  all \n");
    REQUIRE(bob.read_line() == "room lobby alice hello  all ");
    REQUIRE(carol.read_line() == "room lobby alice hello  all ");
    expect_who(alice, "who alice bob carol dave"); // the sender gets nothing
    expect_who(dave, "who alice bob carol dave");  // a non-member gets nothing

    bob.send("#LOBBY hash form\n");
    REQUIRE(alice.read_line() == "room lobby bob hash form");
    REQUIRE(carol.read_line() == "room lobby bob hash form");
    bob.send("/SAY Lobby case\n");
    REQUIRE(alice.read_line() == "room lobby bob case");
    REQUIRE(carol.read_line() == "room lobby bob case");
    expect_who(bob, "who alice bob carol dave");
}

TEST_CASE("rooms: leave tells each remaining member and the last one deletes the room",
          "[integration][rooms]") {
    test_server server;
    client alice = registered(server.port(), "alice");
    client bob = registered(server.port(), "bob");
    client carol = registered(server.port(), "carol");
    for (client* c : {&alice, &bob, &carol}) {
        c->send("/join r1\n");
        REQUIRE(c->read_line() == "ok join r1");
    }
    REQUIRE(alice.read_line() == "join r1 bob");
    REQUIRE(alice.read_line() == "join r1 carol");
    REQUIRE(bob.read_line() == "join r1 carol");

    alice.send("/LEAVE R1\n");
    REQUIRE(alice.read_line() == "ok leave r1");
    REQUIRE(bob.read_line() == "leave r1 alice");
    REQUIRE(carol.read_line() == "leave r1 alice");
    alice.send("#r1 am I still here\n");
    REQUIRE(alice.read_line() == "err not-member r1");
    bob.send("#r1 after alice left\n");
    REQUIRE(carol.read_line() == "room r1 bob after alice left");
    expect_who(alice, "who alice bob carol"); // alice no longer receives r1

    bob.send("/leave r1\n");
    REQUIRE(bob.read_line() == "ok leave r1");
    REQUIRE(carol.read_line() == "leave r1 bob");
    carol.send("/leave r1\n");
    REQUIRE(carol.read_line() == "ok leave r1");
    REQUIRE(server.with_router([](switchboard::router& r) { return r.room_count(); }) == 0);
    // A fresh room of the same name has no memory of the old members.
    alice.send("/join r1\n");
    REQUIRE(alice.read_line() == "ok join r1");
    alice.send("#r1 alone\n");
    expect_who(alice, "who alice bob carol");
}

TEST_CASE("rooms: a member of several rooms gets events per room", "[integration][rooms]") {
    test_server server;
    client alice = registered(server.port(), "alice");
    client bob = registered(server.port(), "bob");
    client carol = registered(server.port(), "carol");
    alice.send("/join a\n/join b\n");
    REQUIRE(alice.read_line() == "ok join a");
    REQUIRE(alice.read_line() == "ok join b");
    bob.send("/join a\n");
    REQUIRE(bob.read_line() == "ok join a");
    REQUIRE(alice.read_line() == "join a bob");
    carol.send("/join b\n");
    REQUIRE(carol.read_line() == "ok join b");
    REQUIRE(alice.read_line() == "join b carol");
    alice.send("#a to a\n#b to b\n");
    REQUIRE(bob.read_line() == "room a alice to a");
    REQUIRE(carol.read_line() == "room b alice to b");
    expect_who(bob, "who alice bob carol");
    expect_who(carol, "who alice bob carol");
}

TEST_CASE("rooms: join errors", "[integration][rooms]") {
    test_server server;
    client anon(server.port());
    anon.send("/join\n");
    REQUIRE(anon.read_line() == "err usage join");
    anon.send("/join \n");
    REQUIRE(anon.read_line() == "err usage join");
    anon.send("/join lobby\n");
    REQUIRE(anon.read_line() == "err not-registered");
    anon.send("/join b@d room\n"); // not-registered before invalid-name
    REQUIRE(anon.read_line() == "err not-registered");

    client alice = registered(server.port(), "alice");
    alice.send("/join b@d Room\n"); // the whole rest is the argument, echoed as sent
    REQUIRE(alice.read_line() == "err invalid-name b@d Room");
    alice.send("/join " + std::string(41, 'R') + "\n");
    REQUIRE(alice.read_line() == "err invalid-name " + std::string(41, 'R'));
    alice.send("/join Lobby\n");
    REQUIRE(alice.read_line() == "ok join lobby");
    alice.send("/join LOBBY\n");
    REQUIRE(alice.read_line() == "err already-member lobby");
}

TEST_CASE("rooms: leave errors", "[integration][rooms]") {
    test_server server;
    client anon(server.port());
    anon.send("/leave\n");
    REQUIRE(anon.read_line() == "err usage leave");
    anon.send("/leave \n");
    REQUIRE(anon.read_line() == "err usage leave");
    anon.send("/leave lobby\n");
    REQUIRE(anon.read_line() == "err not-registered");

    client alice = registered(server.port(), "alice");
    client bob = registered(server.port(), "bob");
    alice.send("/leave b@d\n");
    REQUIRE(alice.read_line() == "err invalid-name b@d");
    alice.send("/leave Lob By\n"); // the whole rest is the argument, echoed as sent
    REQUIRE(alice.read_line() == "err invalid-name Lob By");
    alice.send("/leave Nowhere\n"); // a room that does not exist
    REQUIRE(alice.read_line() == "err not-member nowhere");
    bob.send("/join lobby\n");
    REQUIRE(bob.read_line() == "ok join lobby");
    alice.send("/leave LOBBY\n"); // a room that exists, without alice
    REQUIRE(alice.read_line() == "err not-member lobby");
    expect_who(bob, "who alice bob"); // bob was told nothing
}

TEST_CASE("rooms: say errors in the protocol check order", "[integration][rooms][order]") {
    test_server server;
    client anon(server.port());
    for (const char* line : {"/say\n", "/say lobby\n", "/say lobby \n", "#lobby\n", "#lobby \n", "# hi\n"}) {
        INFO("sent: " << printable(line));
        anon.send(line);
        REQUIRE(anon.read_line() == "err usage say");
    }
    anon.send("#lobby hi\n");
    REQUIRE(anon.read_line() == "err not-registered");
    anon.send("#b@d \x07\n");
    REQUIRE(anon.read_line() == "err not-registered");

    client alice = registered(server.port(), "alice");
    client bob = registered(server.port(), "bob");
    bob.send("/join lobby\n");
    REQUIRE(bob.read_line() == "ok join lobby");
    alice.send("#b@d \x07\n"); // invalid-name before invalid-text
    REQUIRE(alice.read_line() == "err invalid-name b@d");
    alice.send("/say lobby \x07\n"); // invalid-text before not-member
    REQUIRE(alice.read_line() == "err invalid-text");
    alice.send("/say Lobby hi\n");
    REQUIRE(alice.read_line() == "err not-member lobby");
    alice.send("#nowhere hi\n");
    REQUIRE(alice.read_line() == "err not-member nowhere");
    expect_who(bob, "who alice bob"); // nothing reached the room
}
