// router rooms: join/leave/publish and their exact lines, fan-out scope, zero-copy fan-out to 1000
// members, room lifetime, clean-up on disconnect, and swap-remove bookkeeping against a model.
#include <switchboard/in_memory_transport.hpp>
#include <switchboard/protocol/line.hpp>
#include <switchboard/router.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

using switchboard::event;
using switchboard::event_encoder;
using switchboard::fanout_scope;
using switchboard::in_memory_transport;
using switchboard::name;
using switchboard::payload;
using switchboard::route_result;
using switchboard::router;
using switchboard::router_options;
using switchboard::session_id;
using switchboard::status;
using lines = std::vector<std::string>;

namespace {

// Delegates to the line encoder and counts the calls.
class counting_encoder final : public event_encoder {
public:
    mutable int calls = 0;
    payload encode(const event& e) const override {
        ++calls;
        return switchboard::protocol::line_event_encoder::instance().encode(e);
    }
};

struct user {
    in_memory_transport t;
    session_id id;
};

// N registered users u0..u{N-1} (or given names) on one router.
struct world {
    router r;
    std::deque<user> users;
    explicit world(std::vector<std::string> names, router_options opt = {},
                   const event_encoder& format = switchboard::protocol::line_event_encoder::instance())
        : r(opt) {
        for (const std::string& n : names) {
            user& u = users.emplace_back();
            u.id = r.open_session(u.t, format);
            REQUIRE(r.register_name(u.id, n) == status::ok);
        }
    }
    user& operator[](std::size_t i) { return users[i]; }
};

lines sorted(lines v) {
    std::sort(v.begin(), v.end());
    return v;
}

name nm(const char* s) { return *name::parse(s); }

} // namespace

TEST_CASE("rooms: join tells existing members `join <room> <user>`, not the joiner", "[rooms]") {
    world w({"alice", "Bob", "carol"});
    CHECK(w.r.join(w[0].id, "Lobby") == status::ok);
    CHECK(w.r.room_count() == 1);
    CHECK(w.r.room_size(nm("lobby")) == 1);
    CHECK(w[0].t.received().empty());

    CHECK(w.r.join(w[1].id, "LOBBY") == status::ok);
    CHECK(w[0].t.take_lines() == lines{"join lobby bob"});
    CHECK(w[1].t.received().empty());

    CHECK(w.r.join(w[2].id, "lobby") == status::ok);
    CHECK(w[0].t.take_lines() == lines{"join lobby carol"});
    CHECK(w[1].t.take_lines() == lines{"join lobby carol"});
    CHECK(w[2].t.received().empty());
    CHECK(w.r.room_size(nm("lobby")) == 3);
    CHECK(w.r.is_member(w[2].id, nm("lobby")));
    CHECK(w.r.rooms_of(w[2].id) == 1);
}

TEST_CASE("rooms: leave tells remaining members `leave <room> <user>`, not the leaver", "[rooms]") {
    world w({"alice", "bob", "carol"});
    for (auto& u : w.users) REQUIRE(w.r.join(u.id, "lobby") == status::ok);
    for (auto& u : w.users) (void)u.t.take_bytes();

    CHECK(w.r.leave(w[1].id, "Lobby") == status::ok);
    CHECK(w[0].t.take_lines() == lines{"leave lobby bob"});
    CHECK(w[2].t.take_lines() == lines{"leave lobby bob"});
    CHECK(w[1].t.received().empty());
    CHECK_FALSE(w.r.is_member(w[1].id, nm("lobby")));
    CHECK(w.r.room_size(nm("lobby")) == 2);
    CHECK(w.r.rooms_of(w[1].id) == 0);
}

