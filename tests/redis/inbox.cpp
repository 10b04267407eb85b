// redis::inbox, the cluster inbox on Redis Streams (issue #14, item 5), against a real
// redis-server: offline and held appends, several nodes (several store objects, each on its own
// connection) sharing one Redis, conflicts, bounds, TTL, the floor, de-duplication records, a
// Redis restart, backpressure.
#include "redis_test.hpp"

#include <switchboard/redis/redis_inbox.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

using namespace redis_test;
using switchboard::append_result;
using switchboard::message_key;
using switchboard::name;
using switchboard::sent_record;
using switchboard::status;
using switchboard::stored_message;
using switchboard::stored_message_view;
using switchboard::redis::connection;
using switchboard::redis::inbox;
using switchboard::redis::inbox_options;
using switchboard::test::redis_server;
using switchboard::test::redis_server_options;

namespace {

constexpr std::int64_t now = 1'700'000'000'000; // Unix ms: the tests' clock
constexpr std::int64_t day = 86'400'000;

name user(std::string_view s) { return *name::parse(s); }

// One node's view of the cluster inbox: its own connection to the shared Redis, and the store.
struct node {
    connection conn;
    inbox store;
    node(net::io_context& io, const redis_server& s, inbox_options o = {})
        : conn(io, fast_options(s)), store(conn, std::move(o)) {
        conn.start();
    }
};

bool up(net::io_context& io, node& n) {
    return run_until(io, [&] { return n.conn.connected(); });
}

// Two nodes of one cluster on one Redis, both connected.
struct two_nodes {
    redis_server server;
    net::io_context io;
    node n1{io, server}, n2{io, server};
    two_nodes() {
        REQUIRE(up(io, n1));
        REQUIRE(up(io, n2));
    }
};

// Loads `who` on `n` and waits for the outcome.
bool load(net::io_context& io, node& n, std::string_view who, std::int64_t at = now);

// Two nodes of one cluster, both holding bob.
struct bob_on_two_nodes : two_nodes {
    bob_on_two_nodes() {
        REQUIRE(load(io, n1, "bob"));
        REQUIRE(load(io, n2, "bob"));
    }
};

// One node with options `o` on a Redis of its own, connected, with bob loaded.
struct bob_on_one_node {
    redis_server server;
    net::io_context io;
    node n1;
    explicit bob_on_one_node(inbox_options o) : n1(io, server, std::move(o)) {
        REQUIRE(up(io, n1));
        REQUIRE(load(io, n1, "bob"));
    }
};

// Loads `who` on `n` and waits for the outcome.
bool load(net::io_context& io, node& n, std::string_view who, std::int64_t at) {
    std::optional<bool> done;
    n.store.load(user(who), at, [&](bool ok) { done = ok; });
    REQUIRE_FALSE(done.has_value()); // never from inside load()
    REQUIRE(run_until(io, [&] { return done.has_value(); }));
    return *done;
}

// One append and, when it was taken, its completion.
struct outcome {
    append_result result;
    std::optional<status> durable;
};

outcome append(net::io_context& io, node& n, std::string_view to, std::string_view from, std::string_view text,
               std::int64_t at = now, std::uint64_t key = 0) {
    outcome o;
    o.result = n.store.append(user(to), from, text, at, [&](status s) { o.durable = s; }, key);
    CHECK_FALSE(o.durable.has_value()); // never from inside append()
    if (o.result.code == status::ok) REQUIRE(run_until(io, [&] { return o.durable.has_value(); }));
    return o;
}

// The entry IDs of a user's stream, in order.
std::vector<std::string> ids(const redis_server& s, std::string_view who) {
    std::vector<std::string> out;
    const std::string flat = s.command({"XRANGE", "sb:inbox:" + std::string(who), "-", "+"});
    std::size_t at = 0;
    while (at <= flat.size()) {
        const std::size_t nl = flat.find('\n', at);
        const std::string line = flat.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
        if (line.size() > 2 && line.compare(line.size() - 2, 2, "-0") == 0 &&
            line.find_first_not_of("0123456789-") == std::string::npos)
            out.push_back(line);
        if (nl == std::string::npos) break;
        at = nl + 1;
    }
    return out;
}

std::vector<stored_message> messages(const inbox& store, std::string_view who) {
    std::vector<stored_message> out;
    store.for_each(user(who), [&](const stored_message_view& m) { out.push_back(m.owned()); });
    return out;
}

std::vector<std::uint64_t> seqs(const inbox& store, std::string_view who) {
    std::vector<std::uint64_t> out;
    for (const stored_message& m : messages(store, who)) out.push_back(m.seq);
    return out;
}

std::vector<sent_record> records(const inbox& store, std::string_view who) {
    std::vector<sent_record> out;
    store.for_each_sent(user(who), [&](const sent_record& r) { out.push_back(r); });
    return out;
}

// Waits (with a deadline) until Redis says `argv` answers `expected` (fire-and-forget commands).
bool eventually(net::io_context& io, const redis_server& s, const std::vector<std::string>& argv,
                const std::string& expected) {
    return run_until(io, [&] { return s.command(argv) == expected; });
}

} // namespace

