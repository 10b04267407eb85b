// Helpers of the tests that run the SQLite store behind a server (durable_store.cpp here, and
// tests/examples/tcp_chat_restart.cpp): reading a database file with a connection of the test's
// own, and a second process that holds the file's write lock.
#pragma once

#include <catch2/catch.hpp>

#include <sqlite3.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

namespace switchboard_test {

// The sequence numbers of `user`'s rows in the database file, read with a connection of the
// test's own (what a restart would find).
inline std::vector<std::uint64_t> rows_in_file(const std::string& path, const std::string& user) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "SELECT seq FROM messages WHERE user = ?1 ORDER BY seq", -1, &s, nullptr) ==
            SQLITE_OK);
    sqlite3_bind_text(s, 1, user.c_str(), -1, SQLITE_TRANSIENT);
    std::vector<std::uint64_t> out;
    int rc = SQLITE_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) out.push_back(static_cast<std::uint64_t>(sqlite3_column_int64(s, 0)));
    CHECK(rc == SQLITE_DONE);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return out;
}

// A second process, forked before the test starts any thread, that on `take()` opens the
// database with its own connection, takes the write lock with BEGIN IMMEDIATE, and on
// `release()` commits; each returns once the child has done it.
class lock_holder {
public:
    explicit lock_holder(std::string path) {
        int to_child[2];
        int from_child[2];
        REQUIRE(::pipe(to_child) == 0);
        REQUIRE(::pipe(from_child) == 0);
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) { // the child: SQLite's C API and the pipes only, then _exit
            ::close(to_child[1]);
            ::close(from_child[0]);
            char go = 0;
            if (::read(to_child[0], &go, 1) != 1) ::_exit(2);
            sqlite3* db = nullptr;
            int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
            if (rc == SQLITE_OK) sqlite3_busy_timeout(db, 5000);
            if (rc == SQLITE_OK) rc = sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
            char byte = rc == SQLITE_OK ? 'L' : 'E';
            if (::write(from_child[1], &byte, 1) != 1 || rc != SQLITE_OK) ::_exit(1);
            if (::read(to_child[0], &go, 1) != 1) ::_exit(2);
            rc = sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
            sqlite3_close(db);
            byte = rc == SQLITE_OK ? 'R' : 'E';
            if (::write(from_child[1], &byte, 1) != 1) ::_exit(2);
            ::_exit(rc == SQLITE_OK ? 0 : 1);
        }
        ::close(to_child[0]);
        ::close(from_child[1]);
        to_child_ = to_child[1];
        from_child_ = from_child[0];
    }
    lock_holder(const lock_holder&) = delete;
    lock_holder& operator=(const lock_holder&) = delete;
    ~lock_holder() {
        if (to_child_ >= 0) ::close(to_child_);
        if (from_child_ >= 0) ::close(from_child_);
        if (pid_ > 0) {
            int st = 0;
            (void)::waitpid(pid_, &st, 0);
        }
    }
    void take() { REQUIRE(step() == 'L'); }
    void release() {
        REQUIRE(step() == 'R');
        int st = 0;
        REQUIRE(::waitpid(pid_, &st, 0) == pid_);
        pid_ = -1;
        CHECK((WIFEXITED(st) && WEXITSTATUS(st) == 0));
    }

private:
    char step() {
        const char go = 'g';
        REQUIRE(::write(to_child_, &go, 1) == 1);
        char byte = 0;
        REQUIRE(::read(from_child_, &byte, 1) == 1);
        return byte;
    }
    pid_t pid_ = -1;
    int to_child_ = -1;
    int from_child_ = -1;
};

} // namespace switchboard_test
