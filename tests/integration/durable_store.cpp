// The SQLite store behind the TCP server (issue #12), on real sockets and real database files in a
// temporary directory: a second process holding the write lock for 2 s while 50 senders queue
// messages (what was answered `queued` is stored, what was answered with an error is not, and live
// traffic of other sessions flows meanwhile); two senders of 10,000 messages each to one offline
// user (sequence numbers 1..20,000, each once, each sender's order kept, across a restart of the
// store); a full disk (`err store-full`, live traffic goes on, recovery when space returns, nothing
// answered `ok queued` lost). Restarts of the whole tcp_chat process (kill -9) are tested in
// tests/examples/tcp_chat_restart.cpp.
#include "test_server.hpp"
#include "test_sqlite.hpp"


#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

using namespace switchboard_test;

namespace {

// A live pair of sessions exchanging messages on a thread of its own (`p1` -> `p2` -> `p1`), one
// round trip at a time, each timed, until stopped.
class live_pair {
public:
    live_pair(unsigned short port, std::string a, std::string b)
        : a_(registered(port, a)), b_(registered(port, b)), name_a_(std::move(a)), name_b_(std::move(b)) {}
    void start() {
        thread_ = std::thread([this] { run(); });
    }
    // Stops and joins; returns the error of the first failed round trip ("" when none failed).
    std::string stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
        return error_;
    }
    struct trip {
        clock::time_point start, end;
    };
    [[nodiscard]] const std::vector<trip>& trips() const { return trips_; } // after stop()
    [[nodiscard]] std::size_t completed() const { return completed_; }      // any time

private:
    void run() {
        for (std::uint64_t k = 0; !stop_; ++k) {
            const auto t0 = clock::now();
            const std::string text = "ping " + std::to_string(k);
            std::string line;
            std::string e = a_.try_send("/msg " + name_b_ + " " + text + "\n");
            if (e.empty() && (b_.try_read_line(line) != client::read_status::line || line != "msg " + name_a_ + " " + text))
                e = "p2 got \"" + printable(line) + "\"";
            if (e.empty()) e = b_.try_send("/msg " + name_a_ + " " + text + "\n");
            if (e.empty() && (a_.try_read_line(line) != client::read_status::line || line != "msg " + name_b_ + " " + text))
                e = "p1 got \"" + printable(line) + "\"";
            if (!e.empty()) {
                error_ = "round trip " + std::to_string(k) + ": " + e;
                return;
            }
            trips_.push_back({t0, clock::now()});
            ++completed_;
        }
    }
    client a_, b_;
    std::string name_a_, name_b_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<std::size_t> completed_{0};
    std::string error_;
    std::vector<trip> trips_;
};

double ms_between(clock::time_point a, clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

// The `dm <seq> <from> <text>` lines a session with acks on receives, acknowledging every
// `ack_every` of them: `count` lines or a failure.
struct dm_line {
    std::uint64_t seq;
    std::string from, text;
};
std::vector<dm_line> receive_dms(client& c, std::size_t count, std::size_t ack_every = 100) {
    std::vector<dm_line> out;
    out.reserve(count);
    while (out.size() < count) {
        const std::string line = c.read_line();
        INFO("line " << out.size() + 1 << ": \"" << printable(line) << "\"");
        REQUIRE(line.rfind("dm ", 0) == 0);
        const std::size_t sp1 = line.find(' ', 3);
        REQUIRE(sp1 != std::string::npos);
        const std::size_t sp2 = line.find(' ', sp1 + 1);
        REQUIRE(sp2 != std::string::npos);
        out.push_back({std::stoull(line.substr(3, sp1 - 3)), line.substr(sp1 + 1, sp2 - sp1 - 1), line.substr(sp2 + 1)});
        if (out.size() % ack_every == 0) c.send("/ack " + std::to_string(out.back().seq) + "\n");
    }
    return out;
}

} // namespace