TEST_CASE("inbox: offline appends are numbered by Redis, replayed on another node, acknowledged from there",
          "[inbox]") {
    two_nodes c;
    redis_server& server = c.server;
    net::io_context& io = c.io;
    node &n1 = c.n1, &n2 = c.n2;

    // Not known yet: taken (number 0), then refused by Redis.
    outcome o = append(io, n1, "bob", "alice", "hello?");
    CHECK(o.result.code == status::ok);
    CHECK(o.result.seq == 0);
    CHECK(o.durable == status::user_not_found);
    CHECK(server.command({"EXISTS", "sb:inbox:bob"}) == "0");

    n1.store.remember(user("bob"));
    std::vector<status> done;
    for (const char* text : {"one", "two", "three"}) {
        const append_result r = n1.store.append(user("bob"), "alice", text, now, [&](status s) { done.push_back(s); });
        CHECK(r.code == status::ok);
        CHECK(r.seq == 0); // given by Redis at commit
    }
    CHECK(done.empty());
    REQUIRE(run_until(io, [&] { return done.size() == 3; }));
    CHECK(done == std::vector<status>{status::ok, status::ok, status::ok});
    CHECK(ids(server, "bob") == std::vector<std::string>{"1-0", "2-0", "3-0"});
    CHECK(server.command({"HGET", "sb:inboxmeta:bob", "seq"}) == "3");
    CHECK(n1.store.stored(user("bob")) == 0); // not held here: nothing to show
    CHECK(n1.store.highest_seq(user("bob")) == 0);

    // Every key but the floor has a TTL.
    for (const char* key : {"sb:inbox:bob", "sb:inboxmeta:bob"}) CHECK(std::stoll(server.command({"PTTL", key})) > 0);
    CHECK(server.command({"PTTL", "sb:inboxfloor"}) == "-1");

    // Another node takes bob: the three, in order, with their sender and time.
    REQUIRE(load(io, n2, "bob"));
    CHECK(n2.store.holds(user("bob")));
    CHECK_FALSE(n1.store.holds(user("bob")));
    const auto got = messages(n2.store, "bob");
    REQUIRE(got.size() == 3);
    CHECK(got[0].seq == 1);
    CHECK(got[0].from == "alice");
    CHECK(got[0].text == "one");
    CHECK(got[0].stored_ms == now);
    CHECK(got[2].text == "three");
    CHECK(n2.store.highest_seq(user("bob")) == 3);
    CHECK(n2.store.first_seq(user("bob")) == 1);

    // Acknowledged there: 0 and above the highest are invalid; 2 trims Redis too.
    CHECK(n2.store.acknowledge(user("bob"), 0) == status::ack_invalid);
    CHECK(n2.store.acknowledge(user("bob"), 4) == status::ack_invalid);
    CHECK(n1.store.acknowledge(user("bob"), 1) == status::ack_invalid); // not held on n1
    CHECK(n2.store.acknowledge(user("bob"), 2) == status::ok);
    CHECK(seqs(n2.store, "bob") == std::vector<std::uint64_t>{3});
    REQUIRE(eventually(io, server, {"XLEN", "sb:inbox:bob"}, "1"));

    // A third node sees only 3.
    node n3(io, server);
    REQUIRE(up(io, n3));
    REQUIRE(load(io, n3, "bob"));
    CHECK(seqs(n3.store, "bob") == std::vector<std::uint64_t>{3});
    CHECK(n3.store.highest_seq(user("bob")) == 3);

    // unload: the cache goes with the last hold.
    n2.store.unload(user("bob"));
    CHECK_FALSE(n2.store.holds(user("bob")));
    CHECK(n2.store.stored(user("bob")) == 0);
}

