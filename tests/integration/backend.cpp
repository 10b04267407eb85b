// The Asio backend (asio/backend.hpp): this file is built twice, in switchboard_integration_tests
// (standalone Asio) and, with SWITCHBOARD_USE_BOOST_ASIO, in switchboard_boost_integration_tests
// (scripts/test step 9). It spells out the application's side — its own io_context type, two
// threads running it — and the main paths: register, 1:1 message, room fan-out, the disconnect
// hook, stop.
#include "test_server.hpp"

#include <switchboard/asio/tcp_server.hpp>

#include <mutex>
#include <utility>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#if defined(SWITCHBOARD_USE_BOOST_ASIO)
using app_io_context = boost::asio::io_context; // a Boost.Asio program's own io_context
static_assert(std::is_same_v<switchboard::net_error_code, boost::system::error_code>);
static_assert(switchboard::uses_boost_asio);
#if defined(ASIO_STANDALONE) || defined(ASIO_VERSION)
#error "the Boost backend must not pull in standalone Asio or define ASIO_STANDALONE"
#endif
#else
using app_io_context = asio::io_context;
static_assert(std::is_same_v<switchboard::net_error_code, std::error_code>);
static_assert(!switchboard::uses_boost_asio);
#if defined(BOOST_ASIO_VERSION)
#error "the standalone backend must not pull in Boost.Asio"
#endif
#endif
static_assert(std::is_same_v<switchboard::net::io_context, app_io_context>);
#if defined(__linux__) // epoll: a short read means drained, with either backend (ASIO_HAS_EPOLL / BOOST_ASIO_HAS_EPOLL)
static_assert(switchboard::plain_stream::short_read_drains);
#endif

using namespace switchboard_test;

TEST_CASE("backend: tcp_server on the application's own io_context (2 threads): register, message, room, "
          "disconnect hook, stop",
          "[integration][backend]") {
    app_io_context io(2);
    switchboard::router router;
    switchboard::tcp_server server(io, router);
    std::mutex mutex;
    std::vector<std::string> left; // "user reason", from on_disconnect
    server.on_disconnect([&](const switchboard::tcp_connection_info& c) {
        std::lock_guard<std::mutex> lock(mutex);
        left.push_back(std::string(c.user) + " " + std::string(to_string(c.reason)));
    });
    server.listen({switchboard::net::ip::make_address("127.0.0.1"), 0});
    struct runners { // joined even when an assertion throws: stop() ends run() on both threads
        switchboard::tcp_server& server;
        std::vector<std::thread> threads;
        ~runners() {
            server.stop();
            for (auto& t : threads)
                if (t.joinable()) t.join();
        }
    } run{server, {}};
    for (int i = 0; i < 2; ++i) run.threads.emplace_back([&io] { io.run(); });

    {
        const unsigned short port = server.local_endpoint().port();
        client alice = registered(port, "alice");
        client bob = registered(port, "bob");
        client carol = registered(port, "carol");
        alice.send("/msg bob hi bob\n");
        CHECK(bob.read_line() == "msg alice hi bob");
        for (client* c : {&alice, &bob, &carol}) {
            c->send("/join lobby\n");
            CHECK(c->read_line().rfind("ok join lobby", 0) == 0);
        }
        CHECK(alice.read_line() == "join lobby bob");
        CHECK(alice.read_line() == "join lobby carol");
        CHECK(bob.read_line() == "join lobby carol");
        alice.send("#lobby hello room\n");
        CHECK(bob.read_line() == "room lobby alice hello room");
        CHECK(carol.read_line() == "room lobby alice hello room");
        carol.send("/quit\n");
        CHECK(carol.read_line() == "ok quit");
        carol.expect_closed();
        CHECK(alice.read_line() == "leave lobby carol");
        CHECK(bob.read_line() == "leave lobby carol");
        CHECK(wait_until([&] {
            std::lock_guard<std::mutex> lock(mutex);
            return left.size() == 1;
        }, deadline_in()));
        server.stop(); // releases both sessions: the one released second may first hear of the other
        for (auto [c, other] : {std::pair{&alice, "bob"}, std::pair{&bob, "alice"}}) {
            std::string line;
            auto r = c->try_read_line(line);
            if (r == client::read_status::line) {
                CHECK(line == std::string("leave lobby ") + other);
                r = c->try_read_line(line);
            }
            CHECK(r == client::read_status::closed);
        }
    }
    for (auto& t : run.threads) t.join(); // run() returns: stop() left no work behind
    std::lock_guard<std::mutex> lock(mutex);
    REQUIRE(left.size() == 3);
    CHECK(left[0] == "carol quit");
    CHECK(((left[1] == "alice server-stop" && left[2] == "bob server-stop") ||
           (left[1] == "bob server-stop" && left[2] == "alice server-stop")));
}
