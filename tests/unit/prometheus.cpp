// prometheus_text(): the /metrics page — every family has HELP and TYPE once, router counters and
// gauges follow the router, listener samples carry their transport label.
#include <switchboard/asio/prometheus.hpp>
#include <switchboard/in_memory_transport.hpp>
#include <switchboard/protocol/line.hpp>
#include <switchboard/router.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

using switchboard::in_memory_transport;
using switchboard::router;
using switchboard::status;

namespace {
// The value of the sample line that starts with `series` followed by a space; -1 when absent.
long long sample(const std::string& page, std::string_view series) {
    std::size_t at = 0;
    while ((at = page.find(series, at)) != std::string::npos) {
        const bool line_start = at == 0 || page[at - 1] == '\n';
        const std::size_t after = at + series.size();
        if (line_start && after < page.size() && page[after] == ' ')
            return std::stoll(page.substr(after + 1, page.find('\n', after) - after - 1));
        at = after;
    }
    return -1;
}
std::size_t count(const std::string& page, std::string_view needle) {
    std::size_t n = 0;
    for (std::size_t at = page.find(needle); at != std::string::npos; at = page.find(needle, at + 1)) ++n;
    return n;
}
} // namespace

TEST_CASE("prometheus: router counters and gauges follow the router", "[prometheus]") {
    router r;
    in_memory_transport ta, tb;
    const auto a = r.open_session(ta, switchboard::protocol::line_event_encoder::instance());
    const auto b = r.open_session(tb, switchboard::protocol::line_event_encoder::instance());
    REQUIRE(r.register_name(a, "alice") == status::ok);
    REQUIRE(r.register_name(b, "bob") == status::ok);
    REQUIRE(r.route(a, "bob", "hi").ok());
    REQUIRE(r.route(a, "carol", "hi").code == status::user_not_found);
    REQUIRE(r.join(a, "lobby") == status::ok);

    const std::string page = switchboard::prometheus_text(r, {});
    CHECK(sample(page, "switchboard_routed_total") == 1);
    CHECK(sample(page, "switchboard_delivered_total") == 1);
    CHECK(sample(page, "switchboard_user_not_found_total") == 1);
    CHECK(sample(page, "switchboard_sessions") == 2);
    CHECK(sample(page, "switchboard_users") == 2);
    CHECK(sample(page, "switchboard_rooms") == 1);
    CHECK(count(page, "# TYPE switchboard_routed_total counter\n") == 1);
    CHECK(count(page, "# TYPE switchboard_sessions gauge\n") == 1);
    CHECK(page.find("switchboard_connections") == std::string::npos); // no listener given
    CHECK(page.back() == '\n');
}

TEST_CASE("prometheus: one family per listener figure, one labelled sample per listener", "[prometheus]") {
    router r;
    switchboard::server_metrics tcp{"tcp", {}, 3};
    tcp.counters.accepted = 10;
    tcp.counters.refused_full = 2;
    tcp.counters.refused_per_address = 1;
    tcp.counters.line_too_long = 4;
    switchboard::server_metrics ws{"ws", {}, 5};
    ws.counters.accepted = 7;
    ws.counters.handshake_timeouts = 6;
    const std::string page = switchboard::prometheus_text(r, {tcp, ws});
    CHECK(sample(page, "switchboard_accepted_total{transport=\"tcp\"}") == 10);
    CHECK(sample(page, "switchboard_accepted_total{transport=\"ws\"}") == 7);
    CHECK(sample(page, "switchboard_refused_total{transport=\"tcp\"}") == 3);
    CHECK(sample(page, "switchboard_handshake_timeouts_total{transport=\"ws\"}") == 6);
    CHECK(sample(page, "switchboard_message_too_long_total{transport=\"tcp\"}") == 4);
    CHECK(sample(page, "switchboard_connections{transport=\"tcp\"}") == 3);
    CHECK(sample(page, "switchboard_connections{transport=\"ws\"}") == 5);
    CHECK(count(page, "# HELP switchboard_accepted_total ") == 1);
    CHECK(count(page, "# TYPE switchboard_connections gauge\n") == 1);
}