TEST_CASE("inbox: a held user's appends are numbered at once and complete in order", "[inbox]") {
    two_nodes c;
    redis_server& server = c.server;
    net::io_context& io = c.io;
    node &n1 = c.n1, &n2 = c.n2;
    REQUIRE(load(io, n1, "bob")); // makes bob known too
    CHECK(server.command({"HGET", "sb:inboxmeta:bob", "seq"}) == "0");

    std::vector<std::pair<int, status>> done;
    for (int i = 1; i <= 5; ++i) {
        const append_result r = n1.store.append(user("bob"), "alice", "m" + std::to_string(i), now + i,
                                                [&, i](status s) { done.emplace_back(i, s); });
        CHECK(r.code == status::ok);
        CHECK(r.seq == static_cast<std::uint64_t>(i));
        CHECK(n1.store.stored(user("bob")) == static_cast<std::size_t>(i)); // in the cache before the commit
        CHECK(n1.store.highest_seq(user("bob")) == static_cast<std::uint64_t>(i));
    }
    CHECK(done.empty());
    REQUIRE(run_until(io, [&] { return done.size() == 5; }));
    for (int i = 1; i <= 5; ++i) CHECK(done[static_cast<std::size_t>(i - 1)] == std::make_pair(i, status::ok));
    CHECK(ids(server, "bob") == std::vector<std::string>{"1-0", "2-0", "3-0", "4-0", "5-0"});
    CHECK(server.command({"HGET", "sb:inboxmeta:bob", "seq"}) == "5");
    CHECK(server.command({"GET", "sb:inboxfloor"}) == "5");
    CHECK(n1.store.counters().committed == 5);

    // While a session of bob is on some node (its directory entry exists), another node's
    // offline append is refused: the sender must route to that node.
    server.command({"HSET", "sb:user:bob", "n1/1", "7"});
    outcome o = append(io, n2, "bob", "carol", "hi");
    CHECK(o.result.code == status::ok);
    CHECK(o.durable == status::store_busy);
    CHECK(n2.store.counters().held_elsewhere == 1);
    CHECK(ids(server, "bob").size() == 5);
    server.command({"DEL", "sb:user:bob"});
    o = append(io, n2, "bob", "carol", "hi");
    CHECK(o.durable == status::ok);
    CHECK(ids(server, "bob").back() == "6-0");

    // remove_all: the cache and Redis.
    REQUIRE(load(io, n2, "bob"));
    CHECK(n2.store.stored(user("bob")) == 6);
    n2.store.remove_all(user("bob"));
    CHECK(n2.store.stored(user("bob")) == 0);
    CHECK(n2.store.highest_seq(user("bob")) == 6);
    REQUIRE(eventually(io, server, {"XLEN", "sb:inbox:bob"}, "0"));
}

TEST_CASE("inbox: two nodes appending to one held user: the loser's message is gone, no number twice",
          "[inbox]") {
    bob_on_two_nodes c;
    redis_server& server = c.server;
    net::io_context& io = c.io;
    node &n1 = c.n1, &n2 = c.n2;

    CHECK(append(io, n1, "bob", "alice", "first").durable == status::ok);
    CHECK(append(io, n1, "bob", "alice", "second").durable == status::ok);

    // n2's cache still says 0: it gives 1 again, which Redis refuses.
    std::optional<status> lost;
    std::size_t stored_in_handler = 99;
    const append_result r = n2.store.append(user("bob"), "carol", "late", now, [&](status s) {
        lost = s;
        stored_in_handler = n2.store.stored(user("bob")); // removed from the cache first
    });
    CHECK(r.code == status::ok);
    CHECK(r.seq == 1);
    CHECK(n2.store.stored(user("bob")) == 1);
    REQUIRE(run_until(io, [&] { return lost.has_value(); }));
    CHECK(*lost == status::store_busy);
    CHECK(stored_in_handler == 0);
    CHECK(n2.store.stored(user("bob")) == 0);
    CHECK(n2.store.counters().conflicts == 1);

    // Its next append continues above the winner's numbers.
    outcome o = append(io, n2, "bob", "carol", "again");
    CHECK(o.result.seq == 3);
    CHECK(o.durable == status::ok);
    CHECK(n2.store.highest_seq(user("bob")) == 3);
    CHECK(ids(server, "bob") == std::vector<std::string>{"1-0", "2-0", "3-0"});

    // A number refused once is not given again, even to a later append of the loser.
    const std::string flat = server.command({"XRANGE", "sb:inbox:bob", "-", "+"});
    CHECK(flat.find("late") == std::string::npos);
    CHECK(flat.find("again") != std::string::npos);

    // n2 acknowledges through 3: it only ever showed 3, so 1 and 2 (n1's) stay in Redis.
    CHECK(n2.store.acknowledge(user("bob"), 3) == status::ok);
    REQUIRE(eventually(io, server, {"XLEN", "sb:inbox:bob"}, "2"));
    CHECK(ids(server, "bob") == std::vector<std::string>{"1-0", "2-0"});
    // n1 never saw another node's number: its acknowledgement is cumulative.
    CHECK(n1.store.acknowledge(user("bob"), 2) == status::ok);
    REQUIRE(eventually(io, server, {"XLEN", "sb:inbox:bob"}, "0"));
}

// append_once() on `n` and its completion.
outcome once(net::io_context& io, node& n, std::string_view to, message_key key, std::string_view text) {
    outcome o;
    o.result = n.store.append_once(user(to), key, "alice", text, now, [&](status s) { o.durable = s; });
    CHECK_FALSE(o.durable.has_value()); // never from inside append_once()
    if (o.result.code == status::ok) REQUIRE(run_until(io, [&] { return o.durable.has_value(); }));
    return o;
}

