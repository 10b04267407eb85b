// tcp_chat --offline sqlite:PATH as a user runs it (issue #12): the built tcp_chat binary in a
// process of its own on a real database file in a temporary directory, killed with SIGKILL and
// started again on the same file. 1,000 messages answered `ok queued bob` right before a kill -9
// all reach bob after the restart, in order, exactly once; once he acknowledged them, another
// restart replays nothing; `ok queued` waits for the commit (another process holding the lock
// holds the answers back); a `/send` retried after a kill -9 is answered with its first outcome
// and delivered once; a file tcp_chat cannot use is a message and exit status 1, not a crash, and
// so is a file another tcp_chat has open.
#include "../integration/test_server.hpp"
#include "../integration/test_sqlite.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#ifndef SWITCHBOARD_TCP_CHAT
#error "SWITCHBOARD_TCP_CHAT: the path of the built tcp_chat (set by the build)"
#endif

extern char** environ;

using namespace switchboard_test;

namespace {

std::string read_file(const std::string& path) {
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

// tcp_chat in a child process, its standard error appended to `log` (a file, so that a server
// that logs a lot never blocks on a full pipe), its standard output discarded.
class chat_process {
public:
    chat_process(const std::vector<std::string>& args, std::string log) : log_(std::move(log)) {
        std::vector<std::string> argv_storage{SWITCHBOARD_TCP_CHAT};
        argv_storage.insert(argv_storage.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : argv_storage) argv.push_back(a.data());
        argv.push_back(nullptr);
        log_start_ = read_file(log_).size();
        posix_spawn_file_actions_t actions;
        REQUIRE(posix_spawn_file_actions_init(&actions) == 0);
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&actions, 2, log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
        const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        REQUIRE(rc == 0);
    }
    chat_process(const chat_process&) = delete;
    chat_process& operator=(const chat_process&) = delete;
    ~chat_process() {
        if (pid_ > 0) kill9();
    }

    /// What this run wrote to the log.
    [[nodiscard]] std::string log() const { return read_file(log_).substr(log_start_); }

    /// Waits (bounded) for the "listening on 127.0.0.1:PORT" line; fails with the log when the
    /// process exits or the line does not come.
    unsigned short port() {
        const std::string marker = "listening on 127.0.0.1:";
        const auto deadline = deadline_in(std::chrono::milliseconds(20000));
        for (;;) {
            const std::string text = log();
            const std::size_t at = text.find(marker);
            if (at != std::string::npos && text.find(' ', at + marker.size()) != std::string::npos)
                return static_cast<unsigned short>(std::stoul(text.substr(at + marker.size())));
            int st = 0;
            if (::waitpid(pid_, &st, WNOHANG) == pid_) {
                pid_ = -1;
                FAIL("tcp_chat exited before listening; its log:\n" << text);
            }
            if (clock::now() >= deadline) FAIL("tcp_chat did not listen within 20 s; its log:\n" << text);
            std::this_thread::sleep_for(std::chrono::milliseconds(5)); // poll interval, not a sync
        }
    }

    /// Waits (bounded) until the log of this run contains `text`.
    void wait_log(const std::string& text) {
        const bool seen = wait_until([&] { return log().find(text) != std::string::npos; },
                                     deadline_in(std::chrono::milliseconds(10000)));
        INFO("log:\n" << log());
        REQUIRE(seen);
    }

    /// SIGKILL, and reaps the process.
    void kill9() {
        REQUIRE(pid_ > 0);
        REQUIRE(::kill(pid_, SIGKILL) == 0);
        int st = 0;
        REQUIRE(::waitpid(pid_, &st, 0) == pid_);
        pid_ = -1;
        REQUIRE(WIFSIGNALED(st));
        REQUIRE(WTERMSIG(st) == SIGKILL);
    }

    /// SIGTERM (a graceful stop); returns the exit status, or -1 when the process did not exit
    /// by itself within 20 s (it is then killed).
    int terminate() {
        REQUIRE(pid_ > 0);
        REQUIRE(::kill(pid_, SIGTERM) == 0);
        return wait_exit();
    }

    /// Waits (bounded, 20 s) for the process to exit by itself; its exit status, -1 on a signal
    /// or when it had to be killed.
    int wait_exit() {
        const auto deadline = deadline_in(std::chrono::milliseconds(20000));
        int st = 0;
        while (::waitpid(pid_, &st, WNOHANG) != pid_) {
            if (clock::now() >= deadline) {
                kill9();
                return -1;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5)); // poll interval, not a sync
        }
        pid_ = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }

private:
    std::string log_;
    std::size_t log_start_ = 0;
    pid_t pid_ = -1;
};

// A connection to tcp_chat, past its two greeting lines ("* welcome ...").
client greeted(unsigned short port) {
    client c(port);
    for (int i = 0; i < 2; ++i) {
        const std::string line = c.read_line();
        INFO("greeting line " << i + 1 << ": " << line);
        REQUIRE(line.rfind("* ", 0) == 0);
    }
    return c;
}

// Connects and registers `user` (acks off).
client chat_user(unsigned short port, const std::string& user) {
    client c = greeted(port);
    c.send("/register " + user + "\n");
    REQUIRE(c.read_line() == "ok register " + user);
    return c;
}

// Connects, turns acks on, then registers `user`.
client chat_user_with_acks(unsigned short port, const std::string& user) {
    client c = greeted(port);
    c.send("/ack on\n/register " + user + "\n");
    REQUIRE(c.read_line() == "ok ack on");
    REQUIRE(c.read_line() == "ok register " + user);
    return c;
}

std::vector<std::string> store_args(const std::string& db) { return {"--port", "0", "--offline", "sqlite:" + db}; }

// `user` registers and quits; returns once the server has released the session (its log says so).
void register_and_quit(chat_process& server, unsigned short port, const std::string& user) {
    client c = chat_user(port, user);
    c.send("/quit\n");
    REQUIRE(c.read_line() == "ok quit");
    server.wait_log("user " + user + " reason quit");
}

// A temporary directory with the database and the server's log, and tcp_chat started on them.
struct chat_files {
    temp_dir dir;
    const std::string db = dir.file("chat.db");
    const std::string log = dir.file("tcp_chat.log");
    [[nodiscard]] chat_process start() const { return chat_process(store_args(db), log); }
};

// `count` lines "/msg bob m1" .. "/msg bob m<count>", to be written together.
std::string messages_to_bob(int count) {
    std::string lines;
    for (int i = 1; i <= count; ++i) lines += "/msg bob m" + std::to_string(i) + "\n";
    return lines;
}

// The next `count` lines `alice` reads are `ok queued bob`.
void expect_queued(client& alice, int count) {
    for (int i = 1; i <= count; ++i) {
        INFO("answer " << i);
        REQUIRE(alice.read_line() == "ok queued bob");
    }
}

} // namespace

