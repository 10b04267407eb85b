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

} // namespace

TEST_CASE("subscriber: receives messages on its channels with their channel name, binary payloads", "[redis]") {
    redis_server server;
    net::io_context io;
    connection pub(io, options_for(server));
    subscriber sub(io, options_for(server));
    std::vector<message> got;
    sub.on_message([&](std::string_view c, std::string_view p) { got.emplace_back(c, p); });
    int ups = 0;
    sub.on_up([&] { ++ups; });
    sub.subscribe("a");
    sub.subscribe(std::string("b\0b", 3));
    pub.start();
    sub.start();
    REQUIRE(run_until(io, [&] { return ups == 1 && pub.connected(); }));
    CHECK(sub.connected());
    CHECK(server.command({"PUBSUB", "NUMSUB", "a"}) == "a\n1");
    REQUIRE(publish_and_receive(io, pub, got, "a", "hello"));
    REQUIRE(publish_and_receive(io, pub, got, std::string("b\0b", 3), std::string("x\0y\r\n", 5)));
    // Not subscribed: nothing.
    std::string receivers;
    REQUIRE(pub.command({"PUBLISH", "c", "nobody"}, [&](const redisReply* r) { receivers = text(r); }));
    REQUIRE(run_until(io, [&] { return !receivers.empty(); }));
    CHECK(receivers == "0");
    // Subscribing while up: confirmed, then delivered.
    sub.subscribe("c");
    REQUIRE(run_until(io, [&] { return server.command({"PUBSUB", "NUMSUB", "c"}) == "c\n1"; }));
    REQUIRE(publish_and_receive(io, pub, got, "c", "now"));
    // Unsubscribed: no longer delivered.
    sub.unsubscribe("a");
    REQUIRE(run_until(io, [&] { return server.command({"PUBSUB", "NUMSUB", "a"}) == "a\n0"; }));
    const auto before = got.size();
    REQUIRE(publish_and_receive(io, pub, got, "c", "after"));
    CHECK(got.size() == before + 1);
    CHECK(sub.channels().count("a") == 0);
    CHECK(ups == 1);
    // A connection refuses the push-mode commands.
    CHECK_FALSE(pub.command({"subscribe", "x"}, [](const redisReply*) {}));
}

TEST_CASE("subscriber: CLIENT KILL TYPE pubsub -> on_down once, every channel subscribed again before on_up, receives again", "[redis]") {
    redis_server server;
    net::io_context io;
    auto o = options_for(server);
    o.backoff_min = 10ms;
    o.backoff_max = 100ms;
    connection pub(io, o);
    subscriber sub(io, o);
    std::vector<message> got;
    sub.on_message([&](std::string_view c, std::string_view p) { got.emplace_back(c, p); });
    int ups = 0, downs = 0;
    std::vector<std::string> numsub_at_up;
    sub.on_up([&] {
        ++ups;
        numsub_at_up.push_back(server.command({"PUBSUB", "NUMSUB", "one", "two", "three"}));
    });
    sub.on_down([&] { ++downs; });
    for (const char* c : {"one", "two", "three"}) sub.subscribe(c);
    pub.start();
    sub.start();
    REQUIRE(run_until(io, [&] { return ups == 1 && pub.connected(); }));
    REQUIRE(publish_and_receive(io, pub, got, "two", "before"));
    for (int round = 2; round <= 3; ++round) {
        CHECK(server.command({"CLIENT", "KILL", "TYPE", "pubsub"}) == "1");
        REQUIRE(run_until(io, [&] { return downs == round - 1 && ups == round; }));
        REQUIRE(publish_and_receive(io, pub, got, "three", "after kill " + std::to_string(round)));
        REQUIRE(publish_and_receive(io, pub, got, "one", "one too"));
    }
    // on_up came only once the subscriptions were back on the server.
    for (const auto& n : numsub_at_up) CHECK(n == "one\n1\ntwo\n1\nthree\n1");
    CHECK(pub.connected()); // the other connection was not touched
}

TEST_CASE("subscriber: Redis restarted -> subscribed again before on_up, receives again, changes made while down applied", "[redis]") {
    redis_server server;
    net::io_context io;
    auto o = options_for(server);
    o.backoff_min = 10ms;
    o.backoff_max = 100ms;
    connection pub(io, o);
    subscriber sub(io, o);
    std::vector<message> got;
    sub.on_message([&](std::string_view c, std::string_view p) { got.emplace_back(c, p); });
    int ups = 0, downs = 0;
    std::string numsub_at_up;
    sub.on_up([&] {
        ++ups;
        numsub_at_up = server.command({"PUBSUB", "NUMSUB", "room:1", "room:2", "gone"});
    });
    sub.on_down([&] { ++downs; });
    sub.subscribe("room:1");
    sub.subscribe("gone");
    pub.start();
    sub.start();
    REQUIRE(run_until(io, [&] { return ups == 1 && pub.connected(); }));
    server.kill9();
    REQUIRE(run_until(io, [&] { return downs == 1 && !pub.connected(); }));
    CHECK_FALSE(sub.connected());
    sub.subscribe("room:2"); // while down: remembered
    sub.unsubscribe("gone");
    server.restart();
    REQUIRE(run_until(io, [&] { return ups == 2 && pub.connected(); }));
    CHECK(numsub_at_up == "room:1\n1\nroom:2\n1\ngone\n0");
    REQUIRE(publish_and_receive(io, pub, got, "room:1", "back"));
    REQUIRE(publish_and_receive(io, pub, got, "room:2", "new"));
    CHECK(downs == 1);
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
