// Presence and the offline inbox on the core (issue #11), null transports, time as values.
//
// Presence transitions: 10,000 watched users connecting and leaving, each watched by <watchers>
// sessions. One cycle = user i (in turn) opens a session and registers (online: each watcher gets
// `presence <user> online`), then closes (offline: each watcher gets `presence <user> offline
// <ms>`): two transitions. Items are transitions.
//   BM_presence_transitions/<watchers>  with watchers (0 = nobody watches: the same churn with no
//                                       presence work, the baseline)
//
// Offline inbox, 1,000 users offline with 1,000 queued messages each (64-byte texts):
//   BM_inbox_fill  Iterations(1): routes 1 M messages to offline known users through
//                  router::route() into a memory_inbox; counters: peak RSS growth of the process
//                  (getrusage ru_maxrss, before/after), the store's counted bytes, both per message.
#include "bench_support.hpp"

#include <switchboard/memory_inbox.hpp>
#include <switchboard/router.hpp>
#include <switchboard/protocol/line.hpp>

#include <benchmark/benchmark.h>

#include <sys/resource.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace switchboard_bench;
using switchboard::router;
using switchboard::session_id;
using switchboard::status;

const switchboard::event_encoder& line_format() { return switchboard::protocol::line_event_encoder::instance(); }

void BM_presence_transitions(benchmark::State& state) {
    const auto watchers_per_user = static_cast<std::size_t>(state.range(0));
    constexpr std::size_t users = 10000;
    router r;
    null_transport sink;
    std::vector<std::string> names;
    for (std::size_t i = 0; i < users; ++i) names.push_back("user" + std::to_string(i));
    // Watcher sessions: each watches a share of the users so that every user has
    // `watchers_per_user` watchers and no session exceeds the default 256 watches.
    std::vector<session_id> watchers;
    const std::size_t watches = users * watchers_per_user;
    const std::size_t sessions = (watches + 255) / 256;
    for (std::size_t w = 0; w < sessions; ++w) {
        const session_id s = r.open_session(sink, line_format());
        require(r.register_name(s, "watcher" + std::to_string(w)) == status::ok, "register watcher");
        watchers.push_back(s);
    }
    for (std::size_t k = 0; k < watches; ++k)
        require(r.watch(watchers[k / 256], *switchboard::name::parse(names[k % users])) == status::ok, "watch");
    std::size_t i = 0;
    std::int64_t now = 1;
    for (auto _ : state) {
        null_transport t;
        const session_id s = r.open_session(t, line_format());
        r.touch(s, ++now);
        if (r.register_name(s, names[i]) != status::ok) state.SkipWithError("register");
        (void)r.close_session(s);
        i = i + 1 == users ? 0 : i + 1;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 2);
    state.counters["events_per_transition"] = static_cast<double>(watchers_per_user);
}
BENCHMARK(BM_presence_transitions)->Arg(0)->Arg(1)->Arg(4);

long max_rss_kib() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

void BM_inbox_fill(benchmark::State& state) {
    const std::size_t users = static_cast<std::size_t>(full_or(1000, 100));
    constexpr std::size_t per_user = 1000;
    for (auto _ : state) {
        const long before = max_rss_kib();
        switchboard::memory_inbox inbox;
        switchboard::router_options o;
        o.inbox = &inbox;
        router r(o);
        null_transport sink;
        std::vector<std::string> names;
        for (std::size_t u = 0; u < users; ++u) {
            names.push_back("user" + std::to_string(u));
            const session_id s = r.open_session(sink, line_format());
            require(r.register_name(s, names.back()) == status::ok, "register");
            (void)r.close_session(s); // known, now offline
        }
        const session_id sender = r.open_session(sink, line_format());
        require(r.register_name(sender, "sender") == status::ok, "register sender");
        const std::string text(64, 'x');
        for (std::size_t m = 0; m < per_user; ++m)
            for (std::size_t u = 0; u < users; ++u)
                if (!r.route(sender, names[u], text).queued) state.SkipWithError("not queued");
        const long after = max_rss_kib();
        const double messages = static_cast<double>(users * per_user);
        state.counters["messages"] = messages;
        state.counters["peak_rss_growth_MiB"] = static_cast<double>(after - before) / 1024.0;
        state.counters["rss_bytes_per_message"] = static_cast<double>(after - before) * 1024.0 / messages;
        state.counters["store_bytes_per_message"] = static_cast<double>(inbox.bytes()) / messages;
    }
}
BENCHMARK(BM_inbox_fill)->Iterations(1)->Unit(benchmark::kMillisecond);

} // namespace

BENCHMARK_MAIN();
