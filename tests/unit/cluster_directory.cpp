// The cluster hook (issue #14, H1; docs/design.md, "Clusters: the directory hook and remote
// sessions"): two or three routers in one process joined by an in-process directory whose claims
// are decided later, when the test pumps its queue. Registration answered later, the session
// policies across routers, remote sessions ("proxies") for lookup, routing and presence, room
// events and relay(), and the cluster-unavailable refusal.
#include "in_process_cluster.hpp"
#include "line_client.hpp"

#include <switchboard/cluster_format.hpp>
#include <switchboard/in_memory_transport.hpp>
#include <switchboard/protocol/line.hpp>
#include <switchboard/router.hpp>
#include <switchboard/structured_format.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using switchboard::event;
using switchboard::event_kind;
using switchboard::in_memory_transport;
using switchboard::name;
using switchboard::payload;
using switchboard::router;
using switchboard::router_options;
using switchboard::session_id;
using switchboard::session_policy;
using switchboard::status;
using switchboard_test::in_process_cluster;
using switchboard_test::line_client;
using switchboard_test::lines_t;
using switchboard_test::with_policy;

namespace {

name operator""_n(const char* s, std::size_t n) { return *name::parse(std::string_view(s, n)); }

// alice on node 0, bob on node 1, both registered, their answers taken.
struct alice_and_bob {
    in_process_cluster c{2};
    line_client alice{c.at(0)}, bob{c.at(1)};
    alice_and_bob() {
        alice.say("/register alice");
        bob.say("/register bob");
        c.pump();
        (void)alice.lines();
        (void)bob.lines();
    }
};

} // namespace

TEST_CASE("cluster: /register is answered once the directory decides, with the synchronous bytes", "[cluster]") {
    in_process_cluster c(2);
    line_client a(c.at(0));
    a.say("/register alice");
    CHECK(a.lines().empty()); // pending: no answer yet
    CHECK(c.at(0).registration_pending(a.id()));
    CHECK(c.at(0).pending_claims() == 1);
    CHECK_FALSE(c.at(0).is_registered(a.id()));
    a.say("/join lobby"); // held by the line session until the answer (see cluster_protocol.cpp)
    CHECK(a.lines().empty());
    CHECK(c.at(0).join(a.id(), "lobby"_n) == status::not_registered); // the router holds no name yet
    CHECK(c.told(0).claims == 1);
    c.pump();
    CHECK(a.lines() == lines_t{"ok register alice"});
    CHECK(c.at(0).is_registered(a.id()));
    CHECK(c.at(0).pending_claims() == 0);
    // Node 1 has a remote session for alice: lookup, users() and presence see her.
    CHECK(c.at(1).sessions_of("alice"_n) == 1);
    CHECK(c.at(1).users() == std::vector<std::string_view>{"alice"});
    CHECK(c.at(1).is_remote(c.at(1).find("alice")));
    CHECK(c.at(1).presence_of("alice"_n).online);
    // Exclusive: node 1 refuses at once, from its own state (the proxy holds the name).
    line_client b(c.at(1));
    b.say("/register alice");
    CHECK(b.lines() == lines_t{"err name-taken alice"});
    CHECK(c.told(1).claims == 0);
}

TEST_CASE("cluster: exclusive race between two routers has exactly one winner", "[cluster]") {
    in_process_cluster c(2);
    line_client a(c.at(0)), b(c.at(1));
    a.say("/register alice");
    b.say("/register ALICE");
    CHECK(a.lines().empty());
    CHECK(b.lines().empty());
    c.pump();
    const lines_t la = a.lines(), lb = b.lines();
    CHECK(la == lines_t{"ok register alice"});
    CHECK(lb == lines_t{"err name-taken alice"});
    CHECK(c.holders("alice") == 1);
    CHECK(c.at(0).sessions_of("alice"_n) == 1);
    CHECK(c.at(1).sessions_of("alice"_n) == 1); // the proxy
    CHECK_FALSE(c.at(1).is_registered(b.id()));
    CHECK(c.told(1).released.empty()); // a refused claim gave nothing up
}

