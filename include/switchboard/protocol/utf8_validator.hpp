/// @file
/// @brief `utf8_validator`: an incremental UTF-8 checker (RFC 3629) that can be fed a text in
/// pieces and says after each piece whether the bytes so far can still be valid UTF-8.
///
/// The WebSocket frame codec (websocket_frame.hpp) uses it to fail a text message with 1007 as
/// soon as its bytes stop being UTF-8, possibly in the first of several fragments and with a code
/// point split between two of them (RFC 6455 sections 5.6 and 8.1). Unlike `is_valid_text()`
/// (text.hpp) it checks encoding only: control bytes and line breaks are valid UTF-8.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace switchboard::protocol {

namespace detail {

// The validator is a deterministic automaton over byte classes (the well-formed byte sequences
// of the Unicode standard, chapter 3, table 3-7). A class groups the bytes that every state
// treats alike; a state says what the rest of the current sequence may be.
enum utf8_class : std::uint8_t {
    utf8_ascii,      // 00..7F
    utf8_cont_low,   // 80..8F continuation
    utf8_cont_mid,   // 90..9F continuation
    utf8_cont_high,  // A0..BF continuation
    utf8_invalid,    // C0, C1 (overlong leads), F5..FF (beyond U+10FFFF)
    utf8_lead2,      // C2..DF
    utf8_lead_e0,    // E0: the next byte is A0..BF (no overlong 3-byte form)
    utf8_lead3,      // E1..EC, EE, EF
    utf8_lead_ed,    // ED: the next byte is 80..9F (no surrogate U+D800..U+DFFF)
    utf8_lead_f0,    // F0: the next byte is 90..BF (no overlong 4-byte form)
    utf8_lead4,      // F1..F3
    utf8_lead_f4,    // F4: the next byte is 80..8F (nothing above U+10FFFF)
    utf8_class_count
};

enum utf8_state : std::uint8_t {
    utf8_accept,     // between code points
    utf8_need1,      // one continuation byte to go
    utf8_need2,      // two to go
    utf8_need2_e0,   // two to go, the first A0..BF
    utf8_need2_ed,   // two to go, the first 80..9F
    utf8_need3,      // three to go
    utf8_need3_f0,   // three to go, the first 90..BF
    utf8_need3_f4,   // three to go, the first 80..8F
    utf8_reject,     // not UTF-8; absorbing
    utf8_state_count
};

constexpr std::array<std::uint8_t, 256> make_utf8_classes() noexcept {
    std::array<std::uint8_t, 256> c{};
    for (unsigned b = 0; b < 256; ++b) {
        utf8_class k = utf8_invalid;
        if (b <= 0x7F) k = utf8_ascii;
        else if (b <= 0x8F) k = utf8_cont_low;
        else if (b <= 0x9F) k = utf8_cont_mid;
        else if (b <= 0xBF) k = utf8_cont_high;
        else if (b >= 0xC2 && b <= 0xDF) k = utf8_lead2;
        else if (b == 0xE0) k = utf8_lead_e0;
        else if (b == 0xED) k = utf8_lead_ed;
        else if (b >= 0xE1 && b <= 0xEF) k = utf8_lead3;
        else if (b == 0xF0) k = utf8_lead_f0;
        else if (b >= 0xF1 && b <= 0xF3) k = utf8_lead4;
        else if (b == 0xF4) k = utf8_lead_f4;
        c[b] = k;
    }
    return c;
}

// Where a sequence goes from `accept`, by the class of its first byte.
inline constexpr std::uint8_t utf8_start[utf8_class_count] = {
    utf8_accept,   utf8_reject, utf8_reject,   utf8_reject,   utf8_reject, utf8_need1,
    utf8_need2_e0, utf8_need2,  utf8_need2_ed, utf8_need3_f0, utf8_need3,  utf8_need3_f4,
};

// For each state inside a sequence (need1 .. need3_f4, in order): the classes of continuation
// byte it takes (a range: the three continuation classes are adjacent) and the state after it.
struct utf8_step {
    std::uint8_t lowest, highest, next;
};
inline constexpr utf8_step utf8_steps[] = {
    {utf8_cont_low, utf8_cont_high, utf8_accept}, // need1
    {utf8_cont_low, utf8_cont_high, utf8_need1},  // need2
    {utf8_cont_high, utf8_cont_high, utf8_need1}, // need2_e0: A0..BF
    {utf8_cont_low, utf8_cont_mid, utf8_need1},   // need2_ed: 80..9F
    {utf8_cont_low, utf8_cont_high, utf8_need2},  // need3
    {utf8_cont_mid, utf8_cont_high, utf8_need2},  // need3_f0: 90..BF
    {utf8_cont_low, utf8_cont_low, utf8_need2},   // need3_f4: 80..8F
};

// next[state][class]; anything not listed above rejects (and reject is absorbing).
constexpr std::array<std::array<std::uint8_t, utf8_class_count>, utf8_state_count> make_utf8_transitions() noexcept {
    std::array<std::array<std::uint8_t, utf8_class_count>, utf8_state_count> t{};
    for (std::size_t s = 0; s < utf8_state_count; ++s)
        for (std::size_t k = 0; k < utf8_class_count; ++k) {
            std::uint8_t next = utf8_reject;
            if (s == utf8_accept) {
                next = utf8_start[k];
            } else if (s != utf8_reject) {
                const utf8_step& step = utf8_steps[s - utf8_need1];
                if (k >= step.lowest && k <= step.highest) next = step.next;
            }
            t[s][k] = next;
        }
    return t;
}

inline constexpr std::array<std::uint8_t, 256> utf8_classes = make_utf8_classes();
inline constexpr std::array<std::array<std::uint8_t, utf8_class_count>, utf8_state_count> utf8_next =
    make_utf8_transitions();

} // namespace detail