TEST_CASE("rooms: error outcomes", "[rooms]") {
    world w({"alice", "bob"});
    in_memory_transport tn;
    const session_id anon = w.r.open_session(tn, switchboard::protocol::line_event_encoder::instance());
    REQUIRE(w.r.join(w[0].id, "lobby") == status::ok);

    CHECK(w.r.join(w[0].id, "LOBBY") == status::already_member);
    CHECK(w.r.join(w[0].id, "b@d") == status::invalid_name);
    CHECK(w.r.join(w[0].id, "") == status::invalid_name);
    CHECK(w.r.join(w[0].id, name{}) == status::invalid_name);
    CHECK(w.r.join(anon, "lobby") == status::not_registered);
    CHECK(w.r.join(anon, "b@d") == status::not_registered);
    CHECK(w.r.join(session_id{}, "lobby") == status::unknown_session);

    CHECK(w.r.leave(w[1].id, "lobby") == status::not_member);
    CHECK(w.r.leave(w[1].id, "nosuchroom") == status::not_member);
    CHECK(w.r.leave(w[1].id, "b@d") == status::invalid_name);
    CHECK(w.r.leave(anon, "lobby") == status::not_registered);
    CHECK(w.r.leave(session_id{}, "lobby") == status::unknown_session);

    CHECK(w.r.publish(w[1].id, "lobby", "x").code == status::not_member);
    CHECK(w.r.publish(w[1].id, "nosuchroom", "x").code == status::not_member);
    CHECK(w.r.publish(w[0].id, "b@d", "x").code == status::invalid_name);
    CHECK(w.r.publish(anon, "lobby", "x").code == status::not_registered);
    CHECK(w.r.publish(session_id{}, "lobby", "x").code == status::unknown_session);

    // A failed join or leave changes nothing and tells nobody.
    CHECK(w.r.room_count() == 1);
    CHECK(w.r.room_size(nm("lobby")) == 1);
    CHECK(w.r.room_size(nm("nosuchroom")) == 0);
    CHECK(w[0].t.received().empty());
    CHECK(w[1].t.received().empty());
    CHECK(tn.received().empty());
    CHECK(w.r.counters().routed == 0);
}

TEST_CASE("rooms: publish except_sender vs all_members", "[rooms]") {
    world w({"alice", "bob", "carol", "dave"});
    for (std::size_t i = 0; i < 3; ++i) REQUIRE(w.r.join(w[i].id, "lobby") == status::ok);
    for (auto& u : w.users) (void)u.t.take_bytes();

    route_result res = w.r.publish(w[0].id, "Lobby", "hi all\t!");
    CHECK(res.ok());
    CHECK(res.delivered == 2);
    CHECK(res.dropped == 0);
    CHECK(w[0].t.received().empty());
    CHECK(w[1].t.take_lines() == lines{"room lobby alice hi all\t!"});
    CHECK(w[2].t.take_lines() == lines{"room lobby alice hi all\t!"});
    CHECK(w[3].t.received().empty()); // not a member

    res = w.r.publish(w[1].id, nm("lobby"), "echo", fanout_scope::all_members);
    CHECK(res.delivered == 3);
    CHECK(w[0].t.take_lines() == lines{"room lobby bob echo"});
    CHECK(w[1].t.take_lines() == lines{"room lobby bob echo"});
    CHECK(w[2].t.take_lines() == lines{"room lobby bob echo"});
    CHECK(w[3].t.received().empty());
    CHECK(w.r.counters().routed == 2);

    // Alone in a room: ok, nobody to deliver to (except_sender), or only self (all_members).
    REQUIRE(w.r.join(w[3].id, "solo") == status::ok);
    res = w.r.publish(w[3].id, "solo", "anyone?");
    CHECK(res.ok());
    CHECK(res.delivered == 0);
    CHECK(w[3].t.received().empty());
    res = w.r.publish(w[3].id, "solo", "me", fanout_scope::all_members);
    CHECK(res.delivered == 1);
    CHECK(w[3].t.take_lines() == lines{"room solo dave me"});
}

TEST_CASE("rooms: a 1000-member fan-out hands the same payload to every member, encoded once",
          "[rooms][fanout]") {
    counting_encoder enc;
    std::vector<std::string> names;
    for (int i = 0; i < 1000; ++i) names.push_back("u" + std::to_string(i));
    world w(names, {}, enc);
    for (auto& u : w.users) REQUIRE(w.r.join(u.id, "big") == status::ok);
    CHECK(w.r.room_size(nm("big")) == 1000);
    CHECK(enc.calls == 999); // one member_joined encoding per join into a non-empty room
    // Each join event was shared too: the first member saw 999 joins.
    CHECK(w[0].t.received().size() == 999);
    for (auto& u : w.users) (void)u.t.take_bytes();

    enc.calls = 0;
    route_result res = w.r.publish(w[0].id, "big", "to everyone");
    CHECK(enc.calls == 1);
    CHECK(res.delivered == 999);
    CHECK(w[0].t.received().empty());
    const payload first = w[1].t.received().at(0);
    CHECK(first.view() == "room big u0 to everyone\n");
    std::size_t same = 0;
    for (std::size_t i = 1; i < 1000; ++i) {
        REQUIRE(w[i].t.received().size() == 1);
        if (same_buffer(w[i].t.received()[0], first)) ++same;
    }
    CHECK(same == 999);
    // 999 transports hold it, plus our local copy `first`: no other reference, no copy.
    CHECK(first.use_count() == 999 + 1);

    for (auto& u : w.users) (void)u.t.take_bytes();
    enc.calls = 0;
    res = w.r.publish(w[500].id, "big", "all", fanout_scope::all_members);
    CHECK(enc.calls == 1);
    CHECK(res.delivered == 1000);
    const payload p = w[0].t.received().at(0);
    CHECK(p.view() == "room big u500 all\n");
    CHECK(p.use_count() == 1000 + 1);
    for (auto& u : w.users) REQUIRE(same_buffer(u.t.received().at(0), p));
    CHECK(w.r.counters().delivered == 999u * 1000u / 2u + 999u + 1000u);
}

