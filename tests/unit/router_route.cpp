// router: 1:1 routing — the delivered line, messages to self, the user-not-found handler (and
// calling back into the router from it), result codes and counters.
#include <switchboard/in_memory_transport.hpp>
#include <switchboard/router.hpp>
#include <switchboard/protocol/line.hpp>

#include <catch2/catch.hpp>

#include <deque>
#include <string>
#include <string_view>
#include <vector>

using switchboard::close_mode;
using switchboard::in_memory_transport;
using switchboard::name;
using switchboard::payload;
using switchboard::route_result;
using switchboard::router;
using switchboard::session_id;
using switchboard::status;
using lines = std::vector<std::string>;

namespace {
struct two_users {
    router r;
    in_memory_transport ta, tb;
    session_id a = r.open_session(ta, switchboard::protocol::line_event_encoder::instance());
    session_id b = r.open_session(tb, switchboard::protocol::line_event_encoder::instance());
    two_users() {
        REQUIRE(r.register_name(a, "Alice") == status::ok);
        REQUIRE(r.register_name(b, "bob") == status::ok);
    }
};
} // namespace

TEST_CASE("router_route: route delivers `msg <from> <text>` to the recipient only", "[router][route]") {
    two_users f;
    const route_result res = f.r.route(f.a, "BOB", "hello there");
    CHECK(res.ok());
    CHECK(res.code == status::ok);
    CHECK(res.delivered == 1);
    CHECK(res.dropped == 0);
    CHECK(f.tb.take_bytes() == "msg alice hello there\n"); // sender's folded name
    CHECK(f.ta.received().empty());
}

TEST_CASE("router_route: text is passed byte for byte", "[router][route]") {
    two_users f;
    const std::string text = "\ttabs\tand trailing spaces   h\xC3\xA9llo \xF0\x9F\x98\x80";
    REQUIRE(f.r.route(f.a, "bob", text).ok());
    CHECK(f.tb.take_bytes() == "msg alice " + text + "\n");
    // Text outside the text contract is refused, not passed (tests/unit/host_text.cpp).
    const std::string opaque("a\0b\xFF", 4);
    CHECK(f.r.route(f.a, "bob", opaque).code == status::invalid_text);
    CHECK(f.tb.received().empty());
}

TEST_CASE("router_route: a session may message itself", "[router][route]") {
    two_users f;
    const route_result res = f.r.route(f.a, "alice", "note to self");
    CHECK(res.ok());
    CHECK(res.delivered == 1);
    CHECK(f.ta.take_lines() == lines{"msg alice note to self"});
    CHECK(f.tb.received().empty());
}

TEST_CASE("router_route: messages from one sender to one recipient arrive in order", "[router][route]") {
    two_users f;
    lines expected;
    for (int i = 0; i < 2000; ++i) {
        REQUIRE(f.r.route(f.a, "bob", std::to_string(i)).ok());
        expected.push_back("msg alice " + std::to_string(i));
    }
    CHECK(f.tb.take_lines() == expected);
}

TEST_CASE("router_route: error codes", "[router][route]") {
    two_users f;
    in_memory_transport tc;
    const session_id c = f.r.open_session(tc, switchboard::protocol::line_event_encoder::instance()); // not registered
    CHECK(f.r.route(c, "bob", "hi").code == status::not_registered);
    CHECK(f.r.route(c, "b@d", "hi").code == status::not_registered); // not-registered first
    CHECK(f.r.route(f.a, "b@d", "hi").code == status::invalid_name);
    CHECK(f.r.route(f.a, "", "hi").code == status::invalid_name);
    CHECK(f.r.route(f.a, std::string(41, 'b'), "hi").code == status::invalid_name);
    CHECK(f.r.route(f.a, "nobody", "hi").code == status::user_not_found);
    CHECK(f.r.route(session_id{}, "bob", "hi").code == status::unknown_session);
    CHECK(f.r.route(c, *name::parse("bob"), "hi").code == status::not_registered);
    CHECK_FALSE(f.r.route(f.a, "nobody", "hi").ok());
    CHECK(f.ta.received().empty());
    CHECK(f.tb.received().empty());
    CHECK(tc.received().empty());
    CHECK(f.r.counters().routed == 0);
    CHECK(f.r.counters().delivered == 0);
    CHECK(f.r.counters().user_not_found == 2);
}

TEST_CASE("router_route: user-not-found handler receives (from, folded target, text)", "[router][route]") {
    two_users f;
    struct call {
        session_id from;
        std::string target, text;
    };
    std::vector<call> calls;
    f.r.on_user_not_found([&](session_id from, std::string_view target, std::string_view text) {
        calls.push_back({from, std::string(target), std::string(text)});
    });
    const route_result res = f.r.route(f.a, "NoBody", "where are you \t?");
    CHECK(res.code == status::user_not_found);
    CHECK(res.delivered == 0);
    REQUIRE(calls.size() == 1);
    CHECK(calls[0].from == f.a);
    CHECK(calls[0].target == "nobody");
    CHECK(calls[0].text == "where are you \t?");

    // Not called for other failures, nor for successful routes.
    CHECK(f.r.route(f.a, "b@d", "x").code == status::invalid_name);
    CHECK(f.r.route(f.a, "bob", "x").ok());
    in_memory_transport tc;
    const session_id c = f.r.open_session(tc, switchboard::protocol::line_event_encoder::instance());
    CHECK(f.r.route(c, "nobody", "x").code == status::not_registered);
    CHECK(calls.size() == 1);

    // An empty handler removes it.
    f.r.on_user_not_found({});
    CHECK(f.r.route(f.a, "nobody", "x").code == status::user_not_found);
    CHECK(calls.size() == 1);
    CHECK(f.r.counters().user_not_found == 2);
}