/// @brief Checks that a byte stream is UTF-8 (RFC 3629 section 4: no overlong forms, no
/// surrogates U+D800..U+DFFF, nothing above U+10FFFF), fed in pieces of any size.
///
/// After each `feed()` the validator knows whether the bytes so far are a *valid prefix* (some
/// continuation could make them valid UTF-8): a bad byte is reported by the `feed()` that
/// contains it, not at the end of the text. A code point may be split between pieces at any
/// byte. At the end, `complete()` tells whether the text also ends on a code point boundary (no
/// truncated sequence). Once a bad byte has been seen the validator stays failed until `reset()`.
///
/// Cost: a table-driven automaton (one class lookup and one transition per byte), with a fast
/// path that skips ASCII 16 bytes at a time between code points. No allocation.
///
/// Thread safety: none; one validator per text being checked, used by one thread at a time.
/// Distinct validators are independent.
class utf8_validator {
public:
    /// @brief A validator at the start of a text (empty text: valid and complete).
    utf8_validator() noexcept = default;

    /// @brief Checks the next piece of the text.
    /// @param bytes the next bytes, any size (0 is allowed and changes nothing).
    /// @return true while the text so far is a valid prefix (same as `valid_prefix()`), false
    ///         from the piece holding the first bad byte on.
    bool feed(std::string_view bytes) noexcept {
        const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
        const auto* const end = p + bytes.size();
        std::uint8_t s = state_;
        while (p < end) {
            if (s == detail::utf8_accept) p = skip_ascii(p, end);
            if (p == end) break;
            s = detail::utf8_next[s][detail::utf8_classes[*p++]];
            if (s == detail::utf8_reject) break;
        }
        state_ = s;
        return s != detail::utf8_reject;
    }

    /// @brief True while no byte fed so far rules out valid UTF-8.
    [[nodiscard]] bool valid_prefix() const noexcept { return state_ != detail::utf8_reject; }
    /// @brief True when the bytes fed so far are complete, valid UTF-8 (a valid prefix that ends
    /// on a code point boundary). True for an empty text.
    [[nodiscard]] bool complete() const noexcept { return state_ == detail::utf8_accept; }
    /// @brief True once a byte that rules out valid UTF-8 has been fed.
    [[nodiscard]] bool failed() const noexcept { return state_ == detail::utf8_reject; }

    /// @brief Starts over for a new text.
    void reset() noexcept { state_ = detail::utf8_accept; }

private:
    // The first byte at or after `p` that is not ASCII (or `end`).
    static const unsigned char* skip_ascii(const unsigned char* p, const unsigned char* end) noexcept {
        constexpr std::uint64_t high = 0x8080808080808080ull;
        while (end - p >= 16) {
            std::uint64_t a, b;
            std::memcpy(&a, p, 8);
            std::memcpy(&b, p + 8, 8);
            if (((a | b) & high) != 0) break;
            p += 16;
        }
        while (p < end && *p < 0x80) ++p;
        return p;
    }

    std::uint8_t state_ = detail::utf8_accept;
};

/// @brief True when `bytes` is complete, valid UTF-8 (RFC 3629 section 4); empty is valid.
/// @note Thread-safe (pure function). No allocation.
[[nodiscard]] inline bool is_valid_utf8(std::string_view bytes) noexcept {
    utf8_validator v;
    return v.feed(bytes) && v.complete();
}

/// @brief The longest prefix of `text` that has at most `max_bytes` bytes and does not cut a
/// multi-byte sequence: continuation bytes (10xxxxxx) at the cut are dropped with their lead.
///
/// A valid UTF-8 text gives a valid UTF-8 prefix (used to fit a close reason into 123 bytes,
/// RFC 6455 section 5.5.1). On other bytes it never reads before `text.data()` and drops at most
/// 3 bytes beyond the cut.
/// @note Thread-safe (pure function).
[[nodiscard]] constexpr std::string_view truncate_utf8(std::string_view text, std::size_t max_bytes) noexcept {
    if (text.size() <= max_bytes) return text;
    std::size_t cut = max_bytes;
    // A lead byte is at most 3 bytes before the cut in a valid text.
    for (int back = 0; back < 3 && cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0u) == 0x80u; ++back)
        --cut;
    return text.substr(0, cut);
}

} // namespace switchboard::protocol
