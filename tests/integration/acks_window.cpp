// The ack window (router_options::ack_window; docs/protocol.md, E: "At most N unacked messages
// are handed to a session at a time (counted from the user's lowest unacked seq) ... The next ones
// come as it acknowledges, and a new message waits behind them (its sender gets `ok queued`, or
// `sent <cid> queued`)"). Not in issue #11's text: the lead's flow control (MQTT 5's receive
// maximum), so that a replay never exceeds the output bound. Tested with a window of 3.
#include "test_server.hpp"

#include <string>

using namespace switchboard_test;

TEST_CASE("ack window: at most N unacked dm at a time, the next ones as the client acknowledges",
          "[integration][v1.2][ack][window]") {
    const store_kind kind = GENERATE(store_kind::memory, store_kind::sqlite);
    INFO("store: " << to_string(kind));
    test_inbox inbox(kind);
    switchboard::router_options ro;
    ro.ack_window = 3;
    test_server server(inbox, ro);
    client alice = registered(server.port(), "alice");
    register_then_leave(server, "bob", 0);
    alice.send("/msg bob 1\n/msg bob 2\n/msg bob 3\n/msg bob 4\n/msg bob 5\n");
    for (int i = 0; i < 5; ++i) REQUIRE(alice.read_line() == "ok queued bob");

    client bob = registered_with_acks(server.port(), "bob");
    REQUIRE(bob.read_line() == "dm 1 alice 1");
    REQUIRE(bob.read_line() == "dm 2 alice 2");
    REQUIRE(bob.read_line() == "dm 3 alice 3");
    expect_nothing_before_marker(bob);
    bob.send("/ack 2\n");
    REQUIRE(bob.read_line() == "dm 4 alice 4");
    REQUIRE(bob.read_line() == "dm 5 alice 5");
    expect_nothing_before_marker(bob);

    // The window is full (3, 4, 5): a new message waits behind them, its sender told it is queued.
    alice.send("/msg bob 6\n");
    REQUIRE(alice.read_line() == "ok queued bob");
    alice.send("/send w7 bob 7\n");
    REQUIRE(alice.read_line() == "sent w7 queued");
    expect_nothing_before_marker(bob);
    bob.send("/ack 3\n");
    REQUIRE(bob.read_line() == "dm 6 alice 6");
    expect_nothing_before_marker(bob);
    bob.send("/ack 6\n");
    REQUIRE(bob.read_line() == "dm 7 alice 7");
    bob.send("/ack 7\n");
    alice.send("/msg bob 8\n"); // room again: delivered live, no reply
    REQUIRE(bob.read_line() == "dm 8 alice 8");
    expect_nothing_before_marker(alice);
}
