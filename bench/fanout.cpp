// Fan-out: one 64-byte message published to a room of 10, 1 k and 100 k members (the sender is a
// member and, as for the line protocol's /say, does not get its own message: members - 1
// deliveries per publish).
//
//   BM_fanout_baseline/<members>      encode `room <room> <from> <text>` once into a std::string,
//                                     copy it into each recipient's std::vector<std::string> queue
//                                     (a queue is cleared when it holds 8 lines, as a writer would
//                                     drain it)
//   BM_fanout_router/<members>        router::publish into null transports (count, keep nothing)
//   BM_fanout_router_queue/<members>  router::publish into transports that keep the payload in the
//                                     same kind of per-recipient queue (std::vector<payload>,
//                                     cleared at 8): the like-for-like comparison with the baseline
//                                     (the two router benchmarks share one room)
//
// Items are deliveries; x_baseline = router deliveries/s / baseline deliveries/s at <members>.
// Building the room is outside the timed loop but not free: each join notifies every member
// already there (member_joined), so a room of K members costs ~K^2/2 deliveries to build; the
// 100 k room takes tens of seconds, and is 10 k in builds without NDEBUG (smoke runs).
#include "bench_support.hpp"

#include <switchboard/router.hpp>
#include <switchboard/protocol/line.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace switchboard_bench;
using switchboard::delivery;
using switchboard::payload;
using switchboard::router;
using switchboard::session_id;
using switchboard::status;

constexpr std::size_t queue_depth = 8;
constexpr std::string_view room_name = "lobby";

// What the member transports do with a delivery; switched between benchmarks, never during one.
enum class mode { count, queue };
mode transport_mode = mode::count;

// count: a null transport (counts, keeps nothing). queue: keeps the payload like a socket
// adapter's output queue, drained every queue_depth payloads. One type for both so that the
// expensive room is built once and shared by BM_fanout_router and BM_fanout_router_queue.
class member_transport final : public switchboard::transport {
public:
    member_transport() { queue_.reserve(queue_depth); }
    delivery deliver(const payload& bytes) noexcept override {
        if (transport_mode == mode::count) {
            ++delivered_;
        } else {
            if (queue_.size() == queue_depth) queue_.clear();
            queue_.push_back(bytes); // capacity reserved: no allocation, cannot throw
        }
        return delivery::queued;
    }
    void close(switchboard::close_mode) noexcept override {}
    void drain() noexcept { queue_.clear(); }

private:
    std::uint64_t delivered_ = 0;
    std::vector<payload> queue_;
};

struct room_fixture {
    std::unique_ptr<member_transport[]> transports;
    std::size_t members = 0;
    router r;
    session_id publisher;
};

room_fixture* build_room(const std::size_t& members) {
    auto f = std::make_unique<room_fixture>();
    const std::vector<std::string> names = make_names(name_kind::short_name, members);
    f->transports = std::make_unique<member_transport[]>(members);
    f->members = members;
    const mode saved = transport_mode;
    transport_mode = mode::count; // member_joined notifications: count them, keep nothing
    for (std::size_t i = 0; i < members; ++i) {
        const session_id s = f->r.open_session(f->transports[i], switchboard::protocol::line_event_encoder::instance());
        require(f->r.register_name(s, names[i]) == status::ok, "register_name");
        require(f->r.join(s, room_name) == status::ok, "join");
        if (i == 0) f->publisher = s;
    }
    transport_mode = saved;
    return f.release();
}

struct baseline_fixture {
    std::string from;
    std::vector<std::vector<std::string>> queues; // one per member; [0] is the sender's
};

baseline_fixture* build_baseline(const std::size_t& members) {
    auto f = std::make_unique<baseline_fixture>();
    f->from = make_names(name_kind::short_name, 1)[0];
    f->queues.resize(members);
    for (auto& q : f->queues) q.reserve(queue_depth);
    return f.release();
}

std::string pair_key(const benchmark::State& state) { return "fanout/" + std::to_string(state.range(0)); }

void BM_fanout_baseline(benchmark::State& state) {
    baseline_fixture& f =
        cached<baseline_fixture, std::size_t>(static_cast<std::size_t>(state.range(0)), build_baseline);
    std::int64_t delivered = 0;
    const loop_clock clock;
    for (auto _ : state) {
        std::string line;
        line.reserve(5 + room_name.size() + 1 + f.from.size() + 1 + text64.size() + 1);
        line.append("room ").append(room_name).append(" ").append(f.from).append(" ").append(text64).append("\n");
        for (std::size_t m = 1; m < f.queues.size(); ++m) { // every member but the sender
            std::vector<std::string>& q = f.queues[m];
            if (q.size() == queue_depth) q.clear();
            q.push_back(line);
        }
        delivered += static_cast<std::int64_t>(f.queues.size() - 1);
        benchmark::ClobberMemory();
    }
    const double seconds = clock.seconds();
    state.SetItemsProcessed(delivered);
    record_baseline(pair_key(state), static_cast<double>(delivered), seconds);
}

void run_router(benchmark::State& state, mode m) {
    room_fixture& f = cached<room_fixture, std::size_t>(static_cast<std::size_t>(state.range(0)), build_room);
    transport_mode = m;
    std::int64_t delivered = 0;
    const loop_clock clock;
    for (auto _ : state) {
        const switchboard::route_result r = f.r.publish(f.publisher, room_name, text64);
        delivered += r.delivered;
    }
    const double seconds = clock.seconds();
    for (std::size_t i = 0; i < f.members; ++i) f.transports[i].drain(); // free the payloads
    transport_mode = mode::count;
    if (delivered != state.iterations() * (state.range(0) - 1)) state.SkipWithError("a delivery was lost");
    state.SetItemsProcessed(delivered);
    report_vs_baseline(state, pair_key(state), static_cast<double>(delivered), seconds);
}

void BM_fanout_router(benchmark::State& state) { run_router(state, mode::count); }
void BM_fanout_router_queue(benchmark::State& state) { run_router(state, mode::queue); }

// Registered per room size so that the benchmarks sharing a room run back to back. The largest
// room is 100 k members in optimised builds (~K^2/2 = 5e9 member_joined deliveries to build it,
// tens of seconds) and 10 k in builds with assertions (smoke runs).
[[maybe_unused]] const bool registered = [] {
    for (std::int64_t members : {std::int64_t{10}, std::int64_t{1000}, full_or(100000, 10000)}) {
        benchmark::RegisterBenchmark("BM_fanout_baseline", BM_fanout_baseline)->Arg(members);
        benchmark::RegisterBenchmark("BM_fanout_router", BM_fanout_router)->Arg(members);
        benchmark::RegisterBenchmark("BM_fanout_router_queue", BM_fanout_router_queue)->Arg(members);
    }
    return true;
}();

} // namespace
