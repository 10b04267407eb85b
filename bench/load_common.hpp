/// @file
/// @brief Pieces shared by the end-to-end load generators bench/loadgen.cpp and
/// bench/jetstream_bench.cpp, so that both measure and report the same way: the clock, the
/// 64-byte payload layout (sequence number and send time, padded with filler text), the latency
/// histogram, and the text and JSON number formats. Not part of the library.
#pragma once

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace sbload {

using i64 = std::int64_t;
using u64 = std::uint64_t;

// ---- time -------------------------------------------------------------------------------------

inline const std::chrono::steady_clock::time_point g_epoch = std::chrono::steady_clock::now();

// steady_clock nanoseconds since the start of the program (keeps the timestamps in the payload short).
inline i64 now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - g_epoch)
        .count();
}

constexpr i64 ns_per_s = 1000000000;
constexpr i64 never = std::numeric_limits<i64>::max();

// ---- payload layout ---------------------------------------------------------------------------
// "SSSSSSSSSS TTTTTTTTTTTTTTTT" + padding: sequence number and send timestamp (ns), zero-padded
// decimal, then filler text up to the payload size. Fixed widths: a sender patches the digits
// of a prebuilt line, a receiver checks the line in place.

constexpr std::size_t seq_digits = 10;
constexpr std::size_t ts_digits = 16;
constexpr std::size_t header_bytes = seq_digits + 1 + ts_digits;

inline void put_digits(char* p, u64 v, std::size_t width) {
    for (std::size_t i = width; i-- > 0;) {
        p[i] = static_cast<char>('0' + v % 10);
        v /= 10;
    }
}

inline bool get_digits_slow(const char* p, std::size_t width, u64& out) {
    u64 v = 0;
    for (std::size_t i = 0; i < width; ++i) {
        const unsigned d = static_cast<unsigned char>(p[i]) - unsigned{'0'};
        if (d > 9) return false;
        v = v * 10 + d;
    }
    out = v;
    return true;
}

// Eight ASCII digits at once (SWAR, little-endian; D. Lemire, "Quickly parsing eight digits").
inline bool get_eight_digits(const char* p, u64& out) {
    u64 v;
    std::memcpy(&v, p, 8);
    if (((v & 0xF0F0F0F0F0F0F0F0u) | (((v + 0x0606060606060606u) & 0xF0F0F0F0F0F0F0F0u) >> 4)) != 0x3333333333333333u)
        return false;
    v -= 0x3030303030303030u;
    v = (v * 10) + (v >> 8);
    v = (((v & 0x000000FF000000FFu) * 0x000F424000000064u) + (((v >> 16) & 0x000000FF000000FFu) * 0x0000271000000001u)) >> 32;
    out = v;
    return true;
}

// Parses exactly `width` ASCII digits; false if any is not a digit.
inline bool get_digits(const char* p, std::size_t width, u64& out) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    u64 v = 0;
    const std::size_t head = width % 8;
    if (head && !get_digits_slow(p, head, v)) return false;
    for (std::size_t i = head; i < width; i += 8) {
        u64 eight;
        if (!get_eight_digits(p + i, eight)) return false;
        v = v * 100000000u + eight;
    }
    out = v;
    return true;
#else
    return get_digits_slow(p, width, out);
#endif
}

// Adds one to a fixed-width ASCII decimal number in place.
inline void increment_digits(char* p, std::size_t width) {
    for (std::size_t i = width; i-- > 0;) {
        if (p[i] != '9') {
            ++p[i];
            return;
        }
        p[i] = '0';
    }
}

inline std::string make_padding(std::size_t n) {
    static constexpr std::string_view pattern = " loadgen-0123456789-abcdefghijklmnopqrstuvwxyz";
    std::string s(n, ' ');
    for (std::size_t i = 0; i < n; ++i) s[i] = pattern[i % pattern.size()];
    return s;
}

// ---- latency histogram ------------------------------------------------------------------------
// Log-linear buckets: exact below 128 ns, then 128 sub-buckets per power of two (< 0.8% error).

class histogram {
public:
    static constexpr int sub_bits = 7;
    static constexpr u64 sub = u64{1} << sub_bits;

    histogram() : counts_((64 - sub_bits + 1) * sub, 0) {}

    void record(u64 v) {
        ++counts_[index(v)];
        ++total_;
        sum_ += v;
        if (v > max_) max_ = v;
    }

    void merge(const histogram& o) {
        for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
        total_ += o.total_;
        sum_ += o.sum_;
        max_ = std::max(max_, o.max_);
    }

    [[nodiscard]] u64 total() const { return total_; }
    [[nodiscard]] u64 max() const { return max_; }
    [[nodiscard]] double mean() const { return total_ ? static_cast<double>(sum_) / static_cast<double>(total_) : 0; }