TEST_CASE("inbox: a message received by two nodes holding one user is stored once, under one number; "
          "each cache gets what the other stored, and drops what the other acknowledged",
          "[inbox]") {
    bob_on_two_nodes c;
    redis_server& server = c.server;
    net::io_context& io = c.io;
    node &n1 = c.n1, &n2 = c.n2;
    const message_key k1{7, 1}, k2{7, 2}, k3{9, 1};

    // k1 reaches n1 first, k2 reaches n2 first: Redis numbers them in that order.
    const outcome a = once(io, n1, "bob", k1, "one");
    CHECK(a.result.seq == 0); // numbered by Redis
    CHECK(a.durable == status::ok);
    CHECK(seqs(n1.store, "bob") == std::vector<std::uint64_t>{1});
    CHECK(once(io, n2, "bob", k2, "two").durable == status::ok);
    CHECK(seqs(n2.store, "bob") == std::vector<std::uint64_t>{1, 2}); // n1's came with the reply
    // The second arrival of each finds it: nothing stored again, the caches agree.
    CHECK(once(io, n2, "bob", k1, "one").durable == status::ok);
    CHECK(once(io, n1, "bob", k2, "two").durable == status::ok);
    CHECK(n1.store.counters().once_stored == 1);
    CHECK(n1.store.counters().once_found == 1);
    CHECK(n2.store.counters().once_found == 1);
    CHECK(ids(server, "bob") == std::vector<std::string>{"1-0", "2-0"});
    const auto m1 = messages(n1.store, "bob"), m2 = messages(n2.store, "bob");
    REQUIRE(m1.size() == 2);
    REQUIRE(m2.size() == 2);
    CHECK(m1[0].text == "one");
    CHECK(m1[1].text == "two");
    CHECK(m2[0].text == "one");
    CHECK(m2[1].text == "two");
    CHECK(n1.store.highest_seq(user("bob")) == 2);
    CHECK(n2.store.highest_seq(user("bob")) == 2);
    // Every key set has a TTL.
    CHECK(std::stoll(server.command({"PTTL", "sb:inboxonce:bob"})) > 0);

    // An acknowledgement on n1 removes 1 from Redis; n2's cache drops it at its next reply.
    CHECK(n1.store.acknowledge(user("bob"), 1) == status::ok);
    REQUIRE(eventually(io, server, {"XLEN", "sb:inbox:bob"}, "1"));
    CHECK(once(io, n2, "bob", k3, "three").durable == status::ok);
    CHECK(seqs(n2.store, "bob") == std::vector<std::uint64_t>{2, 3});

    // n2 acknowledges everything; a second session on n1 refreshes n1's cache: nothing stale
    // is left to replay, and n1 knows 3 was given.
    CHECK(n2.store.acknowledge(user("bob"), 3) == status::ok);
    REQUIRE(eventually(io, server, {"XLEN", "sb:inbox:bob"}, "0"));
    CHECK(seqs(n1.store, "bob") == std::vector<std::uint64_t>{2}); // before the refresh: stale
    REQUIRE(load(io, n1, "bob"));
    CHECK(seqs(n1.store, "bob").empty());
    CHECK(n1.store.highest_seq(user("bob")) == 3);
    CHECK(n1.store.counters().refreshes == 1);
}

TEST_CASE("inbox: an acknowledgement reported by another node leaves the cache for good; acknowledge() "
          "calls the hook that reports it",
          "[inbox]") {
    bob_on_two_nodes c;
    net::io_context& io = c.io;
    node &n1 = c.n1, &n2 = c.n2;
    std::vector<std::pair<std::string, std::uint64_t>> told;
    n1.store.on_acknowledge([&](const name& who, std::uint64_t through) { told.emplace_back(who.view(), through); });
    CHECK(once(io, n1, "bob", message_key{3, 1}, "one").durable == status::ok);
    CHECK(once(io, n1, "bob", message_key{3, 2}, "two").durable == status::ok);
    // n1 acknowledged 1 and 2; n2 hears of it before n1's trim ran in Redis (and before n2 saw
    // 1 and 2 at all): its next reply from Redis still lists them, and they stay out.
    n2.store.acknowledged_elsewhere(user("bob"), 2);
    CHECK(once(io, n2, "bob", message_key{3, 3}, "three").durable == status::ok);
    CHECK(seqs(n2.store, "bob") == std::vector<std::uint64_t>{3});
    CHECK(n2.store.highest_seq(user("bob")) == 3);
    // The acknowledgement on n1: the hook reports it (the host sends it to the other nodes).
    CHECK(n1.store.acknowledge(user("bob"), 2) == status::ok);
    CHECK(told == std::vector<std::pair<std::string, std::uint64_t>>{{"bob", 2}});
}