TEST_CASE("cluster: a granted claim that local state refuses is undone (exclusive, a proxy came first)", "[cluster]") {
    in_process_cluster c(2);
    line_client a(c.at(0));
    // Answer a claim by hand: node 0 asks, then a proxy for alice arrives before the answer.
    a.say("/register alice");
    in_memory_transport t;
    const session_id proxy = c.at(0).open_remote_session(t, switchboard::cluster_format::instance());
    CHECK(c.at(0).register_remote(proxy, "alice"_n) == status::ok);
    c.pump(); // the directory (which has no entry for the hand-made proxy) grants it
    CHECK(a.lines() == lines_t{"err name-taken alice"});
    CHECK(c.told(0).released.size() == 1); // the claim was undone
    c.pump();
    CHECK(c.holders("alice") == 0);
    CHECK(c.at(0).close_session(proxy) == status::ok);
}

TEST_CASE("cluster: replace moves the name across routers; watchers elsewhere see no change", "[cluster]") {
    in_process_cluster c(3, with_policy(session_policy::replace));
    line_client old_device(c.at(0)), new_device(c.at(1)), watcher(c.at(2)), bob(c.at(0));
    watcher.say("/register w");
    bob.say("/register bob");
    c.pump();
    watcher.say("/watch alice");
    old_device.say("/register alice");
    c.pump();
    old_device.say("/join lobby");
    bob.say("/join lobby");
    (void)old_device.lines();
    (void)watcher.lines();
    (void)bob.lines();
    new_device.say("/register alice");
    CHECK(new_device.lines().empty());
    c.pump();
    CHECK(new_device.lines() == lines_t{"ok register alice"});
    CHECK(old_device.lines() == lines_t{"bye replaced"});
    CHECK(old_device.transport_closed());
    CHECK(bob.lines() == lines_t{"leave lobby alice"});
    CHECK(watcher.lines().empty()); // no presence change anywhere
    old_device.close();
    c.pump();
    for (std::size_t n = 0; n < 3; ++n) CHECK(c.at(n).sessions_of("alice"_n) == 1);
    CHECK(c.holders("alice") == 1);
    CHECK(c.proxies(0) == 2); // w's and the new alice's
    bob.say("/msg alice moved?");
    c.pump();
    CHECK(new_device.lines() == lines_t{"msg bob moved?"});
    CHECK(watcher.lines().empty());
}

TEST_CASE("cluster: multi with a cap counts the sessions of every router", "[cluster]") {
    in_process_cluster c(2, with_policy(session_policy::multi, 2));
    line_client a1(c.at(0)), b1(c.at(1)), a2(c.at(0));
    a1.say("/register alice");
    b1.say("/register alice");
    a2.say("/register alice"); // every local check passes: nothing is registered yet
    c.pump();
    CHECK(a1.lines() == lines_t{"ok register alice"});
    CHECK(b1.lines() == lines_t{"ok register alice"});
    CHECK(a2.lines() == lines_t{"err too-many-sessions alice"});
    CHECK(c.at(0).sessions_of("alice"_n) == 2); // a1 and b1's proxy
    CHECK(c.at(1).sessions_of("alice"_n) == 2);
    // A third one is now refused from the router's own state.
    line_client b2(c.at(1));
    b2.say("/register alice");
    CHECK(b2.lines() == lines_t{"err too-many-sessions alice"});
    // A direct message reaches both sessions, one of them through the proxy.
    line_client bob(c.at(1));
    bob.say("/register bob");
    c.pump();
    (void)bob.lines();
    bob.say("/msg alice hi");
    c.pump();
    CHECK(a1.lines() == lines_t{"msg bob hi"});
    CHECK(b1.lines() == lines_t{"msg bob hi"});
}

TEST_CASE("cluster: a session closed while its claim is pending: the claim is undone, nothing leaks", "[cluster]") {
    in_process_cluster c(2);
    {
        line_client a(c.at(0));
        a.say("/register alice");
        CHECK(c.at(0).pending_claims() == 1);
    } // closed before the answer
    c.pump();
    CHECK(c.at(0).pending_claims() == 0);
    CHECK(c.told(0).released == std::vector<std::string>{"alice@-1"});
    CHECK(c.holders("alice") == 0);
    CHECK(c.proxies(1) == 0);
    CHECK(c.at(0).user_count() == 0);
    CHECK(c.at(1).user_count() == 0);
    CHECK(c.at(1).session_count() == 0);
    // The name is free again.
    line_client b(c.at(1));
    b.say("/register alice");
    c.pump();
    CHECK(b.lines() == lines_t{"ok register alice"});
}

