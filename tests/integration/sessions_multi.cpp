// Several sessions per user, `multi` policy (issue #11, A): up to `max_sessions_per_user` sessions
// hold the name, one more gets `err too-many-sessions <user>`; a direct message goes to every
// session of the user (to oneself: every session of oneself, the sending one included), and is not
// copied to the sender's other sessions; room membership belongs to a session (each joining session
// announces `join`, each leaving or closing one `leave`, to every other member session, the user's
// own included); `/say` reaches every member session but the sending one; `/who` lists each user
// once.
#include "test_server.hpp"

#include <string>
#include <vector>

using namespace switchboard_test;

namespace {
switchboard::router_options multi_policy(std::size_t max_sessions = 8) {
    switchboard::router_options o;
    o.sessions = switchboard::session_policy::multi;
    o.max_sessions_per_user = max_sessions;
    return o;
}
} // namespace

TEST_CASE("multi: up to max sessions hold the name, one more is too-many-sessions",
          "[integration][v1.2][sessions][multi]") {
    const unsigned threads = GENERATE(1u, 2u); // the server's io_context on 1 and on 2 threads
    test_server server(multi_policy(3), threads);
    client b1 = registered(server.port(), "bob");
    client b2 = registered(server.port(), "Bob");
    client b3 = registered(server.port(), "BOB");
    client b4(server.port());
    b4.send("/register bob\n");
    REQUIRE(b4.read_line() == "err too-many-sessions bob");
    expect_who(b4, "who bob"); // b4 is still unregistered
    b4.send("/msg bob hi\n");
    REQUIRE(b4.read_line() == "err not-registered");

    // Once one session is gone, there is room again.
    b3.close();
    REQUIRE(server.wait_disconnect("bob").has_value());
    b4.send("/register bob\n");
    REQUIRE(b4.read_line() == "ok register bob");
    client b5(server.port());
    b5.send("/register bob\n");
    REQUIRE(b5.read_line() == "err too-many-sessions bob");
    // Another user is not limited by bob's sessions.
    b5.send("/register carol\n");
    REQUIRE(b5.read_line() == "ok register carol");
    expect_who(b5, "who bob carol");
}

TEST_CASE("multi: the default cap is 8 sessions per user", "[integration][v1.2][sessions][multi]") {
    switchboard::router_options o;
    o.sessions = switchboard::session_policy::multi;
    const unsigned threads = GENERATE(1u, 2u); // the server's io_context on 1 and on 2 threads
    test_server server(o, threads);
    std::vector<client> sessions;
    for (int i = 0; i < 8; ++i) sessions.push_back(registered(server.port(), "bob"));
    client ninth(server.port());
    ninth.send("/register bob\n");
    REQUIRE(ninth.read_line() == "err too-many-sessions bob");
}

TEST_CASE("multi: a direct message reaches every session of the user, not the sender's other sessions",
          "[integration][v1.2][sessions][multi]") {
    const unsigned threads = GENERATE(1u, 2u); // the server's io_context on 1 and on 2 threads
    test_server server(multi_policy(), threads);
    client a1 = registered(server.port(), "alice");
    client a2 = registered(server.port(), "alice");
    client b1 = registered(server.port(), "bob");
    client b2 = registered(server.port(), "bob");

    a1.send("/msg bob hi both\n");
    REQUIRE(b1.read_line() == "msg alice hi both");
    REQUIRE(b2.read_line() == "msg alice hi both");
    b2.send("@alice hi you two\n");
    REQUIRE(a1.read_line() == "msg bob hi you two");
    REQUIRE(a2.read_line() == "msg bob hi you two");
    // No copy to the sender's other session, nothing back to the sender.
    expect_who(a1, "who alice bob");
    expect_who(a2, "who alice bob");
    expect_who(b1, "who alice bob");
    expect_who(b2, "who alice bob");
}