TEST_CASE("inbox: the keys of messages stored once are bounded per user", "[inbox]") {
    inbox_options o;
    o.once_keys = 2;
    bob_on_one_node c(o);
    redis_server& server = c.server;
    net::io_context& io = c.io;
    node& n1 = c.n1;
    for (std::uint64_t i = 1; i <= 3; ++i) CHECK(once(io, n1, "bob", message_key{5, i}, "x").durable == status::ok);
    CHECK(server.command({"ZCARD", "sb:inboxonce:bob"}) == "2");
    CHECK(server.command({"ZSCORE", "sb:inboxonce:bob", "5:1"}) == "(nil)"); // the oldest went
    // Beyond the bound, a late arrival of the oldest is stored again (the documented window).
    CHECK(once(io, n1, "bob", message_key{5, 1}, "x").durable == status::ok);
    CHECK(n1.store.highest_seq(user("bob")) == 4);
}

TEST_CASE("inbox: inbox_full at max_per_user, held and offline; expired messages dropped at load", "[inbox]") {
    redis_server server;
    net::io_context io;
    inbox_options o;
    o.max_per_user = 2;
    node n1(io, server, o), n2(io, server, o);
    REQUIRE(up(io, n1));
    REQUIRE(up(io, n2));

    SECTION("held: refused at once") {
        REQUIRE(load(io, n1, "bob"));
        CHECK(append(io, n1, "bob", "alice", "1").durable == status::ok);
        CHECK(append(io, n1, "bob", "alice", "2").durable == status::ok);
        const outcome full = append(io, n1, "bob", "alice", "3");
        CHECK(full.result.code == status::inbox_full);
        CHECK_FALSE(full.durable.has_value());
        // After an acknowledgement there is room again.
        CHECK(n1.store.acknowledge(user("bob"), 1) == status::ok);
        CHECK(append(io, n1, "bob", "alice", "3").result.seq == 3);
    }
    SECTION("held: Redis refuses what another node filled") {
        REQUIRE(load(io, n1, "bob"));
        n2.store.remember(user("bob"));
        CHECK(append(io, n2, "bob", "alice", "1").durable == status::ok);
        CHECK(append(io, n2, "bob", "alice", "2").durable == status::ok);
        const outcome full = append(io, n1, "bob", "alice", "3");
        CHECK(full.result.code == status::ok); // n1's cache is empty
        CHECK(full.durable == status::store_busy); // its number was given meanwhile: conflict first
        const outcome again = append(io, n1, "bob", "alice", "4");
        CHECK(again.durable == status::inbox_full); // above the winner's numbers, but no room
        CHECK(n1.store.stored(user("bob")) == 0);
    }
    SECTION("offline: refused by Redis; expired entries make room") {
        n1.store.remember(user("bob"));
        CHECK(append(io, n1, "bob", "alice", "old", now - 8 * day).durable == status::ok);
        CHECK(append(io, n1, "bob", "alice", "new", now).durable == status::ok);
        // Full, but the old one expired (7 days): it is dropped to make room.
        CHECK(append(io, n1, "bob", "alice", "newer", now).durable == status::ok);
        CHECK(ids(server, "bob") == std::vector<std::string>{"2-0", "3-0"});
        CHECK(append(io, n1, "bob", "alice", "full", now).durable == status::inbox_full);
        CHECK(ids(server, "bob").size() == 2);
    }
    SECTION("ttl: an old message is dropped at load") {
        n1.store.remember(user("bob"));
        CHECK(append(io, n1, "bob", "alice", "old", now - 8 * day).durable == status::ok);
        CHECK(append(io, n1, "bob", "alice", "fresh", now - 6 * day).durable == status::ok);
        REQUIRE(load(io, n2, "bob"));
        CHECK(seqs(n2.store, "bob") == std::vector<std::uint64_t>{2});
        CHECK(n2.store.highest_seq(user("bob")) == 2);
        CHECK(ids(server, "bob") == std::vector<std::string>{"2-0"});
        // expire() on the held cache: the second one, a day later.
        CHECK(n2.store.expire(now + 2 * day) == 1);
        CHECK(n2.store.stored(user("bob")) == 0);
        REQUIRE(eventually(io, server, {"XLEN", "sb:inbox:bob"}, "0"));
    }
}

TEST_CASE("inbox: a user whose meta expired starts above every number given", "[inbox]") {
    two_nodes c;
    redis_server& server = c.server;
    net::io_context& io = c.io;
    node &n1 = c.n1, &n2 = c.n2;
    n1.store.remember(user("bob"));
    n1.store.remember(user("carol"));
    for (int i = 0; i < 3; ++i) CHECK(append(io, n1, "bob", "alice", "b").durable == status::ok);
    for (int i = 0; i < 5; ++i) CHECK(append(io, n1, "carol", "alice", "c").durable == status::ok);
    CHECK(server.command({"GET", "sb:inboxfloor"}) == "5");

    // bob's meta expires (its stream too, by then): unknown again.
    server.command({"DEL", "sb:inboxmeta:bob", "sb:inbox:bob"});
    CHECK(append(io, n1, "bob", "alice", "lost").durable == status::user_not_found);
    n1.store.remember(user("bob"));
    REQUIRE(eventually(io, server, {"HGET", "sb:inboxmeta:bob", "seq"}, "5"));
    const outcome o = append(io, n1, "bob", "alice", "back");
    CHECK(o.durable == status::ok);
    CHECK(ids(server, "bob") == std::vector<std::string>{"6-0"});

    // The same through load (a registration on a node) and a held append.
    server.command({"DEL", "sb:inboxmeta:carol"});
    REQUIRE(load(io, n2, "carol"));
    CHECK(n2.store.highest_seq(user("carol")) == 6);
    CHECK(seqs(n2.store, "carol") == std::vector<std::uint64_t>{1, 2, 3, 4, 5}); // its stream stayed
    const outcome held = append(io, n2, "carol", "alice", "back");
    CHECK(held.result.seq == 7);
    CHECK(held.durable == status::ok);
    CHECK(server.command({"GET", "sb:inboxfloor"}) == "7");
}

