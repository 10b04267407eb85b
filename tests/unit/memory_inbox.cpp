// memory_inbox: the bounds of the in-memory inbox store — per-user count, byte bound, TTL, the
// bounded set of known users — and sequence numbers that are never given twice. Then memory_inbox
// as the in-memory view of a durable store (sqlite/sqlite_inbox.hpp): restoring users and messages
// found at start-up, removing one message whose commit failed, and reporting what remember() and
// expire() changed, so the store can mirror it in its database.
#include <switchboard/memory_inbox.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

using switchboard::memory_inbox;
using switchboard::memory_inbox_options;
using switchboard::name;
using switchboard::status;
using switchboard::stored_message;

namespace {
name n(const char* s) { return *name::parse(s); }
std::vector<std::uint64_t> seqs(const memory_inbox& box, const name& user) {
    std::vector<std::uint64_t> out;
    box.for_each(user, [&](const switchboard::stored_message_view& m) { out.push_back(m.seq); });
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
    o.max_bytes = 2 * memory_inbox::slot_bytes;
    memory_inbox box(o);
    box.remember(n("a"));
    box.remember(n("b"));
    CHECK(box.append(n("a"), "x", "123456789", 0, {}).code == status::ok); // inline: one slot
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

TEST_CASE("memory_inbox: restore_user brings back messages and continues the sequence", "[inbox]") {
    memory_inbox_options o;
    o.max_per_user = 3;
    o.ttl = std::chrono::seconds{10};
    memory_inbox box(o);
    std::vector<stored_message> stored{{4, "alice", "four", 1000}, {6, "carol", "six", 2000}};
    box.restore_user(n("bob"), 7, std::move(stored)); // 7 was given, then failed or was acknowledged
    box.restore_user(n("dave"), 2, {});                // known, nothing stored
    CHECK(box.is_known(n("bob")));
    CHECK(box.is_known(n("dave")));
    CHECK(box.known_users() == 2);
    CHECK(box.message_count() == 2);
    CHECK(box.bytes() == 2 * memory_inbox::slot_bytes);
    CHECK(seqs(box, n("bob")) == std::vector<std::uint64_t>{4, 6});
    CHECK(box.highest_seq(n("bob")) == 7);
    CHECK(box.highest_seq(n("dave")) == 2);
    CHECK(box.highest_given() == 7);
    CHECK(box.append(n("bob"), "alice", "eight", 3000, {}).seq == 8);
    CHECK(box.append(n("bob"), "alice", "nine", 3000, {}).code == status::inbox_full); // 3 stored
    CHECK(box.append(n("dave"), "alice", "x", 3000, {}).seq == 3);
    // Restored fronts expire like appended ones, in order.
    CHECK(box.expire(11000) == 1);
    CHECK(seqs(box, n("bob")) == std::vector<std::uint64_t>{6, 8});
    // A highest_seq below the last stored message is raised to it.
    box.restore_user(n("erin"), 0, {{5, "a", "x", 0}});
    CHECK(box.highest_seq(n("erin")) == 5);
    CHECK(box.acknowledge(n("bob"), 7) == status::ok);
    CHECK(seqs(box, n("bob")) == std::vector<std::uint64_t>{8});
}

TEST_CASE("memory_inbox: restore_high_water keeps a forgotten user's numbers from coming back",
          "[inbox]") {
    memory_inbox_options o;
    o.max_known_users = 1;
    memory_inbox box(o);
    box.restore_high_water(41, true); // persisted: 41 given to someone since forgotten
    CHECK(box.highest_given() == 41);
    CHECK(box.forgot_any());
    box.remember(n("zed"));
    CHECK(box.append(n("zed"), "a", "m", 0, {}).seq == 42);
    box.restore_high_water(3, false); // never lowers
    CHECK(box.highest_given() == 42);
    CHECK(box.forgot_any());
}

TEST_CASE("memory_inbox: admit reports who became known and who was forgotten", "[inbox]") {
    memory_inbox_options o;
    o.max_known_users = 2;
    memory_inbox box(o);
    auto r = box.admit(n("a"));
    CHECK(r.added);
    CHECK(r.forgotten.empty());
    CHECK_FALSE(box.admit(n("a")).added); // known already
    CHECK(box.admit(n("b")).added);
    (void)box.append(n("b"), "x", "m", 0, {});
    r = box.admit(n("c")); // full: a is the only one with nothing stored
    CHECK(r.added);
    CHECK(r.forgotten == n("a"));
    CHECK_FALSE(box.is_known(n("a")));
    CHECK(box.forgot_any());
    (void)box.append(n("c"), "x", "m", 0, {});
    r = box.admit(n("d")); // every known user has messages: d stays unknown
    CHECK_FALSE(r.added);
    CHECK(r.forgotten.empty());
    CHECK_FALSE(box.is_known(n("d")));
}

TEST_CASE("memory_inbox: remove_one takes out a failed message anywhere in the inbox", "[inbox]") {
    memory_inbox_options o;
    o.ttl = std::chrono::seconds{10};
    memory_inbox box(o);
    box.remember(n("bob"));
    for (int i = 1; i <= 5; ++i) (void)box.append(n("bob"), "a", "m", 1000 * i, {});
    const auto bytes = box.bytes();
    CHECK(box.remove_one(n("bob"), 3)); // the middle
    CHECK(seqs(box, n("bob")) == std::vector<std::uint64_t>{1, 2, 4, 5});
    CHECK(box.bytes() == bytes - memory_inbox::slot_bytes);
    CHECK_FALSE(box.remove_one(n("bob"), 3)); // gone already
    CHECK(box.remove_one(n("bob"), 1));       // the front: the next front's TTL takes over
    CHECK(box.first_seq(n("bob")) == 2);
    CHECK(box.remove_one(n("bob"), 5)); // the back
    CHECK(box.acknowledge(n("bob"), 2) == status::ok);
    CHECK_FALSE(box.remove_one(n("bob"), 2)); // acknowledged before its commit failed
    CHECK_FALSE(box.remove_one(n("nobody"), 1));
    CHECK(seqs(box, n("bob")) == std::vector<std::uint64_t>{4});
    CHECK(box.message_count() == 1);
    CHECK(box.expire(13999) == 0);
    CHECK(box.expire(14000) == 1); // 4 was stored at 4000
    CHECK(box.message_count() == 0);
    CHECK(box.bytes() == 0);
    // Its number is not given again.
    CHECK(box.append(n("bob"), "a", "m", 0, {}).seq == 6);
    CHECK(box.remove_one(n("bob"), 6)); // the last one: the inbox is empty, bob forgettable again
    CHECK(box.stored(n("bob")) == 0);
    CHECK(box.highest_seq(n("bob")) == 6);
}

TEST_CASE("memory_inbox: expire reports each dropped message", "[inbox]") {
    memory_inbox_options o;
    o.ttl = std::chrono::seconds{10};
    memory_inbox box(o);
    box.remember(n("bob"));
    box.remember(n("amy"));
    (void)box.append(n("bob"), "a", "m", 1000, {});
    (void)box.append(n("amy"), "a", "m", 2000, {});
    (void)box.append(n("bob"), "a", "m", 3000, {});
    (void)box.append(n("bob"), "a", "m", 9000, {});
    std::vector<std::pair<std::string, std::uint64_t>> dropped;
    CHECK(box.expire(13000, [&](const name& u, std::uint64_t seq) {
        dropped.emplace_back(std::string(u.view()), seq);
    }) == 3);
    CHECK(dropped == std::vector<std::pair<std::string, std::uint64_t>>{{"bob", 1}, {"amy", 1}, {"bob", 2}});
}

namespace {
std::vector<switchboard::stored_message> contents(const memory_inbox& box, const name& user) {
    std::vector<stored_message> out;
    box.for_each(user, [&](const switchboard::stored_message_view& m) { out.push_back(m.owned()); });
    return out;
}
} // namespace

TEST_CASE("memory_inbox: texts below, at and above the slot's inline bytes come back intact and are "
          "counted honestly", "[inbox]") {
    constexpr std::size_t inline_bytes = memory_inbox::inline_bytes;
    constexpr std::size_t slot = memory_inbox::slot_bytes;
    static_assert(memory_inbox::cost(0, inline_bytes) == slot, "inline: the slot alone");
    static_assert(memory_inbox::cost(6, inline_bytes - 6) == slot, "sender and text share the slot");
    static_assert(memory_inbox::cost(6, inline_bytes - 5) == slot + inline_bytes + 1 + memory_inbox::heap_overhead,
                  "one byte over: every byte goes to the heap block, counted with its overhead");
    memory_inbox box;
    box.remember(n("bob"));
    const std::string sender = "alice"; // 5 bytes
    const std::vector<std::string> texts{
        "",                                            // only the sender
        "hi",                                          // far below
        std::string(inline_bytes - 6, 'b'),            // one below the inline bytes
        std::string(inline_bytes - 5, 'a'),            // exactly at them (sender + text)
        std::string(inline_bytes - 4, 'o'),            // one above: a heap block
        std::string(4000, 'h'),                        // far above
        std::string(40, 'n'),                          // inline again after a heap one
    };
    std::size_t want_bytes = 0;
    for (std::size_t i = 0; i < texts.size(); ++i) {
        const std::string text = texts[i].empty() ? texts[i] : std::to_string(i) + texts[i].substr(1);
        REQUIRE(box.append(n("bob"), sender, text, static_cast<std::int64_t>(i), {}).code == status::ok);
        want_bytes += memory_inbox::cost(sender.size(), text.size());
        CHECK(box.bytes() == want_bytes);
    }
    CHECK(box.bytes() == 5 * slot + 2 * slot + (5 + inline_bytes - 4 + memory_inbox::heap_overhead) +
                             (5 + 4000 + memory_inbox::heap_overhead));
    // The ring grows (4 slots, then 8) while holding inline and heap messages: all intact.
    const auto got = contents(box, n("bob"));
    REQUIRE(got.size() == texts.size());
    for (std::size_t i = 0; i < texts.size(); ++i) {
        const std::string text = texts[i].empty() ? texts[i] : std::to_string(i) + texts[i].substr(1);
        CHECK(got[i].seq == i + 1);
        CHECK(got[i].from == sender);
        CHECK(got[i].text == text);
        CHECK(got[i].stored_ms == static_cast<std::int64_t>(i));
    }
    // Leaving from the middle (a failed commit) and the front (acknowledged) gives the bytes back.
    CHECK(box.remove_one(n("bob"), 5)); // the one above the inline bytes
    want_bytes -= memory_inbox::cost(sender.size(), inline_bytes - 4);
    CHECK(box.bytes() == want_bytes);
    CHECK(contents(box, n("bob"))[4].text == "5" + std::string(3999, 'h'));
    CHECK(box.acknowledge(n("bob"), 6) == status::ok);
    CHECK(box.bytes() == memory_inbox::cost(sender.size(), 40));
    CHECK(contents(box, n("bob")).at(0).text == "6" + std::string(39, 'n'));
    box.remove_all(n("bob"));
    CHECK(box.bytes() == 0);
}

TEST_CASE("memory_inbox: the byte bound counts a slot per inline message and the heap block of a "
          "long one", "[inbox]") {
    memory_inbox_options o;
    const std::size_t long_cost = memory_inbox::cost(1, 999);
    o.max_bytes = 3 * memory_inbox::slot_bytes + long_cost;
    memory_inbox box(o);
    box.remember(n("a"));
    CHECK(box.append(n("a"), "x", std::string(999, 'l'), 0, {}).code == status::ok);
    for (int i = 0; i < 3; ++i) CHECK(box.append(n("a"), "x", "short", 0, {}).code == status::ok);
    CHECK(box.bytes() == o.max_bytes);
    CHECK(box.append(n("a"), "x", "", 0, {}).code == status::inbox_full); // even an empty text takes a slot
    CHECK(box.acknowledge(n("a"), 1) == status::ok);                      // the long one leaves
    CHECK(box.bytes() == 3 * memory_inbox::slot_bytes);
    for (std::size_t i = 0; i < long_cost / memory_inbox::slot_bytes; ++i)
        CHECK(box.append(n("a"), "x", "short", 0, {}).code == status::ok);
    CHECK(box.append(n("a"), "x", std::string(999, 'l'), 0, {}).code == status::inbox_full);
}
