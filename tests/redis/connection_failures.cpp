// redis::connection when Redis fails: killed and restarted, frozen (SIGSTOP), and stop() with
// commands in flight.
#include "redis_test.hpp"

#include <functional>
#include <memory>
#include <string>
#include <vector>

using namespace redis_test;
using switchboard::redis::connection;
using switchboard::test::redis_server;

TEST_CASE("connection: kill -9 of Redis -> pending handlers get nullptr and on_down once, restart -> on_up and commands work", "[redis]") {
    redis_server server;
    net::io_context io;
    connection c(io, fast_options(server));
    up_down seen(c);
    int& ups = seen.ups;
    int& downs = seen.downs;
    c.start();
    REQUIRE(run_until(io, [&] { return ups == 1; }));
    // A command that blocks server-side, so it is pending when Redis dies.
    int lost = 0;
    REQUIRE(c.command({"BLPOP", "never", "0"}, [&](const redisReply* r) { lost += r == nullptr; }));
    run_for(io, 20ms);
    server.kill9();
    REQUIRE(run_until(io, [&] { return downs == 1; }));
    CHECK(lost == 1);
    CHECK_FALSE(c.connected());
    CHECK_FALSE(c.command({"PING"}, [](const redisReply*) {}));
    // Reconnect attempts fail while Redis is down: no more on_down, no on_up.
    run_for(io, 300ms);
    CHECK(downs == 1);
    CHECK(ups == 1);
    server.restart();
    REQUIRE(run_until(io, [&] { return ups == 2; }));
    std::string reply;
    REQUIRE(c.command({"PING"}, [&](const redisReply* r) { reply = text(r); }));
    REQUIRE(run_until(io, [&] { return !reply.empty(); }));
    CHECK(reply == "PONG");
    CHECK(downs == 1);
    // And once more: every loss is one on_down, every reconnect one on_up.
    server.kill9();
    REQUIRE(run_until(io, [&] { return downs == 2; }));
    server.restart();
    REQUIRE(run_until(io, [&] { return ups == 3; }));
}

TEST_CASE("connection: start() while Redis is down connects once it is up (backoff retries)", "[redis]") {
    redis_server server;
    server.kill9();
    net::io_context io;
    connection c(io, fast_options(server));
    up_down seen(c);
    c.start();
    run_for(io, 300ms);
    CHECK(seen.ups == 0);
    CHECK(seen.downs == 0);
    server.restart();
    REQUIRE(run_until(io, [&] { return seen.ups == 1; }));
    CHECK(seen.downs == 0);
}

TEST_CASE("connection: a frozen Redis (SIGSTOP) -> the command gets nullptr within command_timeout, reconnect after SIGCONT", "[redis]") {
    redis_server server;
    net::io_context io;
    auto o = fast_options(server);
    o.command_timeout = 300ms;
    o.connect_timeout = 200ms;
    connection c(io, o);
    up_down seen(c);
    int& ups = seen.ups;
    int& downs = seen.downs;
    c.start();
    REQUIRE(run_until(io, [&] { return ups == 1; }));
    server.sigstop();
    bool answered = false;
    const redisReply* got = reinterpret_cast<const redisReply*>(1);
    const auto sent = std::chrono::steady_clock::now();
    REQUIRE(c.command({"PING"}, [&](const redisReply* r) {
        got = r;
        answered = true;
    }));
    REQUIRE(run_until(io, [&] { return answered; }, 5s));
    const auto waited = std::chrono::steady_clock::now() - sent;
    CHECK(got == nullptr);
    CHECK(waited >= 300ms);
    CHECK(waited < 300ms + 500ms);
    REQUIRE(run_until(io, [&] { return downs == 1; }));
    // While frozen, connect attempts time out (the kernel completes the handshake into the
    // listen backlog, so some may "connect"; their first command then times out too).
    run_for(io, 400ms);
    server.sigcont();
    REQUIRE(run_until(io, [&] { return c.connected() && ups >= 2; }));
    std::string reply;
    REQUIRE(c.command({"PING"}, [&](const redisReply* r) { reply = text(r); }));
    REQUIRE(run_until(io, [&] { return !reply.empty(); }));
    CHECK(reply == "PONG");
    CHECK(downs == ups - 1);
}