TEST_CASE("inbox: de-duplication records survive into another node", "[inbox]") {
    two_nodes c;
    redis_server& server = c.server;
    net::io_context& io = c.io;
    node &n1 = c.n1, &n2 = c.n2;
    REQUIRE(load(io, n1, "alice"));
    n1.store.remember(user("bob"));

    std::vector<status> done;
    n1.store.record_sent(user("alice"), sent_record{11, now, 0, false}, [&](status s) { done.push_back(s); });
    CHECK(done.empty()); // never from inside the call
    CHECK(records(n1.store, "alice").size() == 1); // in the sender's cache at once
    // An offline append with its record, in the same script.
    CHECK(append(io, n1, "bob", "alice", "queued", now + 1, 22).durable == status::ok);
    // The same key again: the latest outcome wins.
    n1.store.record_sent(user("alice"), sent_record{11, now + 2, 0, false}, [&](status s) { done.push_back(s); });
    REQUIRE(run_until(io, [&] { return done.size() == 2; }));
    CHECK(done == std::vector<status>{status::ok, status::ok});
    CHECK(std::stoll(server.command({"PTTL", "sb:sent:alice"})) > 0);

    const auto here = records(n1.store, "alice");
    REQUIRE(here.size() == 2);
    CHECK(here[0].key == 11);
    CHECK(here[0].at_ms == now + 2);
    CHECK(here[1].key == 22);
    CHECK(here[1].seq == 1);
    CHECK(here[1].queued);

    REQUIRE(load(io, n2, "alice", now + 3));
    const auto there = records(n2.store, "alice");
    REQUIRE(there.size() == 2);
    CHECK(there[0].key == 11);
    CHECK(there[0].at_ms == now + 2);
    CHECK_FALSE(there[0].queued);
    CHECK(there[1].key == 22);
    CHECK(there[1].at_ms == now + 1);
    CHECK(there[1].seq == 1);
    CHECK(there[1].queued);
    CHECK(records(n2.store, "bob").empty()); // not held: nothing

    // Records older than dedup_ttl are left out at load.
    node n3(io, server);
    REQUIRE(up(io, n3));
    REQUIRE(load(io, n3, "alice", now + 2 * day));
    CHECK(records(n3.store, "alice").empty());
}

TEST_CASE("inbox: what was answered ok survives a Redis restart (appendonly); down: cluster_unavailable",
          "[inbox]") {
    redis_server_options so;
    so.appendonly = true;
    // Not everysec: with it Redis may answer a write whose AOF write it postponed (a background
    // fsync still running), which a kill -9 then loses (redis_inbox.hpp, "What Redis must be").
    so.extra_args = {"--appendfsync", "always"};
    redis_server server(so);
    net::io_context io;
    node n1(io, server);
    REQUIRE(up(io, n1));
    REQUIRE(load(io, n1, "bob"));
    n1.store.remember(user("carol"));
    for (int i = 0; i < 3; ++i) CHECK(append(io, n1, "bob", "alice", "held").durable == status::ok);
    for (int i = 0; i < 2; ++i) CHECK(append(io, n1, "carol", "alice", "offline", now, 100 + i).durable == status::ok);

    server.kill9();
    REQUIRE(run_until(io, [&] { return !n1.conn.connected(); }));
    std::optional<status> never;
    CHECK(n1.store.append(user("bob"), "alice", "down", now, [&](status s) { never = s; }).code ==
          status::cluster_unavailable);
    CHECK(n1.store.append(user("carol"), "alice", "down", now, [&](status s) { never = s; }).code ==
          status::cluster_unavailable);
    std::optional<bool> loaded;
    n1.store.load(user("dave"), now, [&](bool ok) { loaded = ok; });
    CHECK_FALSE(loaded.has_value());
    REQUIRE(run_until(io, [&] { return loaded.has_value(); }));
    CHECK_FALSE(*loaded); // the host refuses the registration
    CHECK_FALSE(n1.store.holds(user("dave")));
    std::optional<status> record;
    n1.store.record_sent(user("bob"), sent_record{5, now, 0, false}, [&](status s) { record = s; });
    CHECK_FALSE(record.has_value());
    REQUIRE(run_until(io, [&] { return record.has_value(); }));
    CHECK(*record == status::cluster_unavailable);
    CHECK(n1.store.stored(user("bob")) == 3);

    server.restart();
    REQUIRE(up(io, n1));
    node n2(io, server);
    REQUIRE(up(io, n2));
    REQUIRE(load(io, n2, "bob"));
    REQUIRE(load(io, n2, "carol"));
    CHECK(seqs(n2.store, "bob") == std::vector<std::uint64_t>{1, 2, 3});
    CHECK(seqs(n2.store, "carol") == std::vector<std::uint64_t>{1, 2});
    REQUIRE(load(io, n2, "alice"));
    CHECK(records(n2.store, "alice").size() == 2);
    CHECK_FALSE(never.has_value());

    // Held appends continue on the first node after the reconnect.
    const outcome o = append(io, n1, "bob", "alice", "after");
    CHECK(o.result.seq == 4);
    CHECK(o.durable == status::ok);
}

