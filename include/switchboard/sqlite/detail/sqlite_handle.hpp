/// @file
/// @brief Internals of the SQLite store: RAII owners of `sqlite3*` and `sqlite3_stmt*`, and a
/// prepared statement with typed bind and column access (SQLite's C API, https://sqlite.org/c3ref/).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace switchboard::detail::sqlite {

/// @brief Closes a connection (`sqlite3_close_v2`: also with statements left, which it defers).
struct db_closer {
    /// @brief Closes `db`; null is a no-op.
    void operator()(sqlite3* db) const noexcept { (void)sqlite3_close_v2(db); }
};
/// @brief An owned connection.
using db_ptr = std::unique_ptr<sqlite3, db_closer>;

/// @brief Finalizes a prepared statement.
struct statement_finalizer {
    /// @brief Finalizes `s`; null is a no-op.
    void operator()(sqlite3_stmt* s) const noexcept { (void)sqlite3_finalize(s); }
};

/// @brief The connection's last error message, or "" without a connection.
inline std::string message(sqlite3* db) { return db ? std::string(sqlite3_errmsg(db)) : std::string(); }

/// @brief Runs SQL that returns no rows (`sqlite3_exec`).
/// @return SQLite's result code (`SQLITE_OK` on success).
inline int exec(sqlite3* db, const char* sql) noexcept { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr); }

/// @brief A prepared statement of one connection, reset after each use. Thread safety: as its
/// connection (one thread at a time).
class statement {
public:
    /// @brief No statement.
    statement() = default;

    /// @brief Compiles `sql` (`sqlite3_prepare_v3` with `SQLITE_PREPARE_PERSISTENT`: it is used
    /// many times).
    /// @return SQLite's result code.
    int prepare(sqlite3* db, const char* sql) noexcept {
        // The previous statement is finalized first: finalizing it after a failed prepare would
        // clear the error `sqlite3_errmsg()` reports ("not an error" instead of "no such table").
        stmt_.reset();
        sqlite3_stmt* s = nullptr;
        const int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
        stmt_.reset(s);
        return rc;
    }

    /// @brief True once prepared.
    [[nodiscard]] explicit operator bool() const noexcept { return stmt_ != nullptr; }

    /// @brief Binds an integer to parameter `i` (1-based).
    statement& bind(int i, std::int64_t v) noexcept {
        (void)sqlite3_bind_int64(stmt_.get(), i, v);
        return *this;
    }
    /// @brief Binds text to parameter `i` (1-based) without copying it: `v` must stay valid
    /// until the statement is reset (`run()`, `reset()`).
    statement& bind(int i, std::string_view v) noexcept {
        (void)sqlite3_bind_text(stmt_.get(), i, v.data(), static_cast<int>(v.size()), nullptr);
        return *this;
    }

    /// @brief One step: `SQLITE_ROW`, `SQLITE_DONE`, or an error code.
    [[nodiscard]] int step() noexcept { return sqlite3_step(stmt_.get()); }

    /// @brief Runs a statement that returns no rows, then resets it.
    /// @return `SQLITE_DONE` on success, else SQLite's error code.
    [[nodiscard]] int run() noexcept {
        int rc = sqlite3_step(stmt_.get());
        while (rc == SQLITE_ROW) rc = sqlite3_step(stmt_.get());
        reset();
        return rc;
    }

    /// @brief Runs a statement that returns no rows, then resets it without clearing its
    /// bindings: for a statement whose every parameter is bound before each run (a multi-row
    /// INSERT's hundreds of parameters are not cleared for nothing). Text bound without a copy
    /// stays bound, unused, until it is bound again.
    /// @return `SQLITE_DONE` on success, else SQLite's error code.
    [[nodiscard]] int run_rebound() noexcept {
        int rc = sqlite3_step(stmt_.get());
        while (rc == SQLITE_ROW) rc = sqlite3_step(stmt_.get());
        (void)sqlite3_reset(stmt_.get());
        return rc;
    }

    /// @brief Resets the statement and clears its bindings.
    void reset() noexcept {
        (void)sqlite3_reset(stmt_.get());
        (void)sqlite3_clear_bindings(stmt_.get());
    }

    /// @brief Column `i` (0-based) of the current row, as an integer.
    [[nodiscard]] std::int64_t int64(int i) noexcept { return sqlite3_column_int64(stmt_.get(), i); }
    /// @brief True when column `i` (0-based) of the current row is stored as an INTEGER (not a
    /// REAL, TEXT, BLOB or NULL, which `int64()` would convert: a REAL beyond 64 bits saturates).
    [[nodiscard]] bool is_integer(int i) noexcept { return sqlite3_column_type(stmt_.get(), i) == SQLITE_INTEGER; }
    /// @brief Column `i` (0-based) of the current row, as text (valid until the next step).
    [[nodiscard]] std::string_view text(int i) noexcept {
        const unsigned char* p = sqlite3_column_text(stmt_.get(), i);
        const int n = sqlite3_column_bytes(stmt_.get(), i);
        return p ? std::string_view(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)) : std::string_view();
    }

private:
    std::unique_ptr<sqlite3_stmt, statement_finalizer> stmt_;
};

} // namespace switchboard::detail::sqlite
