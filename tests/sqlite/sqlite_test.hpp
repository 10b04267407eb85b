// Helpers of the SQLite store's tests: a temporary directory each test creates and removes, a
// store opened on a file in it, reading the file back with a connection of the test's own, and a
// small filesystem to fill. The integration tests of the store behind a server
// (tests/integration, tests/examples) use them too.
#pragma once

#include <switchboard/sqlite/sqlite_inbox.hpp>

#include <catch2/catch.hpp>

#include <sqlite3.h>
#include <stdlib.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
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
    box.for_each(user, [&](const switchboard::stored_message_view& m) { out.push_back(m.seq); });
    return out;
}

/// `user`'s stored messages as the store's view has them, in sequence order (copies).
inline std::vector<switchboard::stored_message> messages_of(const switchboard::inbox_store& box,
                                                            const switchboard::name& user) {
    std::vector<switchboard::stored_message> out;
    box.for_each(user, [&](const switchboard::stored_message_view& m) { out.push_back(m.owned()); });
    return out;
}

/// Checks that `got` is bob's messages 3, 4 and 5 of the restart tests: from alice, text
/// "to bob <seq>", stored at 1000 + seq ms.
inline void check_bob_3_to_5(const std::vector<switchboard::stored_message>& got) {
    REQUIRE(got.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(got[i].seq == i + 3);
        CHECK(got[i].from == "alice");
        CHECK(got[i].text == "to bob " + std::to_string(i + 3));
        CHECK(got[i].stored_ms == static_cast<std::int64_t>(1003 + i));
    }
}

/// Runs `sql` on the database at `path` with SQLite itself (an operator's edit, or damage).
inline void edit(const std::string& path, const char* sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    char* message = nullptr;
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &message);
    INFO(sql << ": " << (message ? message : ""));
    sqlite3_free(message);
    sqlite3_close(db);
    REQUIRE(rc == SQLITE_OK);
}

/// The sequence numbers of `user`'s rows in the file, read with a connection of the test's own
/// (read-only), in sequence order.
inline std::vector<std::uint64_t> rows_in_file(const std::string& path, const char* user) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "SELECT seq FROM messages WHERE user_id = (SELECT id FROM users WHERE name = ?1) ORDER BY seq", -1, &s, nullptr) == SQLITE_OK);
    sqlite3_bind_text(s, 1, user, -1, nullptr);
    std::vector<std::uint64_t> out;
    int rc = SQLITE_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) out.push_back(static_cast<std::uint64_t>(sqlite3_column_int64(s, 0)));
    CHECK(rc == SQLITE_DONE);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return out;
}

/// A tmpfs of `size` (mount's syntax: "512k", "1m") mounted on `dir` for the object's lifetime
/// (root, as here and in CI). When mounting is refused, `mounted` is false and a line starting
/// with `label` says so: the test then bounds the database with PRAGMA max_page_count instead.
struct small_filesystem {
    std::string dir;
    bool mounted = false;
    small_filesystem(std::string d, const std::string& size, const char* label) : dir(std::move(d)) {
        std::filesystem::create_directory(dir);
        mounted = mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size + ",mode=0700").c_str()) == 0;
        if (!mounted)
            std::cout << label << ": cannot mount a tmpfs (" << std::strerror(errno)
                      << "): bounding the database with PRAGMA max_page_count instead\n";
    }
    ~small_filesystem() {
        if (mounted) (void)umount(dir.c_str());
    }
    small_filesystem(const small_filesystem&) = delete;
    small_filesystem& operator=(const small_filesystem&) = delete;
    /// Remounts it with `size`; false when refused.
    bool grow(const std::string& size) {
        return mount("tmpfs", dir.c_str(), "tmpfs", MS_REMOUNT, ("size=" + size + ",mode=0700").c_str()) == 0;
    }
    /// Fills what is left with the file `file`; returns the bytes written.
    std::size_t fill(const std::string& file) const {
        std::FILE* f = std::fopen(file.c_str(), "wb");
        REQUIRE(f != nullptr);
        const std::string block(4096, 'f');
        std::size_t total = 0;
        while (std::fwrite(block.data(), 1, block.size(), f) == block.size()) total += block.size();
        std::fclose(f);
        return total;
    }
};

} // namespace sqlite_test
