// One router, sessions of different transport types: an in_memory_transport and a counting
// transport defined here message each other, directly and through a room, sharing payloads.
#include <switchboard/in_memory_transport.hpp>
#include <switchboard/router.hpp>
#include <switchboard/transport.hpp>
#include <switchboard/protocol/line.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <type_traits>
#include <vector>

using switchboard::close_mode;
using switchboard::delivery;
using switchboard::in_memory_transport;
using switchboard::payload;
using switchboard::router;
using switchboard::session_id;
using switchboard::status;
using switchboard::transport;
using lines = std::vector<std::string>;

namespace {

// A second transport type: counts calls, keeps the payloads, and refuses after close().
class counting_transport final : public transport {
public:
    int deliver_calls = 0;
    int close_calls = 0;
    std::size_t bytes = 0;
    std::vector<payload> kept;
    bool closed = false;

    delivery deliver(const payload& p) noexcept override {
        ++deliver_calls;
        if (closed) return delivery::closed;
        bytes += p.size();
        kept.push_back(p);
        return delivery::queued;
    }
    void close(close_mode) noexcept override {
        ++close_calls;
        closed = true;
    }
    lines text() const {
        lines out;
        for (const payload& p : kept) out.emplace_back(p.view());
        return out;
    }
};

static_assert(std::is_base_of_v<transport, in_memory_transport>, "in_memory_transport is a transport");
static_assert(!std::is_copy_constructible_v<in_memory_transport>, "a transport is not copyable");
static_assert(std::is_abstract_v<transport>, "transport is an interface");

} // namespace

TEST_CASE("mixed_transports: sessions of different transport types message each other", "[transport]") {
    router r;
    in_memory_transport mem;
    counting_transport cnt;
    const session_id a = r.open_session(mem, switchboard::protocol::line_event_encoder::instance());
    const session_id b = r.open_session(cnt, switchboard::protocol::line_event_encoder::instance());
    REQUIRE(r.register_name(a, "mem") == status::ok);
    REQUIRE(r.register_name(b, "cnt") == status::ok);

    CHECK(r.route(a, "cnt", "hello counting").delivered == 1);
    CHECK(r.route(b, "mem", "hello memory").delivered == 1);
    CHECK(cnt.text() == lines{"msg mem hello counting\n"});
    CHECK(cnt.deliver_calls == 1);
    CHECK(cnt.bytes == std::string("msg mem hello counting\n").size());
    CHECK(mem.take_lines() == lines{"msg cnt hello memory"});

    // Through a room: both kinds receive the same shared payload.
    in_memory_transport mem2;
    const session_id c = r.open_session(mem2, switchboard::protocol::line_event_encoder::instance());
    REQUIRE(r.register_name(c, "mem2") == status::ok);
    for (session_id s : {a, b, c}) REQUIRE(r.join(s, "mix") == status::ok);
    CHECK(cnt.text() == lines{"msg mem hello counting\n", "join mix mem2\n"});
    (void)mem.take_bytes();
    cnt.kept.clear();

    CHECK(r.publish(c, "mix", "hi both").delivered == 2);
    REQUIRE(cnt.kept.size() == 1);
    REQUIRE(mem.received().size() == 1);
    CHECK(cnt.kept[0].view() == "room mix mem2 hi both\n");
    CHECK(same_buffer(cnt.kept[0], mem.received()[0]));
    CHECK(cnt.kept[0].use_count() == 2);
    CHECK(mem2.received().empty());
    CHECK(mem.take_lines() == lines{"room mix mem2 hi both"});

    // Disconnect goes through the right transport's close().
    CHECK(r.disconnect(b) == status::ok);
    CHECK(cnt.close_calls == 1);
    CHECK_FALSE(mem.closed());
    // A closed counting transport refuses; the router counts the drop.
    const auto dropped_before = r.counters().dropped;
    const auto res = r.route(a, "cnt", "late");
    CHECK(res.dropped == 1);
    CHECK(r.counters().dropped == dropped_before + 1);

    // The counting session goes; the in-memory members hear it.
    (void)mem2.take_bytes();
    REQUIRE(r.close_session(b) == status::ok);
    CHECK(mem.take_lines() == lines{"leave mix cnt"});
    CHECK(mem2.take_lines() == lines{"leave mix cnt"});
    CHECK(r.route(a, "cnt", "gone?").code == status::user_not_found);
    const int calls_after_close = cnt.deliver_calls;
    CHECK(r.publish(a, "mix", "x").delivered == 1);
    CHECK(cnt.deliver_calls == calls_after_close); // no longer a member: never called again
}

TEST_CASE("mixed_transports: many sessions alternating transport types, all-pairs messaging",
          "[transport]") {
    router r;
    constexpr int n = 10;
    in_memory_transport mems[n / 2];
    counting_transport cnts[n / 2];
    std::vector<session_id> ids;
    for (int i = 0; i < n; ++i) {
        transport& t = (i % 2) ? static_cast<transport&>(cnts[i / 2]) : static_cast<transport&>(mems[i / 2]);
        ids.push_back(r.open_session(t, switchboard::protocol::line_event_encoder::instance()));
        REQUIRE(r.register_name(ids.back(), "u" + std::to_string(i)) == status::ok);
    }
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j)
            REQUIRE(r.route(ids[i], "u" + std::to_string(j), std::to_string(i) + ">" + std::to_string(j)).delivered == 1);
    for (int j = 0; j < n; ++j) {
        lines expected;
        for (int i = 0; i < n; ++i)
            expected.push_back("msg u" + std::to_string(i) + " " + std::to_string(i) + ">" + std::to_string(j));
        INFO("recipient u" << j);
        if (j % 2) {
            lines got = cnts[j / 2].text();
            for (std::string& l : got) {
                REQUIRE(l.back() == '\n');
                l.pop_back();
            }
            CHECK(got == expected);
        } else {
            CHECK(mems[j / 2].take_lines() == expected);
        }
    }
    CHECK(r.counters().delivered == n * n);
}
