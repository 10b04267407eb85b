// tcp_server::stop(): connections are closed (clients see EOF after the replies already queued),
// the io_context's run() returns, new connections are refused; and the accept loop keeps going
// over many connections while running.
#include "test_server.hpp"

#include <memory>
#include <string>
#include <vector>

using namespace switchboard_test;
using switchboard::disconnect_reason;

namespace {
// A stop_timeout far beyond the 5 s bound of stop_and_join(): the closes below must be the
// graceful ones, not the forced ones at the timeout.
switchboard::tcp_server_options patient_stop() {
    switchboard::tcp_server_options o;
    o.stop_timeout = std::chrono::seconds(60);
    return o;
}

// Reads until the server closes; every line read must satisfy `ok` and none may be torn.
template <class Ok>
void expect_closed_after(client& c, Ok ok) {
    std::string line;
    const auto deadline = deadline_in();
    for (;;) {
        const auto st = c.try_read_line(line, deadline);
        if (st == client::read_status::closed) break;
        if (st == client::read_status::timeout) FAIL("timed out waiting for the server to close");
        INFO("line: " << printable(line));
        REQUIRE(ok(line));
    }
    INFO("unterminated: " << printable(c.pending()));
    REQUIRE(c.pending().empty());
}
} // namespace

TEST_CASE("stop: closes every connection and run() returns and new connections are refused",
          "[integration][stop]") {
    test_server server(2, patient_stop());
    client alice = registered(server.port(), "alice");
    client bob = registered(server.port(), "bob");
    client anon(server.port());
    for (client* c : {&alice, &bob}) {
        c->send("/join r\n");
        REQUIRE(c->read_line() == "ok join r");
    }
    REQUIRE(alice.read_line() == "join r bob");
    expect_who(anon, "who alice bob");
    REQUIRE(server.connection_count() == 3);

    REQUIRE(server.stop_and_join()); // run() returned on both threads within the bound
    REQUIRE(server.connection_count() == 0);
    // Room members may be told of each other's release before their own close.
    expect_closed_after(alice, [](const std::string& l) { return l == "leave r bob"; });
    expect_closed_after(bob, [](const std::string& l) { return l == "leave r alice"; });
    anon.expect_closed();
    REQUIRE(server.wait_disconnects(3) == 3);
    for (const auto& d : server.disconnects()) REQUIRE(d.reason == disconnect_reason::server_stop);

    std::string error;
    client late(server.port(), error);
    INFO("connect after stop: " << error);
    REQUIRE_FALSE(error.empty());
}

TEST_CASE("stop: with no connections run() returns", "[integration][stop]") {
    test_server server(4, patient_stop());
    REQUIRE(server.stop_and_join());
    server.server().stop(); // a second stop does nothing
}

TEST_CASE("stop: queued replies are flushed whole before the close", "[integration][stop]") {
    test_server server(1, patient_stop());
    client alice = registered(server.port(), "alice");
    std::string burst;
    for (int i = 0; i < 5000; ++i) burst += "/who\n";
    alice.send(burst);
    REQUIRE(alice.read_line() == "who alice"); // the server is busy answering
    REQUIRE(server.stop_and_join());
    expect_closed_after(alice, [](const std::string& l) { return l == "who alice"; });
    REQUIRE(server.wait_disconnect("alice") == disconnect_reason::server_stop);
}

TEST_CASE("stop: run() returns even when a client stopped reading (stop_timeout)", "[integration][stop]") {
    switchboard::tcp_server_options options;
    options.stop_timeout = std::chrono::milliseconds(200);
    test_server server(1, options);
    client x = registered(server.port(), "x", 4096); // stops reading
    client sender = registered(server.port(), "sender");
    std::string burst;
    for (int i = 0; i < 200; ++i) burst += "/msg x " + std::string(4000, 'q') + "\n"; // ~800 KiB < 1 MiB
    sender.send(burst);
    expect_who(sender, "who sender x"); // all routed (queued for x)
    REQUIRE(server.stop_and_join());
    REQUIRE(server.connection_count() == 0);
    sender.expect_closed();
    x.drain_until_closed();
}

TEST_CASE("accept: the server keeps accepting over many connections", "[integration][accept]") {
    test_server server(2);
    for (int i = 0; i < 300; ++i) {
        client c(server.port());
        expect_who(c, "who");
        if (i % 2) c.reset();
    }
    std::vector<std::unique_ptr<client>> held;
    for (int i = 0; i < 100; ++i) held.push_back(std::make_unique<client>(server.port()));
    for (auto& c : held) c->send("/who\n");
    for (auto& c : held) REQUIRE(c->read_line() == "who");
    for (auto& c : held) c->reset();
    held.clear();
    REQUIRE(wait_until([&] { return server.connection_count() == 0; }, deadline_in()));
    REQUIRE(server.wait_disconnects(400) == 400);
    client last = registered(server.port(), "last");
    expect_who(last, "who last");
    REQUIRE(server.with_router([](switchboard::router& r) { return r.session_count(); }) == 1);
}
