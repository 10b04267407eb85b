/// @file
/// @brief The message text contract: what text `router::route()` and `router::publish()` accept,
/// for every wire format.
///
/// A message text is non-empty, valid UTF-8 (RFC 3629) and holds no C0 control byte but TAB
/// (0x00-0x08, 0x0A-0x1F), no DEL (0x7F) and none of Unicode's line breaks NEL (U+0085), LINE
/// SEPARATOR (U+2028) and PARAGRAPH SEPARATOR (U+2029). Other C1 controls (U+0080-U+009F) and
/// format characters such as U+202E are valid UTF-8 and pass: they cannot break any framing,
/// and a client that renders text filters what it does not want shown. The router puts no bound on a text's length:
/// a host bounds what it forwards (the line protocol bounds its input lines by `max_line`).
/// Every built-in wire format carries every such text as exactly one event (the line protocol
/// as one line; formats with escaping escape it), so a text a host forwards can never forge a
/// second event for any recipient, and every member of a room sees the same message whatever
/// its format. The router checks the contract once per call (`status::invalid_text`, nothing
/// delivered); encoders check their own framing again (docs/security.md, "The API path").
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <emmintrin.h>
#define SWITCHBOARD_TEXT_SSE2 1
#endif

namespace switchboard {

/// @brief True when `text` may be relayed to other users: the bytes rule of the message text
/// contract (see the file comment).
///
/// Valid UTF-8 (RFC 3629 section 4: no overlong forms, no surrogates, nothing above U+10FFFF)
/// with no control byte except TAB: 0x00-0x08, 0x0A-0x1F and 0x7F are refused, so no LF, bare CR
/// or escape sequence reaches another user; nor do NEL (U+0085), U+2028 or U+2029, which
/// Unicode-aware clients treat as line breaks. Empty text passes this check; `is_message_text()`
/// adds the non-empty rule.
/// @note Thread-safe (pure function). Runs in one pass; ASCII is checked 8 bytes at a time.
[[nodiscard]] inline bool is_valid_text(std::string_view text) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const auto* const end = p + text.size();
    while (p < end) {
        // Fast path: printable ASCII (0x20..0x7E) 16, then 8 bytes at a time, one branch per
        // block. A lane is flagged when it is non-ASCII, below 0x20 (the "has a byte below n"
        // test of the bit-twiddling hacks: exact for ASCII words) or DEL (0x7F xor 0x7F == 0,
        // "has a zero byte"); a flagged block goes to the byte loop below, which also accepts TAB.
        constexpr std::uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
        const auto flagged = [](std::uint64_t w) noexcept {
            const std::uint64_t del = w ^ (0x7F * ones);
            return (w | ((w - 0x20 * ones) & ~w) | ((del - ones) & ~del)) & high;
        };
#if defined(SWITCHBOARD_TEXT_SSE2)
        // 16 bytes per step with SSE2 (every x86-64 CPU): signed compares flag bytes below 0x20
        // and, being negative, every non-ASCII byte; DEL is compared for equality.
        while (end - p >= 16) {
            const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
            const __m128i bad = _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                                             _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7F)));
            if (_mm_movemask_epi8(bad) != 0) break;
            p += 16;
        }
#else
        while (end - p >= 16) {
            std::uint64_t a, b;
            std::memcpy(&a, p, 8);
            std::memcpy(&b, p + 8, 8);
            if ((flagged(a) | flagged(b)) != 0) break;
            p += 16;
        }
#endif
        if (end - p >= 8) {
            std::uint64_t w;
            std::memcpy(&w, p, 8);
            if (flagged(w) == 0) p += 8;
        }
        if (p >= end) break;
        const unsigned char c = *p;
        if (c < 0x80) {
            if ((c < 0x20 && c != '\t') || c == 0x7F) return false;
            ++p;
            continue;
        }
        std::size_t len;
        std::uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1Fu;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0Fu;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07u;
        } else {
            return false; // continuation byte, C0/C1 overlong lead, or > U+10FFFF lead
        }
        if (static_cast<std::size_t>(end - p) < len) return false;
        for (std::size_t i = 1; i < len; ++i) {
            if ((p[i] & 0xC0u) != 0x80u) return false;
            cp = (cp << 6) | (p[i] & 0x3Fu);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        // Unicode's own line breaks (NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR): a client that
        // splits lines the Unicode way would see a second line (UAX #14; Python's splitlines()).
        if (cp == 0x85 || cp == 0x2028 || cp == 0x2029) return false;
        p += len;
    }
    return true;
}

/// @brief True when `text` is a valid message text: non-empty and `is_valid_text()`.
/// @note Thread-safe (pure function).
[[nodiscard]] inline bool is_message_text(std::string_view text) noexcept {
    return !text.empty() && is_valid_text(text);
}

} // namespace switchboard