TEST_CASE("inbox: a connection lost before the reply fails the append, out of the cache first", "[inbox]") {
    redis_server server;
    net::io_context io;
    node n1(io, server);
    REQUIRE(up(io, n1));
    REQUIRE(load(io, n1, "bob"));
    std::vector<status> done;
    std::vector<std::size_t> seen;
    for (int i = 0; i < 2; ++i) {
        CHECK(n1.store.append(user("bob"), "alice", "x", now, [&](status s) {
                      done.push_back(s);
                      seen.push_back(n1.store.stored(user("bob")));
                  }).seq == static_cast<std::uint64_t>(i + 1));
    }
    n1.conn.stop(); // the pending commands are answered nullptr, as after a loss
    REQUIRE(run_until(io, [&] { return done.size() == 2; }));
    CHECK(done == std::vector<status>{status::cluster_unavailable, status::cluster_unavailable});
    CHECK(seen == std::vector<std::size_t>{1, 0}); // each left before its own handler ran
    CHECK(n1.store.highest_seq(user("bob")) == 2); // the numbers are not given again
    CHECK(n1.store.counters().lost == 2);
}

TEST_CASE("inbox: max_pending: store_busy at once, records in their turn", "[inbox]") {
    inbox_options o;
    o.max_pending = 2;
    bob_on_one_node c(o);
    net::io_context& io = c.io;
    node& n1 = c.n1;
    std::vector<std::string> order;
    CHECK(n1.store.append(user("bob"), "alice", "1", now, [&](status s) { order.push_back("a1 " + std::string(to_string(s))); }).code == status::ok);
    CHECK(n1.store.append(user("carol"), "alice", "2", now, [&](status s) { order.push_back("a2 " + std::string(to_string(s))); }).code == status::ok);
    CHECK(n1.store.pending() == 2);
    CHECK(n1.store.append(user("bob"), "alice", "3", now, [&](status) { FAIL("refused: never called"); }).code ==
          status::store_busy);
    CHECK(n1.store.stored(user("bob")) == 1);
    n1.store.record_sent(user("alice"), sent_record{9, now, 0, false}, [&](status s) { order.push_back("r " + std::string(to_string(s))); });
    CHECK(order.empty());
    REQUIRE(run_until(io, [&] { return order.size() == 3; }));
    // In call order; carol is not known: user_not_found.
    CHECK(order == std::vector<std::string>{"a1 ok", "a2 user-not-found", "r store-busy"});
    CHECK(n1.store.pending() == 0);
    CHECK(n1.store.counters().busy == 2);
    CHECK(append(io, n1, "bob", "alice", "4").result.seq == 2);
}

TEST_CASE("inbox: load is ref-counted; a load in flight is shared; the store may go with replies pending",
          "[inbox]") {
    redis_server server;
    net::io_context io;
    auto n1 = std::make_unique<node>(io, server);
    REQUIRE(up(io, *n1));
    int ok = 0;
    n1->store.load(user("bob"), now, [&](bool b) { ok += b ? 1 : 0; });
    n1->store.load(user("bob"), now, [&](bool b) { ok += b ? 1 : 0; }); // shares the first
    CHECK_FALSE(n1->store.holds(user("bob")));
    REQUIRE(run_until(io, [&] { return ok == 2; }));
    CHECK(n1->store.holds(user("bob")));
    CHECK(n1->store.counters().loads == 1);
    REQUIRE(load(io, *n1, "bob")); // a third session: the cache is refreshed, not loaded again
    CHECK(n1->store.counters().loads == 1);
    CHECK(n1->store.counters().refreshes == 1);
    n1->store.unload(user("bob"));
    n1->store.unload(user("bob"));
    CHECK(n1->store.holds(user("bob")));
    n1->store.unload(user("bob"));
    CHECK_FALSE(n1->store.holds(user("bob")));

    // An unload while the load is in flight: the reply fills nothing.
    bool answered = false;
    n1->store.load(user("carol"), now, [&](bool) { answered = true; });
    n1->store.unload(user("carol"));
    REQUIRE(run_until(io, [&] { return answered; }));
    CHECK_FALSE(n1->store.holds(user("carol")));

    // Destroyed with an append pending: its handler is dropped, the reply ignored.
    REQUIRE(load(io, *n1, "bob"));
    bool called = false;
    CHECK(n1->store.append(user("bob"), "alice", "x", now, [&](status) { called = true; }).code == status::ok);
    n1.reset(); // the store goes first, then its connection answers the pending command nullptr
    run_for(io, 50ms);
    CHECK_FALSE(called);
}

