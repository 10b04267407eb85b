// One order for everyone, even with a bot (docs/design.md, "Ordering and re-entrancy"): a bot that
// answers from inside its transport's deliver() — the pattern the re-entrancy contract allows —
// never makes a member see the answer before the question, never makes two members see different
// orders, and never makes a client see an event before the reply to the command that caused it.
// The bot takes events as values (structured_format); the people are line-protocol sessions.
// The same scenarios run over real sockets in tests/integration/bot_ordering.cpp.
#include <switchboard/in_memory_transport.hpp>
#include <switchboard/protocol/line.hpp>
#include <switchboard/protocol/line_session.hpp>
#include <switchboard/router.hpp>
#include <switchboard/structured_format.hpp>

#include <catch2/catch.hpp>

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

using namespace switchboard;
using switchboard::protocol::line_session;
using switchboard::protocol::line_session_options;
using lines = std::vector<std::string>;

namespace {

// A bot: answers "!ping" in a room with "pong", and greets every member who joins a room.
class bot final : public transport {
public:
    explicit bot(router& r) : r_(r), id_(r.open_session(*this, structured_format::instance())) {
        REQUIRE(r.register_name(id_, "bot") == status::ok);
    }
    session_id id() const { return id_; }
    std::vector<std::string> seen; // "<kind> <room> <user> <text>" of each event, in order
    std::vector<route_result> answers;

    delivery deliver(const payload& bytes) noexcept override {
        const std::optional<event> e = structured_format::decode(bytes);
        if (!e) return delivery::queued;
        seen.push_back(std::to_string(static_cast<int>(e->kind)) + " " + std::string(e->room) + " " +
                       std::string(e->user) + " " + std::string(e->text));
        if (e->kind == event_kind::room_message && e->text == "!ping")
            answers.push_back(r_.publish(id_, e->room, "pong"));
        else if (e->kind == event_kind::member_joined)
            answers.push_back(r_.publish(id_, e->room, "welcome " + std::string(e->user)));
        return delivery::queued;
    }
    void close(close_mode) noexcept override {}

private:
    router& r_;
    session_id id_;
};

struct person {
    in_memory_transport t;
    session_id id;
    std::unique_ptr<line_session> ls;
    void say(std::string_view bytes) { (void)ls->on_input(bytes); }
};

struct world {
    router r;
    std::deque<person> people;
    std::unique_ptr<bot> b;
    person& add(const std::string& user) {
        person& p = people.emplace_back();
        p.id = r.open_session(p.t, protocol::line_event_encoder::instance());
        p.ls = std::make_unique<line_session>(r, p.id, line_session_options{});
        p.say("/register " + user + "\n");
        return p;
    }
    void add_bot() { b = std::make_unique<bot>(r); }
    void clear() {
        for (person& p : people) (void)p.t.take_bytes();
    }
};

} // namespace

TEST_CASE("ordering: #arena !ping — every member sees the question before the bot's answer, in one order",
          "[ordering][rooms]") {
    for (const bool bot_first : {true, false}) {
        CAPTURE(bot_first);
        world w;
        if (bot_first) w.add_bot();
        person& alice = w.add("alice");
        person& carol = w.add("carol");
        if (!bot_first) w.add_bot();
        REQUIRE(w.r.join(w.b->id(), "arena") == status::ok);
        alice.say("/join arena\n");
        carol.say("/join arena\n");
        w.clear();

        alice.say("#arena !ping\n");
        CHECK(alice.t.take_lines() == lines{"room arena bot pong"});
        CHECK(carol.t.take_lines() == lines{"room arena alice !ping", "room arena bot pong"});
        REQUIRE_FALSE(w.b->answers.empty()); // the welcomes of alice and carol, then the pong
        CHECK(w.b->answers.back().ok());
        CHECK(w.b->answers.back().deferred == 2); // decided at once, delivered after the question
        CHECK(w.b->answers.back().delivered == 0);
    }
}

TEST_CASE("ordering: a joiner gets its own 'ok join' before the bot's welcome", "[ordering][rooms]") {
    world w;
    w.add_bot();
    person& alice = w.add("alice");
    REQUIRE(w.r.join(w.b->id(), "lobby") == status::ok);
    alice.say("/join lobby\n");
    person& bob = w.add("bob");
    w.clear();

    bob.say("/join lobby\n");
    CHECK(bob.t.take_lines() == lines{"ok join lobby", "room lobby bot welcome bob"});
    CHECK(alice.t.take_lines() == lines{"join lobby bob", "room lobby bot welcome bob"});
    CHECK(w.b->seen.back() == "2 lobby bob "); // member_joined, as a value
}

