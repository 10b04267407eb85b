/// @file
/// @brief Shared pieces of the Google Benchmark programs in bench/: a null transport, reproducible
/// user names (8-16 byte names and UUID strings), shuffled query lists, a one-slot fixture cache,
/// and the "x_baseline" ratio counter. Not part of the library; included by bench/*.cpp only.
///
/// Conventions of every program:
/// - Names pair up: `BM_<what>_baseline/<args>` is measured first, then `BM_<what>_router.../<args>`
///   in the same binary; the router benchmark reports `x_baseline` = its items/s divided by the
///   baseline's items/s (both timed like items_per_second: CPU time of the loop, or wall time for
///   UseRealTime benchmarks; > 1 means faster than the baseline). Ratios are also derivable from
///   `--benchmark_format=json` (`items_per_second`).
/// - Big structures are built once per argument set, outside the timed loop, and shared by the
///   benchmarks of that set (they are registered next to each other so that each is built once).
/// - Everything is seeded: two runs measure the same names in the same order.
#pragma once

#include <switchboard/names.hpp>
#include <switchboard/payload.hpp>
#include <switchboard/transport.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <initializer_list>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include <time.h> // clock_gettime, CLOCK_THREAD_CPUTIME_ID (POSIX)

namespace switchboard_bench {

/// @brief Stops the program with a message when a fixture could not be built (a benchmark that
/// measured a broken setup would be worse than none).
inline void require(bool ok, const char* what) {
    if (ok) return;
    std::fprintf(stderr, "bench setup failed: %s\n", what);
    std::abort();
}

/// @brief True in optimised builds (`NDEBUG`), where the benchmarks use their full sizes. Builds
/// with assertions (Debug, sanitisers: the CTest smoke run of each benchmark) scale the largest
/// sizes down with `full_or`, so the smoke run stays within its time limit; their timings are not
/// measurements anyway.
#ifdef NDEBUG
inline constexpr bool full_sizes = true;
#else
inline constexpr bool full_sizes = false;
#endif

/// @brief `full` in optimised builds, else `reduced` (see `full_sizes`).
inline constexpr std::int64_t full_or(std::int64_t full, std::int64_t reduced) {
    return full_sizes ? full : reduced;
}

/// @brief `sizes` in optimised builds; in builds with assertions only those up to `reduced_max`
/// (see `full_sizes`).
inline std::vector<std::int64_t> sizes_up_to(std::initializer_list<std::int64_t> sizes,
                                             std::int64_t reduced_max) {
    std::vector<std::int64_t> out;
    for (std::int64_t n : sizes)
        if (full_sizes || n <= reduced_max) out.push_back(n);
    return out;
}

/// @brief Fixed seed of every generator, so runs are comparable.
inline constexpr std::uint64_t seed = 0x5b0a2d5eedULL;

/// @brief 64 bytes of printable ASCII: the message body of every routed and published message.
inline constexpr std::string_view text64 =
    "The quick brown fox jumps over the lazy dog; pack my box with 5 ";
static_assert(text64.size() == 64, "the benchmark payload is 64 bytes");

/// @brief A transport that counts what it is given and keeps nothing: the router's own cost,
/// without any queueing. Touches its own object (like a real transport appending to its queue)
/// and the payload header (its size).
class null_transport final : public switchboard::transport {
public:
    switchboard::delivery deliver(const switchboard::payload& bytes) noexcept override {
        ++delivered;
        this->bytes += bytes.size();
        return switchboard::delivery::queued;
    }
    void close(switchboard::close_mode) noexcept override { ++closes; }

