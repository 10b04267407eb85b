// Shared helpers of the fuzz targets in tests/fuzz/: FUZZ_CHECK (prints what failed plus the last
// steps, then abort(), so libFuzzer saves the input and the replay runner fails), a trace of the
// recent steps, byte_reader, which hands out the fuzz input a byte or a slice at a time, and the
// reference models of names and text the targets check the library against.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>
#include <string_view>

namespace switchboard_fuzz {

/// @brief The last steps of the current input, printed when a check fails.
///
/// Thread safety: none; the targets run one input at a time on one thread.
class trace {
public:
    /// @brief Forgets everything and frees the memory: call at the start and at the end of each
    /// input (see `scope`). libFuzzer runs a full leak scan after any input that ends with more
    /// allocations than frees, so memory kept across inputs slows fuzzing several times over.
    static void clear() { std::deque<std::string>().swap(steps()); }

    /// @brief Clears the trace on construction and on destruction (one per input).
    struct scope {
        scope() { clear(); }
        ~scope() { clear(); }
        scope(const scope&) = delete;
        scope& operator=(const scope&) = delete;
    };

    /// @brief True when SWITCHBOARD_FUZZ_TRACE=1: every step is also printed as it happens (to
    /// read what a corpus file does: `SWITCHBOARD_FUZZ_TRACE=1 <target>_replay FILE`).
    static bool verbose() {
        static const bool on = [] {
            const char* v = std::getenv("SWITCHBOARD_FUZZ_TRACE");
            return v && v[0] == '1';
        }();
        return on;
    }

    /// @brief Records one step; only the last `kept` are kept.
    static void add(std::string step) {
        if (verbose()) std::fprintf(stderr, "  %s\n", step.c_str());
        auto& s = steps();
        if (s.size() == kept) s.pop_front();
        s.push_back(std::move(step));
    }

    /// @brief Appends `more` (e.g. the outcome) to the last recorded step.
    static void amend(std::string_view more) {
        if (verbose()) std::fprintf(stderr, "    %.*s\n", static_cast<int>(more.size()), more.data());
        auto& s = steps();
        if (!s.empty()) s.back().append(" ").append(more);
    }

