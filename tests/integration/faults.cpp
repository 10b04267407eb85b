// Faults (issue 4, item 4) over real sockets: thousands of connect/register/join/reset cycles
// leave nothing behind; 100 MiB without a newline costs no more than the line limit; a peer that
// resets in the middle of a fan-out (with output queued for it) neither raises SIGPIPE nor costs
// the other members a message. (Out of descriptors: accept_errors.cpp.)
#include "test_server.hpp"

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

using namespace switchboard_test;

namespace {
// Resident set size of this process in KiB (/proc/self/status VmRSS), 0 if unknown.
std::size_t rss_kib() {
    std::ifstream status("/proc/self/status");
    std::string key;
    while (status >> key) {
        if (key == "VmRSS:") {
            std::size_t kib = 0;
            status >> kib;
            return kib;
        }
        std::string rest;
        std::getline(status, rest);
    }
    return 0;
}
} // namespace

TEST_CASE("faults: 10,000 connect/register/join/reset cycles leave zero sessions, users and rooms",
          "[integration][faults]") {
    test_server server;
    client watcher = registered(server.port(), "watcher");
    watcher.send("/join shared\n");
    REQUIRE(watcher.read_line() == "ok join shared");
    constexpr int cycles = 10000;
    for (int i = 0; i < cycles; ++i) {
        client c(server.port());
        const std::string n = std::to_string(i);
        c.send("/register u" + n + "\n/join shared\n/join own" + n + "\n");
        REQUIRE(c.read_line() == "ok register u" + n);
        REQUIRE(c.read_line() == "ok join shared");
        REQUIRE(c.read_line() == "ok join own" + n);
        c.reset();
    }
    // The watcher saw every one join and then leave the shared room, once. (A reset may be
    // noticed after the next client's commands: connections are independent.)
    std::vector<int> state(cycles, 0); // 0 nothing yet, 1 joined, 2 left
    for (int seen = 0; seen < 2 * cycles; ++seen) {
        const std::string line = watcher.read_line();
        const bool join = line.rfind("join shared u", 0) == 0;
        REQUIRE((join || line.rfind("leave shared u", 0) == 0));
        const int i = std::stoi(line.substr(join ? 13 : 14));
        REQUIRE(state.at(static_cast<std::size_t>(i)) == (join ? 0 : 1));
        state[static_cast<std::size_t>(i)] = join ? 1 : 2;
    }
    REQUIRE(wait_until([&] { return server.connection_count() == 1; }, deadline_in()));
    server.with_router([](switchboard::router& r) {
        CHECK(r.session_count() == 1);
        CHECK(r.user_count() == 1);
        CHECK(r.room_count() == 1); // "shared", with the watcher alone
    });
    expect_who(watcher, "who watcher");
}

TEST_CASE("faults: 100 MiB without a newline costs no more than the line limit", "[integration][faults]") {
    test_server server;
    client pourer = registered(server.port(), "pourer");
    client other = registered(server.port(), "other");
    const std::size_t before = rss_kib();
    const std::string chunk(64 * 1024, 'p');
    pourer.send("/msg other ");
    for (int i = 0; i < 1600; ++i) { // 100 MiB
        pourer.send(chunk);
        if (i == 0) REQUIRE(pourer.read_line() == "err line-too-long"); // said once, early
    }
    pourer.send("\n@other after the flood\n");
    CHECK(other.read_line() == "msg pourer after the flood");
    const std::size_t after = rss_kib();
    INFO("RSS before " << before << " KiB, after " << after << " KiB");
    CHECK(after < before + 32 * 1024); // far below the 100 MiB that went through
    CHECK_FALSE(pourer.readable_now()); // no second error
    expect_who(pourer, "who other pourer");
}

TEST_CASE("faults: a member that resets mid-fan-out with output queued costs the others nothing",
          "[integration][faults]") {
    // No SIGPIPE either: writing to the reset socket would kill this process if it were raised.
    switchboard::tcp_server_options o;
    o.max_line = 8192;
    o.max_output_bytes = std::size_t{16} << 20; // the victim is not cut for being slow first
    test_server server(1, o);
    client sender = registered(server.port(), "sender");
    client reader = registered(server.port(), "reader");
    client victim = registered(server.port(), "victim", 4096);
    for (client* c : {&sender, &reader, &victim}) {
        c->send("/join room\n");
        std::string line;
        do line = c->read_line();
        while (line != "ok join room");
    }
    (void)reader.read_line(); // "join room victim"
    const std::string body(4000, 'm');
    bool left = false;
    for (int i = 0; i < 2000; ++i) {
        sender.send("#room " + std::to_string(i) + " " + body + "\n");
        if (i == 500) victim.reset(); // with megabytes queued for it
        std::string line = reader.read_line();
        if (line == "leave room victim") { // told whenever the server notices, in order
            left = true;
            line = reader.read_line();
        }
        REQUIRE(line == "room room sender " + std::to_string(i) + " " + body);
    }
    if (!left) CHECK(reader.read_line() == "leave room victim");
    CHECK(server.wait_disconnect("victim").has_value());
    sender.send("#room done\n");
    CHECK(reader.read_line() == "room room sender done");
}
