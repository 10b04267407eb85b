// sqlite_inbox restart: what the store was told survives closing it and opening the file again —
// stored messages in order, acknowledged ones gone, sequence numbers continued (also for a user
// the store forgot), the known users and the de-duplication records.
#include "sqlite_test.hpp"

#include <string>
#include <vector>

using namespace sqlite_test;
using switchboard::sent_record;
using switchboard::sqlite_inbox_options;
using switchboard::status;

TEST_CASE("sqlite_inbox: messages, sequence numbers, known users and sent records survive a restart",
          "[sqlite]") {
    temp_dir dir;
    sqlite_inbox_options o;
    o.path = dir.file("chat.db");
    std::vector<status> durable;
    const auto record = [&](status s) { durable.push_back(s); };
    {
        auto store = open_store(o);
        store->remember(n("bob"));
        store->remember(n("carol"));
        store->remember(n("dave")); // known, never gets anything
        for (int i = 1; i <= 5; ++i) {
            const auto r = store->append(n("bob"), "alice", "to bob " + std::to_string(i), 1000 + i, record,
                                         i == 4 ? 0xA11CE4u : 0u);
            REQUIRE(r.code == status::ok);
            CHECK(r.seq == static_cast<std::uint64_t>(i));
        }
        CHECK(store->append(n("carol"), "bob", "to carol", 2000, record).seq == 1);
        CHECK(store->acknowledge(n("bob"), 2) == status::ok);
        store->record_sent(n("alice"), sent_record{77, 3000, 0, false}, record);
        CHECK(durable.empty()); // nothing is durable before the writer committed it
        store->flush();
        CHECK(store->run_completions() == 7);
        CHECK(store->stats().commits >= 1);
    }
    CHECK(durable == std::vector<status>(7, status::ok));
    CHECK(rows_in_file(o.path, "bob") == std::vector<std::uint64_t>{3, 4, 5});

    auto store = open_store(o);
    CHECK(store->is_known(n("bob")));
    CHECK(store->is_known(n("carol")));
    CHECK(store->is_known(n("dave")));
    CHECK_FALSE(store->is_known(n("alice")));
    check_bob_3_to_5(messages_of(*store, n("bob")));
    CHECK(store->highest_seq(n("bob")) == 5);
    CHECK(store->highest_seq(n("dave")) == 0);
    CHECK(store->append(n("bob"), "alice", "six", 4000, {}).seq == 6);
    CHECK(store->append(n("carol"), "bob", "two", 4000, {}).seq == 2);
    CHECK(store->append(n("dave"), "bob", "one", 4000, {}).seq == 1);
    std::vector<sent_record> sent;
    store->for_each_sent(n("alice"), [&](const sent_record& r) { sent.push_back(r); });
    REQUIRE(sent.size() == 2); // oldest first: the append's record, then record_sent's
    CHECK(sent[0].key == 0xA11CE4u);
    CHECK(sent[0].at_ms == 1004);
    CHECK(sent[0].seq == 4);
    CHECK(sent[0].queued);
    CHECK(sent[1].key == 77);
    CHECK(sent[1].at_ms == 3000);
    CHECK(sent[1].seq == 0);
    CHECK_FALSE(sent[1].queued);

    // Acknowledged again after the restart: gone for good.
    CHECK(store->acknowledge(n("bob"), 6) == status::ok);
    store->flush();
    store.reset();
    store = open_store(o);
    CHECK(store->stored(n("bob")) == 0);
    CHECK(store->highest_seq(n("bob")) == 6);
    CHECK(seqs(*store, n("carol")) == std::vector<std::uint64_t>{1, 2});
}

TEST_CASE("sqlite_inbox: a user forgotten to stay within bounds never gets a number twice, across a restart",
          "[sqlite]") {
    temp_dir dir;
    sqlite_inbox_options o;
    o.path = dir.file("chat.db");
    o.inbox.max_known_users = 2;
    {
        auto store = open_store(o);
        store->remember(n("a"));
        store->remember(n("b"));
        for (int i = 0; i < 7; ++i) (void)store->append(n("a"), "x", "m", 0, {});
        CHECK(store->acknowledge(n("a"), 7) == status::ok);
        (void)store->append(n("b"), "x", "kept", 0, {});
        store->remember(n("c")); // forgets a (nothing stored)
        CHECK_FALSE(store->is_known(n("a")));
        store->flush();
    }
    auto store = open_store(o);
    CHECK_FALSE(store->is_known(n("a")));
    CHECK(store->is_known(n("b")));
    CHECK(store->is_known(n("c")));
    CHECK(store->acknowledge(n("b"), 1) == status::ok);
    store->remember(n("a")); // back, and above every number given before the restart (7)
    REQUIRE(store->is_known(n("a")));
    CHECK(store->append(n("a"), "x", "m", 0, {}).seq > 7);
}

TEST_CASE("sqlite_inbox: expired messages and sent records are deleted from the file", "[sqlite]") {
    temp_dir dir;
    sqlite_inbox_options o;
    o.path = dir.file("chat.db");
    o.inbox.ttl = std::chrono::seconds{10};
    o.dedup_ttl = std::chrono::seconds{5};
    {
        auto store = open_store(o);
        store->remember(n("bob"));
        (void)store->append(n("bob"), "alice", "old", 1000, {}, 1);
        (void)store->append(n("bob"), "alice", "new", 9000, {}, 2);
        CHECK(store->expire(10999) == 0);
        CHECK(store->expire(11000) == 1); // the message and the record of 1000 are too old
        store->flush();
        CHECK(rows_in_file(o.path, "bob") == std::vector<std::uint64_t>{2});
    }
    auto store = open_store(o);
    CHECK(seqs(*store, n("bob")) == std::vector<std::uint64_t>{2});
    std::vector<std::uint64_t> keys;
    store->for_each_sent(n("alice"), [&](const sent_record& r) { keys.push_back(r.key); });
    CHECK(keys == std::vector<std::uint64_t>{2});
}
