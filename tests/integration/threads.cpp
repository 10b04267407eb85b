// The io_context on 4 threads: concurrent senders, room fan-out, and connection churn. Every
// line arrives intact and each sender's order is kept. (Worker threads never use Catch2
// assertions: they report errors as strings, checked on the test thread.)
#include "test_server.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace switchboard_test;

namespace {
// The text sender k sends as message `seq`: distinct lengths, so a torn or interleaved write
// cannot produce a valid line.
std::string payload_text(int k, int seq) {
    return std::to_string(seq) + " " + std::string(static_cast<std::size_t>(1 + (k * 37 + seq * 13) % 200),
                                                   static_cast<char>('a' + k % 26));
}

// Splits `bytes` into deterministic pseudo-random chunks (1..max bytes) and sends each.
std::string send_in_chunks(client& c, const std::string& bytes, std::uint32_t seed, std::size_t max) {
    std::size_t pos = 0;
    while (pos < bytes.size()) {
        seed = seed * 1664525u + 1013904223u;
        const std::size_t n = std::min<std::size_t>(1 + (seed >> 8) % max, bytes.size() - pos);
        std::string error = c.try_send(std::string_view(bytes).substr(pos, n));
        if (!error.empty()) return error;
        pos += n;
    }
    return {};
}

// Runs `work(i)` on `n` threads released together; returns the first error, if any.
template <class Work>
std::string run_concurrently(int n, Work work) {
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::string> errors(static_cast<std::size_t>(n));
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) {
        threads.emplace_back([&, i] {
            ++ready;
            while (!go) std::this_thread::yield();
            errors[static_cast<std::size_t>(i)] = work(i);
        });
    }
    while (ready != n) std::this_thread::yield();
    go = true;
    for (auto& t : threads) t.join();
    for (const auto& e : errors)
        if (!e.empty()) return e;
    return {};
}

std::string sender_name(int k) { return "s" + std::to_string(k); }

// A thread joined on scope exit, also when an assertion on the test thread throws (every wait in
// the workers is bounded, so the join is too).
class scoped_thread {
public:
    template <class F>
    explicit scoped_thread(F&& f) : thread_(std::forward<F>(f)) {}
    scoped_thread(const scoped_thread&) = delete;
    scoped_thread& operator=(const scoped_thread&) = delete;
    ~scoped_thread() { join(); }
    void join() {
        if (thread_.joinable()) thread_.join();
    }

private:
    std::thread thread_;
};

// Reads the next line that is not a room event (join/room/leave of other members).
bool read_reply(client& c, std::string& line) {
    for (;;) {
        if (c.try_read_line(line) != client::read_status::line) return false;
        const bool event = line.compare(0, 5, "join ") == 0 || line.compare(0, 5, "room ") == 0 ||
                           line.compare(0, 6, "leave ") == 0;
        if (!event) return true;
    }
}
} // namespace

TEST_CASE("threads: 20 concurrent senders x 200 messages to one receiver on 4 I/O threads",
          "[integration][threads]") {
    constexpr int senders = 20, messages = 200;
    test_server server(4);
    client receiver = registered(server.port(), "r");
    std::vector<std::unique_ptr<client>> clients;
    for (int k = 0; k < senders; ++k)
        clients.push_back(std::make_unique<client>(registered(server.port(), sender_name(k))));

    std::string error;
    scoped_thread senders_thread([&] {
        error = run_concurrently(senders, [&](int k) {
            std::string burst;
            for (int seq = 0; seq < messages; ++seq) burst += "/msg r " + payload_text(k, seq) + "\n";
            return send_in_chunks(*clients[static_cast<std::size_t>(k)], burst,
                                  static_cast<std::uint32_t>(k + 1), 700);
        });
    });

    std::vector<int> next(senders, 0);
    const auto deadline = deadline_in();
    for (int n = 0; n < senders * messages; ++n) {
        std::string line;
        if (receiver.try_read_line(line, deadline) != client::read_status::line) {
            senders_thread.join();
            FAIL("receiver got " << n << " of " << senders * messages << " lines; send error: \"" << error
                                  << "\"");
        }
        // "msg s<k> <seq> <pad>"
        const std::size_t sp1 = line.find(' '), sp2 = line.find(' ', sp1 + 1);
        INFO("line " << n << ": " << printable(line));
        REQUIRE(line.compare(0, 5, "msg s") == 0);
        REQUIRE(sp2 != std::string::npos);
        const int k = std::stoi(line.substr(5, sp2 - 5));
        REQUIRE((k >= 0 && k < senders));
        const int seq = next[static_cast<std::size_t>(k)]++;
        REQUIRE(line == "msg " + sender_name(k) + " " + payload_text(k, seq)); // intact and in order
    }
    senders_thread.join();
    REQUIRE(error.empty());
    for (int k = 0; k < senders; ++k) REQUIRE(next[static_cast<std::size_t>(k)] == messages);
    expect_who(receiver, [&] {
        std::vector<std::string> names{"r"};
        for (int k = 0; k < senders; ++k) names.push_back(sender_name(k));
        std::sort(names.begin(), names.end());
        std::string who = "who";
        for (const auto& n : names) who += " " + n;
        return who;
    }());
}

