// sqlite_inbox::open() on files it cannot use: a missing directory, a directory, a file that is not
// a database, a corrupt database, a schema from a newer version. Each is an error that names the
// file and SQLite's reason, never an exception or a crash; the file is left as it was.
#include "sqlite_test.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

using namespace sqlite_test;
using switchboard::sqlite_inbox;
using switchboard::sqlite_inbox_options;

namespace {
std::string open_error(const std::string& path) {
    sqlite_inbox_options o;
    o.path = path;
    auto r = sqlite_inbox::open(o);
    CHECK_FALSE(r);
    CHECK(r.store == nullptr);
    CHECK(r.code == switchboard::sqlite_open_error::failed);
    CHECK(r.error.find(path) != std::string::npos);
    return r.error;
}

void fill(const std::string& path, int messages) {
    sqlite_inbox_options o;
    o.path = path;
    auto store = open_store(o);
    store->remember(n("bob"));
    for (int i = 0; i < messages; ++i) (void)store->append(n("bob"), "alice", std::string(500, 'm'), 0, {});
    store->flush();
} // closing the last connection checkpoints the WAL into the file

// Overwrites pages 3 to the end (the b-tree pages of the tables) with garbage; the header and the
// schema page stay, so the file still opens as a database.
void corrupt_tables(const std::string& path) {
    const auto size = std::filesystem::file_size(path);
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(2 * 4096);
    const std::string garbage(static_cast<std::size_t>(size) - 2 * 4096, '\x5a');
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
}
} // namespace

TEST_CASE("sqlite_inbox: open() reports a missing directory", "[sqlite]") {
    temp_dir dir;
    const auto e = open_error(dir.file("missing") + "/chat.db");
    CHECK_THAT(e, Catch::Contains("does not exist"));
    CHECK_FALSE(std::filesystem::exists(dir.file("missing")));
}

TEST_CASE("sqlite_inbox: open() reports a path that cannot be opened as a file", "[sqlite]") {
    temp_dir dir;
    std::filesystem::create_directory(dir.file("a-directory"));
    const auto e = open_error(dir.file("a-directory"));
    CHECK_THAT(e, Catch::Contains("unable to open database file") || Catch::Contains("cannot"));
    if (geteuid() != 0) { // root reads anything: only an unprivileged run can test permissions
        fill(dir.file("locked.db"), 1);
        std::filesystem::permissions(dir.file("locked.db"), std::filesystem::perms::none);
        (void)open_error(dir.file("locked.db"));
    }
}

TEST_CASE("sqlite_inbox: open() reports a file that is not a database", "[sqlite]") {
    temp_dir dir;
    {
        std::ofstream f(dir.file("notes.txt"));
        for (int i = 0; i < 200; ++i) f << "this is a text file, not a database\n";
    }
    const auto size = std::filesystem::file_size(dir.file("notes.txt"));
    const auto e = open_error(dir.file("notes.txt"));
    CHECK_THAT(e, Catch::Contains("file is not a database"));
    CHECK(std::filesystem::file_size(dir.file("notes.txt")) == size); // untouched
}

TEST_CASE("sqlite_inbox: open() reports a corrupt database", "[sqlite]") {
    temp_dir dir;
    const std::string path = dir.file("chat.db");
    fill(path, 200);
    REQUIRE(std::filesystem::file_size(path) > 8 * 4096);
    corrupt_tables(path);
    const auto e = open_error(path);
    CHECK_THAT(e, Catch::Contains("corrupt") || Catch::Contains("malformed"));
}

TEST_CASE("sqlite_inbox: open() refuses a schema from a newer version", "[sqlite]") {
    temp_dir dir;
    const std::string path = dir.file("chat.db");
    fill(path, 1);
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "PRAGMA user_version = 3", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
    const auto e = open_error(path);
    CHECK_THAT(e, Catch::Contains("schema version 3") && Catch::Contains("newer"));
}