TEST_CASE("ordering: a host's own command under router::hold() replies before the effects", "[ordering]") {
    world w;
    w.add_bot();
    REQUIRE(w.r.join(w.b->id(), "lobby") == status::ok);
    person& dave = w.add("dave");
    (void)dave.t.take_bytes();
    {
        const router::hold_guard held = w.r.hold();
        REQUIRE(w.r.join(dave.id, "lobby") == status::ok);
        REQUIRE(w.r.send(dave.id, payload::copy_of("host says: joined\n")) == status::ok);
        CHECK(dave.t.take_lines() == lines{"host says: joined"}); // the welcome is still held
    }
    CHECK(dave.t.take_lines() == lines{"room lobby bot welcome dave"});
    // Without a hold the effect is delivered before the call returns.
    REQUIRE(w.r.join(dave.id, "arena") == status::ok);
    REQUIRE(w.r.join(w.b->id(), "arena") == status::ok);
    CHECK(dave.t.take_lines() == lines{"join arena bot"});
}

TEST_CASE("ordering: a session closed before its deferred delivery is skipped", "[ordering][reentrancy]") {
    world w;
    w.add_bot();
    person& alice = w.add("alice");
    person& erin = w.add("erin");
    REQUIRE(w.r.join(w.b->id(), "arena") == status::ok);
    alice.say("/join arena\n");
    erin.say("/join arena\n");
    w.clear();
    // erin's transport closes her session from inside the delivery of "!ping": the bot's "pong",
    // queued for her, must not reach her transport afterwards.
    struct closer final : transport {
        router* r = nullptr;
        session_id self;
        int after_close = 0;
        bool armed = false; // close on the first delivery once armed
        bool closed = false;
        delivery deliver(const payload&) noexcept override {
            if (!armed) return delivery::queued;
            if (closed) {
                ++after_close;
                return delivery::closed;
            }
            closed = true;
            (void)r->close_session(self);
            return delivery::queued;
        }
        void close(close_mode) noexcept override {}
    } c;
    c.r = &w.r;
    c.self = w.r.open_session(c, protocol::line_event_encoder::instance());
    REQUIRE(w.r.register_name(c.self, "frank") == status::ok);
    REQUIRE(w.r.join(c.self, "arena") == status::ok);
    w.clear();
    c.armed = true;
    alice.say("#arena !ping\n");
    CHECK(c.after_close == 0);
    CHECK_FALSE(w.r.is_open(c.self));
    // In the order caused: the pong (queued by the bot, earlier in the room) before frank's leave.
    CHECK(erin.t.take_lines() == lines{"room arena alice !ping", "room arena bot pong", "leave arena frank"});
}

TEST_CASE("ordering: structured_format carries events as values and shares one payload", "[ordering][formats]") {
    const structured_format& f = structured_format::instance();
    const payload p = f.encode(event{event_kind::room_message, "arena", "alice", "h\xC3\xA9llo"});
    const std::optional<event> e = structured_format::decode(p);
    REQUIRE(e);
    CHECK(e->kind == event_kind::room_message);
    CHECK(e->room == "arena");
    CHECK(e->user == "alice");
    CHECK(e->text == "h\xC3\xA9llo");
    CHECK(e->text.data() > p.data()); // a view into the payload, not a copy
    CHECK_FALSE(structured_format::decode(payload::copy_of("msg alice hi\n")));
    CHECK_FALSE(structured_format::decode(payload{}));

    // Three structured members of a room share one buffer.
    router r;
    std::deque<in_memory_transport> ts;
    std::vector<session_id> ids;
    for (int i = 0; i < 4; ++i) {
        ids.push_back(r.open_session(ts.emplace_back(), f));
        REQUIRE(r.register_name(ids.back(), "s" + std::to_string(i)) == status::ok);
        REQUIRE(r.join(ids.back(), "room") == status::ok);
    }
    for (auto& t : ts) (void)t.take_bytes();
    REQUIRE(r.publish(ids[0], "room", "hi").delivered == 3);
    CHECK(same_buffer(ts[1].received().at(0), ts[2].received().at(0)));
    CHECK(same_buffer(ts[1].received().at(0), ts[3].received().at(0)));
    CHECK(structured_format::decode(ts[3].received().at(0))->text == "hi");
}
