// Churn on a big router: users connecting and leaving, sessions joining and leaving rooms.
//
// Register/unregister at 1 M registered users: one cycle = a connection arriving, taking a fresh
// user name and going away, while 1 M other users stay registered.
//   BM_churn_register_baseline/<users>  std::unordered_map<std::string, std::uint64_t>:
//                                       emplace(std::string(name), id) then erase(name)
//   BM_churn_register_router/<users>    open_session + register_name(std::string_view) +
//                                       close_session
//
// Join/leave: one cycle = a session joining a room that has <members> other members and leaving
// it again; each join and leave notifies every other member (member_joined / member_left), so a
// cycle is 2 * <members> deliveries (null transports). With 0 members the room is created and
// deleted every cycle.
//   BM_churn_join_leave_baseline/<members>  a naive implementation of the same: rooms in a
//                                           std::unordered_map<std::string,
//                                           std::unordered_set<std::uint64_t>>, the notification
//                                           line built once per join/leave in a std::string and
//                                           handed to each member's virtual null sink
//   BM_churn_join_leave_router/<members>    router::join(s, "lobby") + router::leave(s, "lobby")
//
// Items are cycles; x_baseline = router cycles/s / baseline cycles/s with the same argument.
// The register benchmarks hold 100 k users instead of 1 M when NDEBUG is not defined (smoke runs;
// see full_sizes in bench_support.hpp).
#include "bench_support.hpp"

#include <switchboard/router.hpp>
#include <switchboard/protocol/line.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace {

using namespace switchboard_bench;
using switchboard::router;
using switchboard::session_id;
using switchboard::status;

constexpr std::size_t fresh_names = 1u << 14; // names not registered, taken and released in turn
constexpr std::string_view room_name = "lobby";

// ---- register / unregister ------------------------------------------------------------------

struct users_fixture {
    std::vector<std::string> names; // [0, users) registered, then fresh_names more
    std::unique_ptr<null_transport[]> transports;
    router r;
    std::unordered_map<std::string, std::uint64_t> baseline;
    null_transport churner;
};

users_fixture* build_users(const std::size_t& users) {
    auto f = std::make_unique<users_fixture>();
    f->names = make_names(name_kind::short_name, users + fresh_names);
    f->transports = std::make_unique<null_transport[]>(users);
    for (std::size_t i = 0; i < users; ++i) {
        const session_id s = f->r.open_session(f->transports[i], switchboard::protocol::line_event_encoder::instance());
        require(f->r.register_name(s, f->names[i]) == status::ok, "register_name");
        f->baseline.emplace(f->names[i], s.value());
    }
    return f.release();
}

users_fixture& users(const benchmark::State& state) {
    return cached<users_fixture, std::size_t>(static_cast<std::size_t>(state.range(0)), build_users);
}

void BM_churn_register_baseline(benchmark::State& state) {
    users_fixture& f = users(state);
    const std::size_t first = static_cast<std::size_t>(state.range(0));
    std::size_t i = 0;
    std::uint64_t id = 0;
    const loop_clock clock;
    for (auto _ : state) {
        const std::string_view wanted = f.names[first + i]; // as received
        const auto [it, inserted] = f.baseline.emplace(std::string(wanted), ++id);
        benchmark::DoNotOptimize(inserted);
        f.baseline.erase(it);
        if (++i == fresh_names) i = 0;
    }
    const double seconds = clock.seconds();
    if (f.baseline.size() != first) state.SkipWithError("baseline size changed");
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    record_baseline("register/" + std::to_string(state.range(0)), static_cast<double>(state.iterations()),
                    seconds);
}

void BM_churn_register_router(benchmark::State& state) {
    users_fixture& f = users(state);
    const std::size_t first = static_cast<std::size_t>(state.range(0));
    std::size_t i = 0;
    std::int64_t ok = 0;
    const loop_clock clock;
    for (auto _ : state) {
        const session_id s = f.r.open_session(f.churner, switchboard::protocol::line_event_encoder::instance());
        ok += f.r.register_name(s, std::string_view(f.names[first + i])) == status::ok;
        (void)f.r.close_session(s);
        if (++i == fresh_names) i = 0;
    }
    const double seconds = clock.seconds();
    if (ok != state.iterations() || f.r.user_count() != first) state.SkipWithError("a registration failed");
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    report_vs_baseline(state, "register/" + std::to_string(state.range(0)),
                       static_cast<double>(state.iterations()), seconds);
}