TEST_CASE("multi: a message to oneself reaches every session of oneself, the sending one included",
          "[integration][v1.2][sessions][multi]") {
    const unsigned threads = GENERATE(1u, 2u); // the server's io_context on 1 and on 2 threads
    test_server server(multi_policy(), threads);
    client a1 = registered(server.port(), "alice");
    client a2 = registered(server.port(), "alice");
    client a3 = registered(server.port(), "alice");
    a1.send("/msg alice note to self\n");
    REQUIRE(a1.read_line() == "msg alice note to self");
    REQUIRE(a2.read_line() == "msg alice note to self");
    REQUIRE(a3.read_line() == "msg alice note to self");
    expect_who(a1, "who alice");
    expect_who(a2, "who alice");
    expect_who(a3, "who alice");
}

TEST_CASE("multi: room membership belongs to a session", "[integration][v1.2][sessions][multi][rooms]") {
    const unsigned threads = GENERATE(1u, 2u); // the server's io_context on 1 and on 2 threads
    test_server server(multi_policy(), threads);
    client alice = registered(server.port(), "alice");
    client b1 = registered(server.port(), "bob");
    client b2 = registered(server.port(), "bob");
    alice.send("/join lobby\n");
    REQUIRE(alice.read_line() == "ok join lobby");

    // Each joining session announces itself, to every other member session, bob's own included.
    b1.send("/join lobby\n");
    REQUIRE(b1.read_line() == "ok join lobby");
    REQUIRE(alice.read_line() == "join lobby bob");
    b2.send("/join lobby\n");
    REQUIRE(b2.read_line() == "ok join lobby");
    REQUIRE(alice.read_line() == "join lobby bob");
    REQUIRE(b1.read_line() == "join lobby bob");

    // /say reaches every member session but the sending one.
    b1.send("#lobby from b1\n");
    REQUIRE(alice.read_line() == "room lobby bob from b1");
    REQUIRE(b2.read_line() == "room lobby bob from b1");
    expect_who(b1, "who alice bob");
    alice.send("/say lobby from alice\n");
    REQUIRE(b1.read_line() == "room lobby alice from alice");
    REQUIRE(b2.read_line() == "room lobby alice from alice");
    expect_who(alice, "who alice bob");

    // Each leaving session announces itself; the other session of bob stays a member.
    b2.send("/leave lobby\n");
    REQUIRE(b2.read_line() == "ok leave lobby");
    REQUIRE(alice.read_line() == "leave lobby bob");
    REQUIRE(b1.read_line() == "leave lobby bob");
    alice.send("#lobby after b2 left\n");
    REQUIRE(b1.read_line() == "room lobby alice after b2 left");
    expect_who(b2, "who alice bob"); // b2 is no longer a member

    // A closing session announces its leave too.
    b2.send("/join lobby\n");
    REQUIRE(b2.read_line() == "ok join lobby");
    REQUIRE(alice.read_line() == "join lobby bob");
    REQUIRE(b1.read_line() == "join lobby bob");
    b2.close();
    REQUIRE(alice.read_line() == "leave lobby bob");
    REQUIRE(b1.read_line() == "leave lobby bob");
    b1.send("/leave lobby\n");
    REQUIRE(b1.read_line() == "ok leave lobby");
    REQUIRE(alice.read_line() == "leave lobby bob");
    expect_who(alice, "who alice bob");
}

TEST_CASE("multi: /who lists each user once", "[integration][v1.2][sessions][multi]") {
    const unsigned threads = GENERATE(1u, 2u); // the server's io_context on 1 and on 2 threads
    test_server server(multi_policy(), threads);
    client c1 = registered(server.port(), "carol");
    client b1 = registered(server.port(), "bob");
    client c2 = registered(server.port(), "carol");
    client b2 = registered(server.port(), "bob");
    client anon(server.port());
    expect_who(anon, "who bob carol");
    c1.close();
    REQUIRE(server.wait_disconnect("carol").has_value());
    expect_who(anon, "who bob carol");
    c2.close();
    REQUIRE(server.wait_disconnects(2) == 2);
    expect_who(anon, "who bob");
}