TEST_CASE("cluster: a claim answered cluster_unavailable leaves the session unregistered", "[cluster]") {
    in_process_cluster c(2);
    line_client a(c.at(0));
    c.down = true;
    a.say("/register alice");
    c.pump();
    CHECK(a.lines() == lines_t{"err cluster-unavailable alice"});
    CHECK_FALSE(c.at(0).is_registered(a.id()));
    c.down = false;
    a.say("/register alice");
    c.pump();
    CHECK(a.lines() == lines_t{"ok register alice"});
    CHECK(c.at(0).claim_completed(12345, status::ok) == status::unknown_session); // unknown ticket
}

TEST_CASE("cluster: watchers on another router see one event per transition, last seen carried", "[cluster]") {
    in_process_cluster c(2, with_policy(session_policy::multi));
    line_client w(c.at(1));
    w.say("/register w");
    c.pump();
    (void)w.lines();
    w.say("/watch alice");
    CHECK(w.lines() == lines_t{"ok watch alice", "presence alice offline"});
    {
        line_client a1(c.at(0)), a2(c.at(0));
        a1.say("/register alice", 1000);
        c.pump();
        CHECK(w.lines() == lines_t{"presence alice online"});
        a2.say("/register alice", 2000);
        c.pump();
        CHECK(w.lines().empty()); // a second session: no transition
        a2.say("/who", 4000);
        a1.say("/who", 5000);
        a2.close();
        c.pump();
        CHECK(w.lines().empty()); // alice still has a1
        CHECK(c.told(0).released == std::vector<std::string>{"alice@4000"});
    } // a1 goes
    c.pump();
    CHECK(w.lines() == lines_t{"presence alice offline 5000"});
    CHECK(c.at(1).presence_of("alice"_n).last_seen == 5000);
    CHECK(c.at(1).now() != 5000); // a remote last seen does not move the router's clock
}

TEST_CASE("cluster: a direct message to a remote session is handed to the proxy in the cluster format",
          "[cluster]") {
    alice_and_bob ab;
    in_process_cluster& c = ab.c;
    line_client &alice = ab.alice, &bob = ab.bob;
    bob.say("/msg alice hi there");
    CHECK(bob.lines().empty()); // delivered (to the proxy)
    REQUIRE(c.proxy_payloads(1).size() == 1);
    const payload& bytes = c.proxy_payloads(1).front();
    event e;
    REQUIRE(switchboard::decode_cluster_event(bytes.view(), e));
    CHECK(e.kind == event_kind::direct_message);
    CHECK(e.user == "bob");
    CHECK(e.text == "hi there");
    CHECK(switchboard::cluster_format::instance().encode(e).view() == bytes.view()); // round trip
    CHECK(alice.lines().empty());
    c.pump();
    CHECK(alice.lines() == lines_t{"msg bob hi there"});
    CHECK(c.at(1).counters().delivered >= 1);
}

TEST_CASE("cluster: a proxy whose node is out of reach: cluster-unavailable, nothing counted delivered",
          "[cluster]") {
    alice_and_bob ab;
    in_process_cluster& c = ab.c;
    line_client &alice = ab.alice, &bob = ab.bob;
    const auto before = c.at(1).counters();
    c.down = true;
    const switchboard::route_result r = c.at(1).route(bob.id(), "alice"_n, "hello");
    CHECK(r.code == status::cluster_unavailable);
    CHECK(r.delivered == 0);
    CHECK_FALSE(r.queued);
    CHECK(c.at(1).counters().delivered == before.delivered);
    CHECK(c.at(1).counters().routed == before.routed);
    bob.say("/msg alice hello");
    CHECK(bob.lines() == lines_t{"err cluster-unavailable alice"});
    c.down = false;
    bob.say("/msg alice hello");
    c.pump();
    CHECK(alice.lines() == lines_t{"msg bob hello"});
}

