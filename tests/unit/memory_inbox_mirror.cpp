// memory_inbox as the in-memory view of a durable store (sqlite/sqlite_inbox.hpp): restoring users
// and messages found at start-up, removing one message whose commit failed, and reporting what
// remember() and expire() changed, so the store can mirror it in its database.
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
    box.for_each(user, [&](const stored_message& m) { out.push_back(m.seq); });
    return out;
}
} // namespace

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
    CHECK(box.bytes() == 5 + 4 + 5 + 3 + 2 * memory_inbox::message_overhead);
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
    CHECK(box.bytes() == bytes - (1 + 1 + memory_inbox::message_overhead));
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
