// sqlite_inbox and sequence numbers at the ends of SQLite's 64-bit integers: a file edited (or
// damaged) so that a user's next_seq, a message's seq or the high-water mark is negative, not an
// integer, or beyond what the store can continue is refused at open() with the row named; a user
// whose numbers reached sqlite_inbox::max_seq through the store's own appends gets store-failed
// for every further append (nothing stored, no number given twice), and the file still opens.
#include "sqlite_test.hpp"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

using namespace sqlite_test;
using switchboard::sqlite_inbox;
using switchboard::sqlite_inbox_options;
using switchboard::status;

namespace {

constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();

// A file with bob known and his messages 1 and 2 stored (alice known too, nothing stored).
void bob_with_two(const std::string& path) {
    sqlite_inbox_options o;
    o.path = path;
    auto store = open_store(o);
    store->remember(n("alice"));
    store->remember(n("bob"));
    CHECK(store->append(n("bob"), "alice", "one", 1000, {}).seq == 1);
    CHECK(store->append(n("bob"), "alice", "two", 1001, {}).seq == 2);
    store->flush();
}

std::string refused(const std::string& path) {
    sqlite_inbox_options o;
    o.path = path;
    auto r = sqlite_inbox::open(o);
    CHECK_FALSE(r);
    CHECK(r.code == switchboard::sqlite_open_error::failed);
    CHECK_THAT(r.error, Catch::Contains(path));
    return r.error;
}

} // namespace

TEST_CASE("sqlite_inbox: max_seq leaves room for the next number in an SQLite integer", "[sqlite]") {
    CHECK(sqlite_inbox::max_seq == static_cast<std::uint64_t>(int64_max) - 1);
}

TEST_CASE("sqlite_inbox: open() refuses sequence numbers the store cannot have written or continued", "[sqlite]") {
    // Before: a negative next_seq was read as "nothing given" (bob's numbers restarted at 1,
    // reusing those of messages already delivered and acknowledged); a seq or next_seq at
    // 2^63 - 1 was continued past it, wrapping to a negative number in the file.
    temp_dir dir;
    const std::string path = dir.file("chat.db");
    bob_with_two(path);
    edit(path, "UPDATE users SET next_seq = -5 WHERE name = 'bob'");
    CHECK_THAT(refused(path), Catch::Contains("table users holds next_seq -5 (for 'bob')"));
    edit(path, "UPDATE users SET next_seq = 0 WHERE name = 'bob'");
    CHECK_THAT(refused(path), Catch::Contains("table users holds next_seq 0 (for 'bob')"));
    edit(path, "UPDATE users SET next_seq = 1e19 WHERE name = 'bob'"); // a REAL: read as 2^63 - 1
    CHECK_THAT(refused(path), Catch::Contains("table users holds a next_seq that is not an integer (for 'bob')"));
    edit(path, "UPDATE users SET next_seq = '7 or so' WHERE name = 'bob'"); // TEXT ('7' would be stored as 7)
    CHECK_THAT(refused(path), Catch::Contains("table users holds a next_seq that is not an integer (for 'bob')"));
    edit(path, "UPDATE users SET next_seq = 3 WHERE name = 'bob'; "
               "UPDATE messages SET seq = 9223372036854775807 WHERE seq = 2");
    CHECK_THAT(refused(path), Catch::Contains("table messages holds sequence number 9223372036854775807 (user 'bob')"));
    edit(path, "UPDATE messages SET seq = 2.5 WHERE seq = 9223372036854775807");
    CHECK_THAT(refused(path), Catch::Contains("table messages holds a sequence number that is not an integer (user 'bob')"));
    edit(path, "UPDATE messages SET seq = 2 WHERE seq = 2.5; "
               "UPDATE meta SET value = 9223372036854775807 WHERE key = 'high_water'");
    CHECK_THAT(refused(path), Catch::Contains("table meta holds high_water 9223372036854775807"));
    edit(path, "UPDATE meta SET value = -1 WHERE key = 'high_water'");
    CHECK_THAT(refused(path), Catch::Contains("table meta holds high_water -1"));
    edit(path, "UPDATE meta SET value = 2 WHERE key = 'high_water'");
    sqlite_inbox_options o;
    o.path = path;
    auto store = open_store(o); // restored as it was: nothing of the refused opens stayed
    CHECK(seqs(*store, n("bob")) == std::vector<std::uint64_t>{1, 2});
    CHECK(store->highest_seq(n("bob")) == 2);
}