TEST_CASE("sqlite store: a second process holds the write lock for 2 s while 50 senders queue; queued means "
          "stored, an error means not stored, and live traffic flows meanwhile",
          "[integration][sqlite][durable]") {
    temp_dir dir;
    const std::string path = dir.file("chat.db");
    lock_holder other(path); // forked now, before any thread of this test runs
    constexpr int senders = 50;
    switchboard::memory_inbox_options bounds;
    bounds.max_per_user = 100000;
    test_inbox inbox(store_kind::sqlite, bounds, [&](switchboard::sqlite_inbox_options& o) {
        o.path = path;
        o.busy_timeout = std::chrono::milliseconds(300); // below the 2 s: some commits fail
        o.retry_interval = std::chrono::milliseconds(50);
    });
    // The recipients: known users (as tcp_chat's --users makes them), all offline.
    for (int i = 0; i < senders; ++i) inbox.get()->remember(*switchboard::name::parse("r" + std::to_string(i)));
    inbox.durable()->flush();
    test_server server(inbox, {}, 2);

    std::vector<client> clients;
    for (int i = 0; i < senders; ++i) clients.push_back(registered(server.port(), "s" + std::to_string(i)));
    live_pair live(server.port(), "p1", "p2");

    // Each sender sends to its recipient, one message at a time (waiting for the answer), from
    // when the lock is taken until 3 messages after it is released.
    struct outcome {
        int k;
        std::string answer;
    };
    std::vector<std::vector<outcome>> outcomes(senders);
    std::vector<std::string> errors(senders);
    std::atomic<bool> locked{false};
    std::atomic<bool> released{false};
    std::vector<std::thread> threads;
    for (int i = 0; i < senders; ++i) {
        threads.emplace_back([&, i] {
            while (!locked) std::this_thread::sleep_for(std::chrono::milliseconds(1));
            const std::string to = "r" + std::to_string(i);
            int after = 0;
            for (int k = 0; after < 3 && k < 10000; ++k) {
                if (released) ++after;
                std::string e = clients[i].try_send("/msg " + to + " m" + std::to_string(k) + "\n");
                std::string line;
                if (e.empty() && clients[i].try_read_line(line, deadline_in(std::chrono::milliseconds(10000))) !=
                                     client::read_status::line)
                    e = "no answer to m" + std::to_string(k);
                if (!e.empty()) {
                    errors[i] = e;
                    return;
                }
                outcomes[i].push_back({k, line});
            }
        });
    }

    other.take();
    const auto lock_taken = clock::now();
    live.start();
    locked = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2000)); // the other process's 2 s
    other.release();
    const auto lock_released = clock::now();
    released = true;
    for (auto& t : threads) t.join();
    const std::string live_error = live.stop();
    INFO(live_error);
    REQUIRE(live_error.empty());

    // Live traffic: round trips that began and ended while the other process held the lock.
    std::vector<double> during;
    for (const auto& t : live.trips())
        if (t.start >= lock_taken && t.end <= lock_released) during.push_back(ms_between(t.start, t.end));
    std::sort(during.begin(), during.end());
    std::size_t queued = 0;
    std::size_t busy = 0;
    for (int i = 0; i < senders; ++i) {
        INFO("sender s" << i << ": " << errors[i]);
        REQUIRE(errors[i].empty());
        const std::string to = "r" + std::to_string(i);
        for (const auto& o : outcomes[i]) {
            INFO("s" << i << " m" << o.k << ": " << o.answer);
            REQUIRE((o.answer == "ok queued " + to || o.answer == "err store-busy " + to));
            (o.answer == "ok queued " + to ? queued : busy) += 1;
        }
    }
    std::cout << "durable_store lock test: " << queued << " answered ok queued, " << busy
              << " err store-busy; live round trips while the lock was held: " << during.size();
    if (!during.empty())
        std::cout << ", median " << during[during.size() / 2] << " ms, max " << during.back() << " ms";
    std::cout << " (busy timeout 300 ms)\n";
    // Every message answered `ok queued` is in the file, and none answered with an error is.
    server.with_router([&](switchboard::router&) { inbox.durable()->flush(); });
    for (int i = 0; i < senders; ++i) {
        const std::string to = "r" + std::to_string(i);
        REQUIRE(rows_in_file(path, to.c_str()).size() ==
                static_cast<std::size_t>(std::count_if(outcomes[i].begin(), outcomes[i].end(),
                                                       [&](const outcome& o) { return o.answer == "ok queued " + to; })));
    }
    // And the recipients get exactly those, in order.
    for (int i = 0; i < senders; ++i) {
        const std::string to = "r" + std::to_string(i);
        client r = registered(server.port(), to);
        for (const auto& o : outcomes[i])
            if (o.answer == "ok queued " + to) REQUIRE(r.read_line() == "msg s" + std::to_string(i) + " m" + std::to_string(o.k));
        expect_nothing_before_marker(r);
    }
    REQUIRE(busy > 0);   // the lock made commits fail: both outcomes are exercised
    REQUIRE(queued > 0);
    // Live traffic flowed while 50 senders waited for commits: at least 20 round trips (a 2 s
    // window; a router held by a waiting commit would allow one round trip per busy timeout).
    REQUIRE(during.size() >= 20);
}