TEST_CASE("connection: stop() with commands in flight answers them all with nullptr before it returns", "[redis]") {
    redis_server server;
    net::io_context io;
    connection c(io, options_for(server));
    int downs = 0;
    c.on_down([&] { ++downs; });
    c.start();
    REQUIRE(run_until(io, [&] { return c.connected(); }));
    int nulls = 0, replies = 0;
    for (int i = 0; i < 1000; ++i) {
        REQUIRE(c.command({"INCR", "n"}, [&](const redisReply* r) { (r == nullptr ? nulls : replies) += 1; }));
    }
    c.stop();
    CHECK(nulls == 1000);
    CHECK(replies == 0);
    CHECK_FALSE(c.connected());
    run_for(io, 100ms);
    CHECK(nulls == 1000);
    CHECK(downs == 0); // stop() is not a loss
    // start() again works.
    c.start();
    REQUIRE(run_until(io, [&] { return c.connected(); }));
    std::string reply;
    REQUIRE(c.command({"PING"}, [&](const redisReply* r) { reply = text(r); }));
    REQUIRE(run_until(io, [&] { return !reply.empty(); }));
    CHECK(reply == "PONG");
}

TEST_CASE("connection: stop() or destruction from inside a reply handler", "[redis]") {
    redis_server server;
    net::io_context io;
    SECTION("stop() inside a handler: the later handlers get nullptr") {
        connection c(io, options_for(server));
        c.start();
        REQUIRE(run_until(io, [&] { return c.connected(); }));
        std::vector<std::string> got;
        REQUIRE(c.command({"PING"}, [&](const redisReply* r) {
            got.push_back(text(r));
            c.stop();
        }));
        for (int i = 0; i < 10; ++i) {
            REQUIRE(c.command({"PING"}, [&](const redisReply* r) { got.push_back(text(r)); }));
        }
        REQUIRE(run_until(io, [&] { return got.size() == 11; }));
        CHECK(got[0] == "PONG");
        for (std::size_t i = 1; i < got.size(); ++i) CHECK(got[i] == "(null)");
        run_for(io, 50ms);
        CHECK(got.size() == 11);
    }
    SECTION("the connection destroyed inside a handler") {
        auto c = std::make_unique<connection>(io, options_for(server));
        c->start();
        REQUIRE(run_until(io, [&] { return c->connected(); }));
        int nulls = 0;
        bool first = false;
        REQUIRE(c->command({"PING"}, [&](const redisReply*) {
            first = true;
            c.reset();
        }));
        REQUIRE(c->command({"PING"}, [&](const redisReply* r) { nulls += r == nullptr; }));
        REQUIRE(run_until(io, [&] { return first; }));
        CHECK(c == nullptr);
        CHECK(nulls == 1);
        run_for(io, 50ms);
    }
    SECTION("the connection destroyed with commands in flight, io_context destroyed after") {
        auto io2 = std::make_unique<net::io_context>();
        auto c = std::make_unique<connection>(*io2, options_for(server));
        c->start();
        REQUIRE(run_until(*io2, [&] { return c->connected(); }));
        int nulls = 0;
        for (int i = 0; i < 10; ++i) REQUIRE(c->command({"PING"}, [&](const redisReply* r) { nulls += r == nullptr; }));
        c.reset();
        CHECK(nulls == 10);
        io2.reset(); // posted clean-ups destroyed without running: nothing leaks (ASan)
    }
}

