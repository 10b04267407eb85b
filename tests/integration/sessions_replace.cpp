// Several sessions per user, `replace` policy (issue #11, A): the new session gets
// `ok register <user>`; the old one receives `bye replaced`, is closed after its output is flushed
// and is released like a disconnect (its rooms' remaining members get `leave <room> <user>`);
// watchers see no presence change; everything routed after the `ok register` goes to the new
// session; the old session's late close never touches the new one; for the inbox the new session
// counts as the user's only session.
#include "test_server.hpp"

#include <switchboard/memory_inbox.hpp>

#include <string>

using namespace switchboard_test;

namespace {
switchboard::router_options replace_policy() {
    switchboard::router_options o;
    o.sessions = switchboard::session_policy::replace;
    return o;
}
} // namespace

TEST_CASE("replace: the new session gets ok register, the old one bye replaced and is closed",
          "[integration][v1.2][sessions][replace]") {
    const unsigned threads = GENERATE(1u, 2u); // the server's io_context on 1 and on 2 threads
    test_server server(replace_policy(), threads);
    client alice = registered(server.port(), "alice");
    client old_bob = registered(server.port(), "bob");
    old_bob.send("/join lobby\n");
    REQUIRE(old_bob.read_line() == "ok join lobby");
    alice.send("/join lobby\n");
    REQUIRE(alice.read_line() == "ok join lobby");
    REQUIRE(old_bob.read_line() == "join lobby alice");

    client new_bob(server.port());
    new_bob.send("/register BOB\n");
    REQUIRE(new_bob.read_line() == "ok register bob");
    REQUIRE(old_bob.read_line() == "bye replaced");
    old_bob.expect_closed();
    // Released like a disconnect: the room's remaining member is told.
    REQUIRE(alice.read_line() == "leave lobby bob");
    REQUIRE(server.wait_disconnects(1) == 1);
    expect_who(alice, "who alice bob");
    // The room membership was the old session's: the new session is not in lobby.
    alice.send("#lobby anyone?\n");
    expect_who(new_bob, "who alice bob");
    new_bob.send("/leave lobby\n");
    REQUIRE(new_bob.read_line() == "err not-member lobby");
    expect_nothing_before_marker(alice);
}

TEST_CASE("replace: everything routed after ok register goes to the new session",
          "[integration][v1.2][sessions][replace]") {
    const unsigned threads = GENERATE(1u, 2u); // the server's io_context on 1 and on 2 threads
    test_server server(replace_policy(), threads);
    client alice = registered(server.port(), "alice");
    client old_bob = registered(server.port(), "bob");
    alice.send("/msg bob before\n");
    REQUIRE(old_bob.read_line() == "msg alice before");

    client new_bob = registered(server.port(), "bob");
    alice.send("/msg bob after\n@bob after again\n");
    REQUIRE(new_bob.read_line() == "msg alice after");
    REQUIRE(new_bob.read_line() == "msg alice after again");
    // The old session got only the notice before it was closed.
    REQUIRE(old_bob.read_line() == "bye replaced");
    old_bob.expect_closed();
    expect_nothing_before_marker(alice);
}

