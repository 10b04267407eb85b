/// @file
/// @brief `switchboard::sqlite_inbox`: the durable `inbox_store` on SQLite (issue #12), with
/// group commit on its own thread. Target `switchboard::sqlite` (SQLite 3.24 or newer, Debian
/// `libsqlite3-dev`); what survives what is in docs/durability.md.
#pragma once

#include "../inbox_store.hpp"
#include "../memory_inbox.hpp"
#include "../names.hpp"
#include "../status.hpp"
#include "../text.hpp"
#include "detail/file_lock.hpp"
#include "detail/sqlite_handle.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace switchboard {

/// @brief SQLite's `PRAGMA synchronous` for the store (https://sqlite.org/pragma.html#pragma_synchronous),
/// in WAL mode.
enum class sqlite_synchronous : std::uint8_t {
    /// @brief `NORMAL`: a commit survives a crash of the application (kill -9); the last commits
    /// before a power loss or an OS crash may be rolled back, the database stays consistent. The
    /// WAL is synced at checkpoints only.
    normal,
    /// @brief `FULL`: the WAL is synced at every commit, so a commit also survives a power loss
    /// (on storage that honours fsync). Slower: one fsync per batch.
    full,
};

/// @brief Options of `sqlite_inbox::open()` (docs/durability.md).
struct sqlite_inbox_options {
    /// @brief The database file; created with its schema when missing (its directory must
    /// exist). SQLite adds `<path>-wal` and `<path>-shm` beside it while it is open.
    std::string path;
    /// @brief Durability of a commit (default `normal`; `tcp_chat --fsync` would choose `full`).
    sqlite_synchronous synchronous = sqlite_synchronous::normal;
    /// @brief How long a commit waits for another connection's write lock
    /// (`sqlite3_busy_timeout`; default 5000 ms, 0 = fail at once). Past it the batch is rolled
    /// back and its messages complete with `status::store_busy`.
    std::chrono::milliseconds busy_timeout{5000};
    /// @brief Operations committed in one transaction at most (default 1024, 1 or more): a
    /// bigger batch means fewer commits (and fsyncs) under load, a longer wait for the first
    /// completion in it.
    std::size_t max_batch = 1024;
    /// @brief Appends and records queued, being committed, or with a completion not yet run, at
    /// most (default 65,536, 1 or more). Past it `append()` answers `status::store_busy` at once
    /// (backpressure: memory stays bounded while the disk is slow or locked); acknowledgements
    /// and registrations are never refused. Each queued append holds its sender and text. The
    /// queue's storage (about 180 bytes an operation) is kept for reuse up to this many
    /// operations, so that it does not grow again from nothing after every batch under load.
    std::size_t max_queued = 65536;
    /// @brief After a failed batch, how long the writer waits before it tries the operations it
    /// keeps for a retry (registrations, acknowledgements, sequence numbers), unless new work
    /// comes first (default 1000 ms).
    std::chrono::milliseconds retry_interval{1000};
    /// @brief `PRAGMA max_page_count` (0, default: SQLite's own limit): bounds the database file
    /// to that many pages (`sqlite_inbox::new_file_page_size` bytes each for a file the store
    /// creates; a file keeps the page size it was created with: 4096 for one created by 0.4);
    /// past it a commit fails with `status::store_full`, as on a full disk.
    std::uint32_t max_page_count = 0;
    /// @brief Run `PRAGMA quick_check` when opening (default true): a corrupt file is refused at
    /// start-up instead of failing later. It reads the whole file: about a second per GB.
    bool quick_check = true;
    /// @brief Bounds of the in-memory view (`memory_inbox_options`: messages per user, TTL,
    /// bytes, known users); the view holds every stored message, so `max_bytes` also bounds the
    /// database's messages.
    memory_inbox_options inbox;
    /// @brief De-duplication records kept per sender (default 1000, `router_options::dedup_window`);
    /// the oldest goes when one more is recorded. 0 keeps none.
    std::size_t dedup_window = 1000;
    /// @brief How long a de-duplication record is kept (default 10 minutes,
    /// `router_options::dedup_ttl`), counted from its `sent_record::at_ms`; `expire()` drops older ones.
    std::chrono::milliseconds dedup_ttl{600000};
    /// @brief Called from the writer thread after a batch, when completions are ready: the host
    /// arranges for `run_completions()` to run under its serialisation, e.g.
    /// `[&] { asio::post(strand, [&] { store.run_completions(); }); }`. It must not call into the
    /// store itself. Empty: the host polls `run_completions()` (e.g. from its timer).
    std::function<void()> wake;
};

/// @brief Counters of a `sqlite_inbox` (`sqlite_inbox::stats()`), for metrics.
struct sqlite_inbox_stats {
    std::uint64_t commits = 0;              ///< Transactions committed.
    std::uint64_t rollbacks = 0;            ///< Batches that failed and were rolled back.
    std::uint64_t committed_operations = 0; ///< Operations committed (appends, acknowledgements, ...).
    std::uint64_t committed_appends = 0;    ///< Messages committed.
    std::uint64_t failed_appends = 0;       ///< Appends and records completed with an error.
    std::uint64_t refused = 0;              ///< Appends and records refused at `max_queued`.
    std::uint64_t dropped_retries = 0;      ///< Operations of failed batches not kept for a retry
                                            ///< (the retry queue was at `max_queued`).
    std::size_t queued = 0;                 ///< Operations queued or being committed now.
    status last_error = status::ok;         ///< The status of the last failed batch (`ok`: none).
    std::string last_error_message;         ///< SQLite's message for it.
};

class sqlite_inbox;

/// @brief Why `sqlite_inbox::open()` gave no store (`sqlite_inbox_open_result::code`).
enum class sqlite_open_error : std::uint8_t {
    /// @brief None: the store is open.
    none,
    /// @brief The file cannot be used: a missing directory, a file that cannot be opened, is not
    /// a database, is corrupt, has a newer schema or an old one that cannot be migrated, a lock
    /// file that cannot be created, or the database locked past `busy_timeout` while a new file's
    /// schema is created or an old one migrated (`sqlite_inbox_open_result::error` says which).
    failed,
    /// @brief Another `sqlite_inbox` has the file open, in this process or another (a second
    /// tcp_chat on the same `--offline sqlite:PATH`): it holds the lock on `<path>.lock`. Two
    /// stores on one file would give the same sequence numbers twice, so the second is refused;
    /// it opens once the first is closed (or its process ended).
    in_use,
};

/// @brief The token of an open error: `"none"`, `"failed"`, `"in-use"`.
/// @param e any value of `sqlite_open_error`.
[[nodiscard]] constexpr std::string_view to_string(sqlite_open_error e) noexcept {
    switch (e) {
    case sqlite_open_error::none: return "none";
    case sqlite_open_error::failed: return "failed";
    case sqlite_open_error::in_use: return "in-use";
    }
    return "unknown";
}

/// @brief Outcome of `sqlite_inbox::open()`: the store, or why there is none.
struct sqlite_inbox_open_result {
    /// @brief The open store; null when opening failed.
    std::unique_ptr<sqlite_inbox> store;
    /// @brief `none` when `store` is open, else why not.
    sqlite_open_error code = sqlite_open_error::none;
    /// @brief When `store` is null: `sqlite_inbox: <path>: <what failed>: <SQLite's message>`
    /// (for `in_use`: `sqlite_inbox: <path>: in use by another store (<path>.lock is locked)`).
    std::string error;
    /// @brief True when the store is open.
    [[nodiscard]] explicit operator bool() const noexcept { return store != nullptr; }
};

