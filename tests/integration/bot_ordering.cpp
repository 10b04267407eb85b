// One order for everyone, even with a bot, over real sockets (docs/design.md, "Ordering and
// re-entrancy"). A bot session on the server's router takes events as values
// (structured_format) and answers from inside its transport's deliver(), under the router mutex
// the connection's thread holds: "!ping" in a room gets "pong", a join to "lobby" gets
// "welcome <user>".
// Every member sees the question before the answer, all members see the same order, and a joiner
// sees its own "ok join" before the welcome. The io_context runs on two threads.
#include "test_server.hpp"

#include <switchboard/structured_format.hpp>

#include <string>

using namespace switchboard_test;

namespace {

class bot final : public switchboard::transport {
public:
    explicit bot(test_server& server, std::initializer_list<const char*> rooms) : server_(server) {
        server_.with_router([&](switchboard::router& r) {
            r_ = &r;
            id_ = r.open_session(*this, switchboard::structured_format::instance());
            REQUIRE(r.register_name(id_, "bot") == switchboard::status::ok);
            for (const char* room : rooms) REQUIRE(r.join(id_, room) == switchboard::status::ok);
        });
    }
    bot(const bot&) = delete;
    bot& operator=(const bot&) = delete;
    ~bot() {
        server_.with_router([this](switchboard::router& r) { (void)r.close_session(id_); });
    }

    // Called by the router, under the server's router mutex: answering here is the re-entrant
    // call the router defers until the question has reached every member.
    switchboard::delivery deliver(const switchboard::payload& bytes) noexcept override {
        const auto e = switchboard::structured_format::decode(bytes);
        if (!e) return switchboard::delivery::queued;
        if (e->kind == switchboard::event_kind::room_message && e->text == "!ping")
            (void)r_->publish(id_, e->room, "pong");
        else if (e->kind == switchboard::event_kind::member_joined && e->room == "lobby")
            (void)r_->publish(id_, e->room, "welcome " + std::string(e->user));
        return switchboard::delivery::queued;
    }
    void close(switchboard::close_mode) noexcept override {}

private:
    test_server& server_;
    switchboard::router* r_ = nullptr;
    switchboard::session_id id_;
};

} // namespace

TEST_CASE("bot ordering: #arena !ping over TCP — question before answer, one order for all members",
          "[integration][ordering]") {
    test_server server(2);
    bot b(server, {"arena"});
    client alice = registered(server.port(), "alice");
    client carol = registered(server.port(), "carol");
    // The bot is the room's first member, so it is delivered to before carol: answering from
    // inside that delivery is what made carol see "pong" before "!ping" when answers were nested.
    alice.send("/join arena\n");
    REQUIRE(alice.read_line() == "ok join arena");
    carol.send("/join arena\n");
    REQUIRE(carol.read_line() == "ok join arena");
    REQUIRE(alice.read_line() == "join arena carol");

    // 25 pipelined pings from one side, then from the other: the other member sees every
    // question right before its answer, and the asker sees the answers.
    for (int side = 0; side < 2; ++side) {
        client& asker = side == 0 ? alice : carol;
        client& other = side == 0 ? carol : alice;
        const std::string who = side == 0 ? "alice" : "carol";
        std::string burst;
        for (int i = 0; i < 25; ++i) burst += "#arena !ping\n";
        asker.send(burst);
        for (int i = 0; i < 25; ++i) {
            REQUIRE(other.read_line() == "room arena " + who + " !ping");
            REQUIRE(other.read_line() == "room arena bot pong");
            REQUIRE(asker.read_line() == "room arena bot pong");
        }
    }
}

TEST_CASE("bot ordering: a joiner gets 'ok join' before the bot's welcome over TCP", "[integration][ordering]") {
    test_server server(2);
    bot b(server, {"lobby"});
    client alice = registered(server.port(), "alice");
    alice.send("/join lobby\n");
    REQUIRE(alice.read_line() == "ok join lobby");
    REQUIRE(alice.read_line() == "room lobby bot welcome alice");
    for (const char* name : {"bob", "dave", "erin"}) {
        client joiner = registered(server.port(), name);
        joiner.send("/join lobby\n");
        REQUIRE(joiner.read_line() == "ok join lobby");
        REQUIRE(joiner.read_line() == std::string("room lobby bot welcome ") + name);
        REQUIRE(alice.read_line() == std::string("join lobby ") + name);
        REQUIRE(alice.read_line() == std::string("room lobby bot welcome ") + name);
        joiner.send("/quit\n");
        REQUIRE(joiner.read_line() == "ok quit");
        REQUIRE(alice.read_line() == std::string("leave lobby ") + name);
    }
}
