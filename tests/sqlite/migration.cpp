// sqlite_inbox schema migration: a file written by schema version 1 (0.4 before issue #12's last
// gap: messages keyed by the user's name) opens with this store, in one transaction, and keeps its
// messages, sequence numbers, known users and de-duplication records; the file is version 2 after.
#include "sqlite_test.hpp"

#include <string>
#include <vector>

using namespace sqlite_test;
using switchboard::sent_record;
using switchboard::sqlite_inbox_options;
using switchboard::status;

namespace {

// Version 1's schema and rows, as the store of 0.4 wrote them (its CREATE statements, verbatim).
// bob: messages 3..5 (1 and 2 acknowledged), next 6; carol: message 1; dave: known, nothing
// stored, next 1; erin: forgotten earlier (no row); high_water 5, forgot_any 1; alice's /send
// records 77 and 78.
void write_version_1(const std::string& path) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    const char* const sql =
        "PRAGMA journal_mode=WAL;"
        "BEGIN IMMEDIATE;"
        "CREATE TABLE IF NOT EXISTS users(name TEXT PRIMARY KEY NOT NULL, next_seq INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE IF NOT EXISTS messages(user TEXT NOT NULL, seq INTEGER NOT NULL, sender TEXT NOT NULL,"
        " text TEXT NOT NULL, stored_ms INTEGER NOT NULL, PRIMARY KEY(user, seq)) WITHOUT ROWID;"
        "CREATE TABLE IF NOT EXISTS sent(sender TEXT NOT NULL, key INTEGER NOT NULL, at_ms INTEGER NOT NULL,"
        " seq INTEGER NOT NULL, queued INTEGER NOT NULL, PRIMARY KEY(sender, key));"
        "CREATE INDEX IF NOT EXISTS sent_at ON sent(at_ms);"
        "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;"
        "INSERT OR IGNORE INTO meta(key, value) VALUES('high_water', 0), ('forgot_any', 0);"
        "PRAGMA user_version=1;"
        "INSERT INTO users(name, next_seq) VALUES('bob', 6), ('carol', 2), ('dave', 1);"
        "INSERT INTO messages(user, seq, sender, text, stored_ms) VALUES"
        " ('bob', 3, 'alice', 'to bob 3', 1003), ('bob', 4, 'alice', 'to bob 4', 1004),"
        " ('bob', 5, 'alice', 'to bob 5', 1005), ('carol', 1, 'bob', 'to carol', 2000);"
        "INSERT INTO sent(sender, key, at_ms, seq, queued) VALUES('alice', 77, 3000, 0, 0), ('alice', 78, 3001, 4, 1);"
        "UPDATE meta SET value = 5 WHERE key = 'high_water';"
        "UPDATE meta SET value = 1 WHERE key = 'forgot_any';"
        "COMMIT;";
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
    INFO((err ? err : ""));
    sqlite3_free(err);
    REQUIRE(rc == SQLITE_OK);
    sqlite3_close(db);
}

std::int64_t query_int(const std::string& path, const char* sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql, -1, &s, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(s) == SQLITE_ROW);
    const std::int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

} // namespace

TEST_CASE("sqlite_inbox: a version 1 file is migrated and keeps messages, numbers, users and records", "[sqlite]") {
    temp_dir dir;
    sqlite_inbox_options o;
    o.path = dir.file("chat.db");
    write_version_1(o.path);
    {
        auto store = open_store(o);
        CHECK(query_int(o.path, "PRAGMA user_version") == 2);
        CHECK(store->is_known(n("bob")));
        CHECK(store->is_known(n("carol")));
        CHECK(store->is_known(n("dave")));
        CHECK_FALSE(store->is_known(n("alice")));
        check_bob_3_to_5(messages_of(*store, n("bob")));
        const auto carol = messages_of(*store, n("carol"));
        REQUIRE(carol.size() == 1);
        CHECK(carol[0].seq == 1);
        CHECK(carol[0].text == "to carol");
        CHECK(store->highest_seq(n("bob")) == 5);
        CHECK(store->highest_seq(n("dave")) == 0);
        std::vector<sent_record> records;
        store->for_each_sent(n("alice"), [&](const sent_record& r) { records.push_back(r); });
        REQUIRE(records.size() == 2);
        CHECK(records[0].key == 77);
        CHECK(records[1].key == 78);
        CHECK(records[1].seq == 4);
        CHECK(records[1].queued);
        // Numbers continue: a user new after a forgotten one (erin) starts above high_water (5);
        // bob's next is 6.
        store->remember(n("erin"));
        CHECK(store->append(n("erin"), "bob", "hi erin", 4001, {}).seq == 6);
        CHECK(store->append(n("bob"), "alice", "six", 4000, {}).seq == 6);
        CHECK(store->acknowledge(n("bob"), 3) == status::ok);
        store->flush();
        (void)store->run_completions();
        CHECK(store->stats().rollbacks == 0);
    }
    CHECK(rows_in_file(o.path, "bob") == std::vector<std::uint64_t>{4, 5, 6});
    CHECK(rows_in_file(o.path, "erin") == std::vector<std::uint64_t>{6});
    auto store = open_store(o); // a version 2 file opens as it is
    CHECK(query_int(o.path, "PRAGMA user_version") == 2);
    CHECK(messages_of(*store, n("bob")).size() == 3);
    CHECK(store->highest_seq(n("bob")) == 6);
    CHECK(store->append(n("carol"), "bob", "again", 5000, {}).seq == 2);
    CHECK(store->append(n("dave"), "bob", "first", 5000, {}).seq == 1);
}