TEST_CASE("rooms: a room is deleted when its last member leaves", "[rooms]") {
    world w({"alice", "bob"});
    REQUIRE(w.r.join(w[0].id, "a") == status::ok);
    REQUIRE(w.r.join(w[0].id, "b") == status::ok);
    REQUIRE(w.r.join(w[1].id, "b") == status::ok);
    CHECK(w.r.room_count() == 2);
    CHECK(w.r.rooms_of(w[0].id) == 2);

    REQUIRE(w.r.leave(w[0].id, "a") == status::ok);
    CHECK(w.r.room_count() == 1);
    CHECK(w.r.room_size(nm("a")) == 0);
    CHECK(w.r.leave(w[0].id, "a") == status::not_member);
    CHECK(w.r.publish(w[0].id, "a", "x").code == status::not_member);

    REQUIRE(w.r.leave(w[0].id, "b") == status::ok);
    REQUIRE(w.r.leave(w[1].id, "b") == status::ok);
    CHECK(w.r.room_count() == 0);

    // A recreated room starts empty: the new first member gets no stale events, and the next
    // joiner is announced only to it.
    (void)w[0].t.take_bytes();
    (void)w[1].t.take_bytes();
    REQUIRE(w.r.join(w[1].id, "a") == status::ok);
    CHECK(w[1].t.received().empty());
    REQUIRE(w.r.join(w[0].id, "a") == status::ok);
    CHECK(w[1].t.take_lines() == lines{"join a alice"});
    CHECK(w[0].t.received().empty());
    CHECK(w.r.room_size(nm("a")) == 2);
    CHECK(w.r.room_count() == 1);
}

TEST_CASE("rooms: close_session leaves every room, remaining members get `leave <room> <user>`",
          "[rooms]") {
    world w({"alice", "bob", "carol"});
    for (const char* room : {"r1", "r2", "r3"}) REQUIRE(w.r.join(w[0].id, room) == status::ok);
    REQUIRE(w.r.join(w[1].id, "r1") == status::ok);
    REQUIRE(w.r.join(w[1].id, "r2") == status::ok);
    REQUIRE(w.r.join(w[2].id, "r2") == status::ok);
    for (auto& u : w.users) (void)u.t.take_bytes();
    CHECK(w.r.room_count() == 3);

    REQUIRE(w.r.close_session(w[0].id) == status::ok);
    CHECK(sorted(w[1].t.take_lines()) == lines{"leave r1 alice", "leave r2 alice"});
    CHECK(w[2].t.take_lines() == lines{"leave r2 alice"});
    CHECK(w[0].t.received().empty());
    CHECK(w.r.room_count() == 2); // r3 had only alice
    CHECK(w.r.room_size(nm("r1")) == 1);
    CHECK(w.r.room_size(nm("r2")) == 2);
    CHECK(w.r.room_size(nm("r3")) == 0);

    // The name is free again; a new alice is in no room.
    in_memory_transport t;
    const session_id a2 = w.r.open_session(t, switchboard::protocol::line_event_encoder::instance());
    REQUIRE(w.r.register_name(a2, "alice") == status::ok);
    CHECK(w.r.rooms_of(a2) == 0);
    CHECK_FALSE(w.r.is_member(a2, nm("r1")));
    CHECK(w.r.publish(w[1].id, "r2", "after").delivered == 1);
    CHECK(w[2].t.take_lines() == lines{"room r2 bob after"});
    CHECK(t.received().empty());
}