TEST_CASE("replace: the old session's late close never touches the new one",
          "[integration][v1.2][sessions][replace]") {
    // The old session does not read (small receive buffer) and has more output queued for it than
    // the kernel's socket buffers hold, under a raised output bound: it is closed only once that
    // output is flushed, i.e. once it reads, long after the new session registered and built its
    // own state.
    const std::size_t queued = 2 * tcp_wmem_max() + (std::size_t{1} << 20);
    switchboard::tcp_server_options o;
    o.max_output_bytes = queued + (std::size_t{4} << 20);
    const unsigned threads = GENERATE(1u, 2u);
    test_server server(replace_policy(), threads, o);
    client alice = registered(server.port(), "alice");
    client old_bob = registered(server.port(), "bob", 4096);
    old_bob.send("/join lobby\n");
    const std::string pad(4000, 'p'); // under the 4096-byte line limit
    const int messages = static_cast<int>(queued / pad.size()) + 1;
    std::string burst;
    for (int i = 0; i < messages; ++i) burst += "/msg bob " + std::to_string(i) + " " + pad + "\n";
    alice.send(burst);
    expect_nothing_before_marker(alice); // every message was handed to old_bob's session

    client new_bob = registered(server.port(), "bob");
    new_bob.send("/join lobby\n");
    REQUIRE(new_bob.read_line() == "ok join lobby");
    new_bob.send("/join dev\n");
    REQUIRE(new_bob.read_line() == "ok join dev");
    new_bob.send("/watch carol\n");
    REQUIRE(new_bob.read_line() == "ok watch carol");
    REQUIRE(new_bob.read_line() == "presence carol offline");
    // The old connection is still open, its output not yet flushed.
    REQUIRE(server.connection_count() == 3);
    REQUIRE(server.disconnects().empty());

    // Now the old session reads: its output flushes, then the server closes it.
    REQUIRE(old_bob.read_line() == "ok join lobby");
    for (int i = 0; i < messages; ++i) REQUIRE(old_bob.read_line() == "msg alice " + std::to_string(i) + " " + pad);
    REQUIRE(old_bob.read_line() == "bye replaced");
    old_bob.expect_closed();
    REQUIRE(server.wait_disconnects(1) == 1);

    // The new session still holds the name, its rooms and its watches.
    alice.send("/msg bob still there?\n");
    REQUIRE(new_bob.read_line() == "msg alice still there?");
    alice.send("/join dev\n");
    REQUIRE(alice.read_line() == "ok join dev");
    REQUIRE(new_bob.read_line() == "join dev alice");
    alice.send("#dev hi dev\n");
    REQUIRE(new_bob.read_line() == "room dev alice hi dev");
    client carol = registered(server.port(), "carol");
    REQUIRE(new_bob.read_line() == "presence carol online");
    expect_who(alice, "who alice bob carol");
    carol.send("/join lobby\n");
    REQUIRE(carol.read_line() == "ok join lobby");
    REQUIRE(new_bob.read_line() == "join lobby carol");
    expect_who(new_bob, "who alice bob carol");
}

TEST_CASE("replace: watchers see no presence change on a takeover",
          "[integration][v1.2][sessions][replace][presence]") {
    const unsigned threads = GENERATE(1u, 2u); // the server's io_context on 1 and on 2 threads
    test_server server(replace_policy(), threads);
    client old_bob = registered(server.port(), "bob");
    client carol = registered(server.port(), "carol");
    carol.send("/watch bob\n");
    REQUIRE(carol.read_line() == "ok watch bob");
    REQUIRE(carol.read_line() == "presence bob online");

    client new_bob = registered(server.port(), "bob");
    REQUIRE(old_bob.read_line() == "bye replaced");
    old_bob.expect_closed();
    REQUIRE(server.wait_disconnects(1) == 1);
    expect_who(carol, "who bob carol"); // no presence line before the marker
    carol.send("/unwatch bob\n/watch bob\n");
    REQUIRE(carol.read_line() == "ok unwatch bob");
    REQUIRE(carol.read_line() == "ok watch bob");
    REQUIRE(carol.read_line() == "presence bob online");

    // The real transition is still reported, once.
    const std::int64_t before = unix_ms();
    new_bob.close();
    const std::string line = carol.read_line();
    expect_offline_since(line, "bob", before, unix_ms());
    expect_who(carol, "who carol");
}

TEST_CASE("replace: for the inbox the new session is the user's only session",
          "[integration][v1.2][sessions][replace][inbox]") {
    switchboard::memory_inbox inbox;
    auto options = replace_policy();
    options.inbox = &inbox;
    const unsigned threads = GENERATE(1u, 2u);
    test_server server(options, threads);
    client alice = registered(server.port(), "alice");
    client first = registered_with_acks(server.port(), "bob");
    alice.send("/msg bob hi\n");
    REQUIRE(first.read_line() == "dm 1 alice hi"); // not acknowledged

    // An acks-on session replacing it gets the unacked message again.
    client second = registered_with_acks(server.port(), "bob");
    REQUIRE(second.read_line() == "dm 1 alice hi");
    REQUIRE(first.read_line() == "bye replaced");
    first.expect_closed();

    // An acks-off session replacing that one had no other session: replay as msg, removed.
    client third = registered(server.port(), "bob");
    REQUIRE(third.read_line() == "msg alice hi");
    REQUIRE(second.read_line() == "bye replaced");
    second.expect_closed();
    expect_nothing_before_marker(third);

    client fourth = registered_with_acks(server.port(), "bob");
    REQUIRE(third.read_line() == "bye replaced");
    third.expect_closed();
    expect_nothing_before_marker(fourth); // removed at the at-most-once replay
    expect_nothing_before_marker(alice);
}
