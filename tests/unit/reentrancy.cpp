// Re-entrancy (issue 4, item 3): transports and the user-not-found handler calling back into the
// router from inside a delivery — leave, join, close (even the session being delivered to), open
// sessions, route — with no iterator invalidation or use-after-free (these tests run under
// ASan), effects delivered after their cause (tests/unit/ordering.cpp has the bot scenarios),
// and self-feeding loops bounded by router_options::max_callback_depth.
#include <switchboard/in_memory_transport.hpp>
#include <switchboard/router.hpp>
#include <switchboard/protocol/line.hpp>

#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

using namespace switchboard;
using lines = std::vector<std::string>;

namespace {

// Keeps what it is given, like in_memory_transport, and runs `on_deliver` after each delivery.
class callback_transport final : public transport {
public:
    std::function<void(const payload&)> on_deliver;
    std::vector<std::string> got;
    bool closed = false;

    delivery deliver(const payload& bytes) noexcept override {
        if (closed) return delivery::closed;
        got.emplace_back(bytes.data(), bytes.size() - 1); // without the LF
        if (on_deliver) on_deliver(bytes);
        return delivery::queued;
    }
    void close(close_mode) noexcept override { closed = true; }
};

struct world {
    router r;
    std::vector<std::unique_ptr<callback_transport>> transports;
    std::vector<session_id> ids;
    explicit world(router_options o = {}) : r(o) {}
    std::size_t add(const std::string& user) {
        transports.push_back(std::make_unique<callback_transport>());
        ids.push_back(r.open_session(*transports.back(), switchboard::protocol::line_event_encoder::instance()));
        REQUIRE(r.register_name(ids.back(), user) == status::ok);
        return ids.size() - 1;
    }
    callback_transport& t(std::size_t i) { return *transports[i]; }
};

} // namespace

TEST_CASE("reentrancy: a member leaving the room from its own delivery; everyone else still gets the message",
          "[reentrancy]") {
    world w;
    for (int i = 0; i < 6; ++i) REQUIRE(w.r.join(w.ids[w.add("u" + std::to_string(i))], "lobby") == status::ok);
    for (auto& t : w.transports) t->got.clear();
    w.t(2).on_deliver = [&](const payload&) { CHECK(w.r.leave(w.ids[2], "lobby") == status::ok); };
    const route_result res = w.r.publish(w.ids[0], "lobby", "hello");
    CHECK(res.delivered == 5);
    // Everyone gets the message once. u2's leave takes effect at once but is told after the
    // message has reached every member: all members see one order (cause before effect).
    CHECK(w.t(0).got == lines{"leave lobby u2"});
    CHECK(w.t(2).got == lines{"room lobby u0 hello"});
    for (std::size_t i : {1, 3, 4, 5}) CHECK(w.t(i).got == lines{"room lobby u0 hello", "leave lobby u2"});
    CHECK(w.r.room_size(*name::parse("lobby")) == 5);
}

TEST_CASE("reentrancy: a delivery closes the session being delivered to, then one not yet delivered to",
          "[reentrancy]") {
    world w;
    for (int i = 0; i < 5; ++i) REQUIRE(w.r.join(w.ids[w.add("u" + std::to_string(i))], "lobby") == status::ok);
    for (auto& t : w.transports) t->got.clear();
    // Member order in the room is join order. u1's delivery closes u1 itself and u4, and destroys
    // u4's transport right away (as an adapter may once close_session() returned): a delivery to
    // it afterwards would be a use-after-free, which ASan reports.
    w.t(1).on_deliver = [&](const payload&) {
        CHECK(w.r.close_session(w.ids[1]) == status::ok);
        CHECK(w.r.close_session(w.ids[4]) == status::ok);
        w.transports[4].reset();
    };
    const route_result res = w.r.publish(w.ids[0], "lobby", "bye");
    CHECK(res.delivered == 3); // u1, u2, u3; u4 was skipped
    // The leaves are told after the message, to the members left when each was queued, minus
    // u4 (closed before its turn: its transport is never touched again).
    CHECK(w.t(0).got == lines{"leave lobby u1", "leave lobby u4"});
    CHECK(w.t(2).got == lines{"room lobby u0 bye", "leave lobby u1", "leave lobby u4"});
    CHECK(w.t(3).got == lines{"room lobby u0 bye", "leave lobby u1", "leave lobby u4"});
    CHECK(w.r.room_size(*name::parse("lobby")) == 3);
    CHECK_FALSE(w.r.is_open(w.ids[1]));
    CHECK(w.r.find("u4") == session_id{});
    CHECK(w.r.user_count() == 3);
}

TEST_CASE("reentrancy: deliveries that open many sessions and rooms (moving the router's storage)",
          "[reentrancy]") {
    world w;
    for (int i = 0; i < 4; ++i) REQUIRE(w.r.join(w.ids[w.add("u" + std::to_string(i))], "lobby") == status::ok);
    for (auto& t : w.transports) t->got.clear();
    std::vector<std::unique_ptr<in_memory_transport>> extra;
    w.t(1).on_deliver = [&](const payload&) {
        for (int i = 0; i < 500; ++i) { // grows the session and room tables several times
            extra.push_back(std::make_unique<in_memory_transport>());
            const session_id s = w.r.open_session(*extra.back(), switchboard::protocol::line_event_encoder::instance());
            REQUIRE(w.r.register_name(s, "x" + std::to_string(i)) == status::ok);
            REQUIRE(w.r.join(s, "room" + std::to_string(i)) == status::ok);
        }
        CHECK(w.r.join(w.ids[1], "lobby") == status::already_member);
    };
    CHECK(w.r.publish(w.ids[0], "lobby", "grow").delivered == 3);
    CHECK(w.t(3).got == lines{"room lobby u0 grow"});
    CHECK(w.r.room_count() == 501);
    CHECK(w.r.session_count() == 504);
}

