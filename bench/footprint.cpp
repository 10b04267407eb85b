// Heap memory of the router, measured with a counting global operator new/delete (replaced in
// this program only): bytes requested from operator new that are still live, divided by what was
// added. Allocator overhead (malloc headers and rounding, ~8-16 bytes per allocation with glibc)
// comes on top: hence the allocs_per_* counters next to each bytes_per_* counter.
//
// Per registered user (8-16 byte names), 100 k and 1 M users:
//   BM_memory_users_baseline/<users>  std::unordered_map<std::string, std::uint64_t>, name -> id
//   BM_memory_users_router/<users>    router: open_session + register_name (the session slot,
//                                     the name index); bytes_per_session is the open_session part
// Per room membership, 100 k and 1 M users, each in one room of 100 members:
//   BM_memory_rooms_baseline/<users>  std::unordered_map<std::string,
//                                     std::unordered_set<std::uint64_t>> room -> members, plus each
//                                     session's std::vector<std::string> of room names
//   BM_memory_rooms_router/<users>    router::join
// vs_baseline = router bytes / baseline bytes (below 1: the router uses less).
//
// Heap allocations per operation on the steady-state paths (item 3 of the performance issue:
// "no per-message heap allocation"), 1 k users, rooms of 1 k members, null transports:
//   BM_allocs_find_string, BM_allocs_route, BM_allocs_publish/<members>, BM_allocs_register_churn,
//   BM_allocs_join_leave: counters allocs_per_op, bytes_per_op (bytes allocated, freed or not).
//
// Each memory benchmark runs once (Iterations(1)); its time is the time to build the structure.
// 1 M becomes 200 k when NDEBUG is not defined (smoke runs; see full_sizes in bench_support.hpp).
//
// The file is footprint.cpp, not memory.cpp: meson puts executables in the build directory, which
// is on the include path, and a program named `memory` would shadow <memory>.
#include "bench_support.hpp"

#include <switchboard/router.hpp>
#include <switchboard/protocol/line.hpp>

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

// ---- counting operator new/delete -------------------------------------------------------------
//
// Every replaceable form is replaced, so that allocation and deallocation always pair up (also
// under sanitizers, which otherwise supply the forms left out). Each block carries a header with
// its requested size, placed right before the returned pointer; the header is `align` bytes so
// the returned pointer keeps the alignment asked for.

namespace {

std::atomic<std::int64_t> live_bytes{0};   // requested bytes not yet freed
std::atomic<std::int64_t> live_blocks{0};  // blocks not yet freed
std::atomic<std::int64_t> total_bytes{0};  // requested bytes ever allocated
std::atomic<std::int64_t> total_blocks{0}; // blocks ever allocated

constexpr std::size_t default_align = __STDCPP_DEFAULT_NEW_ALIGNMENT__;

void* counted_alloc(std::size_t size, std::size_t align) noexcept {
    if (align < default_align) align = default_align;
    if (align < sizeof(std::size_t)) align = sizeof(std::size_t);
    if (size > static_cast<std::size_t>(-1) / 2 - 2 * align) return nullptr;
    const std::size_t block = (align + size + align - 1) / align * align;
    void* base = align == default_align ? std::malloc(block) : std::aligned_alloc(align, block);
    if (!base) return nullptr;
    char* user = static_cast<char*>(base) + align;
    reinterpret_cast<std::size_t*>(user)[-1] = size;
    live_bytes.fetch_add(static_cast<std::int64_t>(size), std::memory_order_relaxed);
    live_blocks.fetch_add(1, std::memory_order_relaxed);
    total_bytes.fetch_add(static_cast<std::int64_t>(size), std::memory_order_relaxed);
    total_blocks.fetch_add(1, std::memory_order_relaxed);
    return user;
}

void counted_free(void* p, std::size_t align) noexcept {
    if (!p) return;
    if (align < default_align) align = default_align;
    if (align < sizeof(std::size_t)) align = sizeof(std::size_t);
    char* user = static_cast<char*>(p);
    const std::size_t size = reinterpret_cast<std::size_t*>(user)[-1];
    live_bytes.fetch_sub(static_cast<std::int64_t>(size), std::memory_order_relaxed);
    live_blocks.fetch_sub(1, std::memory_order_relaxed);
    std::free(user - align);
}

void* counted_new(std::size_t size, std::size_t align) {
    for (;;) {
        if (void* p = counted_alloc(size, align)) return p;
        std::new_handler handler = std::get_new_handler();
        if (!handler) throw std::bad_alloc();
        handler();
    }
}

void* counted_new_nothrow(std::size_t size, std::size_t align) noexcept {
    try {
        return counted_new(size, align);
    } catch (...) {
        return nullptr;
    }
}

} // namespace

