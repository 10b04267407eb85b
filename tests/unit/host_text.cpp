// The API path of the text contract (docs/security.md, "The API path"): a host that forwards its
// players' text through route() or publish() cannot forge lines for line-protocol recipients.
// Text outside the contract (empty, LF, CR, other control bytes, invalid UTF-8) is refused with
// status::invalid_text, and nothing reaches anyone: not the recipient, not a room member, not the
// user-not-found handler. The line encoder refuses the same events when called directly, and the
// protocol's reply builders cannot be made to emit a second line.
#include <switchboard/in_memory_transport.hpp>
#include <switchboard/protocol/line.hpp>
#include <switchboard/protocol/line_session.hpp>
#include <switchboard/router.hpp>
#include <switchboard/text.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

using switchboard::event;
using switchboard::event_kind;
using switchboard::fanout_scope;
using switchboard::in_memory_transport;
using switchboard::name;
using switchboard::router;
using switchboard::session_id;
using switchboard::status;
using switchboard::protocol::line_event_encoder;
using lines = std::vector<std::string>;

namespace {

// Texts a player could type that a line-protocol recipient's framing cannot carry as one line.
const std::vector<std::string>& forged_texts() {
    static const std::vector<std::string> texts = {
        "",                                      // empty: delivered as "msg alice " before
        "hi\nmsg admin you are banned",          // the forged second line
        "hi\r\nmsg admin you are banned",        // CRLF
        "hi\rmsg admin you are banned",          // bare CR: overwrites the terminal line
        "\n",                                    // a lone LF
        "trailing LF\n",                         // LF at the end only
        "\x1b[2Jcleared",                        // ESC: terminal escape sequence
        std::string("nul\0byte", 8),             // NUL
        "del\x7f",                               // DEL
        "bad utf-8 \xff",                        // invalid byte
        "overlong \xc0\xaf",                     // overlong '/'
        "surrogate \xed\xa0\x80",                // UTF-16 surrogate
        "cut \xe2\x82",                          // truncated sequence at the end
        "hi\xc2\x85msg admin you are banned",      // NEL: a line break to Unicode-aware clients
        "hi\xe2\x80\xa8msg admin you are banned",  // U+2028 LINE SEPARATOR
        "hi\xe2\x80\xa9room lobby admin rules",    // U+2029 PARAGRAPH SEPARATOR
    };
    return texts;
}

struct chat {
    router r;
    in_memory_transport ta, tb, tc;
    session_id a = r.open_session(ta, line_event_encoder::instance());
    session_id b = r.open_session(tb, line_event_encoder::instance());
    session_id c = r.open_session(tc, line_event_encoder::instance());
    int not_found_calls = 0;
    chat() {
        REQUIRE(r.register_name(a, "alice") == status::ok);
        REQUIRE(r.register_name(b, "bob") == status::ok);
        REQUIRE(r.register_name(c, "carol") == status::ok);
        REQUIRE(r.join(a, "arena") == status::ok);
        REQUIRE(r.join(b, "arena") == status::ok);
        REQUIRE(r.join(c, "arena") == status::ok);
        (void)ta.take_bytes();
        (void)tb.take_bytes();
        (void)tc.take_bytes();
        r.on_user_not_found([this](session_id, std::string_view, std::string_view) { ++not_found_calls; });
    }
    bool nobody_received() const { return ta.received().empty() && tb.received().empty() && tc.received().empty(); }
};

} // namespace

TEST_CASE("host_text: route() refuses text its recipients' framing cannot carry, delivering nothing",
          "[text][route]") {
    chat f;
    for (const std::string& text : forged_texts()) {
        CAPTURE(text);
        const auto counters = f.r.counters();
        CHECK(f.r.route(f.a, "bob", text).code == status::invalid_text);           // by string
        CHECK(f.r.route(f.a, *name::parse("bob"), text).code == status::invalid_text); // folded name
        CHECK(f.nobody_received());
        CHECK(f.r.counters().routed == counters.routed);
        CHECK(f.r.counters().delivered == counters.delivered);
    }
    // The same call with a valid text goes through: the check is the only difference.
    REQUIRE(f.r.route(f.a, "bob", "hi").ok());
    CHECK(f.tb.take_lines() == lines{"msg alice hi"});
}

TEST_CASE("host_text: route() checks the text before looking up the user (invalid-text, no handler call)",
          "[text][route]") {
    chat f;
    for (const std::string& text : forged_texts()) {
        CAPTURE(text);
        CHECK(f.r.route(f.a, "nobody", text).code == status::invalid_text);
    }
    CHECK(f.not_found_calls == 0);
    CHECK(f.r.counters().user_not_found == 0);
    CHECK(f.r.route(f.a, "nobody", "hello?").code == status::user_not_found);
    CHECK(f.not_found_calls == 1);
    // Check order: not-registered and invalid-name come first.
    in_memory_transport td;
    const session_id d = f.r.open_session(td, line_event_encoder::instance());
    CHECK(f.r.route(d, "bob", "x\ny").code == status::not_registered);
    CHECK(f.r.route(f.a, "b o b", "x\ny").code == status::invalid_name);
}