TEST_CASE("sqlite store: two senders of 10,000 messages each to one offline user: seq 1..20,000 once each, "
          "each sender's order kept, across a restart",
          "[integration][sqlite][durable]") {
    constexpr int per_sender = 10000;
    switchboard::memory_inbox_options bounds;
    bounds.max_per_user = 2 * per_sender;
    test_inbox inbox(store_kind::sqlite, bounds);
    {
        test_server server(inbox, {}, 2);
        client a = registered(server.port(), "a");
        client b = registered(server.port(), "b");
        register_then_leave(server, "bob", 0);
        std::string errors[2];
        const auto send_all = [](client& c, const std::string& prefix, std::string& error) {
            constexpr int chunk = 500; // lines written before their answers are read
            for (int base = 0; base < per_sender && error.empty(); base += chunk) {
                std::string lines;
                for (int k = base; k < base + chunk; ++k) lines += "/msg bob " + prefix + std::to_string(k) + "\n";
                error = c.try_send(lines);
                std::string line;
                for (int k = base; k < base + chunk && error.empty(); ++k)
                    if (c.try_read_line(line, deadline_in(std::chrono::milliseconds(20000))) != client::read_status::line ||
                        line != "ok queued bob")
                        error = prefix + std::to_string(k) + ": \"" + printable(line) + "\"";
            }
        };
        std::thread ta([&] { send_all(a, "a", errors[0]); });
        std::thread tb([&] { send_all(b, "b", errors[1]); });
        ta.join();
        tb.join();
        INFO(errors[0] << " / " << errors[1]);
        REQUIRE(errors[0].empty());
        REQUIRE(errors[1].empty());
        REQUIRE(server.stop_and_join()); // flushes the store
    }
    std::vector<std::uint64_t> expected_rows(2 * per_sender);
    for (std::size_t i = 0; i < expected_rows.size(); ++i) expected_rows[i] = i + 1;
    REQUIRE(rows_in_file(inbox.sqlite_options().path, "bob") == expected_rows);

    inbox.reopen(); // as a restart: read back from the file
    test_server server(inbox);
    client bob = registered_with_acks(server.port(), "bob");
    const std::vector<dm_line> got = receive_dms(bob, 2 * per_sender);
    bob.send("/ack " + std::to_string(got.back().seq) + "\n");
    expect_nothing_before_marker(bob); // nothing more: no doubling
    int next[2] = {0, 0};
    for (std::size_t i = 0; i < got.size(); ++i) {
        INFO("dm " << i + 1 << ": seq " << got[i].seq << " from " << got[i].from << " text " << got[i].text);
        REQUIRE(got[i].seq == i + 1);
        REQUIRE((got[i].from == "a" || got[i].from == "b"));
        const int s = got[i].from == "a" ? 0 : 1;
        REQUIRE(got[i].text == got[i].from + std::to_string(next[s]));
        ++next[s];
    }
    REQUIRE(next[0] == per_sender);
    REQUIRE(next[1] == per_sender);
}