/// @brief The durable inbox store: the offline inbox, acknowledgements, known users and
/// de-duplication records in one SQLite file, committed in batches on the store's own thread.
///
/// Decisions are made at once, in memory, by a `memory_inbox` that holds the store's view (every
/// stored message, each user's sequence numbers, the known users; same bounds), so the routing
/// path never touches the disk. Every change (a user remembered or forgotten, an append, an
/// acknowledgement, an expiry, a de-duplication record) is also queued for the writer thread,
/// which takes what is queued (up to `max_batch`), applies it in one transaction
/// (`BEGIN IMMEDIATE`, prepared statements, `COMMIT`; WAL mode) and then hands each append's and
/// record's `on_durable` with its status to a completion queue, and calls `options.wake`.
/// `run_completions()`, under the host's serialisation, calls them in the order of the calls
/// (the `inbox_store` completion contract). So `ok queued` can be answered once the message is
/// committed, without the routing thread ever waiting for a commit.
///
/// Failures are answers: a batch that cannot commit is rolled back, and each append and record
/// in it completes with `store_busy` (the lock stayed taken past `busy_timeout`), `store_full`
/// (SQLITE_FULL: the disk, or `max_page_count`) or `store_failed` (any other error: I/O,
/// read-only, corrupt); `run_completions()` removes such a message from the view before its
/// handler runs, and its sequence number is not given again (the failed numbers are kept for the
/// next commit). The other operations of a failed batch are tried again with the next batch, so
/// the store recovers by itself when the lock is released or space returns. Committed rows are
/// never touched by a failure.
///
/// Restart: `open()` reads back the messages (in sequence order), each user's next sequence
/// number, the highest number given to anyone (for users the store forgot to stay within its
/// bounds), the known users and the de-duplication records. Order is by sequence number, never by
/// time. The schema (docs/durability.md) is versioned with `PRAGMA user_version`; a file of an
/// older version is migrated when it is opened, in one transaction (docs/durability.md,
/// "Migration from schema 1").
///
/// Thread safety: every `inbox_store` call, `run_completions()`, `flush()`, `stats()`, `view()`
/// and the destructor run under the host's serialisation (the router's), one at a time. The
/// writer thread owns the connection and its statements after `open()` returns, and shares with
/// the host only the operation queue, the completion queue and the counters, under one mutex
/// with two condition variables (work for the writer; progress for `flush()`). It never calls a
/// handler and never touches the view. `options.wake` is called from the writer thread.
class sqlite_inbox final : public inbox_store {
public:
    /// @brief The schema version this code writes and reads (`PRAGMA user_version`): 2, messages
    /// keyed by `(user_id, seq)`. Version 1 (messages keyed by the user's name) is migrated by
    /// `open()`; a higher version is refused.
    static constexpr int schema_version = 2;

