// Presence with a grace period (issue #11, B: `--presence-grace MS`): the offline event is sent MS
// after the last session closed, and not at all if a session registers the name within MS (then
// no online event either); during the grace period `/watch` reports the last announced state
// (online) and `/who` does not list the user. Timed events take effect within 1 s of their due
// time. The server ticks every 50 ms (tcp_server_options::tick_interval).
//
// Nothing here sleeps: the lower bounds are measured on the event's arrival, and "no event" is
// shown by a later timed event (another user's offline event, due after the one that must not
// come) followed by a marker round trip.
#include "test_server.hpp"

#include <string>

using namespace switchboard_test;

namespace {
switchboard::router_options grace(std::chrono::milliseconds ms) {
    switchboard::router_options o;
    o.presence_grace = ms;
    return o;
}

switchboard::tcp_server_options fast_tick() {
    switchboard::tcp_server_options o;
    o.tick_interval = std::chrono::milliseconds(50);
    return o;
}

void watch_online(client& watcher, const std::string& user) {
    watcher.send("/watch " + user + "\n");
    REQUIRE(watcher.read_line() == "ok watch " + user);
    REQUIRE(watcher.read_line() == "presence " + user + " online");
}
} // namespace

TEST_CASE("presence grace: the offline event comes grace after the close, with the last line's time",
          "[integration][v1.2][presence][grace]") {
    constexpr std::chrono::milliseconds grace_ms{300};
    test_server server(grace(grace_ms), 1, fast_tick());
    client bob = registered(server.port(), "bob");
    client alice = registered(server.port(), "alice");
    watch_online(alice, "bob");

    const std::int64_t before = unix_ms();
    const auto quit_sent = clock::now();
    bob.send("/quit\n");
    REQUIRE(bob.read_line() == "ok quit");
    bob.expect_closed(); // the server closed bob's last session no later than now
    const std::int64_t after = unix_ms();
    const auto closed = clock::now();

    // Due at (the server's close) + 300 ms, which is at most closed + 300 ms: within 1 s of that.
    const std::string line = alice.read_line(closed + grace_ms + std::chrono::milliseconds(1000));
    const auto arrived = clock::now();
    INFO("event after " << std::chrono::duration_cast<std::chrono::milliseconds>(arrived - quit_sent).count()
                        << " ms");
    REQUIRE(arrived - quit_sent >= grace_ms - clock_tolerance); // not before it was due
    // Last-seen is the /quit line's receipt, not the end of the grace period.
    expect_offline_since(line, "bob", before, after);
    expect_who(alice, "who alice");
}

TEST_CASE("presence grace: a session registering within the grace sends neither offline nor online",
          "[integration][v1.2][presence][grace]") {
    constexpr std::chrono::milliseconds grace_ms{1000};
    test_server server(grace(grace_ms), 1, fast_tick());
    client bob = registered(server.port(), "bob");
    client dave = registered(server.port(), "dave");
    client alice = registered(server.port(), "alice");
    watch_online(alice, "bob");
    watch_online(alice, "dave");

    const auto bob_closed = clock::now();
    bob.close();
    REQUIRE(server.wait_disconnect("bob").has_value());
    // dave leaves after bob: dave's offline event is due after bob's would have been.
    const std::int64_t dave_before = unix_ms();
    dave.close();
    REQUIRE(server.wait_disconnect("dave").has_value());
    const std::int64_t dave_after = unix_ms();
    client bob2 = registered(server.port(), "bob"); // within the grace period
    INFO("bob registered again "
         << std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - bob_closed).count()
         << " ms after closing (must be under the 1000 ms grace for this test to mean anything)");
    REQUIRE(clock::now() - bob_closed < grace_ms);

    // The next event alice gets is dave's: bob's offline was cancelled and no online was sent.
    expect_offline_since(alice.read_line(), "dave", dave_before, dave_after);
    expect_who(alice, "who alice bob");
    alice.send("/unwatch bob\n/watch bob\n");
    REQUIRE(alice.read_line() == "ok unwatch bob");
    REQUIRE(alice.read_line() == "ok watch bob");
    REQUIRE(alice.read_line() == "presence bob online");
}

TEST_CASE("presence grace: during the grace /watch reports online and /who does not list the user",
          "[integration][v1.2][presence][grace]") {
    constexpr std::chrono::milliseconds grace_ms{1000};
    test_server server(grace(grace_ms), 1, fast_tick());
    client bob = registered(server.port(), "bob");
    client alice = registered(server.port(), "alice");

    const std::int64_t before = unix_ms();
    const auto closing = clock::now();
    bob.close();
    REQUIRE(server.wait_disconnect("bob").has_value());
    const std::int64_t after = unix_ms();
    expect_who(alice, "who alice");
    watch_online(alice, "bob"); // the last announced state
    INFO("checked "
         << std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - closing).count()
         << " ms after the close (must be under the 1000 ms grace for this test to mean anything)");
    REQUIRE(clock::now() - closing < grace_ms);
    // The new watcher gets the offline event when the grace ends.
    const std::string line = alice.read_line(clock::now() + grace_ms + std::chrono::milliseconds(1000));
    REQUIRE(clock::now() - closing >= grace_ms - clock_tolerance);
    expect_offline_since(line, "bob", before, after);
    // After the grace, /watch reports offline with that last-seen.
    alice.send("/unwatch bob\n/watch bob\n");
    REQUIRE(alice.read_line() == "ok unwatch bob");
    REQUIRE(alice.read_line() == "ok watch bob");
    REQUIRE(alice.read_line() == line);
}