    // The value at quantile q (0..1): the middle of its bucket, never above the maximum seen.
    [[nodiscard]] double quantile(double q) const {
        if (total_ == 0) return 0;
        u64 target = static_cast<u64>(q * static_cast<double>(total_) + 0.999999);
        if (target < 1) target = 1;
        u64 seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= target) return std::min(static_cast<double>(max_), middle(i));
        }
        return static_cast<double>(max_);
    }

private:
    static std::size_t index(u64 v) {
        if (v < sub) return static_cast<std::size_t>(v);
        const int e = 63 - __builtin_clzll(v);
        return static_cast<std::size_t>(e - sub_bits + 1) * sub + ((v >> (e - sub_bits)) & (sub - 1));
    }
    static double middle(std::size_t i) {
        if (i < sub) return static_cast<double>(i);
        const int e = static_cast<int>(i / sub) + sub_bits - 1;
        const u64 low = i % sub;
        const double width = static_cast<double>(u64{1} << (e - sub_bits));
        return static_cast<double>((sub + low) << (e - sub_bits)) + width / 2;
    }

    std::vector<u64> counts_;
    u64 total_ = 0;
    u64 sum_ = 0;
    u64 max_ = 0;
};

// ---- text and JSON ----------------------------------------------------------------------------

inline std::string with_commas(u64 v) {
    std::string s = std::to_string(v);
    for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<std::size_t>(i), ",");
    return s;
}

inline std::string fixed(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

inline std::string rate_text(double per_s) {
    if (per_s >= 1e6) return fixed(per_s / 1e6, 2) + " M";
    if (per_s >= 1e3) return fixed(per_s / 1e3, 1) + " k";
    return fixed(per_s, 0);
}

inline std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += ch;
        } else if (c < 0x20 || c >= 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += ch;
        }
    }
    return out + "\"";
}

inline std::string json_number(double v, int decimals = 1) {
    if (!(v == v) || v > 1e300) return "null";
    return fixed(v, decimals);
}

// `"latency_us":{...}` values in microseconds: p50, p99, p99.9, max, mean (null when empty).
inline std::string latency_json(const histogram& h) {
    const bool any = h.total() > 0;
    const auto v = [&](double ns) { return any ? json_number(ns / 1e3) : std::string("null"); };
    return "{\"p50\":" + v(h.quantile(0.5)) + ",\"p99\":" + v(h.quantile(0.99)) + ",\"p999\":" + v(h.quantile(0.999)) +
           ",\"max\":" + v(static_cast<double>(h.max())) + ",\"mean\":" + v(h.mean()) + "}";
}

// Errors that do not end a run (an `err` answer, a negative PubAck), counted per kind.
struct error_tally {
    std::vector<std::pair<std::string, u64>> kinds;
    // Counts one of `kind`; true when it is the first of its kind.
    bool add(std::string_view kind) {
        for (auto& k : kinds)
            if (k.first == kind) return ++k.second, false;
        kinds.emplace_back(std::string(kind), 1);
        return true;
    }
    // `,"error_answers":{"kind":count,...}`, or nothing when there were none.
    [[nodiscard]] std::string json() const {
        if (kinds.empty()) return {};
        std::string j = ",\"error_answers\":{";
        for (std::size_t i = 0; i < kinds.size(); ++i)
            j += (i ? "," : "") + json_string(kinds[i].first) + ":" + std::to_string(kinds[i].second);
        return j + "}";
    }
    // One indented line per kind, for the text report.
    [[nodiscard]] std::string text() const {
        std::string t;
        for (const auto& [kind, n] : kinds) t += "              " + with_commas(n) + " x " + kind + "\n";
        return t;
    }
};

// ---- arguments ------------------------------------------------------------------------------------

template <class T>
bool parse_number(std::string_view text, T& out, T min, T max) {
    T value{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value < min || value > max) return false;
    out = value;
    return true;
}

// A comma-separated list of one or more numbers in [min, max] (`--ports P1,P2,...`,
// `--cpu-pids P1,P2,...`).
template <class T>
bool parse_number_list(std::string_view text, std::vector<T>& out, T min, T max) {
    out.clear();
    bool ok = true;
    while (ok && !text.empty()) {
        const std::size_t comma = text.find(',');
        T v{};
        ok = parse_number<T>(text.substr(0, comma), v, min, max);
        out.push_back(v);
        text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    }
    return ok && !out.empty();
}

// `--ports P1,P2,...`: one or more TCP ports, comma-separated.
inline bool parse_ports(std::string_view text, std::vector<unsigned short>& out) {
    return parse_number_list<unsigned short>(text, out, 1, 65535);
}

inline bool parse_seconds(std::string_view text, double& out, double min) {
    try {
        std::size_t used = 0;
        const std::string s(text);
        const double v = std::stod(s, &used);
        if (used != s.size() || !(v >= min) || v > 1e7) return false;
        out = v;
        return true;
    } catch (...) {
        return false;
    }
}

} // namespace sbload