    /// @brief The highest sequence number the store gives a user's message: 2^63 - 2, so that
    /// the user's next number (`max_seq + 1`, kept in `users.next_seq`) is still an SQLite
    /// integer. A user whose numbers reached it gets `status::store_failed` for every further
    /// `append()` (nothing is stored; a number is never wrapped or given twice). At a billion
    /// messages a second, a user reaches it after 292 years; a file edited or damaged to hold a
    /// number beyond it is refused by `open()` (docs/durability.md, "Sequence numbers").
    static constexpr std::uint64_t max_seq = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) - 1;

    /// @brief The page size of a database file the store creates (`PRAGMA page_size`, bytes):
    /// 8192, where SQLite's default is 4096. Messages go to the right end of each user's key
    /// range, in the middle of the B-tree, where every page that fills is split by rebalancing
    /// it with its neighbours; twice the page size halves how often that happens, for less work
    /// per stored message in all (docs/performance.md, issue #12). An existing file keeps its
    /// page size (SQLite changes it only with `VACUUM`, not in WAL mode).
    static constexpr int new_file_page_size = 8192;

    /// @brief Opens (or creates) the database at `options.path`, reads it back into memory and
    /// starts the writer thread. The store holds an exclusive lock on `<path>.lock` (created
    /// beside the database, never removed) until it is destroyed, so that one file has one store
    /// (docs/durability.md, "One store per file").
    /// @param options see `sqlite_inbox_options`.
    /// @return the store; or no store, `code` and a message naming the file: `in_use` when
    ///         another store has the file open (in this process or another; the database is not
    ///         touched); `failed`, with SQLite's or the system's reason, when the directory is
    ///         missing, the lock file cannot be created, the file cannot be opened or is not a
    ///         database, is corrupt (`PRAGMA quick_check`, or an error reading the schema or the
    ///         rows), has a schema newer than `schema_version`, cannot be migrated from schema 1
    ///         (the transaction is rolled back: the file is left as it was), holds rows the store
    ///         never writes (a forged sender or text, an impossible id, a sequence number that is
    ///         not an integer, below 1 or above `max_seq`; a migration is then rolled back too), or
    ///         the database is locked past `busy_timeout` while a new file's schema is created or
    ///         migrated.
    /// @throws std::bad_alloc when memory runs out; std::system_error when the thread cannot start.
    [[nodiscard]] static sqlite_inbox_open_result open(sqlite_inbox_options options) {
        sqlite_inbox_open_result r;
        std::unique_ptr<sqlite_inbox> store(new sqlite_inbox(std::move(options)));
        r.code = store->lock_file(r.error);
        if (r.code == sqlite_open_error::none && !store->open_and_load(r.error)) r.code = sqlite_open_error::failed;
        if (r.code != sqlite_open_error::none) {
            r.error = "sqlite_inbox: " + store->options_.path + ": " + r.error;
            return r;
        }
        store->writer_ = std::thread([s = store.get()] { s->run_writer(); });
        r.store = std::move(store);
        return r;
    }

    sqlite_inbox(const sqlite_inbox&) = delete;
    sqlite_inbox& operator=(const sqlite_inbox&) = delete;

    /// @brief Commits what is queued (trying each queued operation at least once), stops the
    /// writer thread and closes the database. Completions not yet run by `run_completions()` are
    /// dropped without being called (the host is going away): call `flush()` and
    /// `run_completions()` first to have them called.
    ~sqlite_inbox() override {
        if (writer_.joinable()) {
            {
                std::lock_guard<std::mutex> lock(mutex_);
                stop_ = true;
            }
            work_.notify_one();
            writer_.join();
        }
    }

    [[nodiscard]] bool is_known(const name& user) const override { return view_.is_known(user); }

    /// @brief `inbox_store::remember()`; the user (and the one forgotten for it, if any) is
    /// written with the next batch.
    void remember(const name& user) override {
        const memory_inbox::admit_result r = view_.admit(user);
        if (!r.added) return;
        std::lock_guard<std::mutex> lock(mutex_);
        if (!r.forgotten.empty()) {
            op f{op_kind::forget, std::string(r.forgotten.view())};
            f.user_hash = name_hash{}(r.forgotten);
            push(std::move(f));
        }
        op o{op_kind::remember, std::string(user.view())};
        o.user_hash = name_hash{}(user);
        o.seq = view_.highest_seq(user) + 1;
        push(std::move(o));
    }

    /// @brief `inbox_store::append()`: decided at once in memory; `on_durable` runs from
    /// `run_completions()` once the batch holding it committed (`ok`) or failed.
    /// @return as `inbox_store::append()`; `store_busy` at `sqlite_inbox_options::max_queued`.
    append_result append(const name& user, std::string_view from, std::string_view text, std::int64_t now_ms,
                         durable_handler on_durable, std::uint64_t sent_key = 0) override {
        std::lock_guard<std::mutex> lock(mutex_);
        if (outstanding() >= options_.max_queued) {
            if (view_.is_known(user)) {
                ++stats_.refused;
                return {status::store_busy, 0};
            }
            return {status::user_not_found, 0};
        }
        const append_result r = view_.append(user, from, text, now_ms, {});
        if (r.code != status::ok) return r;
        if (sent_key == 0) { // built in place in the queue (no record to keep first)
            op& o = queue_.emplace_back(op_kind::append, user.view(), from);
            reuse_text(o.text, text);
            o.user_hash = name_hash{}(user);
            o.seq = r.seq;
            o.at_ms = now_ms;
            o.handler = std::move(on_durable);
            o.id = next_id_++;
            work_.notify_one();
            return r;
        }
        op o{op_kind::append, std::string(user.view())};
        o.from.assign(from);
        reuse_text(o.text, text);
        o.user_hash = name_hash{}(user);
        o.seq = r.seq;
        o.at_ms = now_ms;
        o.key = sent_key;
        o.handler = std::move(on_durable);
        if (sent_key != 0) keep_record(o.from, sent_record{sent_key, now_ms, r.seq, true});
        push(std::move(o));
        return r;
    }

    /// @brief `inbox_store::record_sent()`: kept in memory at once (`for_each_sent()` sees it),
    /// written with the next batch; `on_durable` runs from `run_completions()`. At `max_queued`
    /// it is not kept and completes with `store_busy` (after the completions before it).
    void record_sent(const name& sender, const sent_record& record, durable_handler on_durable) override {
        std::lock_guard<std::mutex> lock(mutex_);
        op o{op_kind::record, std::string(sender.view())};
        o.handler = std::move(on_durable);
        if (outstanding() >= options_.max_queued) {
            ++stats_.refused;
            o.kind = op_kind::refused; // completes with store_busy in its turn, writes nothing
        } else if (options_.dedup_window == 0) {
            o.kind = op_kind::refused;
            o.seq = 1; // nothing to keep: completes ok
        } else {
            o.key = record.key;
            o.at_ms = record.at_ms;
            o.seq = record.seq;
            o.queued = record.queued;
            keep_record(o.user, record);
        }
        push(std::move(o));
    }

    /// @brief `inbox_store::for_each_sent()`, from memory: the records of the last
    /// `dedup_ttl` (as of the last `expire()`), at most `dedup_window`, oldest first.
    void for_each_sent(const name& sender, const std::function<void(const sent_record&)>& visit) const override {
        const auto it = sent_.find(std::string(sender.view()));
        if (it == sent_.end()) return;
        for (const sent_record& r : it->second) visit(r);
    }

    /// @brief `inbox_store::acknowledge()`: decided at once; the rows are deleted with the next
    /// batch (a deletion lost in a crash only means the messages are delivered again).
    status acknowledge(const name& user, std::uint64_t through) override {
        const std::size_t before = view_.stored(user);
        const status st = view_.acknowledge(user, through);
        if (st == status::ok && view_.stored(user) != before) queue_delete(user, through);
        return st;
    }

    [[nodiscard]] std::uint64_t highest_seq(const name& user) const override { return view_.highest_seq(user); }

    [[nodiscard]] std::size_t stored(const name& user) const override { return view_.stored(user); }

    using inbox_store::for_each;

    void for_each(const name& user, std::uint64_t after,
                  const std::function<bool(const stored_message_view&)>& visit) const override {
        view_.for_each(user, after, visit);
    }

    /// @brief `inbox_store::remove_all()`; the rows are deleted with the next batch.
    void remove_all(const name& user) override {
        if (view_.stored(user) == 0) return;
        const std::uint64_t through = view_.highest_seq(user);
        view_.remove_all(user);
        queue_delete(user, through);
    }

    /// @brief `inbox_store::expire()`: drops expired messages and de-duplication records older
    /// than `dedup_ttl`; the rows are deleted with the next batch.
    std::size_t expire(std::int64_t now_ms) override {
        std::map<std::string, std::uint64_t> through; // per user, the last message dropped
        const std::size_t dropped = view_.expire(now_ms, [&](const name& user, std::uint64_t seq) {
            std::uint64_t& t = through[std::string(user.view())];
            t = std::max(t, seq);
        });
        bool records_dropped = false;
        const std::int64_t ttl = options_.dedup_ttl.count();
        while (!sent_age_.empty() && now_ms - sent_age_.front().at_ms >= ttl) {
            const aged& a = sent_age_.front();
            const auto it = sent_.find(a.sender);
            if (it != sent_.end()) {
                auto& ring = it->second;
                const auto r = std::find_if(ring.begin(), ring.end(), [&](const sent_record& x) { return x.key == a.key; });
                if (r != ring.end() && r->at_ms == a.at_ms) {
                    ring.erase(r);
                    records_dropped = true;
                }
                if (ring.empty()) sent_.erase(it);
            }
            sent_age_.pop_front();
        }
        if (through.empty() && !records_dropped) return dropped;
        std::lock_guard<std::mutex> lock(mutex_);
        for (const auto& t : through) {
            op o{op_kind::remove, t.first};
            o.seq = t.second;
            push(std::move(o));
        }
        if (records_dropped) {
            op o{op_kind::prune_records, std::string()};
            o.at_ms = now_ms - ttl;
            push(std::move(o));
        }
        return dropped;
    }

    /// @brief Calls the handlers of the appends and records whose batch finished, in the order
    /// of the calls, each with its status; before the handler of a failed append, removes the
    /// message from the view (and its de-duplication record). Call it under the host's
    /// serialisation, when `options.wake` asks for it (or periodically). Handlers may call into
    /// the store; one called later is not run by this call.
    /// @return the number of handlers' completions processed.
    /// @throws whatever a handler throws; the completions after it stay queued.
    std::size_t run_completions() {
        std::vector<completion> ready;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            ready.swap(completions_);
            completions_.swap(spare_completions_); // the writer fills storage that has room
        }
        std::size_t done = 0;
        try {
            for (; done < ready.size(); ++done) { // in place: no completion moved
                const completion& c = ready[done];
                if (c.code != status::ok) forget_failed(c);
                if (c.handler) c.handler(c.code);
            }
        } catch (...) { // the one that threw is done; the ones after it go back, in order
            std::lock_guard<std::mutex> lock(mutex_);
            completions_.insert(completions_.begin(),
                                std::make_move_iterator(ready.begin() + static_cast<std::ptrdiff_t>(done) + 1),
                                std::make_move_iterator(ready.end()));
            throw;
        }
        for (completion& c : ready) keep_text(c.text);
        ready.clear();
        if (ready.capacity() <= max_spare_completions) { // kept for the writer's next batches
            std::lock_guard<std::mutex> lock(mutex_);
            if (ready.capacity() > spare_completions_.capacity()) spare_completions_.swap(ready);
        }
        return done;
    }

    /// @brief Blocks the caller until the writer has tried every operation queued before the
    /// call (each append and record then has its completion ready: call `run_completions()`).
    /// For tests and shutdown; a host's routing thread has no reason to call it. Under the
    /// host's serialisation.
    void flush() {
        std::unique_lock<std::mutex> lock(mutex_);
        const std::uint64_t target = next_id_ - 1;
        progress_.wait(lock, [&] { return tried_ >= target; });
    }

    /// @brief The counters (a copy, taken under the lock).
    [[nodiscard]] sqlite_inbox_stats stats() const {
        std::lock_guard<std::mutex> lock(mutex_);
        sqlite_inbox_stats s = stats_;
        s.queued = queue_.size() + in_flight_;
        return s;
    }

    /// @brief The in-memory view: counts, bytes and known users (`memory_inbox`'s queries).
    [[nodiscard]] const memory_inbox& view() const noexcept { return view_; }

    /// @brief The options the store was opened with.
    [[nodiscard]] const sqlite_inbox_options& options() const noexcept { return options_; }