TEST_CASE("threads: concurrent room publishers - every member gets every message in per-sender order",
          "[integration][threads][rooms]") {
    constexpr int publishers = 8, listeners = 4, messages = 150;
    test_server server(4);
    std::vector<std::unique_ptr<client>> pubs, subs;
    for (int k = 0; k < publishers; ++k)
        pubs.push_back(std::make_unique<client>(registered(server.port(), sender_name(k))));
    for (int j = 0; j < listeners; ++j)
        subs.push_back(std::make_unique<client>(registered(server.port(), "l" + std::to_string(j))));
    // Listeners join first, then publishers; listeners see the publishers' joins.
    for (auto& l : subs) {
        l->send("/join hall\n");
        REQUIRE(l->read_line() == "ok join hall");
    }
    for (int j = 0; j < listeners; ++j)
        for (int later = j + 1; later < listeners; ++later)
            REQUIRE(subs[static_cast<std::size_t>(j)]->read_line() == "join hall l" + std::to_string(later));
    for (int k = 0; k < publishers; ++k) {
        pubs[static_cast<std::size_t>(k)]->send("/join hall\n");
        REQUIRE(pubs[static_cast<std::size_t>(k)]->read_line() == "ok join hall");
        for (auto& l : subs) REQUIRE(l->read_line() == "join hall " + sender_name(k));
        for (int earlier = 0; earlier < k; ++earlier)
            REQUIRE(pubs[static_cast<std::size_t>(earlier)]->read_line() == "join hall " + sender_name(k));
    }

    // Publishers do not read while flooding; their own queues only hold the other publishers'
    // messages (7 x 150 lines of < 250 bytes: well under the 1 MiB bound).
    std::string error;
    scoped_thread publishers_thread([&] {
        error = run_concurrently(publishers, [&](int k) {
            std::string burst;
            for (int seq = 0; seq < messages; ++seq) burst += "#hall " + payload_text(k, seq) + "\n";
            return send_in_chunks(*pubs[static_cast<std::size_t>(k)], burst,
                                  static_cast<std::uint32_t>(k + 99), 1500);
        });
    });

    const auto deadline = deadline_in();
    for (auto& l : subs) {
        std::vector<int> next(publishers, 0);
        for (int n = 0; n < publishers * messages; ++n) {
            std::string line;
            if (l->try_read_line(line, deadline) != client::read_status::line) {
                publishers_thread.join();
                FAIL("listener got " << n << " lines; send error: \"" << error << "\"");
            }
            INFO("line " << n << ": " << printable(line));
            REQUIRE(line.compare(0, 11, "room hall s") == 0);
            const int k = std::stoi(line.substr(11));
            REQUIRE((k >= 0 && k < publishers));
            const int seq = next[static_cast<std::size_t>(k)]++;
            REQUIRE(line == "room hall " + sender_name(k) + " " + payload_text(k, seq));
        }
    }
    publishers_thread.join();
    REQUIRE(error.empty());
    // Each publisher got the others' messages, in per-sender order, and none of its own.
    for (int k = 0; k < publishers; ++k) {
        std::vector<int> next(publishers, 0);
        for (int n = 0; n < (publishers - 1) * messages; ++n) {
            const std::string line = pubs[static_cast<std::size_t>(k)]->read_line(deadline);
            const int from = std::stoi(line.substr(11));
            INFO("publisher " << k << " line " << n << ": " << printable(line));
            REQUIRE(from != k);
            const int seq = next[static_cast<std::size_t>(from)]++;
            REQUIRE(line == "room hall " + sender_name(from) + " " + payload_text(from, seq));
        }
        pubs[static_cast<std::size_t>(k)]->send("/who\n");
        REQUIRE(pubs[static_cast<std::size_t>(k)]->read_line().compare(0, 4, "who ") == 0);
    }
}