TEST_CASE("rooms: membership bookkeeping matches a std::set model under random joins, leaves, closes",
          "[rooms][model]") {
    constexpr std::size_t n_sessions = 40, n_rooms = 12;
    router r;
    std::deque<in_memory_transport> ts(n_sessions);
    std::vector<session_id> ids(n_sessions);
    std::vector<std::string> room_names;
    for (std::size_t k = 0; k < n_rooms; ++k) room_names.push_back("room" + std::to_string(k));
    auto user_name = [](std::size_t i) { return "user" + std::to_string(i); };
    for (std::size_t i = 0; i < n_sessions; ++i) {
        ids[i] = r.open_session(ts[i], switchboard::protocol::line_event_encoder::instance());
        REQUIRE(r.register_name(ids[i], user_name(i)) == status::ok);
    }
    std::set<std::pair<std::size_t, std::size_t>> model; // (session, room)
    auto members_of = [&](std::size_t k) {
        std::set<std::size_t> m;
        for (const auto& [s, room] : model)
            if (room == k) m.insert(s);
        return m;
    };

    std::mt19937 rng(2024);
    std::uniform_int_distribution<std::size_t> pick_s(0, n_sessions - 1), pick_r(0, n_rooms - 1);
    std::uniform_int_distribution<int> pick_op(0, 99);
    for (int step = 0; step < 6000; ++step) {
        const std::size_t s = pick_s(rng), k = pick_r(rng);
        const int op = pick_op(rng);
        const std::string& room = room_names[k];
        INFO("step " << step << " op " << op << " session " << s << " room " << k);
        for (auto& t : ts) (void)t.take_bytes();
        if (op < 50) { // join
            const std::set<std::size_t> before = members_of(k);
            const status st = r.join(ids[s], room);
            if (model.count({s, k})) {
                REQUIRE(st == status::already_member);
            } else {
                REQUIRE(st == status::ok);
                model.insert({s, k});
                for (std::size_t i = 0; i < n_sessions; ++i) {
                    const lines expected =
                        before.count(i) ? lines{"join " + room + " " + user_name(s)} : lines{};
                    REQUIRE(ts[i].take_lines() == expected);
                }
            }
        } else if (op < 85) { // leave
            const status st = r.leave(ids[s], room);
            if (!model.count({s, k})) {
                REQUIRE(st == status::not_member);
            } else {
                REQUIRE(st == status::ok);
                model.erase({s, k});
                const std::set<std::size_t> after = members_of(k);
                for (std::size_t i = 0; i < n_sessions; ++i) {
                    const lines expected =
                        after.count(i) ? lines{"leave " + room + " " + user_name(s)} : lines{};
                    REQUIRE(ts[i].take_lines() == expected);
                }
            }
        } else if (op < 95) { // publish to all members: exactly the model's members receive it
            const route_result res = r.publish(ids[s], room, "m" + std::to_string(step), fanout_scope::all_members);
            const std::set<std::size_t> members = members_of(k);
            if (!members.count(s)) {
                REQUIRE(res.code == status::not_member);
                for (auto& t : ts) REQUIRE(t.received().empty());
            } else {
                REQUIRE(res.delivered == members.size());
                for (std::size_t i = 0; i < n_sessions; ++i) {
                    const lines expected = members.count(i)
                                               ? lines{"room " + room + " " + user_name(s) + " m" + std::to_string(step)}
                                               : lines{};
                    REQUIRE(ts[i].take_lines() == expected);
                }
            }
        } else { // disconnect and reconnect under the same name
            std::map<std::size_t, lines> expected; // remaining members -> leave lines
            for (const auto& [ms, mk] : model)
                if (ms == s)
                    for (std::size_t other : members_of(mk))
                        if (other != s) expected[other].push_back("leave " + room_names[mk] + " " + user_name(s));
            REQUIRE(r.close_session(ids[s]) == status::ok);
            for (auto it = model.begin(); it != model.end();)
                it = it->first == s ? model.erase(it) : std::next(it);
            for (std::size_t i = 0; i < n_sessions; ++i)
                REQUIRE(sorted(ts[i].take_lines()) == sorted(expected[i]));
            ids[s] = r.open_session(ts[s], switchboard::protocol::line_event_encoder::instance());
            REQUIRE(r.register_name(ids[s], user_name(s)) == status::ok);
        }
        if (step % 50 == 0) {
            for (std::size_t i = 0; i < n_sessions; ++i) {
                std::size_t count = 0;
                for (std::size_t kk = 0; kk < n_rooms; ++kk) {
                    const bool in = model.count({i, kk}) != 0;
                    REQUIRE(r.is_member(ids[i], *name::parse(room_names[kk])) == in);
                    count += in;
                }
                REQUIRE(r.rooms_of(ids[i]) == count);
            }
            std::size_t non_empty = 0;
            for (std::size_t kk = 0; kk < n_rooms; ++kk) {
                const std::size_t size = members_of(kk).size();
                REQUIRE(r.room_size(*name::parse(room_names[kk])) == size);
                non_empty += size > 0;
            }
            REQUIRE(r.room_count() == non_empty);
        }
    }
    // Everybody leaves: no room is left.
    for (std::size_t i = 0; i < n_sessions; ++i) REQUIRE(r.close_session(ids[i]) == status::ok);
    CHECK(r.room_count() == 0);
    CHECK(r.session_count() == 0);
    CHECK(r.user_count() == 0);
}