TEST_CASE("router_route: the user-not-found handler may call back into the router", "[router][route]") {
    two_users f;
    router& r = f.r;
    // Bounce to the sender via send(), and copy the text to bob via route().
    r.on_user_not_found([&r](session_id from, std::string_view target, std::string_view text) {
        CHECK(r.send(from, payload::copy_of("* bounce " + std::string(target) + "\n")) == status::ok);
        const route_result copy = r.route(from, "bob", "for " + std::string(target) + ": " + std::string(text));
        CHECK(copy.ok());
    });
    const route_result res = r.route(f.a, "Carol", "hi carol");
    CHECK(res.code == status::user_not_found);
    CHECK(f.ta.take_lines() == lines{"* bounce carol"});
    CHECK(f.tb.take_lines() == lines{"msg alice for carol: hi carol"});

    // The handler may even close the sender and open new sessions (growing the session table).
    std::deque<in_memory_transport> extra;
    r.on_user_not_found([&](session_id from, std::string_view, std::string_view) {
        for (int i = 0; i < 100; ++i) (void)r.open_session(extra.emplace_back(), switchboard::protocol::line_event_encoder::instance());
        CHECK(r.close_session(from) == status::ok);
    });
    CHECK(r.route(f.a, "ghost", "x").code == status::user_not_found);
    CHECK_FALSE(r.is_open(f.a));
    CHECK(r.session_count() == 101);
    CHECK_FALSE(static_cast<bool>(r.find("alice")));
    CHECK(r.find("bob") == f.b);
}

TEST_CASE("router_route: counters and a refusing recipient", "[router][route]") {
    two_users f;
    f.r.on_user_not_found([](session_id, std::string_view, std::string_view) {});
    CHECK(f.r.route(f.a, "bob", "1").ok());
    CHECK(f.r.route(f.b, "alice", "2").ok());
    CHECK(f.r.route(f.a, "zed", "3").code == status::user_not_found);
    CHECK(f.r.counters().routed == 2);
    CHECK(f.r.counters().delivered == 2);
    CHECK(f.r.counters().dropped == 0);
    CHECK(f.r.counters().user_not_found == 1);

    // bob's transport is closing: the route succeeds but the payload is dropped.
    f.tb.close(close_mode::after_flush);
    const route_result res = f.r.route(f.a, "bob", "4");
    CHECK(res.code == status::ok);
    CHECK(res.delivered == 0);
    CHECK(res.dropped == 1);
    CHECK(f.r.counters().routed == 3);
    CHECK(f.r.counters().delivered == 2);
    CHECK(f.r.counters().dropped == 1);
    CHECK(f.tb.take_lines() == lines{"msg alice 1"});

    // send() counts too.
    CHECK(f.r.send(f.a, payload::copy_of("ok\n")) == status::ok);
    CHECK(f.r.send(f.b, payload::copy_of("ok\n")) == status::ok); // refused, still ok
    CHECK(f.r.counters().delivered == 3);
    CHECK(f.r.counters().dropped == 2);
    CHECK(f.r.counters().routed == 3); // send is not a route
    CHECK(f.ta.take_lines() == lines{"msg bob 2", "ok"});
}

TEST_CASE("router_route: send() hands the same payload, not a copy", "[router][route]") {
    two_users f;
    const payload p = payload::copy_of("* notice\n");
    REQUIRE(f.r.send(f.a, p) == status::ok);
    REQUIRE(f.ta.received().size() == 1);
    CHECK(same_buffer(f.ta.received()[0], p));
    CHECK(p.use_count() == 2);
}

TEST_CASE("router_route: after the recipient disconnects, routing to it is user-not-found", "[router][route]") {
    two_users f;
    REQUIRE(f.r.close_session(f.b) == status::ok);
    CHECK(f.r.route(f.a, "bob", "hi").code == status::user_not_found);
    in_memory_transport t;
    const session_id b2 = f.r.open_session(t, switchboard::protocol::line_event_encoder::instance());
    REQUIRE(f.r.register_name(b2, "BOB") == status::ok);
    CHECK(f.r.route(f.a, "bob", "again").ok());
    CHECK(t.take_lines() == lines{"msg alice again"});
    CHECK(f.tb.received().empty());
}

TEST_CASE("router: the user-not-found handler may replace itself from inside the call",
          "[router][route][reentrancy]") {
    switchboard::router r;
    switchboard::in_memory_transport t;
    const auto s = r.open_session(t, switchboard::protocol::line_event_encoder::instance());
    REQUIRE(r.register_name(s, "alice") == switchboard::status::ok);
    int first = 0, second = 0;
    r.on_user_not_found([&](switchboard::session_id, std::string_view, std::string_view) {
        ++first;
        r.on_user_not_found([&](switchboard::session_id, std::string_view, std::string_view) { ++second; });
    });
    CHECK(r.route(s, "nobody", "x").code == switchboard::status::user_not_found);
    CHECK(r.route(s, "nobody", "y").code == switchboard::status::user_not_found);
    CHECK(first == 1);
    CHECK(second == 1);
}