TEST_CASE("inbox: completions keep call order when Redis answers out of it (NOSCRIPT retries)", "[inbox]") {
    redis_server server;
    net::io_context io;
    node n1(io, server);
    REQUIRE(up(io, n1));
    REQUIRE(load(io, n1, "bob"));
    CHECK(append(io, n1, "bob", "alice", "first").durable == status::ok); // the script is cached now
    CHECK(server.command({"SCRIPT", "FLUSH"}) == "OK");
    std::vector<std::string> order;
    auto note = [&](std::string what) { return [&order, what](status s) { order.push_back(what + " " + std::string(to_string(s))); }; };
    CHECK(n1.store.append(user("bob"), "alice", "second", now, note("a2")).seq == 2); // NOSCRIPT, sent again
    n1.store.record_sent(user("alice"), sent_record{7, now, 0, false}, note("r")); // first use: EVAL, answered first
    CHECK(n1.store.append(user("bob"), "alice", "third", now, note("a3")).seq == 3);
    REQUIRE(run_until(io, [&] { return order.size() == 3; }));
    CHECK(order == std::vector<std::string>{"a2 ok", "r ok", "a3 ok"});
    CHECK(ids(server, "bob") == std::vector<std::string>{"1-0", "2-0", "3-0"});
}

TEST_CASE("inbox: Redis at maxmemory: appends and records complete store_full, loads fail", "[inbox]") {
    redis_server server;
    net::io_context io;
    node n1(io, server);
    REQUIRE(up(io, n1));
    REQUIRE(load(io, n1, "carol"));
    n1.store.remember(user("bob"));
    REQUIRE(eventually(io, server, {"EXISTS", "sb:inboxmeta:bob"}, "1"));
    CHECK(server.command({"CONFIG", "SET", "maxmemory", "1"}) == "OK"); // every write is over it now

    const outcome offline = append(io, n1, "bob", "alice", "x");
    CHECK(offline.result.code == status::ok);
    CHECK(static_cast<int>(offline.durable.value_or(status::pending)) == static_cast<int>(status::store_full));
    const outcome held = append(io, n1, "carol", "alice", "x");
    CHECK(held.result.seq == 1);
    CHECK(static_cast<int>(held.durable.value_or(status::pending)) == static_cast<int>(status::store_full));
    CHECK(n1.store.stored(user("carol")) == 0);
    std::optional<status> record;
    n1.store.record_sent(user("alice"), sent_record{1, now, 0, false}, [&](status s) { record = s; });
    REQUIRE(run_until(io, [&] { return record.has_value(); }));
    CHECK(static_cast<int>(*record) == static_cast<int>(status::store_full));
    CHECK_FALSE(load(io, n1, "dave"));
    CHECK(n1.store.counters().load_failures == 1);
    CHECK(ids(server, "bob").empty());
}

TEST_CASE("inbox: users remembered before the connection is up are made known before the next append",
          "[inbox]") {
    redis_server server;
    net::io_context io;
    connection conn(io, fast_options(server));
    inbox store(conn, {});
    store.remember(user("bob")); // a host declaring its users at start-up: not connected yet
    store.remember(user("carol"));
    store.remember(user("bob"));
    conn.start();
    REQUIRE(run_until(io, [&] { return conn.connected(); }));
    CHECK(server.command({"EXISTS", "sb:inboxmeta:bob"}) == "0"); // nothing sent on its own
    std::optional<status> done;
    CHECK(store.append(user("bob"), "alice", "hi", now, [&](status s) { done = s; }).code == status::ok);
    REQUIRE(run_until(io, [&] { return done.has_value(); }));
    CHECK(*done == status::ok);
    CHECK(ids(server, "bob") == std::vector<std::string>{"1-0"});
    CHECK(server.command({"HGET", "sb:inboxmeta:carol", "seq"}) == "0");

    // Kept again when the connection is lost before Redis answered; the router's tick sends it.
    store.remember(user("dave"));
    conn.stop();
    conn.start();
    REQUIRE(run_until(io, [&] { return conn.connected(); }));
    CHECK(store.expire(now) == 0);
    REQUIRE(eventually(io, server, {"EXISTS", "sb:inboxmeta:dave"}, "1"));
}