// ---- join / leave ---------------------------------------------------------------------------

struct room_fixture {
    // Router: members 0..n-1 in the room; session n churns.
    std::unique_ptr<null_transport[]> transports;
    router r;
    session_id churner;
    // Baseline: the same membership, naive containers.
    std::unique_ptr<null_sink[]> sinks;
    std::vector<std::string> names;
    std::unordered_map<std::string, std::unordered_set<std::uint64_t>> rooms;
};

room_fixture* build_room(const std::size_t& members) {
    auto f = std::make_unique<room_fixture>();
    f->names = make_names(name_kind::short_name, members + 1);
    f->transports = std::make_unique<null_transport[]>(members + 1);
    f->sinks = std::make_unique<null_sink[]>(members + 1);
    for (std::size_t i = 0; i <= members; ++i) {
        const session_id s = f->r.open_session(f->transports[i], switchboard::protocol::line_event_encoder::instance());
        require(f->r.register_name(s, f->names[i]) == status::ok, "register_name");
        if (i == members) {
            f->churner = s;
        } else {
            require(f->r.join(s, room_name) == status::ok, "join");
            f->rooms[std::string(room_name)].insert(i);
        }
    }
    return f.release();
}

room_fixture& room(const benchmark::State& state) {
    return cached<room_fixture, std::size_t>(static_cast<std::size_t>(state.range(0)), build_room);
}

// The naive implementation's notification: one line, handed to each member but `self`.
void notify(room_fixture& f, const std::unordered_set<std::uint64_t>& members, std::string_view verb,
            std::string_view room, std::uint64_t self) {
    const std::string& user = f.names[self];
    std::string line;
    line.reserve(verb.size() + 1 + room.size() + 1 + user.size() + 1);
    line.append(verb).append(" ").append(room).append(" ").append(user).append("\n");
    for (std::uint64_t m : members)
        if (m != self) f.sinks[m].deliver(line);
}

void BM_churn_join_leave_baseline(benchmark::State& state) {
    room_fixture& f = room(state);
    const std::uint64_t self = static_cast<std::uint64_t>(state.range(0)); // the churning session
    const loop_clock clock;
    for (auto _ : state) {
        { // join
            const std::string_view wanted = room_name; // as received
            auto& members = f.rooms[std::string(wanted)];
            notify(f, members, "join", wanted, self);
            members.insert(self);
        }
        { // leave
            const std::string_view wanted = room_name;
            const auto it = f.rooms.find(std::string(wanted));
            it->second.erase(self);
            notify(f, it->second, "leave", wanted, self);
            if (it->second.empty()) f.rooms.erase(it);
        }
    }
    const double seconds = clock.seconds();
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    record_baseline("join_leave/" + std::to_string(state.range(0)), static_cast<double>(state.iterations()),
                    seconds);
}

void BM_churn_join_leave_router(benchmark::State& state) {
    room_fixture& f = room(state);
    std::int64_t ok = 0;
    const loop_clock clock;
    for (auto _ : state) {
        ok += f.r.join(f.churner, room_name) == status::ok;
        ok += f.r.leave(f.churner, room_name) == status::ok;
    }
    const double seconds = clock.seconds();
    if (ok != 2 * state.iterations()) state.SkipWithError("a join or leave failed");
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    report_vs_baseline(state, "join_leave/" + std::to_string(state.range(0)),
                       static_cast<double>(state.iterations()), seconds);
}

[[maybe_unused]] const bool registered = [] {
    for (std::int64_t n : {full_or(1000000, 100000)}) {
        benchmark::RegisterBenchmark("BM_churn_register_baseline", BM_churn_register_baseline)->Arg(n);
        benchmark::RegisterBenchmark("BM_churn_register_router", BM_churn_register_router)->Arg(n);
    }
    for (std::int64_t members : {0, 10, 1000}) {
        benchmark::RegisterBenchmark("BM_churn_join_leave_baseline", BM_churn_join_leave_baseline)->Arg(members);
        benchmark::RegisterBenchmark("BM_churn_join_leave_router", BM_churn_join_leave_router)->Arg(members);
    }
    return true;
}();

} // namespace
