// One sqlite_inbox per database file (issue #12, a known gap closed): a second store on the same
// file would give the same sequence numbers twice, so open() refuses it with
// sqlite_open_error::in_use, from the same process as from another one, without touching the
// database; once the first store is closed, or its process is killed, the file opens again.
#include "sqlite_test.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

using namespace sqlite_test;
using switchboard::sqlite_inbox;
using switchboard::sqlite_inbox_options;
using switchboard::sqlite_open_error;
using switchboard::status;

namespace {
sqlite_inbox_options options_for(const std::string& path) {
    sqlite_inbox_options o;
    o.path = path;
    return o;
}

void expect_in_use(const std::string& path) {
    const auto r = sqlite_inbox::open(options_for(path));
    INFO(r.error);
    CHECK_FALSE(r);
    CHECK(r.code == sqlite_open_error::in_use);
    CHECK_THAT(r.error, Catch::StartsWith("sqlite_inbox: " + path + ": in use by another store") &&
                            Catch::Contains(path + ".lock"));
}
} // namespace

TEST_CASE("sqlite_inbox: the open errors have tokens", "[sqlite]") {
    CHECK(switchboard::to_string(sqlite_open_error::none) == "none");
    CHECK(switchboard::to_string(sqlite_open_error::failed) == "failed");
    CHECK(switchboard::to_string(sqlite_open_error::in_use) == "in-use");
}

TEST_CASE("sqlite_inbox: a second store on the same file in the same process is refused until the "
          "first is closed",
          "[sqlite]") {
    temp_dir dir;
    const std::string path = dir.file("chat.db");
    {
        auto first = open_store(options_for(path));
        first->remember(n("bob"));
        REQUIRE(first->append(n("bob"), "alice", "one", 0, {}).seq == 1);
        first->flush();
        expect_in_use(path);
        expect_in_use(path); // refusing leaves nothing behind: the same again
        // The refused store touched nothing: the first one goes on as before.
        REQUIRE(first->append(n("bob"), "alice", "two", 0, {}).seq == 2);
        first->flush();
        CHECK(rows_in_file(path, "bob") == std::vector<std::uint64_t>{1, 2});
    }
    auto again = open_store(options_for(path)); // the first one is closed: the lock went with it
    CHECK(seqs(*again, n("bob")) == std::vector<std::uint64_t>{1, 2});
    CHECK(again->append(n("bob"), "alice", "three", 0, {}).seq == 3);
    CHECK(std::filesystem::exists(path + ".lock")); // kept: removing it would race
    // Another file in the same directory has a lock of its own.
    auto other = open_store(options_for(dir.file("other.db")));
    CHECK(other != nullptr);
}

TEST_CASE("sqlite_inbox: a store held by another process is refused, and opens once that process "
          "is killed",
          "[sqlite]") {
    temp_dir dir;
    const std::string path = dir.file("chat.db");
    int ready[2], done[2];
    REQUIRE(::pipe(ready) == 0);
    REQUIRE(::pipe(done) == 0);
    // Forked before this process opens anything (no store thread runs here yet).
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) { // the other process: opens the store, says so, and waits to be killed
        ::close(ready[0]);
        ::close(done[1]);
        auto r = sqlite_inbox::open(options_for(path));
        char c = r ? 'y' : 'n';
        if (r) {
            r.store->remember(n("bob"));
            (void)r.store->append(n("bob"), "alice", "from the other process", 0, {});
            r.store->flush();
        }
        (void)!::write(ready[1], &c, 1);
        (void)!::read(done[0], &c, 1); // until killed (or the test process ends)
        ::_exit(0);
    }
    ::close(ready[1]);
    ::close(done[0]);
    char c = 0;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    REQUIRE(c == 'y');
    expect_in_use(path);
    // kill -9: no destructor runs, the kernel drops the lock with the process's descriptors.
    REQUIRE(::kill(child, SIGKILL) == 0);
    int st = 0;
    REQUIRE(::waitpid(child, &st, 0) == child);
    ::close(ready[0]);
    ::close(done[1]);
    auto store = open_store(options_for(path));
    CHECK(seqs(*store, n("bob")) == std::vector<std::uint64_t>{1});
    CHECK(store->append(n("bob"), "alice", "here", 0, {}).seq == 2);
}
