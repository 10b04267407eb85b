// router: sessions and user names — register outcomes, release on close, the stale disconnect,
// generations of reused slots.
#include <switchboard/in_memory_transport.hpp>
#include <switchboard/router.hpp>
#include <switchboard/protocol/line.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

using switchboard::in_memory_transport;
using switchboard::name;
using switchboard::router;
using switchboard::session_id;
using switchboard::status;

TEST_CASE("router_register: status tokens", "[router][register]") {
    using switchboard::to_string;
    CHECK(to_string(status::ok) == "ok");
    CHECK(to_string(status::invalid_name) == "invalid-name");
    CHECK(to_string(status::name_taken) == "name-taken");
    CHECK(to_string(status::already_registered) == "already-registered");
    CHECK(to_string(status::not_registered) == "not-registered");
    CHECK(to_string(status::user_not_found) == "user-not-found");
    CHECK(to_string(status::already_member) == "already-member");
    CHECK(to_string(status::not_member) == "not-member");
    CHECK(to_string(status::unknown_session) == "unknown-session");
}

TEST_CASE("router_register: open sessions, register, find, name_of", "[router][register]") {
    router r;
    in_memory_transport t1, t2;
    CHECK(r.session_count() == 0);
    const session_id s1 = r.open_session(t1, switchboard::protocol::line_event_encoder::instance());
    const session_id s2 = r.open_session(t2, switchboard::protocol::line_event_encoder::instance());
    CHECK(static_cast<bool>(s1));
    CHECK(static_cast<bool>(s2));
    CHECK(s1 != s2);
    CHECK(r.session_count() == 2);
    CHECK(r.is_open(s1));
    CHECK_FALSE(r.is_registered(s1));
    CHECK(r.name_of(s1).empty());

    CHECK(r.register_name(s1, "Alice") == status::ok);
    CHECK(r.is_registered(s1));
    CHECK(r.name_of(s1) == "alice");
    CHECK(r.user_count() == 1);
    CHECK(r.find("alice") == s1);
    CHECK(r.find("ALICE") == s1);
    CHECK(r.find(*name::parse("aLiCe")) == s1);
    CHECK_FALSE(static_cast<bool>(r.find("bob")));
    CHECK_FALSE(static_cast<bool>(r.find("b@d")));

    // Registration sends nothing to anybody.
    CHECK(t1.received().empty());
    CHECK(t2.received().empty());
}

TEST_CASE("router_register: name-taken, already-registered, invalid-name, unknown-session",
          "[router][register]") {
    router r;
    in_memory_transport t1, t2;
    const session_id s1 = r.open_session(t1, switchboard::protocol::line_event_encoder::instance());
    const session_id s2 = r.open_session(t2, switchboard::protocol::line_event_encoder::instance());
    REQUIRE(r.register_name(s1, "alice") == status::ok);

    CHECK(r.register_name(s2, "alice") == status::name_taken);
    CHECK(r.register_name(s2, "ALICE") == status::name_taken); // case-insensitive
    CHECK_FALSE(r.is_registered(s2));
    CHECK(r.find("alice") == s1);

    CHECK(r.register_name(s1, "alice") == status::already_registered); // even the same name
    CHECK(r.register_name(s1, "other") == status::already_registered);
    CHECK(r.name_of(s1) == "alice");
    CHECK_FALSE(static_cast<bool>(r.find("other")));

    CHECK(r.register_name(s2, "") == status::invalid_name);
    CHECK(r.register_name(s2, "al ice") == status::invalid_name);
    CHECK(r.register_name(s2, std::string(41, 'a')) == status::invalid_name);
    CHECK(r.register_name(s2, name{}) == status::invalid_name); // empty name object
    CHECK_FALSE(r.is_registered(s2));
    CHECK(r.register_name(s2, std::string(40, 'B')) == status::ok);
    CHECK(r.name_of(s2) == std::string(40, 'b'));

    const session_id never{};
    CHECK(r.register_name(never, "carol") == status::unknown_session);
    CHECK(r.register_name(session_id::make(99, 1), "carol") == status::unknown_session);
    CHECK(r.register_name(session_id::make(99, 1), "b@d") == status::unknown_session);
    CHECK(r.register_name(session_id::make(s1.index(), s1.generation() + 1), "carol") ==
          status::unknown_session);
    CHECK(r.user_count() == 2);
}