void* operator new(std::size_t n) { return counted_new(n, default_align); }
void* operator new[](std::size_t n) { return counted_new(n, default_align); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_new_nothrow(n, default_align); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_new_nothrow(n, default_align); }
void* operator new(std::size_t n, std::align_val_t a) { return counted_new(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted_new(n, static_cast<std::size_t>(a)); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
    return counted_new_nothrow(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
    return counted_new_nothrow(n, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept { counted_free(p, default_align); }
void operator delete[](void* p) noexcept { counted_free(p, default_align); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p, default_align); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p, default_align); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_free(p, default_align); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_free(p, default_align); }
void operator delete(void* p, std::align_val_t a) noexcept { counted_free(p, static_cast<std::size_t>(a)); }
void operator delete[](void* p, std::align_val_t a) noexcept { counted_free(p, static_cast<std::size_t>(a)); }
void operator delete(void* p, std::size_t, std::align_val_t a) noexcept {
    counted_free(p, static_cast<std::size_t>(a));
}
void operator delete[](void* p, std::size_t, std::align_val_t a) noexcept {
    counted_free(p, static_cast<std::size_t>(a));
}
void operator delete(void* p, std::align_val_t a, const std::nothrow_t&) noexcept {
    counted_free(p, static_cast<std::size_t>(a));
}
void operator delete[](void* p, std::align_val_t a, const std::nothrow_t&) noexcept {
    counted_free(p, static_cast<std::size_t>(a));
}

namespace {

using namespace switchboard_bench;
using switchboard::name;
using switchboard::router;
using switchboard::session_id;
using switchboard::status;

constexpr std::size_t room_members = 100;

// Live heap bytes and blocks added since construction.
class heap_delta {
public:
    heap_delta() noexcept : bytes_(live_bytes.load()), blocks_(live_blocks.load()) {}
    [[nodiscard]] double bytes() const noexcept { return static_cast<double>(live_bytes.load() - bytes_); }
    [[nodiscard]] double blocks() const noexcept { return static_cast<double>(live_blocks.load() - blocks_); }

private:
    std::int64_t bytes_, blocks_;
};

// Bytes and blocks allocated (freed or not) since construction.
class alloc_delta {
public:
    alloc_delta() noexcept : bytes_(total_bytes.load()), blocks_(total_blocks.load()) {}
    [[nodiscard]] double bytes() const noexcept { return static_cast<double>(total_bytes.load() - bytes_); }
    [[nodiscard]] double blocks() const noexcept { return static_cast<double>(total_blocks.load() - blocks_); }

private:
    std::int64_t bytes_, blocks_;
};

double& baseline_bytes(const std::string& key) {
    static std::unordered_map<std::string, double> values;
    return values[key];
}

// Callers read the deltas first: writing a counter allocates (a map node).
void report_bytes(benchmark::State& state, const std::string& what, double bytes, double blocks,
                  double count, const std::string& key, bool is_baseline) {
    const double per = bytes / count;
    state.counters["bytes_per_" + what] = benchmark::Counter(per);
    state.counters["allocs_per_" + what] = benchmark::Counter(blocks / count);
    if (is_baseline) {
        baseline_bytes(key) = per;
    } else if (const double b = baseline_bytes(key); b > 0) {
        state.counters["vs_baseline"] = benchmark::Counter(per / b);
    }
}

// ---- per user ---------------------------------------------------------------------------------

void BM_memory_users_baseline(benchmark::State& state) {
    const auto users = static_cast<std::size_t>(state.range(0));
    const std::vector<std::string> names = make_names(name_kind::short_name, users);
    for (auto _ : state) {
        const heap_delta delta;
        std::unordered_map<std::string, std::uint64_t> map;
        for (std::size_t i = 0; i < users; ++i) map.emplace(names[i], i + 1);
        benchmark::DoNotOptimize(&map);
        const double bytes = delta.bytes(), blocks = delta.blocks();
        report_bytes(state, "user", bytes, blocks, static_cast<double>(users), "users/" + std::to_string(users),
                     true);
    }
}

void BM_memory_users_router(benchmark::State& state) {
    const auto users = static_cast<std::size_t>(state.range(0));
    const std::vector<std::string> names = make_names(name_kind::short_name, users);
    const auto transports = std::make_unique<null_transport[]>(users);
    std::vector<session_id> ids(users);
    for (auto _ : state) {
        const heap_delta delta;
        router r;
        for (std::size_t i = 0; i < users; ++i) ids[i] = r.open_session(transports[i], switchboard::protocol::line_event_encoder::instance());
        const double session_bytes = delta.bytes();
        for (std::size_t i = 0; i < users; ++i)
            require(r.register_name(ids[i], names[i]) == status::ok, "register_name");
        benchmark::DoNotOptimize(&r);
        const double bytes = delta.bytes(), blocks = delta.blocks();
        state.counters["bytes_per_session"] = benchmark::Counter(session_bytes / static_cast<double>(users));
        report_bytes(state, "user", bytes, blocks, static_cast<double>(users), "users/" + std::to_string(users),
                     false);
    }
}

// ---- per membership ---------------------------------------------------------------------------

// Room of user i: rooms of room_members consecutive users.
std::string room_of(std::size_t i) { return "room" + std::to_string(i / room_members); }

void BM_memory_rooms_baseline(benchmark::State& state) {
    const auto users = static_cast<std::size_t>(state.range(0));
    std::vector<std::string> room_names(users);
    for (std::size_t i = 0; i < users; ++i) room_names[i] = room_of(i);
    for (auto _ : state) {
        std::vector<std::vector<std::string>> session_rooms(users); // exists before the joins
        const heap_delta delta;
        std::unordered_map<std::string, std::unordered_set<std::uint64_t>> rooms;
        for (std::size_t i = 0; i < users; ++i) {
            rooms[room_names[i]].insert(i);
            session_rooms[i].push_back(room_names[i]);
        }
        benchmark::DoNotOptimize(&rooms);
        const double bytes = delta.bytes(), blocks = delta.blocks();
        report_bytes(state, "membership", bytes, blocks, static_cast<double>(users), "rooms/" + std::to_string(users),
                     true);
    }
}

void BM_memory_rooms_router(benchmark::State& state) {
    const auto users = static_cast<std::size_t>(state.range(0));
    const std::vector<std::string> names = make_names(name_kind::short_name, users);
    std::vector<std::string> room_names(users);
    for (std::size_t i = 0; i < users; ++i) room_names[i] = room_of(i);
    const auto transports = std::make_unique<null_transport[]>(users);
    std::vector<session_id> ids(users);
    for (auto _ : state) {
        router r;
        for (std::size_t i = 0; i < users; ++i) {
            ids[i] = r.open_session(transports[i], switchboard::protocol::line_event_encoder::instance());
            require(r.register_name(ids[i], names[i]) == status::ok, "register_name");
        }
        const heap_delta delta;
        for (std::size_t i = 0; i < users; ++i) require(r.join(ids[i], room_names[i]) == status::ok, "join");
        benchmark::DoNotOptimize(&r);
        const double bytes = delta.bytes(), blocks = delta.blocks();
        report_bytes(state, "membership", bytes, blocks, static_cast<double>(users), "rooms/" + std::to_string(users),
                     false);
    }
}

// ---- allocations per operation ----------------------------------------------------------------

constexpr std::size_t ops = 1000;

struct small_world {
    std::vector<std::string> names;
    std::unique_ptr<null_transport[]> transports;
    router r;
    std::vector<session_id> ids;
    null_transport churner;

    explicit small_world(std::size_t users, bool in_room) {
        names = make_names(name_kind::short_name, users + ops);
        transports = std::make_unique<null_transport[]>(users);
        for (std::size_t i = 0; i < users; ++i) {
            ids.push_back(r.open_session(transports[i], switchboard::protocol::line_event_encoder::instance()));
            require(r.register_name(ids.back(), names[i]) == status::ok, "register_name");
            if (in_room) require(r.join(ids.back(), std::string_view("lobby")) == status::ok, "join");
        }
    }
};

void report_allocs(benchmark::State& state, const alloc_delta& delta, double count) {
    const double blocks = delta.blocks(), bytes = delta.bytes(); // before a counter allocates
    state.counters["allocs_per_op"] = benchmark::Counter(blocks / count);
    state.counters["bytes_per_op"] = benchmark::Counter(bytes / count);
}

void BM_allocs_find_string(benchmark::State& state) {
    small_world w(1000, false);
    for (auto _ : state) {
        const alloc_delta delta;
        for (std::size_t i = 0; i < ops; ++i) benchmark::DoNotOptimize(w.r.find(std::string_view(w.names[i])));
        report_allocs(state, delta, ops);
    }
}

void BM_allocs_route(benchmark::State& state) {
    small_world w(1000, false);
    for (auto _ : state) {
        const alloc_delta delta;
        for (std::size_t i = 0; i < ops; ++i)
            benchmark::DoNotOptimize(w.r.route(w.ids[0], std::string_view(w.names[i]), text64));
        report_allocs(state, delta, ops);
    }
}

void BM_allocs_publish(benchmark::State& state) {
    small_world w(static_cast<std::size_t>(state.range(0)), true);
    for (auto _ : state) {
        const alloc_delta delta;
        for (std::size_t i = 0; i < ops; ++i)
            benchmark::DoNotOptimize(w.r.publish(w.ids[0], std::string_view("lobby"), text64));
        report_allocs(state, delta, ops);
    }
}

void BM_allocs_register_churn(benchmark::State& state) {
    small_world w(1000, false);
    for (auto _ : state) {
        const alloc_delta delta;
        for (std::size_t i = 0; i < ops; ++i) {
            const session_id s = w.r.open_session(w.churner, switchboard::protocol::line_event_encoder::instance());
            require(w.r.register_name(s, w.names[1000 + i]) == status::ok, "register_name");
            (void)w.r.close_session(s);
        }
        report_allocs(state, delta, ops);
    }
}

void BM_allocs_join_leave(benchmark::State& state) {
    small_world w(static_cast<std::size_t>(state.range(0)), true);
    const session_id s = w.r.open_session(w.churner, switchboard::protocol::line_event_encoder::instance());
    require(w.r.register_name(s, w.names.back()) == status::ok, "register_name");
    for (auto _ : state) {
        const alloc_delta delta;
        for (std::size_t i = 0; i < ops; ++i) {
            require(w.r.join(s, std::string_view("lobby")) == status::ok, "join");
            require(w.r.leave(s, std::string_view("lobby")) == status::ok, "leave");
        }
        report_allocs(state, delta, ops);
    }
}

[[maybe_unused]] const bool registered = [] {
    for (std::int64_t users : {std::int64_t{100000}, full_or(1000000, 200000)}) {
        benchmark::RegisterBenchmark("BM_memory_users_baseline", BM_memory_users_baseline)
            ->Arg(users)->Iterations(1)->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark("BM_memory_users_router", BM_memory_users_router)
            ->Arg(users)->Iterations(1)->Unit(benchmark::kMillisecond);
    }
    for (std::int64_t users : {std::int64_t{100000}, full_or(1000000, 200000)}) {
        benchmark::RegisterBenchmark("BM_memory_rooms_baseline", BM_memory_rooms_baseline)
            ->Arg(users)->Iterations(1)->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark("BM_memory_rooms_router", BM_memory_rooms_router)
            ->Arg(users)->Iterations(1)->Unit(benchmark::kMillisecond);
    }
    benchmark::RegisterBenchmark("BM_allocs_find_string", BM_allocs_find_string)->Iterations(1);
    benchmark::RegisterBenchmark("BM_allocs_route", BM_allocs_route)->Iterations(1);
    benchmark::RegisterBenchmark("BM_allocs_publish", BM_allocs_publish)->Arg(1000)->Iterations(1);
    benchmark::RegisterBenchmark("BM_allocs_register_churn", BM_allocs_register_churn)->Iterations(1);
    benchmark::RegisterBenchmark("BM_allocs_join_leave", BM_allocs_join_leave)->Arg(0)->Arg(1000)->Iterations(1);
    return true;
}();

} // namespace