TEST_CASE("threads: connection churn on 4 threads while a pair keeps chatting",
          "[integration][threads][churn]") {
    constexpr int churners = 8, rounds = 12;
    test_server server(4);
    client watcher = registered(server.port(), "watcher");
    watcher.send("/join churn\n");
    REQUIRE(watcher.read_line() == "ok join churn");
    client a = registered(server.port(), "a");
    client b = registered(server.port(), "b");

    // Each churner connects, registers, joins, says one line and disconnects (close, reset or
    // /quit), `rounds` times, concurrently with the others.
    std::string error;
    scoped_thread churn([&] {
        error = run_concurrently(churners, [&](int k) -> std::string {
            for (int r = 0; r < rounds; ++r) {
                const std::string name = "c" + std::to_string(k) + "-" + std::to_string(r);
                std::string e;
                client c(server.port(), e);
                if (!e.empty()) return name + ": " + e;
                e = c.try_send("/register " + name + "\n/join churn\n#churn hi from " + name + "\n/who\n");
                if (!e.empty()) return e;
                std::string line;
                const std::string replies[] = {"ok register " + name, "ok join churn", "who"};
                for (const std::string& expected : replies) {
                    if (!read_reply(c, line) || line.compare(0, expected.size(), expected) != 0)
                        return name + ": expected \"" + expected + "\", got \"" + printable(line) + "\"";
                }
                // The who reply comes after the room message was published.
                switch (r % 3) {
                case 0: c.close(); break;
                case 1: c.reset(); break;
                default:
                    if (!(e = c.try_send("/quit\n")).empty()) return e;
                    if (!read_reply(c, line) || line != "ok quit")
                        return name + ": expected ok quit, got \"" + printable(line) + "\"";
                    break;
                }
            }
            return {};
        });
    });

    // Meanwhile a and b chat; every message arrives.
    for (int i = 0; i < 100; ++i) {
        a.send("@b ping " + std::to_string(i) + "\n");
        REQUIRE(b.read_line() == "msg a ping " + std::to_string(i));
        b.send("/msg a pong " + std::to_string(i) + "\n");
        REQUIRE(a.read_line() == "msg b pong " + std::to_string(i));
    }
    churn.join();
    REQUIRE(error.empty());

    // The watcher saw, for each churner session, "join" then "room" then "leave", in that order.
    const int sessions = churners * rounds;
    std::map<std::string, int> state; // 1 joined, 2 said, 3 left
    const auto deadline = deadline_in();
    for (int n = 0; n < sessions * 3; ++n) {
        const std::string line = watcher.read_line(deadline);
        INFO("watcher line " << n << ": " << printable(line));
        if (line.compare(0, 11, "join churn ") == 0) {
            REQUIRE(state[line.substr(11)]++ == 0);
        } else if (line.compare(0, 11, "room churn ") == 0) {
            const std::string who = line.substr(11, line.find(' ', 11) - 11);
            REQUIRE(line == "room churn " + who + " hi from " + who);
            REQUIRE(state[who]++ == 1);
        } else {
            REQUIRE(line.compare(0, 12, "leave churn ") == 0);
            REQUIRE(state[line.substr(12)]++ == 2);
        }
    }
    REQUIRE(state.size() == static_cast<std::size_t>(sessions));
    const auto all = static_cast<std::size_t>(sessions);
    REQUIRE(server.wait_disconnects(all) == all);
    REQUIRE(wait_until([&] { return server.connection_count() == 3; }, deadline_in()));
    expect_who(watcher, "who a b watcher");
    const auto sessions_and_rooms = server.with_router([](switchboard::router& r) {
        return std::make_pair(r.session_count(), r.room_count());
    });
    REQUIRE(sessions_and_rooms.first == 3);  // watcher, a, b
    REQUIRE(sessions_and_rooms.second == 1); // churn (the watcher is still in it)
}