TEST_CASE("sqlite_inbox: a failed migration leaves the version 1 file as it was", "[sqlite]") {
    temp_dir dir;
    sqlite_inbox_options o;
    o.path = dir.file("chat.db");
    write_version_1(o.path);
    {
        // A name the migration needs is taken by an index: its second step (renaming messages to
        // messages_v1) fails after the first (users to users_v1) succeeded.
        sqlite3* db = nullptr;
        REQUIRE(sqlite3_open(o.path.c_str(), &db) == SQLITE_OK);
        REQUIRE(sqlite3_exec(db, "CREATE INDEX messages_v1 ON sent(at_ms)", nullptr, nullptr, nullptr) == SQLITE_OK);
        sqlite3_close(db);
    }
    auto r = switchboard::sqlite_inbox::open(o);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error, Catch::Contains("cannot migrate the schema from version 1 to 2"));
    CHECK(query_int(o.path, "PRAGMA user_version") == 1);
    CHECK(query_int(o.path, "SELECT count(*) FROM messages WHERE user = 'bob'") == 3);
    CHECK(query_int(o.path, "SELECT next_seq FROM users WHERE name = 'bob'") == 6);
}

TEST_CASE("sqlite_inbox: a new file gets 8 KiB pages; a version 1 file keeps its 4 KiB pages", "[sqlite]") {
    temp_dir dir;
    sqlite_inbox_options o;
    o.path = dir.file("new.db");
    {
        auto store = open_store(o);
        store->remember(n("bob"));
        CHECK(store->append(n("bob"), "alice", "hello", 1, {}).code == status::ok);
        store->flush();
    }
    CHECK(switchboard::sqlite_inbox::new_file_page_size == 8192);
    CHECK(query_int(o.path, "PRAGMA page_size") == switchboard::sqlite_inbox::new_file_page_size);
    CHECK(rows_in_file(o.path, "bob") == std::vector<std::uint64_t>{1});

    sqlite_inbox_options old;
    old.path = dir.file("old.db");
    write_version_1(old.path); // SQLite's default page size
    REQUIRE(query_int(old.path, "PRAGMA page_size") == 4096);
    {
        auto store = open_store(old);
        CHECK(store->append(n("bob"), "alice", "to bob 6", 4000, {}).seq == 6);
        store->flush();
    }
    CHECK(query_int(old.path, "PRAGMA page_size") == 4096);
    CHECK(rows_in_file(old.path, "bob") == std::vector<std::uint64_t>{3, 4, 5, 6});
    auto store = open_store(old);
    CHECK(seqs(*store, n("bob")) == std::vector<std::uint64_t>{3, 4, 5, 6});
}

namespace {
// Everything a reader of the file sees: user_version, then each schema object's SQL and each
// table's rows (every column as SQLite's text), in a fixed order.
std::vector<std::string> dump(const std::string& path) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    std::vector<std::string> out{"user_version " + std::to_string(query_int(path, "PRAGMA user_version"))};
    std::vector<std::string> tables;
    const auto each_row = [&](const std::string& sql, const auto& visit) {
        sqlite3_stmt* s = nullptr;
        REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
        int rc = SQLITE_OK;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) visit(s);
        CHECK(rc == SQLITE_DONE);
        sqlite3_finalize(s);
    };
    const auto text = [](sqlite3_stmt* s, int i) {
        const unsigned char* p = sqlite3_column_text(s, i);
        return p ? std::string(reinterpret_cast<const char*>(p)) : std::string("NULL");
    };
    each_row("SELECT type, name, sql FROM sqlite_master ORDER BY type, name", [&](sqlite3_stmt* s) {
        out.push_back(text(s, 0) + " " + text(s, 1) + ": " + text(s, 2));
        if (text(s, 0) == "table") tables.push_back(text(s, 1));
    });
    for (const std::string& t : tables)
        each_row("SELECT * FROM \"" + t + "\" ORDER BY 1, 2", [&](sqlite3_stmt* s) {
            std::string row = t + ":";
            for (int i = 0; i < sqlite3_column_count(s); ++i) row += " " + text(s, i);
            out.push_back(row);
        });
    sqlite3_close(db);
    return out;
}
} // namespace

TEST_CASE("sqlite_inbox: a version 1 file whose rows the checks refuse is left as it was", "[sqlite]") {
    // The checks of the rows (load()) run in the migration's transaction: before, the migration
    // committed first, so a refused file was left at version 2 (and a switchboard 0.4 could no
    // longer open it either).
    temp_dir dir;
    sqlite_inbox_options o;
    o.path = dir.file("chat.db");
    write_version_1(o.path);
    edit(o.path, "UPDATE messages SET text = 'to bob' || char(10) || 'msg admin pwned' WHERE user = 'bob' AND seq = 4");
    const std::vector<std::string> before = dump(o.path);
    REQUIRE(before.front() == "user_version 1");
    REQUIRE(before.size() > 10);
    auto r = switchboard::sqlite_inbox::open(o);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error, Catch::Contains("table messages holds an invalid text (user 'bob', seq 4)"));
    CHECK(dump(o.path) == before);
    // Fixed as the message says, it migrates.
    edit(o.path, "UPDATE messages SET text = 'to bob 4' WHERE user = 'bob' AND seq = 4");
    auto store = open_store(o);
    CHECK(query_int(o.path, "PRAGMA user_version") == 2);
    check_bob_3_to_5(messages_of(*store, n("bob")));
}