TEST_CASE("router_register: close_session releases the name, closing twice is unknown_session",
          "[router][register]") {
    router r;
    in_memory_transport t1, t2;
    const session_id s1 = r.open_session(t1, switchboard::protocol::line_event_encoder::instance());
    const session_id s2 = r.open_session(t2, switchboard::protocol::line_event_encoder::instance());
    REQUIRE(r.register_name(s1, "alice") == status::ok);

    CHECK(r.close_session(s1) == status::ok);
    CHECK_FALSE(r.is_open(s1));
    CHECK(r.session_count() == 1);
    CHECK(r.user_count() == 0);
    CHECK_FALSE(static_cast<bool>(r.find("alice")));
    CHECK(r.name_of(s1).empty());
    CHECK_FALSE(r.is_registered(s1));
    // close_session does not call transport::close(): the adapter already knows.
    CHECK_FALSE(t1.closed());

    CHECK(r.register_name(s2, "Alice") == status::ok);
    CHECK(r.find("alice") == s2);
    CHECK(r.close_session(s1) == status::unknown_session);
    CHECK(r.close_session(session_id{}) == status::unknown_session);
    CHECK(r.find("alice") == s2);

    // Operations on a closed id all answer unknown_session.
    CHECK(r.route(s1, "alice", "hi").code == status::unknown_session);
    CHECK(r.join(s1, "room") == status::unknown_session);
    CHECK(r.leave(s1, "room") == status::unknown_session);
    CHECK(r.publish(s1, "room", "x").code == status::unknown_session);
    CHECK(r.send(s1, switchboard::payload::copy_of("x\n")) == status::unknown_session);
    CHECK(r.disconnect(s1) == status::unknown_session);
    CHECK(t2.received().empty());
}

TEST_CASE("router_register: the stale disconnect does not release the new owner's name",
          "[router][register]") {
    router r;
    in_memory_transport t1, t2, t3;
    const session_id s1 = r.open_session(t1, switchboard::protocol::line_event_encoder::instance());
    REQUIRE(r.register_name(s1, "alice") == status::ok);
    REQUIRE(r.close_session(s1) == status::ok);

    // alice reconnects; the new session reuses the freed slot.
    const session_id s2 = r.open_session(t2, switchboard::protocol::line_event_encoder::instance());
    CHECK(s2.index() == s1.index());
    CHECK(s2.generation() != s1.generation());
    CHECK(s2 != s1);
    REQUIRE(r.register_name(s2, "alice") == status::ok);

    // The old connection's late disconnect arrives.
    CHECK(r.close_session(s1) == status::unknown_session);

    CHECK(r.is_open(s2));
    CHECK(r.find("alice") == s2);
    CHECK(r.name_of(s2) == "alice");
    CHECK(r.user_count() == 1);
    CHECK(r.session_count() == 1);

    // alice is still routable on the new session.
    const session_id s3 = r.open_session(t3, switchboard::protocol::line_event_encoder::instance());
    REQUIRE(r.register_name(s3, "bob") == status::ok);
    const auto res = r.route(s3, "alice", "still here?");
    CHECK(res.code == status::ok);
    CHECK(res.delivered == 1);
    CHECK(t2.take_lines() == std::vector<std::string>{"msg bob still here?"});
    CHECK(t1.received().empty());
    // And the stale id cannot speak as alice.
    CHECK(r.route(s1, "bob", "spoof").code == status::unknown_session);
    CHECK(t3.received().empty());
}

