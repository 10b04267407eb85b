// Per-session wire formats: one router serves sessions of several formats; a fan-out encodes each
// event once per distinct format among its recipients (lazily: a format with no recipient is not
// encoded) and hands the same buffer to every recipient of that format. A format that refuses an
// event leaves everyone without it (status::invalid_text).
#include <switchboard/in_memory_transport.hpp>
#include <switchboard/protocol/line.hpp>
#include <switchboard/router.hpp>

#include <catch2/catch.hpp>

#include <deque>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

using switchboard::event;
using switchboard::event_encoder;
using switchboard::event_kind;
using switchboard::in_memory_transport;
using switchboard::payload;
using switchboard::router;
using switchboard::session_id;
using switchboard::status;
using switchboard::protocol::line_event_encoder;
using lines = std::vector<std::string>;

namespace {

// A second wire format for tests: "<kind>|<room>|<user>|<text>;" and counts its encodes; refuses
// any text containing `refuse` (when set), as a format with a stricter framing would.
class tagged_format final : public event_encoder {
public:
    mutable int calls = 0;
    std::string refuse;
    payload encode(const event& e) const override {
        ++calls;
        if (!refuse.empty() && e.text.find(refuse) != std::string_view::npos) return {};
        const std::string s = std::to_string(static_cast<int>(e.kind)) + "|" + std::string(e.room) + "|" +
                              std::string(e.user) + "|" + std::string(e.text) + ";";
        return payload::copy_of(s);
    }
};

// Counts the line encoder's calls.
class counting_line final : public event_encoder {
public:
    mutable int calls = 0;
    payload encode(const event& e) const override {
        ++calls;
        return line_event_encoder::instance().encode(e);
    }
};

struct member {
    in_memory_transport t;
    session_id id;
};

} // namespace

TEST_CASE("formats: a room with members on two formats costs exactly two encodes and two shared buffers",
          "[formats][fanout]") {
    counting_line line;
    tagged_format tagged;
    router r;
    std::deque<member> m;
    for (int i = 0; i < 10; ++i) {
        member& x = m.emplace_back();
        x.id = r.open_session(x.t, i % 2 == 0 ? static_cast<const event_encoder&>(line) : tagged);
        REQUIRE(r.register_name(x.id, "u" + std::to_string(i)) == status::ok);
        REQUIRE(r.join(x.id, "mixed") == status::ok);
    }
    CHECK(r.format_of(m[0].id) == &line);
    CHECK(r.format_of(m[1].id) == &tagged);
    for (auto& x : m) (void)x.t.take_bytes();
    line.calls = tagged.calls = 0;

    const auto res = r.publish(m[0].id, "mixed", "hello all");
    REQUIRE(res.ok());
    CHECK(res.delivered == 9);
    CHECK(line.calls == 1);
    CHECK(tagged.calls == 1);
    CHECK(m[0].t.received().empty()); // the sender (except_sender)
    const payload& line_bytes = m[2].t.received().at(0);
    const payload& tagged_bytes = m[1].t.received().at(0);
    CHECK(line_bytes.view() == "room mixed u0 hello all\n");
    CHECK(tagged_bytes.view() == "1|mixed|u0|hello all;");
    for (std::size_t i = 1; i < m.size(); ++i) {
        REQUIRE(m[i].t.received().size() == 1);
        CHECK(same_buffer(m[i].t.received()[0], i % 2 == 0 ? line_bytes : tagged_bytes));
    }
    // Held only by the recipients: four line members (u0 sent it), five tagged ones.
    CHECK(line_bytes.use_count() == 4);
    CHECK(tagged_bytes.use_count() == 5);
}

TEST_CASE("formats: a format without recipients is not encoded", "[formats][fanout]") {
    counting_line line;
    tagged_format tagged;
    router r;
    member a, b, c;
    a.id = r.open_session(a.t, tagged); // the only tagged member is the sender
    b.id = r.open_session(b.t, line);
    c.id = r.open_session(c.t, line);
    REQUIRE(r.register_name(a.id, "a") == status::ok);
    REQUIRE(r.register_name(b.id, "b") == status::ok);
    REQUIRE(r.register_name(c.id, "c") == status::ok);
    REQUIRE(r.join(b.id, "room") == status::ok);
    REQUIRE(r.join(c.id, "room") == status::ok);
    REQUIRE(r.join(a.id, "room") == status::ok); // b and c learn of it in the line format only
    CHECK(tagged.calls == 0);
    CHECK(b.t.take_lines() == lines{"join room c", "join room a"});
    line.calls = 0;
    REQUIRE(r.publish(a.id, "room", "hi").ok());
    CHECK(tagged.calls == 0);
    CHECK(line.calls == 1);
    // all_members includes the sender: now the tagged format has a recipient.
    REQUIRE(r.publish(a.id, "room", "hi", switchboard::fanout_scope::all_members).ok());
    CHECK(tagged.calls == 1);
    CHECK(a.t.take_bytes() == "1|room|a|hi;");
    // A leave in a room whose remaining members are all line sessions: one line encode.
    line.calls = tagged.calls = 0;
    REQUIRE(r.leave(a.id, "room") == status::ok);
    CHECK(line.calls == 1);
    CHECK(tagged.calls == 0);
}