    std::uint64_t delivered = 0; ///< Payloads received.
    std::uint64_t bytes = 0;     ///< Bytes received.
    std::uint64_t closes = 0;    ///< close() calls.
};

/// @brief The baseline's counterpart of a transport: takes a std::string line by reference.
class null_sink {
public:
    null_sink() = default;
    null_sink(const null_sink&) = delete;
    null_sink& operator=(const null_sink&) = delete;
    virtual ~null_sink() = default;
    /// @brief Counts the line (virtual, as a transport's deliver()).
    virtual void deliver(const std::string& line) noexcept {
        ++delivered;
        bytes += line.size();
    }
    std::uint64_t delivered = 0; ///< Lines received.
    std::uint64_t bytes = 0;     ///< Bytes received.
};

/// @brief Which user names a benchmark registers.
enum class name_kind {
    short_name, ///< 8 to 16 bytes of [a-z0-9_], uniformly random length.
    uuid,       ///< A random (version 4) UUID: 36-byte dashed form when names may be that long,
                ///< else the 32-hex-digit form (for a build whose max_name_length is below 36).
};

/// @brief True when a 36-byte dashed UUID is a valid switchboard name.
inline constexpr bool dashed_uuid_fits = switchboard::max_name_length >= 36;

/// @brief Short label of a kind for benchmark names (`short`, `uuid`).
inline const char* to_label(name_kind k) { return k == name_kind::short_name ? "short" : "uuid"; }

/// @brief A label saying which bytes a kind produced, for `state.SetLabel`.
inline const char* describe(name_kind k) {
    if (k == name_kind::short_name) return "names 8-16 B";
    return dashed_uuid_fits ? "UUID 36 B dashed"
                            : "UUID as 32 hex B (36 B dashed form exceeds max_name_length)";
}

/// @brief `count` distinct, already folded (lowercase) names of one kind; same seed, same names.
/// @param salt varies the sequence (e.g. a pool of fresh names disjoint from registered ones is
///        simply the tail of one larger call).
inline std::vector<std::string> make_names(name_kind kind, std::size_t count, std::uint64_t salt = 0) {
    std::mt19937_64 rng(seed ^ (salt * 0x9E3779B97F4A7C15ULL) ^ static_cast<std::uint64_t>(kind));
    static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789_";
    static constexpr char hex[] = "0123456789abcdef";
    std::vector<std::string> out;
    out.reserve(count);
    std::unordered_set<std::string> seen;
    seen.reserve(count);
    while (out.size() < count) {
        std::string s;
        if (kind == name_kind::short_name) {
            const std::size_t len = 8 + static_cast<std::size_t>(rng() % 9);
            s.resize(len);
            for (char& c : s) c = alphabet[rng() % (sizeof alphabet - 1)];
        } else {
            const std::uint64_t hi = rng(), lo = rng();
            char digits[32];
            for (int i = 0; i < 16; ++i) {
                digits[i] = hex[(hi >> (60 - 4 * i)) & 15];
                digits[16 + i] = hex[(lo >> (60 - 4 * i)) & 15];
            }
            digits[12] = '4';                                  // version 4
            digits[16] = hex[8 + ((lo >> 62) & 3)];            // variant 10xx
            if (dashed_uuid_fits) {
                s.reserve(36);
                for (int i = 0; i < 32; ++i) {
                    if (i == 8 || i == 12 || i == 16 || i == 20) s.push_back('-');
                    s.push_back(digits[i]);
                }
            } else {
                s.assign(digits, 32);
            }
        }
        if (seen.insert(s).second) out.push_back(std::move(s));
    }
    return out;
}

/// @brief Indices of `n` items in random order, repeated and reshuffled up to at least `min_size`
/// entries, so that small sets are not walked in one short repeating pattern.
inline std::vector<std::uint32_t> shuffled_indices(std::size_t n, std::size_t min_size = 1u << 16,
                                                   std::uint64_t salt = 1) {
    std::vector<std::uint32_t> out;
    const std::size_t total = std::max(n, min_size);
    out.reserve(total);
    for (std::size_t i = 0; i < total; ++i) out.push_back(static_cast<std::uint32_t>(i % n));
    std::mt19937_64 rng(seed + salt);
    std::shuffle(out.begin(), out.end(), rng);
    return out;
}

/// @brief Holds the one fixture of type T for the current key, rebuilding it when the key changes.
/// Benchmarks sharing a fixture are registered next to each other, so each is built once, and at
/// most one instance (per type) is alive: 1 M-user fixtures are not all kept at once.
template <class T, class Key>
T& cached(const Key& key, T* (*build)(const Key&)) {
    static std::unique_ptr<T> instance;
    static Key current{};
    if (!instance || !(current == key)) {
        instance.reset(); // free the previous one first: peak memory of one fixture
        instance.reset(build(key));
        current = key;
    }
    return *instance;
}

/// @brief Clock of one timed loop, for the ratio counter; start it right before the loop. Measures
/// what Google Benchmark's items_per_second is based on: the calling thread's CPU time by default,
/// the wall clock for benchmarks registered with UseRealTime().
class loop_clock {
public:
    enum class kind { thread_cpu, wall };

    explicit loop_clock(kind k = kind::thread_cpu) noexcept : kind_(k), start_(now(k)) {}
    /// @brief Seconds since construction.
    [[nodiscard]] double seconds() const noexcept { return now(kind_) - start_; }

private:
    static double now(kind k) noexcept {
        if (k == kind::wall)
            return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
#if defined(CLOCK_THREAD_CPUTIME_ID)
        timespec ts{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
#else
        return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; // process CPU time
#endif
    }

    kind kind_;
    double start_;
};

/// @brief Items per second of the last run of each baseline, by pairing key.
inline std::map<std::string, double>& baseline_rates() {
    static std::map<std::string, double> rates;
    return rates;
}

/// @brief Records the rate of a baseline run (the last run, the measured one, wins).
inline void record_baseline(const std::string& key, double items, double seconds) {
    if (seconds > 0) baseline_rates()[key] = items / seconds;
}

/// @brief Sets counter `x_baseline` = this run's items/s / the baseline's items/s, when the
/// baseline of `key` ran earlier in this process (it does unless filtered out).
inline void report_vs_baseline(benchmark::State& state, const std::string& key, double items,
                               double seconds) {
    const auto it = baseline_rates().find(key);
    if (it == baseline_rates().end() || it->second <= 0 || seconds <= 0) return;
    state.counters["x_baseline"] = benchmark::Counter(items / seconds / it->second);
}

} // namespace switchboard_bench
