// Helpers of the SQLite store's tests: a temporary directory each test creates and removes, a
// store opened on a file in it, and reading the file back with a connection of the test's own.
#pragma once

#include <switchboard/sqlite/sqlite_inbox.hpp>

#include <catch2/catch.hpp>

#include <sqlite3.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

namespace sqlite_test {

/// A fresh directory under $TMPDIR (or /tmp), removed with everything in it at the end.
struct temp_dir {
    std::filesystem::path path;
    temp_dir() {
        const char* base = std::getenv("TMPDIR");
        std::string tmpl = std::string(base && *base ? base : "/tmp") + "/switchboard-sqlite.XXXXXX";
        REQUIRE(mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    [[nodiscard]] std::string file(const char* name) const { return (path / name).string(); }
};

inline switchboard::name n(const char* s) { return *switchboard::name::parse(s); }

inline std::unique_ptr<switchboard::sqlite_inbox> open_store(const switchboard::sqlite_inbox_options& o) {
    auto r = switchboard::sqlite_inbox::open(o);
    INFO(r.error);
    REQUIRE(r);
    return std::move(r.store);
}

inline std::vector<std::uint64_t> seqs(const switchboard::inbox_store& box, const switchboard::name& user) {
    std::vector<std::uint64_t> out;
    box.for_each(user, [&](const switchboard::stored_message& m) { out.push_back(m.seq); });
    return out;
}

/// The sequence numbers of `user`'s rows in the file, read with a connection of the test's own
/// (read-only), in sequence order.
inline std::vector<std::uint64_t> rows_in_file(const std::string& path, const char* user) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "SELECT seq FROM messages WHERE user = ?1 ORDER BY seq", -1, &s, nullptr) == SQLITE_OK);
    sqlite3_bind_text(s, 1, user, -1, nullptr);
    std::vector<std::uint64_t> out;
    int rc = SQLITE_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) out.push_back(static_cast<std::uint64_t>(sqlite3_column_int64(s, 0)));
    CHECK(rc == SQLITE_DONE);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return out;
}

} // namespace sqlite_test