TEST_CASE("tcp_chat --offline sqlite: 1,000 messages answered ok queued survive kill -9, arrive once and in "
          "order, and are not replayed once acknowledged",
          "[tcp_chat][sqlite][restart]") {
    const chat_files files;
    const std::string& db = files.db;
    constexpr int count = 1000;
    {
        chat_process server = files.start();
        const unsigned short port = server.port();
        register_and_quit(server, port, "bob"); // a known user, offline
        client alice = chat_user(port, "alice");
        alice.send(messages_to_bob(count));
        expect_queued(alice, count);
        server.kill9(); // right after the last answer
    }
    {
        chat_process server = files.start();
        const unsigned short port = server.port();
        client bob = chat_user_with_acks(port, "bob");
        for (int i = 1; i <= count; ++i) {
            INFO("dm " << i);
            REQUIRE(bob.read_line() == "dm " + std::to_string(i) + " alice m" + std::to_string(i));
            if (i % 100 == 0) bob.send("/ack " + std::to_string(i) + "\n"); // within tcp_chat's ack window
        }
        expect_nothing_before_marker(bob); // exactly once: nothing after the 1,000th
        // All acknowledged: the rows go with the store's next commit; then kill -9 again.
        REQUIRE(wait_until([&] { return rows_in_file(db, "bob").empty(); }, deadline_in()));
        server.kill9();
    }
    chat_process server = files.start();
    const unsigned short port = server.port();
    client bob = chat_user_with_acks(port, "bob");
    expect_nothing_before_marker(bob); // nothing replayed
    client alice = chat_user(port, "alice");
    alice.send("/msg bob after\n");
    REQUIRE(bob.read_line() == "dm " + std::to_string(count + 1) + " alice after"); // numbers continue
    bob.send("/ack " + std::to_string(count + 1) + "\n");
    expect_nothing_before_marker(bob);
    // A graceful stop flushes the store: exit 0, nothing failed.
    REQUIRE(server.terminate() == 0);
    INFO(server.log());
    REQUIRE(server.log().find(", 0 failed") != std::string::npos);
    REQUIRE(rows_in_file(db, "bob").empty());
}

TEST_CASE("tcp_chat --offline sqlite: ok queued waits for the commit; while another process holds the lock "
          "nothing is answered, and kill -9 right after the answers loses nothing",
          "[tcp_chat][sqlite][restart]") {
    const chat_files files;
    const std::string& db = files.db;
    lock_holder other(db); // forked now: this process runs no other thread (the server is a process)
    constexpr int count = 100;
    {
        chat_process server = files.start();
        const unsigned short port = server.port();
        register_and_quit(server, port, "bob");
        client alice = chat_user(port, "alice");
        other.take(); // tcp_chat's busy timeout (5 s) is longer than the 0.5 s the lock is held
        alice.send(messages_to_bob(count) + "/who\n");
        // The /who after them is answered at once; the messages are not committed, so not answered.
        REQUIRE(alice.read_line() == "who alice");
        REQUIRE(rows_in_file(db, "bob").empty());
        std::this_thread::sleep_for(std::chrono::milliseconds(500)); // the other process's work
        REQUIRE(!alice.readable_now());
        other.release();
        expect_queued(alice, count);
        server.kill9(); // right after the last answer
    }
    chat_process server = files.start();
    client bob = chat_user_with_acks(server.port(), "bob");
    for (int i = 1; i <= count; ++i) REQUIRE(bob.read_line() == "dm " + std::to_string(i) + " alice m" + std::to_string(i));
    expect_nothing_before_marker(bob);
}

