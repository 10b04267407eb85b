// Backpressure over TCP: a client that stops reading is disconnected once its queued output
// exceeds tcp_server_options::max_output_bytes, while everyone else keeps being served.
#include "test_server.hpp"

#include <poll.h>

#include <string>

using namespace switchboard_test;
using switchboard::disconnect_reason;

namespace {
constexpr std::size_t max_output = 64 * 1024;
constexpr std::size_t flood_limit = std::size_t{200} << 20; // give up after 200 MiB
constexpr std::chrono::seconds flood_time_limit{10};

switchboard::tcp_server_options small_output() {
    switchboard::tcp_server_options o;
    o.max_output_bytes = max_output;
    return o;
}

// Waits until `c` can take more bytes or has something to read (readiness, not a fixed delay).
void wait_writable_or_readable(client& c, clock::time_point deadline) {
    pollfd p{c.fd(), POLLOUT | POLLIN, 0};
    ::poll(&p, 1, std::min(ms_until(deadline), 100));
}

void chat_round(client& a, client& b, int i) {
    a.send("/msg b chat-" + std::to_string(i) + "\n");
    REQUIRE(b.read_line() == "msg a chat-" + std::to_string(i));
    b.send("@a re-" + std::to_string(i) + "\n");
    REQUIRE(a.read_line() == "msg b re-" + std::to_string(i));
}
} // namespace

TEST_CASE("slow consumer: a non-reading client is cut off while others keep chatting",
          "[integration][slow-consumer]") {
    test_server server(1, small_output());
    client a = registered(server.port(), "a");
    client b = registered(server.port(), "b");
    client x = registered(server.port(), "x", 4096); // small receive buffer, and it never reads again
    client sender = registered(server.port(), "sender");
    REQUIRE(server.connection_count() == 4);

    const std::string line = "/msg x " + std::string(4000, 'f') + "\n";
    std::string burst;
    for (int i = 0; i < 16; ++i) burst += line;

    const auto give_up = clock::now() + flood_time_limit;
    std::size_t flooded = 0, next_chat = 0;
    std::string out;
    int chats = 0;
    bool cut = false;
    while (!cut) {
        if (flooded > flood_limit || clock::now() > give_up)
            FAIL("x was not disconnected after " << flooded << " bytes of messages to it");
        if (out.empty()) out = burst;
        const std::size_t n = sender.send_some(out);
        out.erase(0, n);
        flooded += n;
        while (sender.readable_now()) {
            const std::string reply = sender.read_line();
            REQUIRE(reply == "err user-not-found x");
            cut = true;
        }
        if (flooded >= next_chat) { // meanwhile a and b keep chatting: every line arrives
            chat_round(a, b, chats++);
            next_chat = flooded + 256 * 1024;
        }
        if (n == 0 && !cut) wait_writable_or_readable(sender, give_up);
    }
    INFO("bytes sent to x before the cut: " << flooded << ", chat rounds: " << chats);
    REQUIRE(chats >= 1);

    REQUIRE(server.wait_disconnect("x") == disconnect_reason::slow_consumer);
    REQUIRE(wait_until([&] { return server.connection_count() == 3; }, deadline_in()));
    // The rest of the flood that was already on its way gets one error per line, then /who.
    REQUIRE(sender.try_send(out) == ""); // finish the partly sent line
    sender.send("/who\n");
    for (;;) {
        const std::string reply = sender.read_line();
        if (reply == "err user-not-found x") continue;
        REQUIRE(reply == "who a b sender");
        break;
    }
    chat_round(a, b, chats++);
    expect_who(a, "who a b sender");
    // x's connection was closed by the server: reading it now ends in EOF or reset.
    x.drain_until_closed();
}

TEST_CASE("slow consumer: a non-reading room member is cut off and the room keeps every message",
          "[integration][slow-consumer]") {
    test_server server(1, small_output());
    client sender = registered(server.port(), "sender");
    client a = registered(server.port(), "a");
    client x = registered(server.port(), "x", 4096);
    sender.send("/join r\n");
    REQUIRE(sender.read_line() == "ok join r");
    a.send("/join r\n");
    REQUIRE(a.read_line() == "ok join r");
    REQUIRE(sender.read_line() == "join r a");
    x.send("/join r\n"); // x never reads its reply or anything after it
    REQUIRE(sender.read_line() == "join r x");
    REQUIRE(a.read_line() == "join r x");

    const std::string pad(4000, 'p');
    const auto give_up = clock::now() + flood_time_limit;
    std::size_t flooded = 0;
    int seq = 0;
    bool left = false;
    while (!left) {
        if (flooded > flood_limit || clock::now() > give_up)
            FAIL("x was not disconnected after " << flooded << " bytes of room messages");
        // 8 messages (~32 KiB) at a time, then a reads exactly what it is owed: a never has
        // more than that outstanding, x never reads.
        std::string batch;
        const int first = seq;
        for (int i = 0; i < 8; ++i) batch += "#r " + std::to_string(seq++) + " " + pad + "\n";
        sender.send(batch);
        flooded += batch.size();
        for (int i = first; i < seq;) {
            const std::string got = a.read_line();
            if (got == "leave r x") {
                REQUIRE_FALSE(left);
                left = true;
                continue;
            }
            REQUIRE(got == "room r sender " + std::to_string(i) + " " + pad);
            ++i;
        }
    }
    INFO("bytes published before x was cut: " << flooded);
    REQUIRE(server.wait_disconnect("x") == disconnect_reason::slow_consumer);
    REQUIRE(wait_until([&] { return server.connection_count() == 2; }, deadline_in()));
    sender.send("#r after\n");
    REQUIRE(a.read_line() == "room r sender after");
    REQUIRE(sender.read_line() == "leave r x"); // the sender is a member too; no error came
    expect_who(sender, "who a sender");
    x.drain_until_closed();
}

TEST_CASE("slow consumer: a client that reads is never cut even near the bound",
          "[integration][slow-consumer]") {
    test_server server(1, small_output());
    client sender = registered(server.port(), "sender");
    client reader = registered(server.port(), "reader");
    // Bursts of 14 x ~4 KiB = ~56 KiB, under the 64 KiB bound; the reader takes each burst before
    // the next one is sent: ~3.5 MiB in all, 55 times the bound.
    const std::string text(4000, 'r');
    for (int burst = 0; burst < 64; ++burst) {
        std::string lines;
        for (int i = 0; i < 14; ++i) lines += "@reader " + std::to_string(burst * 14 + i) + " " + text + "\n";
        sender.send(lines);
        for (int i = 0; i < 14; ++i) {
            INFO("burst " << burst << " message " << i);
            REQUIRE(reader.read_line() == "msg sender " + std::to_string(burst * 14 + i) + " " + text);
        }
    }
    expect_who(reader, "who reader sender");
    expect_who(sender, "who reader sender"); // no user-not-found: the reader was never cut
    REQUIRE(server.disconnects().empty());
}
