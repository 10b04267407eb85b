// Ordering over TCP: 2,000 messages pipelined in one write arrive complete and in order, directly,
// through a room (to each member), and interleaved direct/room from one sender to one recipient.
#include "test_server.hpp"

#include <string>

using namespace switchboard_test;

namespace {
constexpr int count = 2000;
}

TEST_CASE("pipelined: 2000 /msg in one write arrive complete and in order", "[integration][pipelined]") {
    test_server server;
    client alice = registered(server.port(), "alice");
    client bob = registered(server.port(), "bob");
    std::string burst;
    for (int i = 0; i < count; ++i) burst += "/msg bob m" + std::to_string(i) + (i % 2 ? "\n" : "\r\n");
    alice.send(burst);
    const auto deadline = deadline_in();
    for (int i = 0; i < count; ++i) {
        INFO("message " << i);
        REQUIRE(bob.read_line(deadline) == "msg alice m" + std::to_string(i));
    }
    expect_who(bob, "who alice bob");
    expect_who(alice, "who alice bob");
}

TEST_CASE("pipelined: 2000 room messages in one write reach every member in order",
          "[integration][pipelined][rooms]") {
    test_server server;
    client alice = registered(server.port(), "alice");
    client bob = registered(server.port(), "bob");
    client carol = registered(server.port(), "carol");
    alice.send("/join r\n");
    REQUIRE(alice.read_line() == "ok join r");
    bob.send("/join r\n");
    REQUIRE(bob.read_line() == "ok join r");
    REQUIRE(alice.read_line() == "join r bob");
    carol.send("/join r\n");
    REQUIRE(carol.read_line() == "ok join r");
    REQUIRE(alice.read_line() == "join r carol");
    REQUIRE(bob.read_line() == "join r carol");

    std::string burst;
    for (int i = 0; i < count; ++i) burst += (i % 2 ? "#r m" : "/say r m") + std::to_string(i) + "\n";
    alice.send(burst);
    const auto deadline = deadline_in();
    for (client* member : {&bob, &carol}) {
        for (int i = 0; i < count; ++i) {
            INFO("message " << i);
            REQUIRE(member->read_line(deadline) == "room r alice m" + std::to_string(i));
        }
        expect_who(*member, "who alice bob carol");
    }
    expect_who(alice, "who alice bob carol"); // no echo to the sender
}

TEST_CASE("pipelined: direct and room messages from one sender keep their order",
          "[integration][pipelined]") {
    test_server server;
    client alice = registered(server.port(), "alice");
    client bob = registered(server.port(), "bob");
    for (client* c : {&alice, &bob}) {
        c->send("/join r\n");
        REQUIRE(c->read_line() == "ok join r");
    }
    REQUIRE(alice.read_line() == "join r bob");
    std::string burst;
    for (int i = 0; i < count; ++i)
        burst += (i % 3 ? "@bob " : "#r ") + std::to_string(i) + "\n";
    alice.send(burst);
    const auto deadline = deadline_in();
    for (int i = 0; i < count; ++i) {
        INFO("message " << i);
        REQUIRE(bob.read_line(deadline) == (i % 3 ? "msg alice " : "room r alice ") + std::to_string(i));
    }
    expect_who(bob, "who alice bob");
}

TEST_CASE("pipelined: a client that sends faster than it reads its own replies is slowed, not cut",
          "[integration][pipelined][backpressure]") {
    // 30,000 `/who` lines make ~300 KB of replies, 4.6x the output bound: without backpressure on
    // the client's input the server would cut it as a slow consumer although it reads.
    switchboard::tcp_server_options options;
    options.max_output_bytes = 64 * 1024;
    options.read_chunk_bytes = 4096;
    test_server server(1, options);
    client c = registered(server.port(), "piper");
    constexpr int lines = 30000;
    std::string burst;
    for (int i = 0; i < lines; ++i) burst += "/who\n";
    std::string_view unsent = burst;
    const auto deadline = deadline_in(std::chrono::seconds(20));
    int got = 0;
    while (got < lines) {
        if (!unsent.empty()) unsent.remove_prefix(c.send_some(unsent));
        std::string line;
        const auto st = c.try_read_line(line, clock::now() + std::chrono::milliseconds(5));
        REQUIRE(st != client::read_status::closed);
        if (st == client::read_status::line) {
            REQUIRE(line == "who piper");
            ++got;
        }
        REQUIRE(clock::now() < deadline);
    }
    expect_who(c, "who piper");
}
