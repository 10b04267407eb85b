// redis::subscriber: messages with their channel, and the subscriptions restored after a killed
// Pub/Sub connection and after a Redis restart, before on_up.
#include "redis_test.hpp"

#include <switchboard/redis/subscriber.hpp>

#include <string>
#include <utility>
#include <vector>

using namespace redis_test;
using switchboard::redis::connection;
using switchboard::redis::subscriber;
using switchboard::test::redis_server;

namespace {

using message = std::pair<std::string, std::string>;

// Publishes through a connection and runs until the subscriber got `payload` (or the deadline).
bool publish_and_receive(net::io_context& io, connection& pub, const std::vector<message>& got,
                         const std::string& channel, const std::string& payload) {
    const auto before = got.size();
    bool sent = false;
    if (!pub.command({"PUBLISH", channel, payload}, [&](const redisReply* r) { sent = r != nullptr; })) return false;
    return run_until(io, [&] { return got.size() > before && sent; }) && got.back() == message{channel, payload};
}

// A redis-server, a publishing connection and a subscriber to `channels`, both started. `ups`
// and `downs` count the subscriber's on_up / on_down; at each on_up, `numsub_at_up` records
// PUBSUB NUMSUB of `watched` as the server sees it then.
struct pubsub {
    redis_server server;
    net::io_context io;
    connection pub{io, fast_options(server)};
    subscriber sub{io, fast_options(server)};
    std::vector<message> got;
    int ups = 0;
    int downs = 0;
    std::vector<std::string> watched;
    std::vector<std::string> numsub_at_up;

    pubsub(const std::vector<std::string>& channels, std::vector<std::string> watch) : watched(std::move(watch)) {
        sub.on_message([this](std::string_view c, std::string_view p) { got.emplace_back(c, p); });
        sub.on_up([this] {
            ++ups;
            std::vector<std::string> argv{"PUBSUB", "NUMSUB"};
            argv.insert(argv.end(), watched.begin(), watched.end());
            numsub_at_up.push_back(server.command(argv));
        });
        sub.on_down([this] { ++downs; });
        for (const auto& c : channels) sub.subscribe(c);
        pub.start();
        sub.start();
    }
    bool up(int n) {
        return run_until(io, [&] { return ups == n && pub.connected(); });
    }
    bool publish(const std::string& channel, const std::string& payload) {
        return publish_and_receive(io, pub, got, channel, payload);
    }
};

} // namespace

TEST_CASE("subscriber: receives messages on its channels with their channel name, binary payloads", "[redis]") {
    pubsub t({"a", std::string("b\0b", 3)}, {"a", "c"});
    REQUIRE(t.up(1));
    CHECK(t.sub.connected());
    CHECK(t.numsub_at_up.at(0) == "a\n1\nc\n0");
    REQUIRE(t.publish("a", "hello"));
    REQUIRE(t.publish(std::string("b\0b", 3), std::string("x\0y\r\n", 5)));
    // Not subscribed: nothing.
    std::string receivers;
    REQUIRE(t.pub.command({"PUBLISH", "c", "nobody"}, [&](const redisReply* r) { receivers = text(r); }));
    REQUIRE(run_until(t.io, [&] { return !receivers.empty(); }));
    CHECK(receivers == "0");
    // Subscribing while up: confirmed, then delivered.
    t.sub.subscribe("c");
    REQUIRE(run_until(t.io, [&] { return t.server.command({"PUBSUB", "NUMSUB", "c"}) == "c\n1"; }));
    REQUIRE(t.publish("c", "now"));
    // Unsubscribed: no longer delivered.
    t.sub.unsubscribe("a");
    REQUIRE(run_until(t.io, [&] { return t.server.command({"PUBSUB", "NUMSUB", "a"}) == "a\n0"; }));
    const auto before = t.got.size();
    REQUIRE(t.publish("c", "after"));
    CHECK(t.got.size() == before + 1);
    CHECK(t.sub.channels().count("a") == 0);
    CHECK(t.ups == 1);
    // A connection refuses the push-mode commands.
    CHECK_FALSE(t.pub.command({"subscribe", "x"}, [](const redisReply*) {}));
}

TEST_CASE("subscriber: CLIENT KILL TYPE pubsub -> on_down once, every channel subscribed again before on_up, receives again", "[redis]") {
    pubsub t({"one", "two", "three"}, {"one", "two", "three"});
    REQUIRE(t.up(1));
    REQUIRE(t.publish("two", "before"));
    for (int round = 2; round <= 3; ++round) {
        CHECK(t.server.command({"CLIENT", "KILL", "TYPE", "pubsub"}) == "1");
        REQUIRE(run_until(t.io, [&] { return t.downs == round - 1 && t.ups == round; }));
        REQUIRE(t.publish("three", "after kill " + std::to_string(round)));
        REQUIRE(t.publish("one", "one too"));
    }
    // on_up came only once the subscriptions were back on the server.
    REQUIRE(t.numsub_at_up.size() == 3);
    for (const auto& n : t.numsub_at_up) CHECK(n == "one\n1\ntwo\n1\nthree\n1");
    CHECK(t.pub.connected()); // the other connection was not touched
}

TEST_CASE("subscriber: Redis restarted -> subscribed again before on_up, receives again, changes made while down applied", "[redis]") {
    pubsub t({"room:1", "gone"}, {"room:1", "room:2", "gone"});
    REQUIRE(t.up(1));
    t.server.kill9();
    REQUIRE(run_until(t.io, [&] { return t.downs == 1 && !t.pub.connected(); }));
    CHECK_FALSE(t.sub.connected());
    t.sub.subscribe("room:2"); // while down: remembered
    t.sub.unsubscribe("gone");
    t.server.restart();
    REQUIRE(t.up(2));
    CHECK(t.numsub_at_up.at(1) == "room:1\n1\nroom:2\n1\ngone\n0");
    REQUIRE(t.publish("room:1", "back"));
    REQUIRE(t.publish("room:2", "new"));
    CHECK(t.downs == 1);
}

TEST_CASE("subscriber: stop() and destruction from inside on_message", "[redis]") {
    redis_server server;
    net::io_context io;
    connection pub(io, options_for(server));
    auto sub = std::make_unique<subscriber>(io, options_for(server));
    int messages = 0;
    sub->on_message([&](std::string_view, std::string_view) {
        ++messages;
        sub.reset();
    });
    bool up = false;
    sub->on_up([&] { up = true; });
    sub->subscribe("x");
    pub.start();
    sub->start();
    REQUIRE(run_until(io, [&] { return up && pub.connected(); }));
    int acks = 0;
    for (int i = 0; i < 5; ++i) REQUIRE(pub.command({"PUBLISH", "x", "m"}, [&](const redisReply*) { ++acks; }));
    REQUIRE(run_until(io, [&] { return acks == 5 && sub == nullptr; }));
    run_for(io, 50ms);
    CHECK(messages == 1);
}