private:
    enum class op_kind : std::uint8_t {
        remember,      // user, seq = its next sequence number
        forget,        // user
        append,        // user, from, text, seq, at_ms; key: its de-duplication record
        mark,          // user, seq: a failed append's number, kept so that it is never given again
        remove,        // user, seq: delete every message up to seq (acknowledgement, expiry)
        record,        // user = sender, key, at_ms, seq, queued
        drop_record,   // user = sender, key: fell out of the window
        prune_records, // at_ms: delete records at or before it
        refused,       // a record refused at max_queued (seq 0) or not kept (seq 1): no SQL
    };
    struct op {
        op_kind kind;
        std::string user;
        std::string from;
        std::string text;
        std::uint64_t seq = 0;
        std::int64_t at_ms = 0;
        std::uint64_t key = 0;
        bool queued = false;
        std::uint64_t id = 0; // order of queueing: 1, 2, ...
        std::size_t user_hash = 0; // remember, forget, append: name_hash of user (user_key)
        durable_handler handler;
        op(op_kind k, std::string u) : kind(k), user(std::move(u)) {}
        op(op_kind k, std::string_view u, std::string_view f) : kind(k), user(u), from(f) {} // (constructed, not assigned)
    };
    struct completion {
        durable_handler handler;
        status code;
        op_kind kind;
        std::string user; // the recipient (append) or sender (record); empty when ok (unused)
        std::string from; // append: the sender; empty when ok (unused)
        std::string text; // append: the op's text, back to the host for reuse_text() (see text_pool_)
        std::uint64_t seq;
        std::uint64_t key;
        std::int64_t at_ms;
    };
    struct aged { // a de-duplication record, in the order recorded (for the TTL)
        std::string sender;
        std::uint64_t key;
        std::int64_t at_ms;
    };

    explicit sqlite_inbox(sqlite_inbox_options options) : options_(std::move(options)), view_(options_.inbox) {
        options_.max_batch = std::max<std::size_t>(options_.max_batch, 1);
        options_.max_queued = std::max<std::size_t>(options_.max_queued, 1);
        view_.limit_seq(max_seq); // a number above it would not fit users.next_seq (as a number + 1)
    }

    // ---- host side (under the host's serialisation) -------------------------------------------

    // Appends and records not yet completed, plus completions not yet run. Under mutex_.
    [[nodiscard]] std::size_t outstanding() const noexcept { return queue_.size() + in_flight_ + completions_.size(); }

    void push(op o) { // under mutex_
        o.id = next_id_++;
        queue_.push_back(std::move(o));
        work_.notify_one();
    }

    // An append's text goes into a buffer kept from an earlier append when there is one
    // (keep_text()): no allocation on the host and no free on the writer thread per message.
    void reuse_text(std::string& out, std::string_view text) {
        if (!text_pool_.empty()) {
            out.swap(text_pool_.back());
            text_pool_.pop_back();
        }
        out.assign(text);
    }

    // Keeps a completed append's text buffer for reuse_text(), within the pool's bounds.
    void keep_text(std::string& text) {
        if (text.capacity() > max_pooled_text || text.capacity() <= std::string().capacity() ||
            text_pool_.size() >= max_text_pool)
            return;
        text_pool_.push_back(std::move(text));
    }

    void queue_delete(const name& user, std::uint64_t through) {
        std::lock_guard<std::mutex> lock(mutex_);
        op o{op_kind::remove, std::string(user.view())};
        o.seq = through;
        push(std::move(o));
    }

    // Keeps a de-duplication record in memory (replacing one with the same key in place); one
    // that falls out of the window is deleted with the next batch. Under mutex_ (it may push).
    void keep_record(const std::string& sender, const sent_record& record) {
        if (options_.dedup_window == 0) return;
        auto& ring = sent_[sender];
        const auto same = std::find_if(ring.rbegin(), ring.rend(), [&](const sent_record& x) { return x.key == record.key; });
        if (same != ring.rend()) {
            *same = record;
        } else {
            ring.push_back(record);
            if (ring.size() > options_.dedup_window) {
                op o{op_kind::drop_record, sender};
                o.key = ring.front().key;
                ring.pop_front();
                push(std::move(o));
            }
        }
        sent_age_.push_back(aged{sender, record.key, record.at_ms});
    }

    // A failed append or record leaves the view before its handler runs.
    void forget_failed(const completion& c) {
        if (c.kind == op_kind::append) {
            if (const auto user = name::parse(c.user)) (void)view_.remove_one(*user, c.seq);
            if (c.key != 0) drop_kept_record(c.from, c.key, c.seq);
        } else if (c.kind == op_kind::record) {
            drop_kept_record(c.user, c.key, c.seq);
        }
    }

    void drop_kept_record(const std::string& sender, std::uint64_t key, std::uint64_t seq) {
        const auto it = sent_.find(sender);
        if (it == sent_.end()) return;
        auto& ring = it->second;
        const auto r = std::find_if(ring.begin(), ring.end(), [&](const sent_record& x) { return x.key == key; });
        if (r != ring.end() && r->seq == seq) ring.erase(r);
        if (ring.empty()) sent_.erase(it);
    }

    // ---- opening (before the writer thread starts) ---------------------------------------------

    // One store per file: two would give the same sequence numbers twice. Taken before SQLite
    // opens the file, so a refused second store never touches the database.
    sqlite_open_error lock_file(std::string& error) {
        const std::filesystem::path file(options_.path);
        const std::filesystem::path dir = file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
        std::error_code ec;
        if (!std::filesystem::is_directory(dir, ec)) {
            error = "cannot open the database: directory " + dir.string() + " does not exist";
            return sqlite_open_error::failed;
        }
        const std::string lock_path = options_.path + ".lock";
        switch (lock_.lock(lock_path, error)) {
        case detail::exclusive_file_lock::result::locked: return sqlite_open_error::none;
        case detail::exclusive_file_lock::result::busy:
            error = "in use by another store (" + lock_path + " is locked: another process, or another "
                    "sqlite_inbox in this one, has the database open)";
            return sqlite_open_error::in_use;
        case detail::exclusive_file_lock::result::failed: break;
        }
        return sqlite_open_error::failed;
    }

    bool fail(std::string& error, const std::string& what) const {
        error = what + ": " + detail::sqlite::message(db_.get());
        return false;
    }

    // Opens the database, creates or migrates its schema, and reads it back. A new schema or a
    // migration is committed only once load() has checked every row: a file it refuses is left
    // exactly as it was (a migrated file refused would otherwise stay migrated, and an older
    // switchboard could no longer open it either).
    bool open_and_load(std::string& error) {
        bool ok = open_database(error) && load(error);
        sqlite3* db = db_.get();
        if (db == nullptr || sqlite3_get_autocommit(db)) return ok; // no schema change pending
        if (ok && detail::sqlite::exec(db, "COMMIT") != SQLITE_OK) ok = fail(error, "cannot commit the schema");
        if (!ok && !sqlite3_get_autocommit(db)) (void)detail::sqlite::exec(db, "ROLLBACK");
        return ok;
    }

    bool open_database(std::string& error) { // (lock_file() checked the directory)
        sqlite3* raw = nullptr;
        const int rc = sqlite3_open_v2(options_.path.c_str(), &raw,
                                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
        db_.reset(raw);
        if (rc != SQLITE_OK) return fail(error, "cannot open the database");
        sqlite3* db = db_.get();
        (void)sqlite3_extended_result_codes(db, 1);
        (void)sqlite3_busy_timeout(db, static_cast<int>(std::clamp<std::int64_t>(options_.busy_timeout.count(), 0, 86400000)));
        // Reading the schema is the first access to the file: "file is not a database" shows here.
        std::int64_t version = 0;
        if (!query_int(db, "PRAGMA user_version", version)) return fail(error, "cannot read the schema");
        if (version < 0) {
            error = "schema version " + std::to_string(version) + " (PRAGMA user_version) is not one this "
                    "switchboard wrote";
            return false;
        }
        if (sqlite3_db_readonly(db, "main") == 1) {
            // Opened read-only (a file without write permission): every removal and append would
            // fail, and a replay without acknowledgements would come again at each restart.
            error = "the database file is read-only: switchboard must write to it";
            return false;
        }
        if (version > schema_version) {
            error = "schema version " + std::to_string(version) + " (PRAGMA user_version) is newer than this "
                    "switchboard's (" + std::to_string(schema_version) + "): open it with a newer switchboard";
            return false;
        }
        // Before WAL mode is set: that writes a new file's first page, and with it the page size.
        if (version == 0) {
            const std::string pragma = "PRAGMA page_size=" + std::to_string(new_file_page_size);
            if (detail::sqlite::exec(db, pragma.c_str()) != SQLITE_OK) return fail(error, "cannot set PRAGMA page_size");
        }
        std::string mode;
        if (!query_text(db, "PRAGMA journal_mode=WAL", mode) || mode != "wal")
            return fail(error, "cannot switch to WAL mode (journal_mode is '" + mode + "')");
        if (detail::sqlite::exec(db, options_.synchronous == sqlite_synchronous::full ? "PRAGMA synchronous=FULL"
                                                                                      : "PRAGMA synchronous=NORMAL") != SQLITE_OK)
            return fail(error, "cannot set PRAGMA synchronous");
        if (options_.max_page_count != 0) {
            const std::string pragma = "PRAGMA max_page_count=" + std::to_string(options_.max_page_count);
            std::int64_t ignored = 0;
            if (!query_int(db, pragma.c_str(), ignored)) return fail(error, "cannot set PRAGMA max_page_count");
        }
        if (options_.quick_check) {
            std::string check;
            if (!query_text(db, "PRAGMA quick_check", check)) return fail(error, "the database is corrupt");
            if (check != "ok") {
                std::replace(check.begin(), check.end(), '\n', ';'); // one line
                error = "the database is corrupt: PRAGMA quick_check: " + check;
                return false;
            }
        }
        if (version == 0) { // a new file (or one without our schema): create it
            static const char* const create =
                "BEGIN IMMEDIATE;"
                "CREATE TABLE IF NOT EXISTS users(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
                " next_seq INTEGER NOT NULL);"
                "CREATE TABLE IF NOT EXISTS messages(user_id INTEGER NOT NULL, seq INTEGER NOT NULL, sender TEXT NOT NULL,"
                " text TEXT NOT NULL, stored_ms INTEGER NOT NULL, PRIMARY KEY(user_id, seq)) WITHOUT ROWID;"
                "CREATE TABLE IF NOT EXISTS sent(sender TEXT NOT NULL, key INTEGER NOT NULL, at_ms INTEGER NOT NULL,"
                " seq INTEGER NOT NULL, queued INTEGER NOT NULL, PRIMARY KEY(sender, key));"
                "CREATE INDEX IF NOT EXISTS sent_at ON sent(at_ms);"
                "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;"
                "INSERT OR IGNORE INTO meta(key, value) VALUES('high_water', 0), ('forgot_any', 0);"
                "PRAGMA user_version=2;"; // committed by open_and_load(), after load()'s checks
            if (!exec_transaction(create, "cannot create the schema", error)) return false;
        } else if (version == 1) {
            // Version 1 (0.4 before issue #12's last gap) keyed messages by the user's name. Each
            // user gets an integer id (users' rowid); users that only have messages (not possible
            // through the store, kept anyway) become users with the number above their last
            // message, as load() made them before. One transaction with load()'s checks of the
            // rows, committed by open_and_load(): all or nothing, and a file the checks refuse
            // stays at version 1 as it was.
            static const char* const migrate =
                "BEGIN IMMEDIATE;"
                "ALTER TABLE users RENAME TO users_v1;"
                "ALTER TABLE messages RENAME TO messages_v1;"
                "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, next_seq INTEGER NOT NULL);"
                "CREATE TABLE messages(user_id INTEGER NOT NULL, seq INTEGER NOT NULL, sender TEXT NOT NULL,"
                " text TEXT NOT NULL, stored_ms INTEGER NOT NULL, PRIMARY KEY(user_id, seq)) WITHOUT ROWID;"
                "INSERT INTO users(name, next_seq) SELECT name, next_seq FROM users_v1 ORDER BY name;"
                "INSERT INTO users(name, next_seq) SELECT user, max(seq) + 1 FROM messages_v1"
                " WHERE user NOT IN (SELECT name FROM users_v1) GROUP BY user ORDER BY user;"
                "INSERT INTO messages(user_id, seq, sender, text, stored_ms)"
                " SELECT u.id, m.seq, m.sender, m.text, m.stored_ms FROM messages_v1 m JOIN users u ON u.name = m.user"
                " ORDER BY u.id, m.seq;"
                "DROP TABLE messages_v1;"
                "DROP TABLE users_v1;"
                "PRAGMA user_version=2;";
            if (!exec_transaction(migrate, "cannot migrate the schema from version 1 to 2", error)) return false;
        }
        return true;
    }

    // Runs `sql` (a script that begins a transaction and leaves it open for open_and_load() to
    // commit); on an error rolls back and says `what` failed.
    bool exec_transaction(const char* sql, const char* what, std::string& error) {
        sqlite3* db = db_.get();
        if (detail::sqlite::exec(db, sql) == SQLITE_OK) return true;
        (void)fail(error, what);
        if (!sqlite3_get_autocommit(db)) (void)detail::sqlite::exec(db, "ROLLBACK");
        return false;
    }

    static bool query_int(sqlite3* db, const char* sql, std::int64_t& out) {
        detail::sqlite::statement s;
        if (s.prepare(db, sql) != SQLITE_OK) return false;
        const int rc = s.step();
        if (rc == SQLITE_ROW) out = s.int64(0);
        return rc == SQLITE_ROW || rc == SQLITE_DONE;
    }

    static bool query_text(sqlite3* db, const char* sql, std::string& out) {
        detail::sqlite::statement s;
        if (s.prepare(db, sql) != SQLITE_OK) return false;
        const int rc = s.step();
        if (rc == SQLITE_ROW) out.assign(s.text(0));
        return rc == SQLITE_ROW || rc == SQLITE_DONE;
    }

    // The end of load()'s message for a sequence number out of range.
    static constexpr const char* bad_number = ": the store never writes such a number; "
                                              "correct that row or restore a backup (docs/durability.md)";

    // Reads the database into the view and prepares the writer's statements.
    bool load(std::string& error) {
        sqlite3* db = db_.get();
        std::int64_t high_water = 0;
        std::int64_t forgot_any = 0;
        if (!query_int(db, "SELECT value FROM meta WHERE key = 'high_water'", high_water) ||
            !query_int(db, "SELECT value FROM meta WHERE key = 'forgot_any'", forgot_any))
            return fail(error, "cannot read table meta");
        // Sequence numbers the store cannot have written (docs/durability.md, "Sequence numbers"):
        // continued, they would wrap or repeat numbers already given. The high-water mark is
        // compared as read (a REAL saturates to 2^63 - 1, refused too).
        if (high_water < 0 || static_cast<std::uint64_t>(high_water) > max_seq) {
            error = "table meta holds high_water " + std::to_string(high_water) + bad_number;
            return false;
        }
        struct user_rows {
            std::uint64_t highest = 0;
            std::vector<stored_message> messages;
        };
        std::map<std::string, user_rows> users;
        detail::sqlite::statement s;
        if (s.prepare(db, "SELECT id, name, next_seq FROM users") != SQLITE_OK) return fail(error, "cannot read table users");
        int rc = SQLITE_OK;
        while ((rc = s.step()) == SQLITE_ROW) {
            const std::int64_t next = s.int64(2);
            const std::string_view user = s.text(1);
            if (s.int64(0) <= 0 || s.int64(0) == std::numeric_limits<std::int64_t>::max()) {
                error = "table users holds id " + std::to_string(s.int64(0)) + " (for '" + std::string(user) + "')";
                return false;
            }
            // 1 .. max_seq + 1 (the store writes at least 1; max_seq + 1 once the user's numbers
            // are used up, when its appends are store_failed).
            if (!s.is_integer(2) || next < 1) {
                error = "table users holds " +
                        (s.is_integer(2) ? "next_seq " + std::to_string(next) : std::string("a next_seq that is not an integer")) +
                        " (for '" + std::string(user) + "')" + bad_number;
                return false;
            }
            users[std::string(user)].highest = static_cast<std::uint64_t>(next) - 1;
            (void)cache_user_id(key_of(user), s.int64(0));
            next_user_id_ = std::max(next_user_id_, s.int64(0) + 1);
        }
        if (rc != SQLITE_DONE) return fail(error, "cannot read table users");
        // A message whose user_id has no user (none is written so) is not read.
        if (s.prepare(db, "SELECT u.name, m.seq, m.sender, m.text, m.stored_ms FROM messages m "
                          "JOIN users u ON u.id = m.user_id ORDER BY m.user_id, m.seq") != SQLITE_OK)
            return fail(error, "cannot read table messages");
        while ((rc = s.step()) == SQLITE_ROW) {
            const std::int64_t seq = s.int64(1);
            if (!s.is_integer(1) || seq <= 0 || static_cast<std::uint64_t>(seq) > max_seq) {
                error = "table messages holds " +
                        (s.is_integer(1) ? "sequence number " + std::to_string(seq)
                                         : std::string("a sequence number that is not an integer")) +
                        " (user '" + std::string(s.text(0)) + "')" + bad_number;
                return false;
            }
            // What is replayed goes to clients as it is: a sender that is not a folded name or a
            // text outside the text contract (an edited or damaged file) would forge lines.
            const std::string_view sender = s.text(2), text = s.text(3);
            const auto from = name::parse(sender);
            if (!from || from->view() != sender || !is_message_text(text)) {
                error = "table messages holds an invalid " + std::string(from && from->view() == sender ? "text" : "sender") +
                        " (user '" + std::string(s.text(0)) + "', seq " + std::to_string(seq) +
                        "): delete that row or restore a backup (docs/durability.md)";
                return false;
            }
            users[std::string(s.text(0))].messages.push_back(
                stored_message{static_cast<std::uint64_t>(seq), std::string(sender), std::string(text), s.int64(4)});
        }
        if (rc != SQLITE_DONE) return fail(error, "cannot read table messages");
        for (auto& u : users) {
            const auto user = name::parse(u.first);
            if (!user || user->view() != u.first) {
                error = "the database holds an invalid user name '" + u.first + "'";
                return false;
            }
            view_.restore_user(*user, u.second.highest, std::move(u.second.messages));
        }
        view_.restore_high_water(high_water > 0 ? static_cast<std::uint64_t>(high_water) : 0, forgot_any != 0);
        if (s.prepare(db, "SELECT sender, key, at_ms, seq, queued FROM sent ORDER BY at_ms, rowid") != SQLITE_OK)
            return fail(error, "cannot read table sent");
        while ((rc = s.step()) == SQLITE_ROW) {
            keep_record(std::string(s.text(0)), sent_record{static_cast<std::uint64_t>(s.int64(1)), s.int64(2),
                                                            static_cast<std::uint64_t>(s.int64(3)), s.int64(4) != 0});
        }
        if (rc != SQLITE_DONE) return fail(error, "cannot read table sent");
        const struct {
            detail::sqlite::statement* stmt;
            const char* sql;
        } prepared[] = {
            {&st_.upsert_user, "INSERT INTO users(id, name, next_seq) VALUES(?1, ?2, ?3) "
                               "ON CONFLICT(id) DO UPDATE SET next_seq = max(next_seq, excluded.next_seq)"},
            {&st_.find_user, "SELECT id FROM users WHERE name = ?1"},
            {&st_.mark_user, "UPDATE users SET next_seq = max(next_seq, ?2) WHERE name = ?1"},
            {&st_.delete_user, "DELETE FROM users WHERE name = ?1"},
            {&st_.delete_messages, "DELETE FROM messages WHERE user_id = (SELECT id FROM users WHERE name = ?1) "
                                   "AND seq <= ?2"},
            {&st_.upsert_record, "INSERT INTO sent(sender, key, at_ms, seq, queued) VALUES(?1, ?2, ?3, ?4, ?5) "
                                 "ON CONFLICT(sender, key) DO UPDATE SET at_ms = excluded.at_ms, seq = excluded.seq, "
                                 "queued = excluded.queued"},
            {&st_.delete_record, "DELETE FROM sent WHERE sender = ?1 AND key = ?2"},
            {&st_.prune_records, "DELETE FROM sent WHERE at_ms <= ?1"},
            {&st_.raise_meta, "UPDATE meta SET value = max(value, ?2) WHERE key = ?1"},
            {&st_.begin, "BEGIN IMMEDIATE"},
            {&st_.commit, "COMMIT"},
        };
        for (const auto& p : prepared)
            if (p.stmt->prepare(db, p.sql) != SQLITE_OK) return fail(error, std::string("cannot prepare '") + p.sql + "'");
        // 1, 2, 4, ... 256 rows, as many as the connection's limit on parameters allows (999 before
        // SQLite 3.32: up to 128 rows, 640 parameters).
        const int limit = sqlite3_limit(db, SQLITE_LIMIT_VARIABLE_NUMBER, -1);
        insert_count_ = 1;
        while (insert_count_ < insert_statements &&
               columns_per_row * (std::size_t{1} << insert_count_) <= static_cast<std::size_t>(limit))
            ++insert_count_;
        max_rows_ = std::size_t{1} << (insert_count_ - 1);
        for (std::size_t i = 0; i < insert_count_; ++i) {
            std::string insert = "INSERT INTO messages(user_id, seq, sender, text, stored_ms) VALUES(?,?,?,?,?)";
            for (std::size_t r = 1; r < (std::size_t{1} << i); ++r) insert += ",(?,?,?,?,?)";
            if (st_.insert_messages[i].prepare(db, insert.c_str()) != SQLITE_OK)
                return fail(error, "cannot prepare the INSERT into messages");
        }
        return true;
    }

    // ---- writer thread ------------------------------------------------------------------------

    // The messages of a batch are inserted max_rows_ at a time, by one multi-row INSERT: SQLite's
    // cost per statement (step, halt, reset, cursors) is paid once per max_rows_ messages instead
    // of once per message. An append only queues its row (apply()); the rows are inserted before
    // any other kind of operation (order is kept), when max_rows_ are queued, and at the end of
    // the batch. A remainder goes as 2^k-row statements (at most insert_count_ of them). 256
    // rows (1,280 parameters) cost less than 64 per message (docs/performance.md); 512 no less.
    static constexpr std::size_t insert_statements = 9; // 2^8 = 256 rows at most
    static constexpr std::size_t columns_per_row = 5;
    struct statements {
        detail::sqlite::statement upsert_user, find_user, mark_user, delete_user, delete_messages, upsert_record,
            delete_record, prune_records, raise_meta, begin, commit;
        detail::sqlite::statement insert_messages[insert_statements]; // [i]: 2^i rows
    };

    struct row {
        const op* o; // (of the batch being committed)
        std::int64_t user_id;
    };

    // Inserts the queued rows and empties the queue. SQLITE_DONE or an error code.
    int insert_rows() {
        int rc = SQLITE_DONE;
        std::size_t done = 0;
        for (std::size_t i = insert_count_; i-- > 0 && rc == SQLITE_DONE;) {
            const std::size_t n = std::size_t{1} << i;
            if (rows_.size() - done < n) continue;
            detail::sqlite::statement& st = st_.insert_messages[i];
            for (std::size_t r = 0; r < n; ++r) {
                const row& x = rows_[done + r];
                const int p = static_cast<int>(columns_per_row * r);
                (void)st.bind(p + 1, x.user_id)
                    .bind(p + 2, as_int(x.o->seq))
                    .bind(p + 3, std::string_view(x.o->from))
                    .bind(p + 4, std::string_view(x.o->text))
                    .bind(p + 5, x.o->at_ms);
            }
            rc = st.run_rebound(); // (every parameter is bound again before each run)
            done += n;
        }
        rows_.clear();
        return rc;
    }

    static std::int64_t as_int(std::uint64_t v) noexcept { return static_cast<std::int64_t>(v); }

    static status classify(int rc) noexcept {
        switch (rc & 0xff) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED: return status::store_busy;
        case SQLITE_FULL: return status::store_full;
        default: return status::store_failed;
        }
    }

    // The writer's cache of the users table's ids (messages are keyed by (user_id, seq): integer
    // comparisons on every insert, where the name as key cost a string comparison per B-tree
    // level), with each user's next sequence number noted during the batch, written by
    // flush_next_seqs(): one users-table upsert per user and batch instead of one per message.
    // The map's key views `name`, which never moves. Writer thread only (and load()).
    // Keyed by the name with its name_hash, computed by the host from the `name` it has (a few
    // multiplications) instead of hashing the bytes on the writer thread for every operation.
    struct writer_user {
        std::unique_ptr<std::string> name;
        std::int64_t id = 0;
        std::uint64_t next = 0; // noted in this batch; 0: none
    };
    struct user_key {
        std::string_view name;
        std::size_t hash;
        bool operator==(const user_key& other) const noexcept { return name == other.name; }
    };
    struct user_key_hash {
        std::size_t operator()(const user_key& k) const noexcept { return k.hash; }
    };

    // The key of a user name read from the file (a name that does not parse, which load() then
    // refuses, gets hash 0).
    static user_key key_of(std::string_view user) {
        const auto parsed = name::parse(user);
        return user_key{user, parsed ? name_hash{}(*parsed) : 0};
    }

    writer_user& cache_user_id(user_key user, std::int64_t id) {
        const auto it = user_ids_.find(user);
        if (it != user_ids_.end()) {
            it->second.id = id;
            return it->second;
        }
        auto owned = std::make_unique<std::string>(user.name);
        const user_key key{*owned, user.hash};
        return user_ids_.emplace(key, writer_user{std::move(owned), id, 0}).first->second;
    }

    // The user's entry: cached; else the id of its row in users; else a new id (the row is
    // written by the caller: the remember's upsert, or flush_next_seqs()). SQLITE_DONE or an
    // error code.
    int user_entry(user_key user, writer_user*& out) {
        const auto it = user_ids_.find(user);
        if (it != user_ids_.end()) {
            out = &it->second;
            return SQLITE_DONE;
        }
        const int rc = st_.find_user.bind(1, user.name).step();
        const std::int64_t id = rc == SQLITE_ROW ? st_.find_user.int64(0) : next_user_id_;
        st_.find_user.reset();
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return rc;
        if (rc == SQLITE_DONE) ++next_user_id_;
        out = &cache_user_id(user, id);
        return SQLITE_DONE;
    }

    void note_next_seq(writer_user& w, std::uint64_t next) {
        if (w.next == 0) noted_.push_back(&w);
        w.next = std::max(w.next, next);
    }

    void clear_noted() noexcept {
        for (writer_user* w : noted_) w->next = 0;
        noted_.clear();
    }

    // Writes the noted sequence numbers; before any operation other than an append (it may read
    // or delete the user's row) and at the end of the batch. SQLITE_DONE or an error code.
    int flush_next_seqs() {
        int rc = SQLITE_DONE;
        for (const writer_user* w : noted_)
            if ((rc = st_.upsert_user.bind(1, w->id).bind(2, std::string_view(*w->name)).bind(3, as_int(w->next)).run()) !=
                SQLITE_DONE)
                break;
        clear_noted();
        return rc;
    }

    // One operation inside the open transaction: SQLITE_DONE or an error code.
    int apply(const op& o, std::uint64_t& high_water, bool& forgot) {
        const std::string_view user(o.user);
        int rc = SQLITE_DONE;
        if (o.kind != op_kind::append) {
            if (!rows_.empty() && (rc = insert_rows()) != SQLITE_DONE) return rc;
            if (!noted_.empty() && (rc = flush_next_seqs()) != SQLITE_DONE) return rc;
        }
        writer_user* w = nullptr;
        switch (o.kind) {
        case op_kind::remember:
            if ((rc = user_entry(user_key{user, o.user_hash}, w)) != SQLITE_DONE) return rc;
            return st_.upsert_user.bind(1, w->id).bind(2, user).bind(3, as_int(o.seq)).run();
        case op_kind::forget:
            forgot = true;
            rc = st_.delete_messages.bind(1, user).bind(2, INT64_MAX).run(); // (by the user's id in users)
            if (rc != SQLITE_DONE) return rc;
            rc = st_.delete_user.bind(1, user).run();
            if (rc == SQLITE_DONE) user_ids_.erase(user_key{user, o.user_hash}); // (a rollback: user_entry() reads the row again)
            return rc;
        case op_kind::append:
            high_water = std::max(high_water, o.seq);
            if ((rc = user_entry(user_key{user, o.user_hash}, w)) != SQLITE_DONE) return rc;
            rows_.push_back(row{&o, w->id});
            if (rows_.size() == max_rows_ && (rc = insert_rows()) != SQLITE_DONE) return rc;
            note_next_seq(*w, o.seq + 1); // written once per user and batch (flush_next_seqs)
            if (o.key == 0) return rc;
            return st_.upsert_record.bind(1, std::string_view(o.from))
                .bind(2, as_int(o.key))
                .bind(3, o.at_ms)
                .bind(4, as_int(o.seq))
                .bind(5, std::int64_t{1})
                .run();
        case op_kind::mark:
            high_water = std::max(high_water, o.seq);
            return st_.mark_user.bind(1, user).bind(2, as_int(o.seq + 1)).run();
        case op_kind::remove: return st_.delete_messages.bind(1, user).bind(2, as_int(o.seq)).run();
        case op_kind::record:
            return st_.upsert_record.bind(1, user)
                .bind(2, as_int(o.key))
                .bind(3, o.at_ms)
                .bind(4, as_int(o.seq))
                .bind(5, std::int64_t{o.queued ? 1 : 0})
                .run();
        case op_kind::drop_record: return st_.delete_record.bind(1, user).bind(2, as_int(o.key)).run();
        case op_kind::prune_records: return st_.prune_records.bind(1, o.at_ms).run();
        case op_kind::refused: return SQLITE_DONE;
        }
        return SQLITE_DONE;
    }

    // Runs one batch in one transaction: SQLITE_DONE when committed, else the error code (the
    // transaction is rolled back). Writer thread only.
    int commit_batch(const op* first, const op* last, std::string& message) {
        sqlite3* db = db_.get();
        int rc = st_.begin.run();
        if (rc == SQLITE_DONE) {
            std::uint64_t high_water = 0;
            bool forgot = false;
            clear_noted();
            rows_.clear();
            for (const op* o = first; o != last; ++o)
                if ((rc = apply(*o, high_water, forgot)) != SQLITE_DONE) break;
            if (rc == SQLITE_DONE && !rows_.empty()) rc = insert_rows();
            if (rc == SQLITE_DONE) rc = flush_next_seqs();
            if (rc == SQLITE_DONE && high_water != 0)
                rc = st_.raise_meta.bind(1, std::string_view("high_water")).bind(2, as_int(high_water)).run();
            if (rc == SQLITE_DONE && forgot)
                rc = st_.raise_meta.bind(1, std::string_view("forgot_any")).bind(2, std::int64_t{1}).run();
            if (rc == SQLITE_DONE) rc = st_.commit.run();
        }
        if (rc != SQLITE_DONE) {
            message = detail::sqlite::message(db);
            if (!sqlite3_get_autocommit(db)) (void)detail::sqlite::exec(db, "ROLLBACK");
        }
        return rc;
    }

    void run_writer() {
        std::unique_lock<std::mutex> lock(mutex_);
        bool last_failed = false;
        bool final_try = false;
        for (;;) {
            const auto fresh = [&] { return !queue_.empty() && queue_.back().id > tried_; };
            if (taken_ < batch_.size()) {
                // Operations taken with an earlier batch and not tried yet (past max_batch): next.
            } else if (last_failed) { // retries wait for new work, the retry interval, or the end
                work_.wait_for(lock, options_.retry_interval, [&] { return stop_ || fresh(); });
                if (stop_ && !fresh()) { // stopping: the operations kept for a retry get one last try
                    if (final_try) break;
                    final_try = true;
                }
                if (queue_.empty()) {         // nothing kept for a retry
                    last_failed = false;
                    continue;
                }
            } else {
                work_.wait(lock, [&] { return stop_ || !queue_.empty(); });
                if (queue_.empty()) break; // stop_, and everything committed
            }
            if (taken_ == batch_.size()) { // take all that is queued: no operation moved
                batch_.clear();            // (moved from) its storage goes to queue_
                if (batch_.capacity() > options_.max_queued) std::vector<op>().swap(batch_); // after a burst
                batch_.swap(queue_);
                taken_ = 0;
            }
            // This batch: the next max_batch of them at most, in place.
            const auto first = batch_.begin() + static_cast<std::ptrdiff_t>(taken_);
            const std::size_t n = std::min(batch_.size() - taken_, options_.max_batch);
            const auto last = first + static_cast<std::ptrdiff_t>(n);
            in_flight_ = batch_.size() - taken_;
            lock.unlock();
            std::string message;
            const int rc = commit_batch(&*first, &*first + n, message);
            lock.lock();
            taken_ += n;
            in_flight_ = batch_.size() - taken_;
            const status st = rc == SQLITE_DONE ? status::ok : classify(rc);
            last_failed = st != status::ok;
            bool any = false;
            std::vector<op> retry;
            std::unordered_map<std::string, std::size_t> marks; // one mark per user: the highest
            const auto keep_mark = [&](std::string user, std::uint64_t seq, std::uint64_t id) {
                const auto m = marks.find(user);
                if (m != marks.end()) {
                    retry[m->second].seq = std::max(retry[m->second].seq, seq);
                    return;
                }
                marks.emplace(user, retry.size());
                op mark{op_kind::mark, std::move(user)};
                mark.seq = seq;
                mark.id = id;
                retry.push_back(std::move(mark));
            };
            for (auto it = first; it != last; ++it) {
                op& o = *it;
                tried_ = std::max(tried_, o.id);
                if (o.kind == op_kind::append || o.kind == op_kind::record || o.kind == op_kind::refused) {
                    status code = st;
                    if (o.kind == op_kind::refused) code = o.seq == 1 ? status::ok : status::store_busy;
                    if (code != status::ok) ++stats_.failed_appends;
                    if (o.kind == op_kind::append && st == status::ok) ++stats_.committed_appends;
                    const bool keep = code != status::ok; // (the names serve forget_failed() only)
                    completions_.push_back(completion{std::move(o.handler), code, o.kind,
                                                      !keep ? std::string() : last_failed ? o.user : std::move(o.user), // (keep_mark below)
                                                      keep ? std::move(o.from) : std::string(), std::move(o.text), o.seq,
                                                      o.key, o.at_ms});
                    any = true;
                    if (o.kind == op_kind::append && last_failed) // its number is never given again
                        keep_mark(std::move(o.user), o.seq, o.id);
                } else if (last_failed) {
                    if (o.kind == op_kind::mark) keep_mark(std::move(o.user), o.seq, o.id);
                    else retry.push_back(std::move(o));
                }
            }
            if (last_failed) {
                ++stats_.rollbacks;
                stats_.last_error = st;
                stats_.last_error_message = message;
                // Kept for the next batch, ahead of newer work (they are older), within the bound.
                // The operations taken and not tried yet go back too, between the two.
                const std::size_t waiting = queue_.size() + in_flight_;
                std::size_t room = options_.max_queued > waiting ? options_.max_queued - waiting : 0;
                if (retry.size() > room) {
                    stats_.dropped_retries += retry.size() - room;
                    retry.erase(retry.begin() + static_cast<std::ptrdiff_t>(room), retry.end());
                }
                queue_.insert(queue_.begin(), std::make_move_iterator(batch_.begin() + static_cast<std::ptrdiff_t>(taken_)),
                              std::make_move_iterator(batch_.end()));
                queue_.insert(queue_.begin(), std::make_move_iterator(retry.begin()), std::make_move_iterator(retry.end()));
                taken_ = batch_.size();
                in_flight_ = 0;
            } else {
                ++stats_.commits;
                stats_.committed_operations += n;
            }
            progress_.notify_all();
            if (any && options_.wake) {
                lock.unlock();
                options_.wake();
                lock.lock();
            }
        }
    }

    sqlite_inbox_options options_;
    memory_inbox view_; // host only

    // De-duplication records, host only: per sender in the order recorded, and all of them in that
    // order for the TTL (entries of records replaced or dropped meanwhile are skipped).
    std::unordered_map<std::string, std::deque<sent_record>> sent_;
    std::deque<aged> sent_age_;

    // Text buffers of completed appends, host only (reuse_text(), keep_text()): the buffer is
    // allocated on the host and freed there, where malloc's per-thread cache serves it again,
    // instead of allocated on the host and freed on the writer thread, which is the slow path
    // of both. At most max_text_pool buffers of at most max_pooled_text bytes: 2 MiB (a window of
    // 256 messages for each of 100 senders keeps thousands in flight).
    std::vector<std::string> text_pool_;
    static constexpr std::size_t max_text_pool = 8192;
    static constexpr std::size_t max_pooled_text = 256;

    // Shared between the host and the writer, under mutex_.
    mutable std::mutex mutex_;
    std::condition_variable work_;     // the writer waits for operations (or stop_)
    std::condition_variable progress_; // flush() waits for the writer's progress
    // Operations to commit, in call order. A vector, swapped with the writer's emptied batch_ when
    // the writer takes all of it: no block allocated on the host and freed on the writer thread
    // every few operations (as a deque did).
    std::vector<op> queue_;
    std::size_t in_flight_ = 0;          // operations the writer took and has not finished (batch_)
    // Finished appends and records, in call order. A vector, and the one run_completions() has
    // emptied kept as spare_completions_ for the writer to fill next: no block allocated and
    // freed every few completions (as a deque did), up to max_spare_completions kept.
    std::vector<completion> completions_;
    std::vector<completion> spare_completions_;
    static constexpr std::size_t max_spare_completions = 4096;
    std::uint64_t next_id_ = 1;          // the id of the next operation queued
    std::uint64_t tried_ = 0;            // every operation up to this id has been tried once
    bool stop_ = false;
    sqlite_inbox_stats stats_;

    // Held for the store's lifetime; declared before db_, so released after the connection closed.
    detail::exclusive_file_lock lock_;
    // The writer's (the host's before the thread starts and after it is joined).
    detail::sqlite::db_ptr db_;
    statements st_; // declared after db_: finalized before the connection closes
    std::unordered_map<user_key, writer_user, user_key_hash> user_ids_; // writer thread: see writer_user
    std::vector<writer_user*> noted_;                            // the users noted in this batch
    std::vector<row> rows_;                                      // messages to insert: insert_rows()
    std::size_t insert_count_ = 1;                               // statements prepared in insert_messages
    std::size_t max_rows_ = 1;                                   // rows of the largest: 2^(insert_count_ - 1)
    // The operations the writer took from queue_ (all that were queued then, swapped: see queue_),
    // committed max_batch at a time; those before taken_ are done (moved from). Writer only; its
    // storage goes back to queue_ at the next swap.
    std::vector<op> batch_;
    std::size_t taken_ = 0;
    std::int64_t next_user_id_ = 1;                              // above every id in users
    std::thread writer_;
};

} // namespace switchboard