TEST_CASE("sqlite store: a full disk answers err store-full, live traffic goes on, and after space returns "
          "every message answered ok queued is delivered",
          "[integration][sqlite][durable][disk-full]") {
    temp_dir dir;
    sqlite_test::small_filesystem fs(dir.file("fs"), "1m", "durable_store disk-full test");
    const std::string path = fs.dir + "/chat.db";
    const std::string filler = fs.dir + "/filler";
    switchboard::memory_inbox_options bounds;
    bounds.max_per_user = 100000;
    test_inbox inbox(store_kind::sqlite, bounds, [&](switchboard::sqlite_inbox_options& o) {
        o.path = path;
        o.retry_interval = std::chrono::milliseconds(50);
        if (!fs.mounted) o.max_page_count = 128; // 1 MiB of 8 KiB pages (sqlite_inbox::new_file_page_size)
    });
    auto server = std::make_unique<test_server>(inbox);
    std::optional<client> alice;
    alice.emplace(registered(server->port(), "alice"));
    register_then_leave(*server, "bob", 0);
    live_pair live(server->port(), "p1", "p2");

    // A few messages while there is room, then the disk fills up.
    const std::string text(1000, 'x');
    std::vector<std::string> queued; // every text answered ok queued, in order
    int k = 0;
    const auto send_one = [&](client& c) {
        const std::string t = std::to_string(k++) + text;
        c.send("/msg bob " + t + "\n");
        const std::string answer = c.read_line();
        INFO("answer to message " << k - 1 << ": " << answer);
        REQUIRE((answer == "ok queued bob" || answer == "err store-full bob"));
        if (answer == "ok queued bob") queued.push_back(t);
        return answer;
    };
    for (int i = 0; i < 5; ++i) REQUIRE(send_one(*alice) == "ok queued bob");
    if (fs.mounted) std::cout << "durable_store disk-full test: filler of " << fs.fill(filler) << " bytes\n";
    int full = 0;
    for (int i = 0; i < 2000 && full == 0; ++i)
        if (send_one(*alice) == "err store-full bob") ++full;
    REQUIRE(full == 1); // the disk is full: the store says so
    const std::size_t queued_before = queued.size();
    // While full: further messages are refused too, no crash, and live traffic goes on.
    for (int i = 0; i < 3; ++i) REQUIRE(send_one(*alice) == "err store-full bob");
    live.start();
    REQUIRE(wait_until([&] { return live.completed() >= 20; }, deadline_in()));
    const std::string live_error = live.stop();
    INFO(live_error);
    REQUIRE(live_error.empty());
    REQUIRE(queued.size() == queued_before);

    // Space returns.
    if (fs.mounted) {
        REQUIRE(std::filesystem::remove(filler));
    } else { // max_page_count holds until the store is opened again without it
        REQUIRE(server->stop_and_join());
        server.reset();
        inbox.reopen([](switchboard::sqlite_inbox_options& o) { o.max_page_count = 0; });
        server = std::make_unique<test_server>(inbox);
        alice.emplace(registered(server->port(), "alice"));
    }
    for (int i = 0; i < 5; ++i) REQUIRE(send_one(*alice) == "ok queued bob");
    std::cout << "durable_store disk-full test: " << queued_before << " queued before the disk was full, "
              << queued.size() - queued_before << " after space returned\n";

    // Everything answered ok queued, before and after, is delivered, in order, once.
    client bob = registered_with_acks(server->port(), "bob");
    const std::vector<dm_line> got = receive_dms(bob, queued.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        REQUIRE(got[i].from == "alice");
        REQUIRE(got[i].text == queued[i]);
        if (i > 0) REQUIRE(got[i].seq > got[i - 1].seq);
    }
    expect_nothing_before_marker(bob);
}

// docs/design.md, "Durable outcomes": a session with acks on is handed a message only once the
// store has committed it, so a `dm` can always be acknowledged and a failed commit reaches nobody.
TEST_CASE("sqlite store: an ack-on session gets its dm only once it is committed", "[integration][sqlite][durable]") {
    temp_dir dir;
    const std::string path = dir.file("chat.db");
    lock_holder other(path); // forked now, before any thread of this test runs
    test_inbox inbox(store_kind::sqlite, {}, [&](switchboard::sqlite_inbox_options& o) {
        o.path = path;
        o.busy_timeout = std::chrono::milliseconds(5000); // above the lock's 700 ms: the commit waits
    });
    test_server server(inbox, {}, 2);
    client alice = registered(server.port(), "alice");
    client bob = registered_with_acks(server.port(), "bob");

    other.take();
    alice.send("/msg bob one\n");
    std::string line;
    // While the other process holds the write lock, the message is stored but not committed: bob
    // gets nothing (a dm handed now could be lost by a crash, or fail to commit).
    REQUIRE(bob.try_read_line(line, deadline_in(std::chrono::milliseconds(700))) == client::read_status::timeout);
    other.release();
    REQUIRE(bob.read_line() == "dm 1 alice one"); // committed: handed at once
    expect_nothing_before_marker(alice);            // a live message: no answer to the sender
    bob.send("/ack 1\n");
    expect_nothing_before_marker(bob);
}

TEST_CASE("sqlite store: a message to an ack-on session whose commit fails reaches nobody",
          "[integration][sqlite][durable]") {
    temp_dir dir;
    const std::string path = dir.file("chat.db");
    lock_holder other(path);
    test_inbox inbox(store_kind::sqlite, {}, [&](switchboard::sqlite_inbox_options& o) {
        o.path = path;
        o.busy_timeout = std::chrono::milliseconds(200); // below the lock: the commit fails
        o.retry_interval = std::chrono::milliseconds(50);
    });
    test_server server(inbox, {}, 2);
    client alice = registered(server.port(), "alice");
    client bob = registered_with_acks(server.port(), "bob");

    other.take();
    alice.send("/msg bob one\n");
    REQUIRE(alice.read_line() == "err store-busy bob"); // the commit failed: the sender is told
    other.release();
    alice.send("/msg bob two\n");
    REQUIRE(bob.read_line() == "dm 2 alice two"); // "one" reached nobody; its number is not reused
    expect_nothing_before_marker(bob);
    expect_nothing_before_marker(alice);
}
