// sqlite_inbox against a second process that holds the write lock (BEGIN IMMEDIATE) for 2 s:
// with a busy timeout above it every append waits and is committed; with one below it, the
// appends complete store_busy, none of them is in the file, their numbers are not given again,
// and appends after the lock is released are committed.
#include "sqlite_test.hpp"

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

using namespace sqlite_test;
using switchboard::sqlite_inbox_options;
using switchboard::status;

namespace {

// A second process (fork, before the store starts its thread) that opens the file with its own
// connection, takes the write lock with BEGIN IMMEDIATE, holds it for `hold_ms`, then commits and
// exits. Returns once the lock is taken.
struct lock_holder {
    pid_t pid = -1;
    lock_holder(const std::string& path, int hold_ms) {
        int ready[2];
        REQUIRE(pipe(ready) == 0);
        pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) { // the child: SQLite's C API only, then _exit
            close(ready[0]);
            sqlite3* db = nullptr;
            int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
            if (rc == SQLITE_OK) rc = sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
            const char byte = rc == SQLITE_OK ? '1' : '0';
            if (write(ready[1], &byte, 1) != 1) _exit(2);
            if (rc != SQLITE_OK) _exit(1);
            usleep(static_cast<useconds_t>(hold_ms) * 1000u);
            rc = sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
            sqlite3_close(db);
            _exit(rc == SQLITE_OK ? 0 : 1);
        }
        close(ready[1]);
        char byte = 0;
        const ssize_t got = read(ready[0], &byte, 1);
        close(ready[0]);
        REQUIRE(got == 1);
        REQUIRE(byte == '1'); // the lock is held now
    }
    void wait() {
        if (pid <= 0) return;
        int st = 0;
        REQUIRE(waitpid(pid, &st, 0) == pid);
        CHECK((WIFEXITED(st) && WEXITSTATUS(st) == 0));
        pid = -1;
    }
    ~lock_holder() {
        if (pid > 0) {
            int st = 0;
            (void)waitpid(pid, &st, 0);
        }
    }
};

// Options for a store on `dir`/chat.db, where bob is known already (the file exists before the
// other process opens it), with the given busy timeout and retry interval.
sqlite_inbox_options known_bob(const temp_dir& dir, int busy_ms, int retry_ms) {
    sqlite_inbox_options o;
    o.path = dir.file("chat.db");
    {
        auto store = open_store(o);
        store->remember(n("bob"));
        store->flush();
    }
    o.busy_timeout = std::chrono::milliseconds{busy_ms};
    o.retry_interval = std::chrono::milliseconds{retry_ms};
    return o;
}

} // namespace

TEST_CASE("sqlite_inbox: a busy timeout above the other process's lock waits, and every append is stored",
          "[sqlite]") {
    temp_dir dir;
    const auto o = known_bob(dir, 6000, 1000);
    const auto t0 = std::chrono::steady_clock::now();
    lock_holder other(o.path, 2000);
    {
        auto store = open_store(o); // reads while the other process writes (WAL)
        std::vector<status> codes;
        for (int i = 0; i < 50; ++i) {
            const auto r = store->append(n("bob"), "alice", "waits " + std::to_string(i), i,
                                         [&](status s) { codes.push_back(s); });
            REQUIRE(r.code == status::ok);
        }
        store->flush();
        const auto waited = std::chrono::steady_clock::now() - t0;
        CHECK(waited > std::chrono::milliseconds{1500}); // it did wait for the lock
        store->run_completions();
        CHECK(codes == std::vector<status>(50, status::ok));
    }
    other.wait();
    CHECK(rows_in_file(o.path, "bob").size() == 50);
    auto store = open_store(o);
    CHECK(store->stored(n("bob")) == 50);
}

TEST_CASE("sqlite_inbox: a busy timeout below the other process's lock answers store_busy, stores nothing, "
          "and recovers",
          "[sqlite]") {
    temp_dir dir;
    const auto o = known_bob(dir, 200, 100);
    lock_holder other(o.path, 2000);
    {
        auto store = open_store(o);
        std::vector<status> codes;
        std::vector<std::uint64_t> given(50);
        bool removed_first = true;
        for (std::size_t i = 0; i < 50; ++i) {
            const auto r = store->append(n("bob"), "alice", "refused " + std::to_string(i), 0, [&, i](status s) {
                codes.push_back(s);
                // The contract: a failed message has left the view when its handler runs.
                for (const auto seq : seqs(*store, n("bob"))) removed_first = removed_first && seq != given[i];
            });
            REQUIRE(r.code == status::ok);
            given[i] = r.seq;
        }
        store->flush(); // every batch was tried once: all fail within the 2 s lock
        store->run_completions();
        CHECK(codes == std::vector<status>(50, status::store_busy));
        CHECK(removed_first);
        CHECK(store->stored(n("bob")) == 0);
        CHECK(store->stats().last_error == status::store_busy);
        other.wait(); // released
        codes.clear();
        for (int i = 0; i < 10; ++i) {
            const auto r = store->append(n("bob"), "alice", "after " + std::to_string(i), 0,
                                         [&](status s) { codes.push_back(s); });
            REQUIRE(r.code == status::ok);
            CHECK(r.seq == static_cast<std::uint64_t>(51 + i)); // 1..50 are never given again
        }
        store->flush();
        store->run_completions();
        CHECK(codes == std::vector<status>(10, status::ok));
    }
    std::vector<std::uint64_t> expected;
    for (std::uint64_t s = 51; s <= 60; ++s) expected.push_back(s);
    CHECK(rows_in_file(o.path, "bob") == expected);
    auto store = open_store(o);
    CHECK(seqs(*store, n("bob")) == expected);
    CHECK(store->highest_seq(n("bob")) == 60);
}

