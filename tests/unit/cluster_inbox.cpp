// The inbox across nodes (issue #14, item 5) at the router's level: routers of one in-process
// cluster sharing one store (a memory_inbox both call, as every node calls the Redis inbox). A
// message queued on one node is replayed on another; a message routed from another node to an
// ack-on session is stored there and handed as `dm`, once however many sessions the user has.
// (The Redis store itself: tests/redis/inbox.cpp; three processes: tests/cluster/test_inbox.py.)
#include "in_process_cluster.hpp"
#include "line_client.hpp"

#include <switchboard/memory_inbox.hpp>
#include <switchboard/router.hpp>

#include <catch2/catch.hpp>

#include <string>

using switchboard::memory_inbox;
using switchboard::name;
using switchboard::router_options;
using switchboard::session_policy;
using switchboard::status;
using switchboard_test::in_process_cluster;
using switchboard_test::line_client;
using switchboard_test::lines_t;

namespace {

router_options shared(memory_inbox& store, session_policy policy = session_policy::exclusive) {
    return switchboard_test::with_inbox(store, policy);
}

} // namespace

TEST_CASE("cluster inbox: queued on one node, replayed on another, acknowledged from a third", "[cluster]") {
    memory_inbox store;
    in_process_cluster c(3, shared(store));
    {
        line_client bob(c.at(1));
        bob.say("/register bob"); // known from now on
        c.pump();
        CHECK(bob.lines() == lines_t{"ok register bob"});
    }
    c.pump(); // bob's release reaches the other nodes
    line_client alice(c.at(0));
    alice.say("/register alice");
    c.pump();
    (void)alice.lines();
    alice.say("/msg bob one");
    alice.say("/send c2 bob two");
    CHECK(alice.lines() == lines_t{"ok queued bob", "sent c2 queued"});
    line_client bob(c.at(2)); // back on another node, acks on
    bob.say("/ack on");
    bob.say("/register bob");
    c.pump();
    CHECK(bob.lines() == lines_t{"ok ack on", "ok register bob", "dm 1 alice one", "dm 2 alice two"});
    bob.say("/ack 2");
    CHECK(store.stored(*name::parse("bob")) == 0);
}

TEST_CASE("cluster inbox: a message from another node to an ack-on session is stored and handed as dm", "[cluster]") {
    memory_inbox store;
    in_process_cluster c(2, shared(store));
    line_client alice(c.at(0)), bob(c.at(1));
    bob.say("/ack on");
    bob.say("/register bob");
    alice.say("/register alice");
    c.pump();
    (void)alice.lines();
    (void)bob.lines();
    alice.say("/msg bob hello");
    c.pump();
    CHECK(alice.lines().empty()); // delivered to bob's node
    CHECK(bob.lines() == lines_t{"dm 1 alice hello"});
    CHECK(store.stored(*name::parse("bob")) == 1); // until acknowledged
    bob.say("/ack 1");
    CHECK(store.stored(*name::parse("bob")) == 0);
    // Not acknowledged, it is handed again to bob's next session, on any node.
    alice.say("/msg bob again");
    c.pump();
    CHECK(bob.lines() == lines_t{"dm 2 alice again"});
    bob.close();
    c.pump();
    line_client bob2(c.at(0));
    bob2.say("/ack on");
    bob2.say("/register bob");
    c.pump();
    CHECK(bob2.lines() == lines_t{"ok ack on", "ok register bob", "dm 2 alice again"});
}

TEST_CASE("cluster inbox: under multi, a cross-node message is stored once for all of a node's ack-on sessions",
          "[cluster]") {
    memory_inbox store;
    in_process_cluster c(2, shared(store, session_policy::multi));
    line_client alice(c.at(0)), phone(c.at(1)), laptop(c.at(1)), tv(c.at(1));
    for (line_client* b : {&phone, &laptop}) {
        b->say("/ack on");
        b->say("/register bob");
    }
    tv.say("/register bob"); // acks off: plain msg
    alice.say("/register alice");
    c.pump();
    for (line_client* x : {&alice, &phone, &laptop, &tv}) (void)x->lines();
    alice.say("/msg bob hi");
    c.pump();
    CHECK(phone.lines() == lines_t{"dm 1 alice hi"});
    CHECK(laptop.lines() == lines_t{"dm 1 alice hi"});
    CHECK(tv.lines() == lines_t{"msg alice hi"});
    CHECK(store.stored(*name::parse("bob")) == 1); // one copy, not one per record
}

TEST_CASE("cluster inbox: deliver_remote checks what the other node sent", "[cluster]") {
    memory_inbox store;
    in_process_cluster c(2, shared(store));
    line_client bob(c.at(1));
    bob.say("/ack on");
    bob.say("/register bob");
    c.pump();
    (void)bob.lines();
    CHECK(c.at(1).deliver_remote(bob.id(), "not a name", "x").code == status::invalid_name);
    CHECK(c.at(1).deliver_remote(bob.id(), "alice", std::string("a\nb")).code == status::invalid_text);
    CHECK(c.at(1).deliver_remote(switchboard::session_id{}, "alice", "x").code == status::unknown_session);
    CHECK(bob.lines().empty());
    CHECK(store.stored(*name::parse("bob")) == 0);
}
