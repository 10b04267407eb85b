// Session lookup by user name: router::find at 1 k, 100 k and 1 M registered users, random order
// (a precomputed shuffled query list, every query a hit), for 8-16 byte names and UUID strings.
// UUIDs are in their 36-byte dashed form (switchboard::max_name_length is 40); were the limit below
// 36, the uuid fixtures would use the 32-hex-digit form of the same UUIDs (the label says which),
// for both the router and the baseline.
//
//   BM_lookup_baseline/<kind>/<users>       std::unordered_map<std::string, std::uint64_t>::find,
//                                           query: a std::string already built
//   BM_lookup_router_name/<kind>/<users>    router::find(const name&), name already parsed
//   BM_lookup_router_string/<kind>/<users>  router::find(std::string_view): validate, fold, hash
//
// Items are lookups; x_baseline = router lookups/s / baseline lookups/s of the same <kind>/<users>.
// The 1 M fixtures are built only when NDEBUG is defined (optimised builds; see full_sizes in
// bench_support.hpp): builds with assertions are smoke runs.
#include "bench_support.hpp"

#include <switchboard/router.hpp>
#include <switchboard/protocol/line.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

using namespace switchboard_bench;
using switchboard::name;
using switchboard::router;
using switchboard::session_id;

using key = std::pair<name_kind, std::size_t>;

// The registered names, the router and the baseline map holding them, and the shuffled queries.
struct fixture {
    std::vector<std::string> names;
    std::unique_ptr<null_transport[]> transports;
    router r;
    std::unordered_map<std::string, std::uint64_t> baseline;
    std::vector<name> query_names;          // router::find(const name&)
    std::vector<std::string> query_strings; // baseline and router::find(std::string_view)
};

fixture* build(const key& k) {
    auto f = std::make_unique<fixture>();
    const std::size_t users = k.second;
    f->names = make_names(k.first, users);
    f->transports = std::make_unique<null_transport[]>(users);
    for (std::size_t i = 0; i < users; ++i) {
        const session_id s = f->r.open_session(f->transports[i], switchboard::protocol::line_event_encoder::instance());
        require(f->r.register_name(s, f->names[i]) == switchboard::status::ok, "register_name");
        f->baseline.emplace(f->names[i], s.value());
    }
    for (std::uint32_t i : shuffled_indices(users)) {
        f->query_names.push_back(*name::parse(f->names[i]));
        f->query_strings.push_back(f->names[i]);
    }
    return f.release();
}

fixture* get(benchmark::State& state, name_kind kind) {
    fixture& f = cached<fixture, key>({kind, static_cast<std::size_t>(state.range(0))}, build);
    state.SetLabel(describe(kind));
    return &f;
}

std::string pair_key(name_kind kind, const benchmark::State& state) {
    return std::string("lookup/") + to_label(kind) + "/" + std::to_string(state.range(0));
}

void BM_lookup_baseline(benchmark::State& state, name_kind kind) {
    const fixture& f = *get(state, kind);
    const std::size_t n = f.query_strings.size();
    std::size_t i = 0;
    std::int64_t hits = 0;
    const loop_clock clock;
    for (auto _ : state) {
        const auto it = f.baseline.find(f.query_strings[i]);
        benchmark::DoNotOptimize(it);
        hits += it != f.baseline.end();
        if (++i == n) i = 0;
    }
    const double seconds = clock.seconds();
    if (hits != state.iterations()) state.SkipWithError("a baseline lookup missed");
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    record_baseline(pair_key(kind, state), static_cast<double>(state.iterations()), seconds);
}

void BM_lookup_router_name(benchmark::State& state, name_kind kind) {
    const fixture& f = *get(state, kind);
    const std::size_t n = f.query_names.size();
    std::size_t i = 0;
    std::int64_t hits = 0;
    const loop_clock clock;
    for (auto _ : state) {
        const session_id s = f.r.find(f.query_names[i]);
        benchmark::DoNotOptimize(s);
        hits += static_cast<bool>(s);
        if (++i == n) i = 0;
    }
    const double seconds = clock.seconds();
    if (hits != state.iterations()) state.SkipWithError("a router lookup missed");
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    report_vs_baseline(state, pair_key(kind, state), static_cast<double>(state.iterations()), seconds);
}

void BM_lookup_router_string(benchmark::State& state, name_kind kind) {
    const fixture& f = *get(state, kind);
    const std::size_t n = f.query_strings.size();
    std::size_t i = 0;
    std::int64_t hits = 0;
    const loop_clock clock;
    for (auto _ : state) {
        const session_id s = f.r.find(std::string_view(f.query_strings[i]));
        benchmark::DoNotOptimize(s);
        hits += static_cast<bool>(s);
        if (++i == n) i = 0;
    }
    const double seconds = clock.seconds();
    if (hits != state.iterations()) state.SkipWithError("a router lookup missed");
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    report_vs_baseline(state, pair_key(kind, state), static_cast<double>(state.iterations()), seconds);
}

// Registered per <kind>/<users> so that the three benchmarks sharing a fixture run back to back.
[[maybe_unused]] const bool registered = [] {
    for (name_kind kind : {name_kind::short_name, name_kind::uuid}) {
        for (std::int64_t users : sizes_up_to({1000, 100000, 1000000}, 100000)) {
            const std::string suffix = std::string("/") + to_label(kind);
            benchmark::RegisterBenchmark(("BM_lookup_baseline" + suffix).c_str(), BM_lookup_baseline, kind)
                ->Arg(users);
            benchmark::RegisterBenchmark(("BM_lookup_router_name" + suffix).c_str(), BM_lookup_router_name,
                                         kind)
                ->Arg(users);
            benchmark::RegisterBenchmark(("BM_lookup_router_string" + suffix).c_str(),
                                         BM_lookup_router_string, kind)
                ->Arg(users);
        }
    }
    return true;
}();

} // namespace
