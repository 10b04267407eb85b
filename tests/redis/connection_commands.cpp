// redis::connection: commands, binary safety, pipelining order, Lua scripts with the NOSCRIPT
// fallback.
#include "redis_test.hpp"

#include <cstddef>
#include <string>
#include <vector>

using namespace redis_test;
using switchboard::redis::connection;
using switchboard::test::redis_server;

TEST_CASE("connection: a command's reply comes back, on_up once", "[redis]") {
    redis_server server;
    net::io_context io;
    connection c(io, options_for(server));
    int ups = 0;
    c.on_up([&] { ++ups; });
    REQUIRE_FALSE(c.command({"PING"}, [](const redisReply*) { FAIL("called while not connected"); }));
    c.start();
    REQUIRE(run_until(io, [&] { return ups == 1; }));
    REQUIRE(c.connected());
    std::string set_reply, get_reply;
    REQUIRE(c.command({"SET", "greeting", "hello"}, [&](const redisReply* r) { set_reply = text(r); }));
    REQUIRE(c.command({"GET", "greeting"}, [&](const redisReply* r) { get_reply = text(r); }));
    REQUIRE(run_until(io, [&] { return !get_reply.empty(); }));
    CHECK(set_reply == "OK");
    CHECK(get_reply == "hello");
    std::string error;
    REQUIRE(c.command({"NOSUCHCOMMAND"}, [&](const redisReply* r) {
        REQUIRE(r != nullptr);
        CHECK(r->type == REDIS_REPLY_ERROR);
        error = text(r);
    }));
    REQUIRE(run_until(io, [&] { return !error.empty(); }));
    CHECK(error.rfind("ERR", 0) == 0);
    run_for(io, 50ms);
    CHECK(ups == 1);
}

TEST_CASE("connection: arguments and replies are binary-safe (NUL, CR LF, every byte)", "[redis]") {
    redis_server server;
    net::io_context io;
    connection c(io, options_for(server));
    c.start();
    REQUIRE(run_until(io, [&] { return c.connected(); }));
    std::string value;
    for (int i = 0; i < 256; ++i) value.push_back(static_cast<char>(i));
    value += std::string("\0\r\n$3\r\n\0", 9);
    const std::string key("k\0ey\r\n", 6);
    bool set = false;
    std::string got;
    bool done = false;
    REQUIRE(c.command({"SET", key, value}, [&](const redisReply* r) { set = text(r) == "OK"; }));
    REQUIRE(c.command({"GET", key}, [&](const redisReply* r) {
        REQUIRE(r != nullptr);
        REQUIRE(r->type == REDIS_REPLY_STRING);
        got.assign(r->str, r->len);
        done = true;
    }));
    REQUIRE(run_until(io, [&] { return done; }));
    CHECK(set);
    CHECK(got.size() == value.size());
    CHECK(got == value);
    // An empty argument (a default-constructed view: no data pointer) is an empty string.
    std::string empty = "unset";
    REQUIRE(c.command({"SET", "empty", std::string_view()}, [](const redisReply*) {}));
    REQUIRE(c.command({"GET", "empty"}, [&](const redisReply* r) { empty = text(r); }));
    REQUIRE(run_until(io, [&] { return empty != "unset"; }));
    CHECK(empty.empty());
    // The key really holds the NUL: the same name without it does not exist.
    CHECK(server.command({"EXISTS", "key"}) == "0");
    CHECK(server.command({"STRLEN", key}) == std::to_string(value.size()));
}

TEST_CASE("connection: 10,000 pipelined commands are answered in order", "[redis]") {
    redis_server server;
    net::io_context io;
    connection c(io, options_for(server));
    c.start();
    REQUIRE(run_until(io, [&] { return c.connected(); }));
    constexpr int n = 10000;
    std::vector<long long> seen;
    seen.reserve(n);
    const std::string pad(100, 'p'); // replies and requests well past hiredis' 16 KiB reads
    for (int i = 0; i < n; ++i) {
        REQUIRE(c.command({"RPUSH", "list", pad + std::to_string(i)}, [&](const redisReply* r) {
            REQUIRE(r != nullptr);
            REQUIRE(r->type == REDIS_REPLY_INTEGER);
            seen.push_back(r->integer);
        }));
    }
    REQUIRE(run_until(io, [&] { return seen.size() == n; }));
    for (int i = 0; i < n; ++i) REQUIRE(seen[static_cast<std::size_t>(i)] == i + 1);
    std::vector<std::string> back;
    REQUIRE(c.command({"LRANGE", "list", "0", "-1"}, [&](const redisReply* r) {
        REQUIRE(r != nullptr);
        REQUIRE(r->type == REDIS_REPLY_ARRAY);
        for (std::size_t i = 0; i < r->elements; ++i) back.emplace_back(r->element[i]->str, r->element[i]->len);
    }));
    REQUIRE(run_until(io, [&] { return back.size() == n; }));
    for (int i = 0; i < n; ++i) REQUIRE(back[static_cast<std::size_t>(i)] == pad + std::to_string(i));
}

TEST_CASE("connection: eval runs a script, EVALSHA after the first call, EVAL again after SCRIPT FLUSH", "[redis]") {
    redis_server server;
    net::io_context io;
    connection c(io, options_for(server));
    c.start();
    REQUIRE(run_until(io, [&] { return c.connected(); }));
    const auto s = switchboard::redis::make_script(
        "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1]) .. ARGV[2]");
    // The local SHA-1 is Redis' own.
    CHECK(s.sha1 == server.command({"SCRIPT", "LOAD", s.source}));
    server.command({"SCRIPT", "FLUSH"});
    std::vector<std::string> replies;
    auto run = [&](const std::string& arg) {
        REQUIRE(c.eval(s, {"key"}, {arg, std::string("!\0", 2)},
                       [&](const redisReply* r) { replies.push_back(text(r)); }));
        REQUIRE(run_until(io, [&] { return replies.size() >= 1 && replies.back().rfind(arg, 0) == 0; }));
    };
    run("one"); // EVAL
    CHECK(server.command({"SCRIPT", "EXISTS", s.sha1}) == "1");
    const std::string evalsha_before = server.command({"INFO", "commandstats"});
    run("two"); // EVALSHA
    CHECK(server.command({"INFO", "commandstats"}).find("cmdstat_evalsha:calls=1,") != std::string::npos);
    server.command({"SCRIPT", "FLUSH"});
    CHECK(server.command({"SCRIPT", "EXISTS", s.sha1}) == "0");
    run("three"); // EVALSHA -> NOSCRIPT -> EVAL
    CHECK(server.command({"SCRIPT", "EXISTS", s.sha1}) == "1");
    const std::string stats = server.command({"INFO", "commandstats"});
    CHECK(stats.find("cmdstat_evalsha:calls=2,") != std::string::npos);
    CHECK(stats.find("cmdstat_eval:calls=2,") != std::string::npos);
    REQUIRE(replies.size() == 3);
    CHECK(replies[0] == std::string("one!\0", 5));
    CHECK(replies[1] == std::string("two!\0", 5));
    CHECK(replies[2] == std::string("three!\0", 7));
    (void)evalsha_before;
    // A script error is a reply, not a loss.
    std::string error;
    const auto bad = switchboard::redis::make_script("return redis.call('NOSUCH')");
    REQUIRE(c.eval(bad, {}, {}, [&](const redisReply* r) { error = text(r); }));
    REQUIRE(run_until(io, [&] { return !error.empty(); }));
    CHECK(error.find("ERR") != std::string::npos);
    CHECK(c.connected());
}