TEST_CASE("router_register: generations of reused slots differ, ids are never reused",
          "[router][register]") {
    router r;
    in_memory_transport t;
    std::vector<session_id> seen;
    session_id prev = r.open_session(t, switchboard::protocol::line_event_encoder::instance());
    seen.push_back(prev);
    for (int i = 0; i < 100; ++i) {
        REQUIRE(r.close_session(prev) == status::ok);
        const session_id next = r.open_session(t, switchboard::protocol::line_event_encoder::instance());
        CHECK(next.index() == prev.index()); // the free slot is reused
        CHECK(next.generation() == prev.generation() + 1);
        CHECK(next.generation() != 0);
        for (const session_id& old : seen) REQUIRE(old != next);
        for (const session_id& old : seen) REQUIRE_FALSE(r.is_open(old));
        seen.push_back(next);
        prev = next;
    }
    CHECK(r.session_count() == 1);

    // Several free slots: ids stay distinct and old ids stay closed.
    in_memory_transport a, b, c;
    const session_id sa = r.open_session(a, switchboard::protocol::line_event_encoder::instance());
    const session_id sb = r.open_session(b, switchboard::protocol::line_event_encoder::instance());
    REQUIRE(r.close_session(sa) == status::ok);
    REQUIRE(r.close_session(sb) == status::ok);
    const session_id sc = r.open_session(c, switchboard::protocol::line_event_encoder::instance());
    const session_id sd = r.open_session(a, switchboard::protocol::line_event_encoder::instance());
    CHECK(sc != sa);
    CHECK(sc != sb);
    CHECK(sd != sa);
    CHECK(sd != sb);
    CHECK_FALSE(r.is_open(sa));
    CHECK_FALSE(r.is_open(sb));
    CHECK(r.is_open(sc));
    CHECK(r.is_open(sd));
    CHECK(r.session_count() == 3);
}

TEST_CASE("router_register: session_id packing and hashing", "[router][register]") {
    const session_id id = session_id::make(7, 3);
    CHECK(id.index() == 7);
    CHECK(id.generation() == 3);
    CHECK(id.value() == ((std::uint64_t{3} << 32) | 7));
    CHECK(static_cast<bool>(id));
    CHECK_FALSE(static_cast<bool>(session_id{}));
    CHECK(std::hash<session_id>{}(id) == std::hash<std::uint64_t>{}(id.value()));
    CHECK(session_id::make(7, 3) == id);
    CHECK(session_id::make(7, 4) != id);
    CHECK(session_id::make(0xFFFFFFFFu, 0xFFFFFFFFu).index() == 0xFFFFFFFFu);
    CHECK(session_id::make(0xFFFFFFFFu, 0xFFFFFFFFu).generation() == 0xFFFFFFFFu);
}

TEST_CASE("router_register: users() lists folded names in ascending byte order", "[router][register]") {
    router r;
    std::vector<in_memory_transport> ts(6);
    const char* names[] = {"Zed", "_a", "a", "-x", ".y", "0z"};
    std::vector<session_id> ids;
    for (std::size_t i = 0; i < 6; ++i) {
        ids.push_back(r.open_session(ts[i], switchboard::protocol::line_event_encoder::instance()));
        REQUIRE(r.register_name(ids[i], names[i]) == status::ok);
    }
    CHECK(r.users() == std::vector<std::string_view>{"-x", ".y", "0z", "_a", "a", "zed"});
    REQUIRE(r.close_session(ids[4]) == status::ok);
    CHECK(r.users() == std::vector<std::string_view>{"-x", "0z", "_a", "a", "zed"});
    router empty;
    CHECK(empty.users().empty());
}

TEST_CASE("router_register: disconnect asks the transport to close and keeps the session open",
          "[router][register]") {
    router r;
    in_memory_transport t1, t2;
    const session_id s1 = r.open_session(t1, switchboard::protocol::line_event_encoder::instance());
    const session_id s2 = r.open_session(t2, switchboard::protocol::line_event_encoder::instance());
    CHECK(r.disconnect(s1) == status::ok);
    CHECK(t1.closed());
    CHECK(t1.closed_with() == switchboard::close_mode::after_flush);
    CHECK(r.is_open(s1)); // until the adapter calls close_session
    CHECK(r.disconnect(s2, switchboard::close_mode::abort) == status::ok);
    CHECK(t2.closed_with() == switchboard::close_mode::abort);
}
