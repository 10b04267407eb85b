/// @file
/// @brief User and room names: validation, ASCII case folding, and `switchboard::name`, a
/// validated, folded name stored inline (no heap allocation).
///
/// Rules (docs/protocol.md, "Names"): 1 to 40 bytes of `[A-Za-z0-9_.-]`; names are
/// case-insensitive, compared and reported in ASCII-lowercase form.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>
#include <string_view>

namespace switchboard {

/// @brief Longest valid user or room name, in bytes: room for a 36-byte UUID in its usual dashed
/// form, the user id of many applications. A multiple of 8 (`name` hashes and compares words).
inline constexpr std::size_t max_name_length = 40;
static_assert(max_name_length % 8 == 0, "name stores whole 8-byte words");

/// @brief True for the bytes a name may contain: ASCII letters, digits, `_`, `.`, `-`.
/// @note Thread-safe (pure function).
[[nodiscard]] constexpr bool is_name_char(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

/// @brief True when `s` is a valid name: 1 to `max_name_length` bytes, each `is_name_char`.
/// @param s the name as sent (any case).
/// @note Thread-safe (pure function).
[[nodiscard]] constexpr bool is_valid_name(std::string_view s) noexcept {
    if (s.empty() || s.size() > max_name_length) return false;
    for (char c : s)
        if (!is_name_char(c)) return false;
    return true;
}

/// @brief ASCII lowercase of one byte; every other byte is returned unchanged.
/// @note Thread-safe (pure function). Not locale-dependent, unlike `std::tolower`.
[[nodiscard]] constexpr char fold_ascii(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

/// @brief True when `a` and `b` are equal after ASCII case folding.
/// @note Thread-safe (pure function).
[[nodiscard]] constexpr bool equals_folded(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (fold_ascii(a[i]) != fold_ascii(b[i])) return false;
    return true;
}

namespace detail {
// Byte -> its folded form if `is_name_char`, else 0 (for `name::parse`).
struct name_fold_table {
    char of[256] = {};
    constexpr name_fold_table() noexcept {
        for (int c = 0; c < 256; ++c)
            if (is_name_char(static_cast<char>(c))) of[c] = fold_ascii(static_cast<char>(c));
    }
};
inline constexpr name_fold_table folded_name_char{};

// True on a little-endian target (where name::parse stores whole words).
constexpr bool is_little_endian() noexcept {
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
    return __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
#else
    return false; // unknown: the byte-by-byte store is right everywhere
#endif
}
} // namespace detail

/// @brief A valid, case-folded user or room name, held inline in 41 bytes.
///
/// The only way to get a non-empty `name` is `name::parse`, so a `name` is always valid and
/// folded: code that takes a `name` needs no further checks. Equality and hashing are a handful
/// of word operations on the fixed-size inline buffer (the tail past `size()` is always zero).
///
/// Thread safety: a value type; distinct objects are independent, and a `const name` may be read
/// from any number of threads.
class name {
public:
    /// @brief The empty name (not valid as a user or room name; `empty()` is true).
    constexpr name() noexcept = default;

    /// @brief Validates and folds a name as sent by a client.
    /// @param raw the name as sent, any case.
    /// @return the folded name, or `std::nullopt` when `raw` is not a valid name
    ///         (empty, longer than 40 bytes, or a byte outside `[A-Za-z0-9_.-]`).
    [[nodiscard]] static std::optional<name> parse(std::string_view raw) noexcept {
        std::optional<name> result(std::in_place);
        if (!parse(raw, *result)) result.reset();
        return result;
    }

    /// @brief As above, into `out`, for hot paths that keep the name where they use it (no
    /// copy of the result).
    /// @param raw the name as sent, any case.
    /// @param out set to the folded name when `raw` is valid; unspecified otherwise.
    /// @return true when `raw` is a valid name.
    [[nodiscard]] static bool parse(std::string_view raw, name& out) noexcept {
        if (raw.empty() || raw.size() > max_name_length) return false;
        // This runs for every message routed. One pass, no branch per byte: each byte is folded
        // through a table whose entry is 0 for a byte not allowed in a name, and assembled into
        // 8-byte words stored whole (byte stores followed by the word loads of hash() and ==
        // would stall store forwarding).
        out = name{};
        unsigned char invalid = 0;
        for (std::size_t base = 0; base < raw.size(); base += 8) {
            const std::size_t count = std::min<std::size_t>(8, raw.size() - base);
            std::uint64_t word = 0;
            for (std::size_t j = 0; j < count; ++j) {
                const auto folded = static_cast<unsigned char>(
                    detail::folded_name_char.of[static_cast<unsigned char>(raw[base + j])]);
                invalid |= static_cast<unsigned char>(folded == 0);
                word |= std::uint64_t{folded} << (8 * j); // little-endian order
            }
            if constexpr (detail::is_little_endian()) {
                std::memcpy(out.bytes_ + base, &word, sizeof word);
            } else {
                for (std::size_t j = 0; j < 8; ++j) out.bytes_[base + j] = static_cast<char>(word >> (8 * j));
            }
        }
        out.size_ = static_cast<std::uint8_t>(raw.size());
        return invalid == 0;
    }

    /// @brief The folded bytes; valid as long as this object.
    [[nodiscard]] std::string_view view() const noexcept { return {bytes_, size_}; }
    /// @brief Number of bytes, 0 to 40.
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    /// @brief True only for a default-constructed name.
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }

    /// @brief Byte-wise equality of the folded forms.
    [[nodiscard]] friend bool operator==(const name& a, const name& b) noexcept {
        return a.size_ == b.size_ && std::memcmp(a.bytes_, b.bytes_, max_name_length) == 0;
    }
    /// @brief Negation of `==`.
    [[nodiscard]] friend bool operator!=(const name& a, const name& b) noexcept { return !(a == b); }
    /// @brief Byte-wise order of the folded forms (ascending byte order, shorter prefix first).
    [[nodiscard]] friend bool operator<(const name& a, const name& b) noexcept {
        return a.view() < b.view();
    }

    /// @brief A 64-bit hash of the folded bytes: five 8-byte words mixed by multiplication.
    /// @note Not a keyed hash; see docs/design.md for why flooding is bounded by name rules.
    [[nodiscard]] std::uint64_t hash() const noexcept {
        std::uint64_t w[max_name_length / 8];
        std::memcpy(w, bytes_, sizeof w);
        constexpr std::uint64_t k = 0x9E3779B97F4A7C15ull;
        std::uint64_t h = (w[0] ^ size_) * k;
        for (std::size_t i = 1; i < max_name_length / 8; ++i) h = (h ^ (h >> 29) ^ w[i]) * k;
        return h ^ (h >> 32);
    }

private:
    char bytes_[max_name_length] = {};
    std::uint8_t size_ = 0;
};

namespace detail {
// The 64-bit hash as a size_t: truncated where size_t is narrower, and no cast at all where it is
// the same type (g++ -Wuseless-cast).
template <class Hash>
[[nodiscard]] constexpr std::size_t to_size_hash(Hash h) noexcept {
    if constexpr (std::is_same_v<Hash, std::size_t>) return h;
    else return static_cast<std::size_t>(h);
}
} // namespace detail

/// @brief Hash functor for `name`, usable with standard unordered containers.
struct name_hash {
    /// @brief Returns `n.hash()`.
    [[nodiscard]] std::size_t operator()(const name& n) const noexcept {
        return detail::to_size_hash(n.hash());
    }
};

} // namespace switchboard

/// @brief `std::hash` support so `name` works as a key with default template arguments.
template <>
struct std::hash<switchboard::name> {
    /// @brief Returns `n.hash()`.
    std::size_t operator()(const switchboard::name& n) const noexcept {
        return switchboard::detail::to_size_hash(n.hash());
    }
};