TEST_CASE("sqlite_inbox: a user at max_seq gets store-failed, and no number is given twice", "[sqlite]") {
    temp_dir dir;
    sqlite_inbox_options o;
    o.path = dir.file("chat.db");
    bob_with_two(o.path);
    // Both messages were delivered and acknowledged; the next number is the last one the store
    // can give (as if 2^63 - 3 more had been given).
    edit(o.path, "DELETE FROM messages; UPDATE users SET next_seq = 9223372036854775806 WHERE name = 'bob'");
    const std::uint64_t last = sqlite_inbox::max_seq;
    {
        auto store = open_store(o);
        CHECK(store->highest_seq(n("bob")) == last - 1);
        std::vector<status> done;
        const auto a = store->append(n("bob"), "alice", "last", 2000, [&](status s) { done.push_back(s); });
        CHECK(a.code == status::ok);
        CHECK(a.seq == last);
        store->flush();
        CHECK(store->run_completions() == 1);
        CHECK(done == std::vector<status>{status::ok});
        // Before: this one got 2^63, written as -2^63 (the file then refused every later open).
        const auto b = store->append(n("bob"), "alice", "past", 2001, [&](status s) { done.push_back(s); });
        CHECK(b.code == status::store_failed);
        CHECK(b.seq == 0);
        CHECK(store->append(n("bob"), "alice", "past", 2002, {}).code == status::store_failed);
        CHECK(store->stored(n("bob")) == 1);
        CHECK(store->highest_seq(n("bob")) == last);
        CHECK(store->append(n("alice"), "bob", "others go on", 2003, {}).seq == 1);
        store->flush();
        CHECK(store->run_completions() == 1); // alice's only: a refused append has no completion
        CHECK(done.size() == 1);
        CHECK(store->stats().rollbacks == 0);
    }
    CHECK(rows_in_file(o.path, "bob") == std::vector<std::uint64_t>{last});
    auto store = open_store(o); // the file opens: bob's numbers are used up, not wrapped
    CHECK(seqs(*store, n("bob")) == std::vector<std::uint64_t>{last});
    CHECK(store->highest_seq(n("bob")) == last);
    CHECK(store->append(n("bob"), "alice", "still past", 3000, {}).code == status::store_failed);
    CHECK(store->acknowledge(n("bob"), last) == status::ok);
    CHECK(store->append(n("bob"), "alice", "after the ack", 3001, {}).code == status::store_failed);
}

TEST_CASE("sqlite_inbox: a user new after a forgotten one starts above a high-water mark at max_seq", "[sqlite]") {
    // Users remembered after one was forgotten start above the highest number given to anyone;
    // at max_seq that is the number after the last one, so their appends are store-failed too.
    temp_dir dir;
    sqlite_inbox_options o;
    o.path = dir.file("chat.db");
    bob_with_two(o.path);
    edit(o.path, "UPDATE meta SET value = 9223372036854775806 WHERE key = 'high_water'; "
                         "UPDATE meta SET value = 1 WHERE key = 'forgot_any'");
    {
        auto store = open_store(o);
        store->remember(n("carol"));
        CHECK(store->highest_seq(n("carol")) == sqlite_inbox::max_seq);
        CHECK(store->append(n("carol"), "bob", "hi", 2000, {}).code == status::store_failed);
        CHECK(store->append(n("bob"), "alice", "three", 2001, {}).seq == 3);
        store->flush();
        CHECK(store->stats().rollbacks == 0);
    }
    auto store = open_store(o);
    CHECK(store->highest_seq(n("carol")) == sqlite_inbox::max_seq);
    CHECK(seqs(*store, n("bob")) == std::vector<std::uint64_t>{1, 2, 3});
}