TEST_CASE("reentrancy: a member told of a join makes the joiner leave; state stays consistent", "[reentrancy]") {
    world w;
    const std::size_t a = w.add("a"), b = w.add("b");
    REQUIRE(w.r.join(w.ids[a], "lobby") == status::ok);
    w.t(a).on_deliver = [&](const payload& p) {
        if (std::string(p.data(), p.size()) == "join lobby b\n") {
            // b is already a full member when others hear of it
            CHECK(w.r.is_member(w.ids[b], *name::parse("lobby")));
            CHECK(w.r.leave(w.ids[b], "lobby") == status::ok);
        }
    };
    CHECK(w.r.join(w.ids[b], "lobby") == status::ok);
    CHECK(w.t(a).got == lines{"join lobby b", "leave lobby b"});
    CHECK(w.r.room_size(*name::parse("lobby")) == 1);
    CHECK(w.r.rooms_of(w.ids[b]) == 0);
}

TEST_CASE("reentrancy: while a session closes, callbacks cannot rejoin, route to or close it again",
          "[reentrancy]") {
    world w;
    const std::size_t a = w.add("a"), b = w.add("b");
    for (const char* room : {"r1", "r2", "r3"}) {
        REQUIRE(w.r.join(w.ids[a], room) == status::ok);
        REQUIRE(w.r.join(w.ids[b], room) == status::ok);
    }
    std::vector<status> seen;
    w.t(b).on_deliver = [&](const payload&) { // b hears "leave rN a" three times
        seen.push_back(w.r.join(w.ids[a], "r9"));
        seen.push_back(w.r.route(w.ids[b], "a", "still there?").code);
        seen.push_back(w.r.close_session(w.ids[a]));
    };
    CHECK(w.r.close_session(w.ids[a]) == status::ok);
    CHECK(seen.size() == 9);
    for (std::size_t i = 0; i < seen.size(); i += 3) {
        CHECK(seen[i] == status::unknown_session);
        CHECK(seen[i + 1] == status::user_not_found);
        CHECK(seen[i + 2] == status::unknown_session);
    }
    CHECK(w.r.session_count() == 1);
    CHECK(w.r.room_count() == 3);
    // The free list is intact: two new sessions get two different slots.
    in_memory_transport t1, t2;
    const session_id n1 = w.r.open_session(t1, switchboard::protocol::line_event_encoder::instance()), n2 = w.r.open_session(t2, switchboard::protocol::line_event_encoder::instance());
    CHECK(n1 != n2);
    CHECK(w.r.session_count() == 3);
}

TEST_CASE("reentrancy: two bots answering each other forever stop at max_callback_depth", "[reentrancy]") {
    router_options o;
    o.max_callback_depth = 16;
    world w(o);
    const std::size_t ping = w.add("ping"), pong = w.add("pong");
    std::vector<status> last;
    w.t(ping).on_deliver = [&](const payload&) { last.push_back(w.r.route(w.ids[ping], "pong", "again").code); };
    w.t(pong).on_deliver = [&](const payload&) { last.push_back(w.r.route(w.ids[pong], "ping", "again").code); };
    CHECK(w.r.route(w.ids[ping], "pong", "start").code == status::ok);
    // 16 deliveries, each caused by the one before (queued, not nested); the 16th callback's
    // route is refused.
    CHECK(w.t(pong).got.size() + w.t(ping).got.size() == 16);
    REQUIRE(last.size() == 16);
    CHECK(last.back() == status::depth_exceeded);
    for (std::size_t i = 0; i + 1 < last.size(); ++i) CHECK(last[i] == status::ok);
    // At the top level everything works again.
    w.t(ping).on_deliver = nullptr;
    w.t(pong).on_deliver = nullptr;
    CHECK(w.r.route(w.ids[ping], "pong", "calm").code == status::ok);
}

TEST_CASE("reentrancy: a fan-out bot loop in a room is bounded too", "[reentrancy]") {
    world w;
    std::size_t deliveries = 0;
    for (int i = 0; i < 3; ++i) {
        const std::size_t me = w.add("bot" + std::to_string(i));
        REQUIRE(w.r.join(w.ids[me], "echo") == status::ok);
    }
    for (std::size_t i = 0; i < 3; ++i)
        w.t(i).on_deliver = [&, i](const payload&) {
            ++deliveries;
            (void)w.r.publish(w.ids[i], "echo", "echo!");
        };
    CHECK(w.r.publish(w.ids[0], "echo", "go").ok());
    // Each level fans out to 2 bots: 2 + 4 + ... + 2^16 deliveries, finite.
    CHECK(deliveries == (std::size_t{1} << 17) - 2);
}

TEST_CASE("reentrancy: a user-not-found handler that routes to missing users again is bounded", "[reentrancy]") {
    world w;
    const std::size_t a = w.add("a");
    int calls = 0;
    w.r.on_user_not_found([&](session_id from, std::string_view, std::string_view) {
        ++calls;
        (void)w.r.route(from, "nobody-" + std::to_string(calls), "bounce");
    });
    CHECK(w.r.route(w.ids[a], "nobody", "hi").code == status::user_not_found);
    CHECK(calls == 16);
}