TEST_CASE("connection: stop() and destruction from inside on_up and on_down (no free inside hiredis' own callbacks)", "[redis]") {
    redis_server server;
    net::io_context io;
    const auto o = fast_options(server);
    SECTION("stop() in on_up, then start() again") {
        connection c(io, o);
        int ups = 0;
        c.on_up([&] {
            ++ups;
            if (ups == 1) c.stop();
        });
        c.start();
        REQUIRE(run_until(io, [&] { return ups == 1; }));
        run_for(io, 100ms);
        CHECK_FALSE(c.connected());
        CHECK(ups == 1);
        c.start();
        REQUIRE(run_until(io, [&] { return ups == 2 && c.connected(); }));
    }
    SECTION("destroyed in on_up") {
        auto c = std::make_unique<connection>(io, o);
        c->on_up([&] { c.reset(); });
        c->start();
        REQUIRE(run_until(io, [&] { return c == nullptr; }));
        run_for(io, 100ms);
    }
    SECTION("destroyed in on_down") {
        auto c = std::make_unique<connection>(io, o);
        bool up = false;
        c->on_up([&] { up = true; });
        c->on_down([&] { c.reset(); });
        c->start();
        REQUIRE(run_until(io, [&] { return up; }));
        server.kill9();
        REQUIRE(run_until(io, [&] { return c == nullptr; }));
        run_for(io, 100ms);
    }
}

TEST_CASE("connection: command_timeout counts per command (slow replies within it, one after the other, do not drop)", "[redis]") {
    redis_server server;
    net::io_context io;
    auto o = options_for(server);
    o.command_timeout = 400ms;
    connection c(io, o);
    up_down seen(c);
    c.start();
    REQUIRE(run_until(io, [&] { return seen.ups == 1; }));
    // Three blocking pops of 250 ms each, the next sent when the previous is answered: 750 ms in
    // all, more than the timeout, but no command waits longer than 400 ms.
    int answered = 0;
    std::function<void(const redisReply*)> next = [&](const redisReply* r) {
        REQUIRE(r != nullptr);
        CHECK(r->type == REDIS_REPLY_NIL);
        if (++answered < 3) REQUIRE(c.command({"BLPOP", "empty", "0.25"}, next));
    };
    REQUIRE(c.command({"BLPOP", "empty", "0.25"}, next));
    REQUIRE(run_until(io, [&] { return answered == 3; }));
    run_for(io, 100ms);
    CHECK(seen.downs == 0);
    CHECK(c.connected());
    // One that blocks longer than the timeout drops the connection.
    bool lost = false;
    REQUIRE(c.command({"BLPOP", "empty", "2"}, [&](const redisReply* r) { lost = r == nullptr; }));
    REQUIRE(run_until(io, [&] { return lost && seen.downs == 1; }));
    REQUIRE(run_until(io, [&] { return seen.ups == 2; }));
}

TEST_CASE("redis_server: with appendonly, data written before kill -9 is there after restart()", "[redis]") {
    switchboard::test::redis_server_options so;
    so.appendonly = true;
    redis_server server(so);
    CHECK(server.command({"SET", "kept", "yes"}) == "OK");
    const auto port = server.port();
    server.kill9();
    CHECK_FALSE(server.running());
    CHECK_FALSE(server.ping());
    server.restart();
    CHECK(server.port() == port);
    CHECK(server.command({"GET", "kept"}) == "yes");
    // Without it (the default), nothing survives.
    redis_server plain;
    CHECK(plain.command({"SET", "kept", "yes"}) == "OK");
    plain.kill9();
    plain.restart();
    CHECK(plain.command({"GET", "kept"}) == "(nil)");
}

// hiredis writes with write(2): a write after the peer reset the connection raises SIGPIPE
// unless hiredis_asio.hpp blocks it. Asio handles the read side (the EOF or the reset) first in the
// same wake-up, so this rarely reaches that write; it checks the write-side path as a whole.
TEST_CASE("connection: commands written to a Redis that died: handlers get nullptr, one on_down, the process survives", "[redis]") {
    redis_server server;
    net::io_context io;
    connection c(io, fast_options(server));
    up_down seen(c);
    c.start();
    REQUIRE(run_until(io, [&] { return seen.ups == 1; }));
    int nulls = 0;
    const std::string big(64 * 1024, 'x');
    server.kill9();
    for (int round = 0; round < 20 && seen.downs == 0; ++round) {
        for (int i = 0; i < 4 && c.connected(); ++i) {
            REQUIRE(c.command({"SET", "k", big}, [&](const redisReply* r) { nulls += r == nullptr; }));
        }
        run_for(io, 5ms);
    }
    REQUIRE(run_until(io, [&] { return seen.downs == 1; }));
    CHECK(nulls > 0);
}
