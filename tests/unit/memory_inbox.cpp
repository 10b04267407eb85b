// memory_inbox: the bounds of the in-memory inbox store — per-user count, byte bound, TTL, the
// bounded set of known users — and sequence numbers that are never given twice.
#include <switchboard/memory_inbox.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using switchboard::memory_inbox;
using switchboard::memory_inbox_options;
using switchboard::name;
using switchboard::status;

namespace {
name n(const char* s) { return *name::parse(s); }
std::vector<std::uint64_t> seqs(const memory_inbox& box, const name& user) {
    std::vector<std::uint64_t> out;
    box.for_each(user, [&](const switchboard::stored_message& m) { out.push_back(m.seq); });
    return out;
}
} // namespace

TEST_CASE("memory_inbox: only known users; per-user count; cumulative acknowledgement", "[inbox]") {
    memory_inbox_options o;
    o.max_per_user = 3;
    memory_inbox box(o);
    CHECK(box.append(n("bob"), "alice", "hi", 0, {}).code == status::user_not_found);
    box.remember(n("bob"));
    status durable = status::store_failed;
    const auto first = box.append(n("bob"), "alice", "1", 0, [&](status s) { durable = s; });
    CHECK(first.code == status::ok);
    CHECK(first.seq == 1);
    CHECK(durable == status::ok); // the memory store is as durable as it gets, at once
    CHECK(box.append(n("bob"), "alice", "2", 0, {}).seq == 2);
    CHECK(box.append(n("bob"), "alice", "3", 0, {}).seq == 3);
    CHECK(box.append(n("bob"), "alice", "4", 0, {}).code == status::inbox_full);
    CHECK(box.stored(n("bob")) == 3);
    CHECK(box.acknowledge(n("bob"), 4) == status::ack_invalid); // above the highest given
    CHECK(box.acknowledge(n("bob"), 0) == status::ack_invalid);
    CHECK(box.stored(n("bob")) == 3);
    CHECK(box.acknowledge(n("bob"), 2) == status::ok);
    CHECK(seqs(box, n("bob")) == std::vector<std::uint64_t>{3});
    CHECK(box.acknowledge(n("bob"), 1) == status::ok); // again: a no-op
    CHECK(box.append(n("bob"), "alice", "5", 0, {}).seq == 4);
    box.remove_all(n("bob"));
    CHECK(box.stored(n("bob")) == 0);
    CHECK(box.highest_seq(n("bob")) == 4);
    CHECK(box.message_count() == 0);
    CHECK(box.bytes() == 0);
}

TEST_CASE("memory_inbox: the byte bound covers every inbox together", "[inbox]") {
    memory_inbox_options o;
    o.max_bytes = 2 * (memory_inbox::message_overhead + 10);
    memory_inbox box(o);
    box.remember(n("a"));
    box.remember(n("b"));
    CHECK(box.append(n("a"), "x", "123456789", 0, {}).code == status::ok); // 1 + 9 = 10 bytes
    CHECK(box.append(n("b"), "x", "123456789", 0, {}).code == status::ok);
    CHECK(box.append(n("b"), "x", "1", 0, {}).code == status::inbox_full);
    CHECK(box.acknowledge(n("a"), 1) == status::ok);
    CHECK(box.append(n("b"), "x", "1", 0, {}).code == status::ok);
}

TEST_CASE("memory_inbox: the TTL drops old messages in order, acknowledged ones are skipped", "[inbox]") {
    memory_inbox_options o;
    o.ttl = std::chrono::seconds{10};
    memory_inbox box(o);
    box.remember(n("bob"));
    (void)box.append(n("bob"), "a", "old", 1000, {});
    (void)box.append(n("bob"), "a", "acked", 2000, {});
    (void)box.append(n("bob"), "a", "new", 5000, {});
    CHECK(box.expire(10999) == 0);
    CHECK(box.expire(11000) == 1); // stored at 1000: 10 s old
    CHECK(box.acknowledge(n("bob"), 2) == status::ok);
    CHECK(box.expire(14999) == 0);
    CHECK(box.expire(15000) == 1);
    CHECK(box.stored(n("bob")) == 0);
}

TEST_CASE("memory_inbox: known users are bounded; a forgotten user never gets a sequence number twice",
          "[inbox]") {
    memory_inbox_options o;
    o.max_known_users = 2;
    memory_inbox box(o);
    box.remember(n("a"));
    box.remember(n("b"));
    for (int i = 0; i < 5; ++i) (void)box.append(n("a"), "x", "m", 0, {});
    CHECK(box.acknowledge(n("a"), 5) == status::ok); // a's inbox is empty again
    (void)box.append(n("b"), "x", "kept", 0, {});
    box.remember(n("c")); // full: forgets a (empty), never b (a message is stored)
    CHECK(box.known_users() == 2);
    CHECK_FALSE(box.is_known(n("a")));
    CHECK(box.is_known(n("b")));
    CHECK(box.stored(n("b")) == 1);
    box.remember(n("d")); // full, and c is the only empty one: c goes
    CHECK_FALSE(box.is_known(n("c")));
    const auto d_seq = box.append(n("d"), "x", "m", 0, {}).seq;
    CHECK(d_seq > 5); // d is new, but the store has forgotten someone: above every number given
    box.remember(n("e")); // every known user has messages: e stays unknown
    CHECK_FALSE(box.is_known(n("e")));
    CHECK(box.append(n("e"), "x", "m", 0, {}).code == status::user_not_found);
    CHECK(box.acknowledge(n("d"), d_seq) == status::ok);
    box.remember(n("a")); // a comes back: above every number given (5), so its 1..5 are not reused
    REQUIRE(box.is_known(n("a")));
    CHECK(box.append(n("a"), "x", "m", 0, {}).seq > 5);
}