    /// @brief Writes the recorded steps to stderr, oldest first.
    static void print() {
        std::fprintf(stderr, "last %zu step(s) of this input, oldest first:\n", steps().size());
        for (const std::string& s : steps()) std::fprintf(stderr, "  %s\n", s.c_str());
    }

private:
    static constexpr std::size_t kept = 40;
    static std::deque<std::string>& steps() {
        static std::deque<std::string> s;
        return s;
    }
};

/// @brief Reports a failed invariant and aborts (libFuzzer turns the abort into a crash report
/// and saves the input; the replay runner exits non-zero).
[[noreturn]] inline void fail(const char* file, int line, const char* condition, const std::string& detail) {
    std::fprintf(stderr, "\n%s:%d: invariant violated: %s\n", file, line, condition);
    if (!detail.empty()) std::fprintf(stderr, "  %s\n", detail.c_str());
    trace::print();
    std::fflush(stderr);
    std::abort();
}

/// @brief Printable form of arbitrary bytes (C escapes for everything outside 0x20..0x7E).
inline std::string escaped(std::string_view bytes) {
    static const char hex[] = "0123456789abcdef";
    std::string out;
    for (char ch : bytes) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else if (c == '\t') out += "\\t";
        else if (c == '\\') out += "\\\\";
        else if (c >= 0x20 && c < 0x7F) out += ch;
        else {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

/// @brief Consumes the fuzz input front to back. Past the end every read yields zeros / empty
/// slices, so any byte string is a valid input.
class byte_reader {
public:
    /// @brief Reads from `size` bytes at `data` (not copied; must outlive the reader).
    byte_reader(const std::uint8_t* data, std::size_t size) noexcept : p_(data), n_(size) {}

    /// @brief True when every byte has been consumed.
    [[nodiscard]] bool empty() const noexcept { return n_ == 0; }
    /// @brief Bytes not yet consumed.
    [[nodiscard]] std::size_t remaining() const noexcept { return n_; }

    /// @brief The next byte, or 0 past the end.
    std::uint8_t byte() noexcept {
        if (n_ == 0) return 0;
        --n_;
        return *p_++;
    }

    /// @brief The next `count` bytes (fewer at the end), as a view into the input.
    std::string_view take(std::size_t count) noexcept {
        if (count > n_) count = n_;
        const std::string_view out(reinterpret_cast<const char*>(p_), count);
        p_ += count;
        n_ -= count;
        return out;
    }

private:
    const std::uint8_t* p_;
    std::size_t n_;
};

/// @brief A user or room name as the protocol defines it: 1..40 bytes of `[A-Za-z0-9_.-]`.
///
/// Independent of names.hpp on purpose (the targets check `name::parse` and `is_valid_name`
/// against it), and written the plain way: no table, no word-at-a-time scan.
inline bool reference_valid_name(std::string_view s) {
    if (s.empty() || s.size() > 40) return false;
    for (char c : s) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        c == '_' || c == '.' || c == '-';
        if (!ok) return false;
    }
    return true;
}

/// @brief `s` with ASCII `A`..`Z` turned into `a`..`z` and every other byte kept: the folding
/// that makes "Alice" and "alice" one name (independent of names.hpp's `fold_ascii`).
inline std::string reference_fold(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

// Well-formed UTF-8 by the table of the Unicode standard (ch. 3, table 3-7); with `text_rules`,
// minus control bytes other than TAB and minus Unicode's line breaks NEL, U+2028 and U+2029.
// Deliberately byte-by-byte: is_valid_text() has an 8-byte fast path, utf8_validator a table.
inline bool reference_utf8_scan(std::string_view text, bool text_rules) {
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t n = text.size();
    std::size_t i = 0;
    auto in = [&](std::size_t k, unsigned lo, unsigned hi) { return k < n && p[k] >= lo && p[k] <= hi; };
    while (i < n) {
        const unsigned c = p[i];
        if (c < 0x80) {
            if (text_rules && ((c < 0x20 && c != '\t') || c == 0x7F)) return false;
            i += 1;
        } else if (c >= 0xC2 && c <= 0xDF) {
            if (!in(i + 1, 0x80, 0xBF)) return false;
            if (text_rules && c == 0xC2 && p[i + 1] == 0x85) return false; // NEL, a Unicode line break
            i += 2;
        } else if (c == 0xE0) {
            if (!in(i + 1, 0xA0, 0xBF) || !in(i + 2, 0x80, 0xBF)) return false;
            i += 3;
        } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
            if (!in(i + 1, 0x80, 0xBF) || !in(i + 2, 0x80, 0xBF)) return false;
            if (text_rules && c == 0xE2 && p[i + 1] == 0x80 && (p[i + 2] == 0xA8 || p[i + 2] == 0xA9))
                return false; // U+2028/9
            i += 3;
        } else if (c == 0xED) {
            if (!in(i + 1, 0x80, 0x9F) || !in(i + 2, 0x80, 0xBF)) return false;
            i += 3;
        } else if (c == 0xF0) {
            if (!in(i + 1, 0x90, 0xBF) || !in(i + 2, 0x80, 0xBF) || !in(i + 3, 0x80, 0xBF)) return false;
            i += 4;
        } else if (c >= 0xF1 && c <= 0xF3) {
            if (!in(i + 1, 0x80, 0xBF) || !in(i + 2, 0x80, 0xBF) || !in(i + 3, 0x80, 0xBF)) return false;
            i += 4;
        } else if (c == 0xF4) {
            if (!in(i + 1, 0x80, 0x8F) || !in(i + 2, 0x80, 0xBF) || !in(i + 3, 0x80, 0xBF)) return false;
            i += 4;
        } else {
            return false;
        }
    }
    return true;
}

/// @brief The bytes rule of the message text contract (text.hpp): UTF-8 without control bytes
/// other than TAB, NEL, U+2028 or U+2029.
inline bool reference_valid_text(std::string_view text) { return reference_utf8_scan(text, true); }

/// @brief Well-formed UTF-8 (RFC 3629), nothing more: what a WebSocket text message must be.
inline bool reference_valid_utf8(std::string_view bytes) { return reference_utf8_scan(bytes, false); }

} // namespace switchboard_fuzz

/// @brief Aborts with file, line and the condition when `cond` is false.
#define FUZZ_CHECK(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) ::switchboard_fuzz::fail(__FILE__, __LINE__, #cond, std::string());           \
    } while (0)

/// @brief As FUZZ_CHECK, with a detail string (any expression yielding std::string), evaluated
/// only on failure.
#define FUZZ_CHECK_MSG(cond, detail)                                                               \
    do {                                                                                           \
        if (!(cond)) ::switchboard_fuzz::fail(__FILE__, __LINE__, #cond, (detail));                \
    } while (0)
