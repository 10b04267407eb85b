// Routing from several threads under the documented thread-safety model: a router is not
// thread-safe, so the host serialises every call with one std::mutex (as asio::tcp_server does).
// 100 k registered users (8-16 byte names); each thread sends from its own session to random
// targets, 64-byte text, into null transports. Wall-clock rates (UseRealTime): items/s is the
// total over all threads.
//
//   BM_threads_route_baseline/threads:1      one thread, no mutex: the router alone
//   BM_threads_route_locked/threads:N        a lock/unlock around each route() call, N = 1, 2
//   BM_threads_route_locked_batch16/threads:N  one lock per 16 route() calls (a host that drains
//                                            several lines per lock), N = 1, 2
//
// Items are routed messages; x_baseline = total messages/s / the one-thread, no-mutex rate, so
// values above 1 at threads:2 would mean that a second thread adds throughput (on 2 cores it
// cannot beat ~1 with the router serialised: this measures what the mutex and the cache-line
// traffic between the cores cost).
#include "bench_support.hpp"

#include <switchboard/router.hpp>
#include <switchboard/protocol/line.hpp>

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace {

using namespace switchboard_bench;
using switchboard::name;
using switchboard::router;
using switchboard::session_id;
using switchboard::status;

constexpr std::size_t users = 100000;
constexpr int max_threads = 2;
constexpr std::size_t batch = 16;

struct fixture {
    std::unique_ptr<null_transport[]> transports;
    router r;
    std::mutex m;
    session_id from[max_threads];
    std::vector<name> targets[max_threads]; // a differently shuffled list per thread
};

// Built on first use; magic statics make the first use by two threads safe.
fixture& shared_fixture() {
    static const std::unique_ptr<fixture> f = [] {
        auto p = std::make_unique<fixture>();
        const std::vector<std::string> names = make_names(name_kind::short_name, users);
        p->transports = std::make_unique<null_transport[]>(users);
        for (std::size_t i = 0; i < users; ++i) {
            const session_id s = p->r.open_session(p->transports[i], switchboard::protocol::line_event_encoder::instance());
            require(p->r.register_name(s, names[i]) == status::ok, "register_name");
            if (i < max_threads) p->from[i] = s;
        }
        for (int t = 0; t < max_threads; ++t)
            for (std::uint32_t i : shuffled_indices(users, 1u << 16, 10 + static_cast<std::uint64_t>(t)))
                p->targets[t].push_back(*name::parse(names[i]));
        return p;
    }();
    return *f;
}

// Sets the rate counter from thread 0: every thread runs the same number of iterations, and the
// loop of thread 0 spans the start and stop barriers that all threads pass.
void finish(benchmark::State& state, double seconds, std::int64_t delivered, bool is_baseline) {
    state.SetItemsProcessed(delivered);
    if (delivered != state.iterations()) state.SkipWithError("a route was not delivered");
    if (state.thread_index() != 0) return;
    const double total = static_cast<double>(state.iterations()) * state.threads();
    if (is_baseline) record_baseline("threads", total, seconds);
    else report_vs_baseline(state, "threads", total, seconds);
}

void BM_threads_route_baseline(benchmark::State& state) {
    fixture& f = shared_fixture();
    const int t = state.thread_index();
    const std::vector<name>& targets = f.targets[t];
    std::size_t i = 0;
    std::int64_t delivered = 0;
    const loop_clock clock(loop_clock::kind::wall);
    for (auto _ : state) {
        delivered += f.r.route(f.from[t], targets[i], text64).delivered;
        if (++i == targets.size()) i = 0;
    }
    finish(state, clock.seconds(), delivered, true);
}

void BM_threads_route_locked(benchmark::State& state) {
    fixture& f = shared_fixture();
    const int t = state.thread_index();
    const std::vector<name>& targets = f.targets[t];
    std::size_t i = 0;
    std::int64_t delivered = 0;
    const loop_clock clock(loop_clock::kind::wall);
    for (auto _ : state) {
        {
            const std::lock_guard<std::mutex> lock(f.m);
            delivered += f.r.route(f.from[t], targets[i], text64).delivered;
        }
        if (++i == targets.size()) i = 0;
    }
    finish(state, clock.seconds(), delivered, false);
}

// One iteration = `batch` messages under one lock.
void BM_threads_route_locked_batch16(benchmark::State& state) {
    fixture& f = shared_fixture();
    const int t = state.thread_index();
    const std::vector<name>& targets = f.targets[t];
    std::size_t i = 0;
    std::int64_t delivered = 0;
    const loop_clock clock(loop_clock::kind::wall);
    for (auto _ : state) {
        const std::lock_guard<std::mutex> lock(f.m);
        for (std::size_t k = 0; k < batch; ++k) {
            delivered += f.r.route(f.from[t], targets[i], text64).delivered;
            if (++i == targets.size()) i = 0;
        }
    }
    const double seconds = clock.seconds();
    state.SetItemsProcessed(delivered);
    if (delivered != state.iterations() * static_cast<std::int64_t>(batch))
        state.SkipWithError("a route was not delivered");
    if (t == 0)
        report_vs_baseline(state, "threads",
                           static_cast<double>(state.iterations()) * batch * state.threads(), seconds);
}

BENCHMARK(BM_threads_route_baseline)->Threads(1)->UseRealTime();
BENCHMARK(BM_threads_route_locked)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_threads_route_locked_batch16)->Threads(1)->Threads(2)->UseRealTime();

} // namespace