TEST_CASE("sqlite_inbox: numbers of failed appends are not given again after a restart", "[sqlite]") {
    temp_dir dir;
    const auto o = known_bob(dir, 100, 50);
    {
        lock_holder other(o.path, 1500);
        auto store = open_store(o);
        for (int i = 0; i < 5; ++i) REQUIRE(store->append(n("bob"), "alice", "lost", 0, {}).code == status::ok);
        store->flush();
        store->run_completions();
        CHECK(store->stored(n("bob")) == 0);
        other.wait();
        // The numbers 1..5 are written with the next batch that commits (a retry), even though
        // no message carries them.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
        while (store->stats().commits == 0 && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds{20});
        CHECK(store->stats().commits >= 1);
    }
    auto store = open_store(o);
    CHECK(store->highest_seq(n("bob")) == 5);
    CHECK(store->append(n("bob"), "alice", "next", 0, {}).seq == 6);
}

namespace {

// Appends "piled <i>" from alice to bob and logs each completion (its index and status), in the
// order the completions run.
struct completion_log {
    std::vector<std::size_t> order;
    std::vector<status> codes;
    std::uint64_t append(switchboard::sqlite_inbox& store, std::size_t i) {
        const auto r = store.append(n("bob"), "alice", "piled " + std::to_string(i), 0, [this, i](status s) {
            order.push_back(i);
            codes.push_back(s);
        });
        REQUIRE(r.code == status::ok);
        return r.seq;
    }
    // The completions of appends 0 .. count-1 ran, in call order.
    void require_call_order(std::size_t count) const {
        REQUIRE(order.size() == count);
        for (std::size_t i = 0; i < count; ++i) REQUIRE(order[i] == i);
    }
};

} // namespace

TEST_CASE("sqlite_inbox: what piles up behind a lock is committed max_batch at a time, in call order", "[sqlite]") {
    temp_dir dir;
    auto o = known_bob(dir, 5000, 100);
    o.max_batch = 8;
    constexpr std::size_t appends = 200;
    completion_log log;
    {
        lock_holder other(o.path, 300);
        auto store = open_store(o);
        // The writer's first batch waits for the lock; the rest queue up behind it and are taken
        // by the writer at once when it is free, then committed in batches of 8.
        for (std::size_t i = 0; i < appends; ++i) (void)log.append(*store, i);
        store->flush();
        CHECK(store->run_completions() == appends);
        other.wait();
        const auto stats = store->stats();
        INFO("commits: " << stats.commits);
        CHECK(stats.commits >= (appends + o.max_batch - 1) / o.max_batch); // none above 8
        CHECK(stats.committed_appends == appends);
        CHECK(stats.queued == 0);
    }
    log.require_call_order(appends);
    CHECK(log.codes == std::vector<status>(appends, status::ok));
    CHECK(rows_in_file(o.path, "bob").size() == appends);
}

TEST_CASE("sqlite_inbox: appends piled up behind a lock fail in batches until it is released, then the rest "
          "are committed, in call order",
          "[sqlite]") {
    temp_dir dir;
    auto o = known_bob(dir, 150, 50);
    o.max_batch = 4;
    constexpr std::size_t appends = 60;
    completion_log log;
    std::vector<std::uint64_t> given;
    std::vector<std::uint64_t> kept;
    {
        lock_holder other(o.path, 700);
        auto store = open_store(o);
        // Each batch of 4 waits 150 ms and fails while the lock is held (the ones taken with it
        // wait for the next batch, ahead of the ones queued meanwhile: the second half); the
        // batches after the release are committed.
        for (std::size_t i = 0; i < appends; ++i) {
            if (i == appends / 2) std::this_thread::sleep_for(std::chrono::milliseconds{200}); // (not timed)
            given.push_back(log.append(*store, i));
        }
        store->flush();
        CHECK(store->run_completions() == appends);
        other.wait();
        log.require_call_order(appends);
        const std::vector<status>& codes = log.codes;
        const auto first_ok = std::find(codes.begin(), codes.end(), status::ok) - codes.begin();
        INFO("failed before the release: " << first_ok << ", rollbacks: " << store->stats().rollbacks);
        CHECK(first_ok >= 4);                                       // at least one batch of 4 failed
        CHECK(static_cast<std::size_t>(first_ok) < appends);        // and the ones after the release did not
        CHECK(std::count(codes.begin(), codes.end(), status::store_busy) == first_ok);
        CHECK(store->stats().rollbacks >= 2);
        for (std::size_t i = static_cast<std::size_t>(first_ok); i < appends; ++i) kept.push_back(given[i]);
        CHECK(seqs(*store, n("bob")) == kept);
    }
    CHECK(rows_in_file(o.path, "bob") == kept);
}