TEST_CASE("formats: 1:1 routing encodes in the recipient's format", "[formats][route]") {
    tagged_format tagged;
    router r;
    member a, b;
    a.id = r.open_session(a.t, line_event_encoder::instance());
    b.id = r.open_session(b.t, tagged);
    REQUIRE(r.register_name(a.id, "alice") == status::ok);
    REQUIRE(r.register_name(b.id, "bob") == status::ok);
    REQUIRE(r.route(a.id, "bob", "to tagged").ok());
    REQUIRE(r.route(b.id, "alice", "to line").ok());
    CHECK(b.t.take_bytes() == "0||alice|to tagged;");
    CHECK(a.t.take_lines() == lines{"msg bob to line"});
}

TEST_CASE("formats: one format refusing an event leaves every member of every format without it",
          "[formats][text]") {
    tagged_format tagged;
    tagged.refuse = "secret";
    router r;
    member a, b, c;
    a.id = r.open_session(a.t, line_event_encoder::instance());
    b.id = r.open_session(b.t, line_event_encoder::instance());
    c.id = r.open_session(c.t, tagged);
    REQUIRE(r.register_name(a.id, "a") == status::ok);
    REQUIRE(r.register_name(b.id, "b") == status::ok);
    REQUIRE(r.register_name(c.id, "c") == status::ok);
    for (const member* x : {&a, &b, &c}) REQUIRE(r.join(x->id, "room") == status::ok);
    for (member* x : {&a, &b, &c}) (void)x->t.take_bytes();
    const auto counters = r.counters();
    CHECK(r.publish(a.id, "room", "the secret word").code == status::invalid_text);
    CHECK(b.t.received().empty());
    CHECK(c.t.received().empty());
    CHECK(r.counters().delivered == counters.delivered);
    CHECK(r.counters().routed == counters.routed);
    CHECK(r.route(a.id, "c", "a secret").code == status::invalid_text);
    CHECK(c.t.received().empty());
    // The line member alone may still receive it 1:1.
    CHECK(r.route(a.id, "b", "a secret").ok());
    CHECK(b.t.take_lines() == lines{"msg a a secret"});
}

TEST_CASE("formats: at most max_formats distinct formats per router", "[formats]") {
    router r;
    std::deque<tagged_format> formats(switchboard::max_formats + 1);
    std::deque<in_memory_transport> ts;
    for (std::size_t i = 0; i < switchboard::max_formats; ++i) {
        const session_id s = r.open_session(ts.emplace_back(), formats[i]);
        CHECK(r.format_of(s) == &formats[i]);
        (void)r.close_session(s); // a format stays known after its sessions close
    }
    CHECK_THROWS_AS((void)r.open_session(ts.emplace_back(), formats.back()), std::length_error);
    CHECK(r.session_count() == 0);
    // A known format is still accepted.
    const session_id s = r.open_session(ts.emplace_back(), formats[3]);
    CHECK(r.format_of(s) == &formats[3]);
}

TEST_CASE("formats: notify() encodes one event in the session's own format", "[format]") {
    // What an adapter sends one session (another node's event, `bye <token>` before a close):
    // the router's format for that session, checked by the format; a refusal is a result.
    router r;
    in_memory_transport line_t;
    in_memory_transport tagged_t;
    tagged_format tagged;
    tagged.refuse = "forbidden";
    const session_id on_line = r.open_session(line_t, line_event_encoder::instance());
    const session_id on_tagged = r.open_session(tagged_t, tagged);
    event closed{event_kind::session_closed, {}, "alice", {}};
    closed.code = status::name_taken;
    CHECK(r.notify(on_line, closed) == status::ok);
    CHECK(line_t.take_lines() == lines{"bye name-taken"});
    const event dm{event_kind::direct_message, {}, "alice", "hello"};
    CHECK(r.notify(on_tagged, dm) == status::ok);
    CHECK(tagged_t.take_bytes() == std::to_string(static_cast<int>(event_kind::direct_message)) + "||alice|hello;");
    CHECK(line_t.take_bytes().empty());
    // refused by the format (the line encoder refuses a name that is not one; the tagged format
    // its `refuse` text): nothing sent
    CHECK(r.notify(on_line, event{event_kind::direct_message, {}, "al ice", "x"}) == status::invalid_text);
    CHECK(r.notify(on_tagged, event{event_kind::direct_message, {}, "alice", "forbidden"}) == status::invalid_text);
    CHECK(line_t.take_bytes().empty());
    CHECK(tagged_t.take_bytes().empty());
    // a closed session
    REQUIRE(r.close_session(on_line) == status::ok);
    CHECK(r.notify(on_line, closed) == status::unknown_session);
}
