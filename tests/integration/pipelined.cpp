// Ordering over TCP: 2,000 messages pipelined in one write arrive complete and in order, directly,
// through a room (to each member), and interleaved direct/room from one sender to one recipient.
#include "test_server.hpp"

#include <memory>
#include <string>
#include <vector>
#include <switchboard/protocol/line.hpp>

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

namespace {
// Registers `count` users on in-memory sessions of the server's router, so that `/who` replies are
// large without thousands of sockets; closes them again when it goes.
struct many_users {
    test_server& server;
    std::vector<std::unique_ptr<switchboard::in_memory_transport>> transports;
    std::vector<switchboard::session_id> ids;
    many_users(test_server& s, int count) : server(s) {
        server.with_router([&](switchboard::router& r) {
            for (int i = 0; i < count; ++i) {
                transports.push_back(std::make_unique<switchboard::in_memory_transport>());
                ids.push_back(r.open_session(*transports.back(), switchboard::protocol::line_event_encoder::instance()));
                REQUIRE(r.register_name(ids.back(), "user-with-a-long-name-" + std::to_string(i)) ==
                        switchboard::status::ok);
            }
        });
    }
    ~many_users() {
        server.with_router([&](switchboard::router& r) {
            for (auto id : ids) (void)r.close_session(id);
        });
    }
};
} // namespace

TEST_CASE("pipelined: one write of many large-reply commands is throttled, not cut, for a client that reads",
          "[integration][pipelined][backpressure]") {
    // 2000 users make each `who` reply about 56 KB; 100 of them in one 500-byte write are 5.6 MB
    // of replies against a 1 MiB bound. The server must stop after the line that backs the output
    // up and go on as the client reads, instead of producing all 100 and cutting the client.
    test_server server;
    many_users users(server, 2000);
    client a = registered(server.port(), "a");
    std::string who;
    for (int i = 0; i < 100; ++i) who += "/who\n";
    a.send(who);
    for (int i = 0; i < 100; ++i) {
        const std::string line = a.read_line();
        REQUIRE(line.rfind("who a user-with-a-long-name-0 ", 0) == 0);
    }
    a.send("/quit\n");
    CHECK(a.read_line() == "ok quit");
    CHECK(server.wait_disconnect("a") == switchboard::disconnect_reason::quit);
    CHECK(server.server().counters().slow_consumers == 0);
}

TEST_CASE("pipelined: a client flooding large-reply commands without reading is paused; others are served",
          "[integration][pipelined][backpressure]") {
    test_server server;
    many_users users(server, 2000);
    client flooder = registered(server.port(), "flooder", 4096);
    client b = registered(server.port(), "b");
    client c = registered(server.port(), "c");
    std::string who;
    for (int i = 0; i < 2000; ++i) who += "/who\n";
    for (int round = 0; round < 20; ++round) {
        flooder.send_some(who); // whatever the socket takes now; the server stops reading it
        b.send("@c ping-" + std::to_string(round) + "\n");
        REQUIRE(c.read_line() == "msg b ping-" + std::to_string(round));
    }
    // The flooder was throttled by TCP, not cut: nothing was dropped for it and it is still there.
    CHECK(server.server().counters().slow_consumers == 0);
    CHECK_FALSE(server.wait_disconnect("flooder", deadline_in(std::chrono::milliseconds(100))).has_value());
}