TEST_CASE("cluster: a user with several sessions, all remote and out of reach: cluster-unavailable", "[cluster]") {
    in_process_cluster c(3, with_policy(session_policy::multi));
    line_client a0(c.at(0)), a2(c.at(2)), bob(c.at(1));
    a0.say("/register alice");
    a2.say("/register alice");
    bob.say("/register bob");
    c.pump();
    (void)bob.lines();
    REQUIRE(c.at(1).sessions_of("alice"_n) == 2);
    c.down = true;
    const switchboard::route_result r = c.at(1).route(bob.id(), "alice"_n, "anyone?");
    CHECK(r.code == status::cluster_unavailable);
    CHECK(r.delivered == 0);
    c.down = false;
    const switchboard::route_result ok = c.at(1).route(bob.id(), "alice"_n, "now?");
    CHECK(ok.ok());
    CHECK(ok.delivered == 2);
    c.pump();
    CHECK(a0.lines() == lines_t{"ok register alice", "msg bob now?"});
    CHECK(a2.lines() == lines_t{"ok register alice", "msg bob now?"});
}

TEST_CASE("cluster: rooms: room_active on the first and last local member, room events relayed once per format",
          "[cluster]") {
    in_process_cluster c(2);
    line_client a(c.at(0)), a2(c.at(0)), b(c.at(1));
    a.say("/register alice");
    a2.say("/register anna");
    b.say("/register bob");
    c.pump();
    a.say("/join lobby");
    a2.say("/join lobby");
    CHECK(c.told(0).room_active == std::vector<std::string>{"lobby:on"}); // first local member only
    CHECK(c.told(0).room_events.size() == 2);                              // two joins
    c.pump();                                                              // nobody on node 1 yet
    b.say("/join lobby");
    CHECK(c.told(1).room_active == std::vector<std::string>{"lobby:on"});
    c.pump();
    CHECK(a.lines() == lines_t{"ok register alice", "ok join lobby", "join lobby anna", "join lobby bob"});
    (void)a2.lines();
    (void)b.lines();
    a.say("/say lobby hello all");
    CHECK(c.told(0).room_events.back() == "1 lobby alice hello all");
    const std::size_t events_on_1 = c.told(1).room_events.size();
    c.pump();
    CHECK(b.lines() == lines_t{"room lobby alice hello all"});
    CHECK(a2.lines() == lines_t{"room lobby alice hello all"});
    CHECK(a.lines().empty());
    CHECK(c.told(1).room_events.size() == events_on_1); // relay() does not call room_event
    // Proxies never join rooms.
    const session_id proxy = c.at(1).find("alice");
    REQUIRE(c.at(1).is_remote(proxy));
    CHECK(c.at(1).join(proxy, "lobby"_n) == status::not_supported);
    // The last local member leaving gives the room up on that node only.
    a.say("/leave lobby");
    CHECK(c.told(0).room_active == std::vector<std::string>{"lobby:on"});
    a2.close();
    CHECK(c.told(0).room_active == std::vector<std::string>{"lobby:on", "lobby:off"});
    CHECK(c.told(0).room_events.back() == "3 lobby anna"); // member_left, for the other nodes
    c.pump();
    CHECK(b.lines() == lines_t{"leave lobby alice", "leave lobby anna"});
}

TEST_CASE("cluster: relay() checks what it is given and encodes once per format", "[cluster]") {
    router_options o; // relay() works without a directory too (a host that bridges)
    router r(o);
    const switchboard::structured_format& fmt = switchboard::structured_format::instance();
    in_memory_transport t1, t2, t3;
    const session_id s1 = r.open_session(t1, fmt), s2 = r.open_session(t2, fmt),
                     s3 = r.open_session(t3, switchboard::protocol::line_event_encoder::instance());
    for (const session_id s : {s1, s2, s3}) {
        const std::string n = "u" + std::to_string(s.index());
        REQUIRE(r.register_name(s, n) == status::ok);
        REQUIRE(r.join(s, "lobby"_n) == status::ok);
    }
    const std::size_t before1 = t1.received().size(), before2 = t2.received().size();
    (void)t3.take_bytes();
    event e{event_kind::room_message, "ignored", "Zed", "from afar"};
    const switchboard::route_result res = r.relay("lobby"_n, e);
    CHECK(res.ok());
    CHECK(res.delivered == 3);
    REQUIRE(t1.received().size() == before1 + 1);
    REQUIRE(t2.received().size() == before2 + 1);
    CHECK(same_buffer(t1.received().back(), t2.received().back())); // one encode for the format
    const auto got = switchboard::structured_format::decode(t1.received().back());
    REQUIRE(got);
    CHECK(got->room == "lobby");
    CHECK(got->user == "zed");
    CHECK(t3.take_lines() == lines_t{"room lobby zed from afar"});
    CHECK(r.relay("nowhere"_n, e).delivered == 0);
    e.text = "two\nlines";
    CHECK(r.relay("lobby"_n, e).code == status::invalid_text);
    e.text = "ok";
    e.user = "not a name";
    CHECK(r.relay("lobby"_n, e).code == status::invalid_name);
    e.user = "zed";
    e.kind = event_kind::direct_message;
    CHECK(r.relay("lobby"_n, e).code == status::not_supported);
    e.kind = event_kind::member_joined;
    CHECK(r.relay("lobby"_n, e).delivered == 3);
    CHECK(t3.take_lines() == lines_t{"join lobby zed"});
}

