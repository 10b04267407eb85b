// A whole 1:1 router::route() (sender checks, target lookup, encoding of `msg <from> <text>`,
// delivery) from one session to random targets, 64-byte text, into a null transport (counts and
// keeps nothing), at 1 k, 100 k and 1 M registered users with 8-16 byte names.
//
//   BM_route_baseline/<users>       a naive router: std::unordered_map<std::string, null_sink*>
//                                   lookup of a std::string target, the line built in a std::string,
//                                   handed to a virtual null sink
//   BM_route_router_name/<users>    router::route(from, const name&, text): target already parsed
//   BM_route_router_string/<users>  router::route(from, std::string_view, text): as from the wire
//
// Items are routed messages; x_baseline = router messages/s / baseline messages/s at <users>.
// 1 M users only when NDEBUG is defined (see full_sizes in bench_support.hpp).
#include "bench_support.hpp"

#include <switchboard/router.hpp>
#include <switchboard/protocol/line.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using namespace switchboard_bench;
using switchboard::name;
using switchboard::router;
using switchboard::session_id;
using switchboard::status;

struct fixture {
    std::vector<std::string> names;
    std::unique_ptr<null_transport[]> transports;
    router r;
    session_id from;
    std::unique_ptr<null_sink[]> sinks;
    std::unordered_map<std::string, null_sink*> baseline;
    std::vector<name> targets;                // shuffled, every target registered
    std::vector<std::string> target_strings;  // the same, as sent
};

fixture* build(const std::size_t& users) {
    auto f = std::make_unique<fixture>();
    f->names = make_names(name_kind::short_name, users);
    f->transports = std::make_unique<null_transport[]>(users);
    f->sinks = std::make_unique<null_sink[]>(users);
    for (std::size_t i = 0; i < users; ++i) {
        const session_id s = f->r.open_session(f->transports[i], switchboard::protocol::line_event_encoder::instance());
        require(f->r.register_name(s, f->names[i]) == status::ok, "register_name");
        if (i == 0) f->from = s;
        f->baseline.emplace(f->names[i], &f->sinks[i]);
    }
    for (std::uint32_t i : shuffled_indices(users)) {
        f->targets.push_back(*name::parse(f->names[i]));
        f->target_strings.push_back(f->names[i]);
    }
    return f.release();
}

fixture& get(const benchmark::State& state) {
    return cached<fixture, std::size_t>(static_cast<std::size_t>(state.range(0)), build);
}

std::string pair_key(const benchmark::State& state) { return "route/" + std::to_string(state.range(0)); }

void BM_route_baseline(benchmark::State& state) {
    fixture& f = get(state);
    const std::string& from = f.names[0];
    const std::size_t n = f.target_strings.size();
    std::size_t i = 0;
    std::int64_t delivered = 0;
    const loop_clock clock;
    for (auto _ : state) {
        const auto it = f.baseline.find(f.target_strings[i]);
        if (it != f.baseline.end()) {
            std::string line;
            line.reserve(4 + from.size() + 1 + text64.size() + 1);
            line.append("msg ").append(from).append(" ").append(text64).append("\n");
            it->second->deliver(line);
            ++delivered;
        }
        if (++i == n) i = 0;
    }
    const double seconds = clock.seconds();
    if (delivered != state.iterations()) state.SkipWithError("a baseline target was not found");
    state.SetItemsProcessed(delivered);
    record_baseline(pair_key(state), static_cast<double>(delivered), seconds);
}

void BM_route_router_name(benchmark::State& state) {
    fixture& f = get(state);
    const std::size_t n = f.targets.size();
    std::size_t i = 0;
    std::int64_t delivered = 0;
    const loop_clock clock;
    for (auto _ : state) {
        const switchboard::route_result r = f.r.route(f.from, f.targets[i], text64);
        delivered += r.delivered;
        if (++i == n) i = 0;
    }
    const double seconds = clock.seconds();
    if (delivered != state.iterations()) state.SkipWithError("a route was not delivered");
    state.SetItemsProcessed(delivered);
    report_vs_baseline(state, pair_key(state), static_cast<double>(delivered), seconds);
}

void BM_route_router_string(benchmark::State& state) {
    fixture& f = get(state);
    const std::size_t n = f.target_strings.size();
    std::size_t i = 0;
    std::int64_t delivered = 0;
    const loop_clock clock;
    for (auto _ : state) {
        const switchboard::route_result r =
            f.r.route(f.from, std::string_view(f.target_strings[i]), text64);
        delivered += r.delivered;
        if (++i == n) i = 0;
    }
    const double seconds = clock.seconds();
    if (delivered != state.iterations()) state.SkipWithError("a route was not delivered");
    state.SetItemsProcessed(delivered);
    report_vs_baseline(state, pair_key(state), static_cast<double>(delivered), seconds);
}

[[maybe_unused]] const bool registered = [] {
    for (std::int64_t users : sizes_up_to({1000, 100000, 1000000}, 100000)) {
        benchmark::RegisterBenchmark("BM_route_baseline", BM_route_baseline)->Arg(users);
        benchmark::RegisterBenchmark("BM_route_router_name", BM_route_router_name)->Arg(users);
        benchmark::RegisterBenchmark("BM_route_router_string", BM_route_router_string)->Arg(users);
    }
    return true;
}();

} // namespace