TEST_CASE("sqlite_inbox: without quick_check, a corrupt table is still an error when it is read", "[sqlite]") {
    temp_dir dir;
    const std::string path = dir.file("chat.db");
    fill(path, 200);
    corrupt_tables(path);
    sqlite_inbox_options o;
    o.path = path;
    o.quick_check = false;
    auto r = sqlite_inbox::open(o);
    CHECK_FALSE(r);
    CHECK_THAT(r.error, Catch::Contains(path) && Catch::Contains("malformed"));
}

TEST_CASE("sqlite_inbox: open() refuses stored messages that would forge lines when replayed", "[sqlite]") {
    // What the store replays goes to clients as it is, so a file edited (or damaged) to hold a
    // line break, an escape sequence or a sender that is not a name is refused with the row, not
    // replayed (before: bob received "msg admin pwned" as a line of its own).
    temp_dir dir;
    const std::string path = dir.file("chat.db");
    fill(path, 2);
    edit(path, "UPDATE messages SET text = char(10) || 'msg admin pwned' || char(27) || '[31m' WHERE seq = 1");
    auto e = open_error(path);
    CHECK_THAT(e, Catch::Contains("invalid text") && Catch::Contains("'bob', seq 1"));
    edit(path, "UPDATE messages SET text = 'fine' WHERE seq = 1; UPDATE messages SET sender = 'ad min' WHERE seq = 2");
    e = open_error(path);
    CHECK_THAT(e, Catch::Contains("invalid sender") && Catch::Contains("'bob', seq 2"));
    edit(path, "UPDATE messages SET sender = 'Alice' WHERE seq = 2"); // not folded: never written so
    CHECK_THAT(open_error(path), Catch::Contains("invalid sender"));
    edit(path, "UPDATE messages SET sender = 'alice' WHERE seq = 2");
    sqlite_inbox_options o;
    o.path = path;
    auto store = open_store(o);
    CHECK(seqs(*store, n("bob")) == std::vector<std::uint64_t>{1, 2});
}

TEST_CASE("sqlite_inbox: open() names what it cannot read, and refuses impossible ids and versions", "[sqlite]") {
    temp_dir dir;
    const std::string path = dir.file("chat.db");
    fill(path, 1);
    edit(path, "PRAGMA user_version = -1");
    CHECK_THAT(open_error(path), Catch::Contains("schema version -1"));
    edit(path, "PRAGMA user_version = 2; UPDATE users SET id = 9223372036854775807 WHERE name = 'bob'");
    CHECK_THAT(open_error(path), Catch::Contains("table users holds id 9223372036854775807"));
    edit(path, "UPDATE users SET id = 1 WHERE name = 'bob'; DROP TABLE messages");
    // SQLite's own reason, not "not an error" (the failed prepare's message was cleared by the
    // finalize of the statement before it).
    CHECK_THAT(open_error(path), Catch::Contains("cannot read table messages: no such table"));
}

TEST_CASE("sqlite_inbox: open() refuses a database file it can only read", "[sqlite]") {
    // SQLite opens a file without write permission read-only, silently: every removal would
    // fail and an at-most-once replay would come again at each restart. Root writes anyway, so
    // as root the open runs in a child process that drops to an unprivileged user.
    temp_dir dir;
    const std::string path = dir.file("chat.db");
    fill(path, 1);
    std::filesystem::remove(path + ".lock"); // made again by the open below, by its own user
    std::filesystem::permissions(dir.path, std::filesystem::perms::all);
    std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::group_read |
                                           std::filesystem::perms::others_read);
    const auto try_open = [&] {
        sqlite_inbox_options o;
        o.path = path;
        auto r = sqlite_inbox::open(o);
        return !r && r.error.find("read-only") != std::string::npos;
    };
    if (geteuid() != 0) {
        CHECK(try_open());
        return;
    }
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
        _exit(try_open() ? 0 : 1);
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0); // 1: opened (or another error), 2: could not drop privileges
}
