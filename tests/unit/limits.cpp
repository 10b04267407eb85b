// Router limits (issue 4, "Limits"): rooms per session, members per room, their counters, and the
// line protocol's replies for them.
#include <switchboard/in_memory_transport.hpp>
#include <switchboard/protocol/line_session.hpp>
#include <switchboard/router.hpp>

#include <catch2/catch.hpp>

#include <deque>
#include <string>
#include <vector>

using namespace switchboard;
using lines = std::vector<std::string>;

namespace {
struct member {
    in_memory_transport t;
    session_id id;
};

struct world {
    router r;
    std::deque<member> members;
    explicit world(router_options o = {}) : r(o) {}
    member& add(const std::string& user) {
        member& m = members.emplace_back();
        m.id = r.open_session(m.t, switchboard::protocol::line_event_encoder::instance());
        REQUIRE(r.register_name(m.id, user) == status::ok);
        return m;
    }
};
} // namespace

TEST_CASE("limits: a session may be in at most max_rooms_per_session rooms (default 64)", "[limits][rooms]") {
    world w;
    member& a = w.add("alice");
    for (int i = 0; i < 64; ++i) REQUIRE(w.r.join(a.id, "r" + std::to_string(i)) == status::ok);
    CHECK(w.r.join(a.id, "one-more") == status::too_many_rooms);
    CHECK(w.r.counters().too_many_rooms == 1);
    CHECK(w.r.rooms_of(a.id) == 64);
    CHECK(w.r.room_size(*name::parse("one-more")) == 0); // not created
    CHECK(w.r.room_count() == 64);
    // already_member is checked first: joining a room one is in is not a limit problem.
    CHECK(w.r.join(a.id, "r0") == status::already_member);
    // Leaving one makes room for another.
    REQUIRE(w.r.leave(a.id, "r0") == status::ok);
    CHECK(w.r.join(a.id, "one-more") == status::ok);
    CHECK(w.r.counters().too_many_rooms == 1);
}

TEST_CASE("limits: max_rooms_per_session is configurable and per session", "[limits][rooms]") {
    router_options o;
    o.max_rooms_per_session = 2;
    world w(o);
    member& a = w.add("alice");
    member& b = w.add("bob");
    REQUIRE(w.r.join(a.id, "x") == status::ok);
    REQUIRE(w.r.join(a.id, "y") == status::ok);
    CHECK(w.r.join(a.id, "z") == status::too_many_rooms);
    CHECK(w.r.join(b.id, "x") == status::ok); // bob has his own budget
    CHECK(w.r.join(b.id, "z") == status::ok);
    CHECK(w.r.join(b.id, "y") == status::too_many_rooms);
    CHECK(w.r.counters().too_many_rooms == 2);
    // A refused join tells nobody: alice (in x) saw only bob's one join.
    CHECK(a.t.take_lines() == lines{"join x bob"});
}

TEST_CASE("limits: max_room_members refuses further joins with room_full", "[limits][rooms]") {
    router_options o;
    o.max_room_members = 2;
    world w(o);
    member& a = w.add("alice");
    member& b = w.add("bob");
    member& c = w.add("carol");
    REQUIRE(w.r.join(a.id, "lobby") == status::ok);
    REQUIRE(w.r.join(b.id, "lobby") == status::ok);
    CHECK(w.r.join(c.id, "lobby") == status::room_full);
    CHECK(w.r.counters().room_full == 1);
    CHECK(w.r.room_size(*name::parse("lobby")) == 2);
    CHECK(a.t.take_lines() == lines{"join lobby bob"}); // no join event for carol
    REQUIRE(w.r.leave(b.id, "lobby") == status::ok);
    CHECK(w.r.join(c.id, "lobby") == status::ok);
}

TEST_CASE("limits: the line protocol replies too-many-rooms and room-full with the room", "[limits][session]") {
    router_options o;
    o.max_rooms_per_session = 1;
    o.max_room_members = 1;
    router r(o);
    in_memory_transport ta, tb;
    const session_id a = r.open_session(ta, switchboard::protocol::line_event_encoder::instance()), b = r.open_session(tb, switchboard::protocol::line_event_encoder::instance());
    protocol::line_session la(r, a, {}), lb(r, b, {});
    la.on_input("/register alice\n/join One\n/join Two\n");
    CHECK(ta.take_lines() == lines{"ok register alice", "ok join one", "err too-many-rooms two"});
    lb.on_input("/register bob\n/join ONE\n");
    CHECK(tb.take_lines() == lines{"ok register bob", "err room-full one"});
}