TEST_CASE("tcp_chat --offline sqlite: a /send retried after kill -9 is answered with its first outcome and "
          "delivered once",
          "[tcp_chat][sqlite][restart]") {
    const chat_files files;
    {
        chat_process server = files.start();
        const unsigned short port = server.port();
        register_and_quit(server, port, "bob");
        client carol = chat_user(port, "carol");
        client alice = chat_user(port, "alice");
        alice.send("/send c1 bob hi\n");
        REQUIRE(alice.read_line() == "sent c1 queued");
        alice.send("/send c2 carol live\n"); // delivered: its outcome is recorded too
        REQUIRE(carol.read_line() == "msg alice live");
        REQUIRE(alice.read_line() == "sent c2 delivered");
        server.kill9();
    }
    chat_process server = files.start();
    const unsigned short port = server.port();
    client carol = chat_user(port, "carol");
    client alice = chat_user(port, "alice");
    alice.send("/send c1 bob hi\n"); // the client's retry after the restart
    REQUIRE(alice.read_line() == "sent c1 queued");
    alice.send("/send c2 carol live\n");
    REQUIRE(alice.read_line() == "sent c2 delivered");
    expect_nothing_before_marker(carol); // not delivered again
    client bob = chat_user(port, "bob");
    REQUIRE(bob.read_line() == "msg alice hi"); // once
    expect_nothing_before_marker(bob);
    alice.send("/send c3 bob new\n"); // a new id is a new message
    REQUIRE(alice.read_line() == "sent c3 delivered");
    REQUIRE(bob.read_line() == "msg alice new");
}

TEST_CASE("tcp_chat --offline sqlite: a file it cannot use (missing directory, not a database, newer schema, "
          "corrupt) is a message and exit status 1",
          "[tcp_chat][sqlite]") {
    temp_dir dir;
    const std::string log = dir.file("tcp_chat.log");
    const auto expect_refused = [&](const std::string& db, const std::string& reason) {
        chat_process server(store_args(db), log);
        REQUIRE(server.wait_exit() == 1);
        INFO(server.log());
        REQUIRE(server.log().find("tcp_chat: sqlite_inbox: " + db + ": ") != std::string::npos);
        REQUIRE(server.log().find(reason) != std::string::npos);
        REQUIRE(server.log().find("listening") == std::string::npos);
    };
    expect_refused(dir.file("missing/chat.db"), "does not exist");
    {
        std::ofstream junk(dir.file("junk.db"));
        junk << std::string(8192, 'j');
    }
    expect_refused(dir.file("junk.db"), "file is not a database");
    {
        sqlite3* db = nullptr;
        REQUIRE(sqlite3_open(dir.file("newer.db").c_str(), &db) == SQLITE_OK);
        REQUIRE(sqlite3_exec(db, "CREATE TABLE t(x); PRAGMA user_version = 99;", nullptr, nullptr, nullptr) == SQLITE_OK);
        sqlite3_close(db);
    }
    expect_refused(dir.file("newer.db"), "schema version 99");
    { // a database whose fourth page was overwritten
        sqlite3* db = nullptr;
        REQUIRE(sqlite3_open(dir.file("corrupt.db").c_str(), &db) == SQLITE_OK);
        REQUIRE(sqlite3_exec(db,
                             "CREATE TABLE t(x); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c "
                             "WHERE i < 1000) INSERT INTO t SELECT randomblob(100) FROM c;",
                             nullptr, nullptr, nullptr) == SQLITE_OK);
        sqlite3_close(db);
        std::fstream f(dir.file("corrupt.db"), std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(3 * 4096);
        const std::string garbage(4096, '\xff');
        f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
        REQUIRE(f.good());
    }
    expect_refused(dir.file("corrupt.db"), "the database is corrupt");
}

TEST_CASE("tcp_chat --offline sqlite: a second tcp_chat on the same file is refused with exit status 1 "
          "while the first runs, and starts once the first has stopped",
          "[tcp_chat][sqlite]") {
    const chat_files files;
    chat_process first = files.start();
    const unsigned short port = first.port();
    register_and_quit(first, port, "bob");
    {
        chat_process second(store_args(files.db), files.dir.file("second.log"));
        REQUIRE(second.wait_exit() == 1);
        INFO(second.log());
        REQUIRE(second.log().find("tcp_chat: sqlite_inbox: " + files.db + ": in use by another store (" + files.db +
                                  ".lock is locked") != std::string::npos);
        REQUIRE(second.log().find("listening") == std::string::npos);
    }
    // The first one was not disturbed: it still stores for bob.
    client alice = chat_user(port, "alice");
    alice.send("/msg bob still here\n");
    REQUIRE(alice.read_line() == "ok queued bob");
    REQUIRE(first.terminate() == 0);
    chat_process third = files.start();
    client bob = chat_user_with_acks(third.port(), "bob");
    REQUIRE(bob.read_line() == "dm 1 alice still here");
}
