/// @file
/// @brief `switchboard::detail::flat_index`: the open-addressing hash index behind the router's
/// user and room lookups. Internal: not part of the public API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace switchboard::detail {

/// @brief Maps 32-bit hashes to 32-bit slot numbers whose keys live elsewhere (in the router's
/// session and room slots), with linear probing and backward-shift deletion (no tombstones).
///
/// Each entry is 8 bytes: the key's hash and the slot number. A lookup reads one entry run (most
/// often one cache line) and compares the key of a candidate only when the whole 32-bit hash
/// matches, so a hit costs about one miss in the index and one in the slot that holds the key —
/// against a bucket, a node and a key for `std::unordered_map`. Rehashing needs no key access.
/// The load factor stays at most 1/2.
///
/// Thread safety: none; guarded by the owner (the router).
class flat_index {
public:
    /// @brief "No value": returned by `find()` on a miss.
    static constexpr std::uint32_t npos = std::numeric_limits<std::uint32_t>::max();

    /// @brief Number of entries.
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    /// @brief Bytes of the entry array (for memory accounting).
    [[nodiscard]] std::size_t bytes() const noexcept { return entries_.capacity() * sizeof(entry); }

    /// @brief The value whose key matches, or `npos`.
    /// @param hash the key's hash (`name::hash()` folded to 32 bits by `fold()`).
    /// @param matches `bool(std::uint32_t value)`: true when that value's key is the one sought.
    template <class Matches>
    [[nodiscard]] std::uint32_t find(std::uint32_t hash, Matches&& matches) const noexcept {
        const std::size_t i = locate(hash, matches);
        return i == not_found ? npos : entries_[i].value;
    }

    /// @brief Adds an entry; the key must not be present (the caller checked with `find()`).
    /// @param hash the key's hash; @param value the slot number (not `npos`).
    /// @throws std::bad_alloc when the index must grow and memory runs out.
    void insert(std::uint32_t hash, std::uint32_t value) {
        if ((size_ + 1) * 2 > entries_.size()) grow();
        place(entry{hash, value});
        ++size_;
    }

    /// @brief Removes the entry whose key matches; does nothing when there is none.
    /// @return true when an entry was removed.
    template <class Matches>
    bool erase(std::uint32_t hash, Matches&& matches) noexcept {
        std::size_t i = locate(hash, matches);
        if (i == not_found) return false;
        const std::size_t mask = entries_.size() - 1;
        std::size_t j = i;
        for (;;) { // shift back every later entry of the run that may move to the hole
            j = (j + 1) & mask;
            if (entries_[j].value == npos) break;
            const std::size_t home = entries_[j].hash & mask;
            if (((j - home) & mask) < ((j - i) & mask)) continue; // its home lies in (i, j]
            entries_[i] = entries_[j];
            i = j;
        }
        entries_[i] = entry{};
        --size_;
        return true;
    }

    /// @brief Folds a 64-bit hash to the 32 bits the index keeps.
    [[nodiscard]] static constexpr std::uint32_t fold(std::uint64_t h) noexcept {
        return static_cast<std::uint32_t>(h ^ (h >> 32));
    }

private:
    struct entry {
        std::uint32_t hash = 0;
        std::uint32_t value = npos;
    };
    static constexpr std::size_t not_found = std::numeric_limits<std::size_t>::max();

    template <class Matches>
    std::size_t locate(std::uint32_t hash, Matches& matches) const noexcept {
        if (entries_.empty()) return not_found;
        const std::size_t mask = entries_.size() - 1;
        for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
            const entry& e = entries_[i];
            if (e.value == npos) return not_found;
            if (e.hash == hash && matches(e.value)) return i;
        }
    }

    void place(entry e) noexcept {
        const std::size_t mask = entries_.size() - 1;
        std::size_t i = e.hash & mask;
        while (entries_[i].value != npos) i = (i + 1) & mask;
        entries_[i] = e;
    }

    void grow() {
        std::vector<entry> old(entries_.empty() ? 16 : entries_.size() * 2);
        old.swap(entries_);
        for (const entry& e : old)
            if (e.value != npos) place(e);
    }

    std::vector<entry> entries_;
    std::size_t size_ = 0;
};

} // namespace switchboard::detail