TEST_CASE("host_text: publish() refuses forged text for every member, in both scopes", "[text][rooms]") {
    chat f;
    for (const std::string& text : forged_texts()) {
        CAPTURE(text);
        CHECK(f.r.publish(f.a, "arena", text).code == status::invalid_text);
        CHECK(f.r.publish(f.a, *name::parse("arena"), text, fanout_scope::all_members).code ==
              status::invalid_text);
        CHECK(f.nobody_received());
    }
    CHECK(f.r.counters().routed == 0);
    // Before not-member: a forged text to a room the sender is not in is still invalid-text.
    CHECK(f.r.publish(f.a, "elsewhere", "x\ny").code == status::invalid_text);
    CHECK(f.r.publish(f.a, "elsewhere", "fine").code == status::not_member);
    // A room where the sender is alone: nothing is encoded, and the text is still checked.
    REQUIRE(f.r.join(f.a, "solo") == status::ok);
    CHECK(f.r.publish(f.a, "solo", "x\ny").code == status::invalid_text);
    CHECK(f.r.publish(f.a, "solo", "fine").ok());
    REQUIRE(f.r.publish(f.a, "arena", "all good").ok());
    CHECK(f.tb.take_lines() == lines{"room arena alice all good"});
    CHECK(f.tc.take_lines() == lines{"room arena alice all good"});
}

TEST_CASE("host_text: the text contract is is_message_text()", "[text]") {
    using switchboard::is_message_text;
    for (const std::string& text : forged_texts()) CHECK_FALSE(is_message_text(text));
    CHECK(is_message_text("a"));
    CHECK(is_message_text("tab\tinside"));
    CHECK(is_message_text("h\xC3\xA9llo \xF0\x9F\x98\x80"));
}

TEST_CASE("host_text: the line encoder called directly emits one line or nothing", "[text][line]") {
    const line_event_encoder& enc = line_event_encoder::instance();
    for (const std::string& text : forged_texts()) {
        CAPTURE(text);
        CHECK(enc.encode(event{event_kind::direct_message, {}, "alice", text}).empty());
        CHECK(enc.encode(event{event_kind::room_message, "arena", "alice", text}).empty());
    }
    // Names outside the name rules (a host building events by hand) are refused too.
    CHECK(enc.encode(event{event_kind::direct_message, {}, "admin\nmsg", "hi"}).empty());
    CHECK(enc.encode(event{event_kind::direct_message, {}, "", "hi"}).empty());
    CHECK(enc.encode(event{event_kind::room_message, "a room", "alice", "hi"}).empty());
    CHECK(enc.encode(event{event_kind::member_joined, "arena\r", "alice", {}}).empty());
    CHECK(enc.encode(event{event_kind::member_left, "arena", "al ice", {}}).empty());
    CHECK(enc.encode(event{event_kind::direct_message, {}, "alice", "hi"}).view() == "msg alice hi\n");
    CHECK(enc.encode(event{event_kind::member_left, "arena", "alice", {}}).view() == "leave arena alice\n");
    // A session the server closes (a cluster node that lost its lease): `bye <token>`.
    event closed{event_kind::session_closed, {}, "alice", {}};
    closed.code = switchboard::status::cluster_unavailable;
    CHECK(enc.encode(closed).view() == "bye cluster-unavailable\n");
    closed.code = switchboard::status::name_taken;
    CHECK(enc.encode(closed).view() == "bye name-taken\n");
}

TEST_CASE("host_text: reply builders never emit a second line", "[text][line]") {
    using namespace switchboard::protocol;
    CHECK(encode_info("server\nmsg admin restarting").view() == "* server?msg admin restarting\n");
    CHECK(encode_error("unknown-command", "a\rb").view() == "err unknown-command a?b\n");
    CHECK(encode_error(status::invalid_name, std::string_view("x\0\x1b", 3)).view() == "err invalid-name x??\n");
    CHECK(encode_line({"ok", "tab\tkept"}).view() == "ok tab\tkept\n");

    // A host greeting with a CR cannot forge a line either.
    router r;
    in_memory_transport t;
    const session_id s = r.open_session(t, line_event_encoder::instance());
    line_session session(r, s, line_session_options{});
    session.greet("welcome\rmsg admin hi\nsecond line");
    CHECK(t.take_lines() == lines{"* welcome?msg admin hi", "* second line"});
}

TEST_CASE("host_text: the late answers of a durable store are the replies they stand for", "[text][line]") {
    // The router's send_outcome events (docs/protocol.md, "Durable store"): `ok queued <user>` has
    // a path of its own in the encoder (the answer to every /msg stored for an offline user);
    // every variant must stay byte for byte what the reply encoder writes for it.
    using namespace switchboard::protocol;
    const line_event_encoder& enc = line_event_encoder::instance();
    const auto outcome = [](std::string_view user, std::string_view client_id, status code, bool queued) {
        event e{event_kind::send_outcome, {}, user, client_id};
        e.code = code;
        e.queued = queued;
        return e;
    };
    const auto as_reply = [](const event& e) {
        return std::string(line_reply_encoder::instance().encode(send_outcome_reply(e)).view());
    };
    const event cases[] = {outcome("bob", {}, status::ok, true),
                           outcome("bob", {}, status::ok, false),
                           outcome("a-very-long-user-name-of-many-bytes", {}, status::ok, true),
                           outcome("bob", {}, status::store_failed, true),
                           outcome("bob", "c1", status::ok, true),
                           outcome("bob", "c1", status::ok, false),
                           outcome("bob", "c1", status::store_busy, true)};
    for (const event& e : cases) {
        CAPTURE(e.user, e.text, to_string(e.code), e.queued);
        CHECK(std::string(enc.encode(e).view()) == as_reply(e));
    }
    CHECK(enc.encode(cases[0]).view() == "ok queued bob\n");
    CHECK(enc.encode(cases[2]).view() == "ok queued a-very-long-user-name-of-many-bytes\n");
    CHECK(enc.encode(cases[3]).view() == "err store-failed bob\n");
    CHECK(enc.encode(cases[4]).view() == "sent c1 queued\n");
}