TEST_CASE("cluster: without a directory, register_remote needs a remote session and nothing is pending", "[cluster]") {
    router r;
    in_memory_transport t, p;
    const session_id local = r.open_session(t, switchboard::protocol::line_event_encoder::instance());
    const session_id proxy = r.open_remote_session(p, switchboard::cluster_format::instance());
    CHECK(r.register_remote(local, "alice"_n) == status::unknown_session);
    CHECK(r.register_name(local, "alice") == status::ok); // at once, as in v1
    CHECK(r.pending_claims() == 0);
    // Exclusive: the remote session takes the name over (the directory is the authority).
    CHECK(r.register_remote(proxy, "alice"_n) == status::ok);
    CHECK(t.take_lines() == lines_t{"bye replaced"});
    CHECK(t.closed());
    CHECK(r.find("alice") == proxy);
    CHECK(r.close_session(local) == status::ok);
    CHECK(r.sessions_of("alice"_n) == 1);
}

TEST_CASE("cluster: a structured session reads the late register_outcome back with its code", "[cluster]") {
    in_process_cluster c(2);
    const switchboard::structured_format& fmt = switchboard::structured_format::instance();
    in_memory_transport t0, t1;
    const session_id s0 = c.at(0).open_session(t0, fmt), s1 = c.at(1).open_session(t1, fmt);
    REQUIRE(c.at(0).register_name(s0, "bob") == status::pending); // both at once: the first
    REQUIRE(c.at(1).register_name(s1, "bob") == status::pending); // claim wins (exclusive)
    c.pump();
    const auto granted = switchboard::structured_format::decode(t0.received().back());
    REQUIRE(granted);
    CHECK(granted->kind == event_kind::register_outcome);
    CHECK(granted->user == "bob");
    CHECK(granted->code == status::ok);
    const auto refused = switchboard::structured_format::decode(t1.received().back());
    REQUIRE(refused);
    CHECK(refused->kind == event_kind::register_outcome);
    CHECK(refused->code == status::name_taken);
}

TEST_CASE("structured_format: every kind, code and queued flag round-trip; out-of-range bytes are refused",
          "[cluster]") {
    const switchboard::structured_format& fmt = switchboard::structured_format::instance();
    event e{event_kind::send_outcome, {}, "bob", "cid-1"};
    e.code = status::store_busy;
    e.queued = true;
    const payload p = fmt.encode(e);
    const auto got = switchboard::structured_format::decode(p);
    REQUIRE(got);
    CHECK(got->kind == event_kind::send_outcome);
    CHECK(got->code == status::store_busy);
    CHECK(got->queued);
    CHECK(got->user == "bob");
    CHECK(got->text == "cid-1");
    std::string bytes(p.view());
    bytes[0] = static_cast<char>(static_cast<unsigned char>(switchboard::detail::last_event_kind) + 1);
    CHECK_FALSE(switchboard::structured_format::decode(payload::copy_of(bytes)));
    bytes = std::string(p.view());
    bytes[3] = static_cast<char>(static_cast<unsigned char>(switchboard::detail::last_status) + 1);
    CHECK_FALSE(switchboard::structured_format::decode(payload::copy_of(bytes)));
}
