/// @file
/// @brief `switchboard::session_id`: a generation-tagged handle to one open session.
#pragma once

#include <cstdint>
#include <functional>

namespace switchboard {

/// @brief Identifies one session of a router: a slot index and the slot's generation.
///
/// When a session closes its slot's generation advances, so an id kept by a late event handler
/// (a disconnect that arrives after the user reconnected on a new session) no longer matches
/// anything: the router answers `status::unknown_session` instead of touching the new owner's
/// name. This is the fix for the stale-disconnect bug of the Map-based Socket.IO demo.
///
/// Thread safety: a trivially copyable value.
class session_id {
public:
    /// @brief The null id: never a valid session.
    constexpr session_id() noexcept = default;

    /// @brief Packed value: generation in the high 32 bits, slot index in the low 32 bits;
    /// 0 is never a valid session. Stable for logs and as a key.
    [[nodiscard]] constexpr std::uint64_t value() const noexcept { return value_; }
    /// @brief True unless this is the default (never valid) id.
    [[nodiscard]] constexpr explicit operator bool() const noexcept { return value_ != 0; }
    /// @brief Slot index inside the router.
    [[nodiscard]] constexpr std::uint32_t index() const noexcept { return static_cast<std::uint32_t>(value_); }
    /// @brief Generation of the slot when this session was opened (never 0 for a valid id).
    [[nodiscard]] constexpr std::uint32_t generation() const noexcept {
        return static_cast<std::uint32_t>(value_ >> 32);
    }
    /// @brief Packs an index and a generation.
    [[nodiscard]] static constexpr session_id make(std::uint32_t index, std::uint32_t generation) noexcept {
        return session_id{(static_cast<std::uint64_t>(generation) << 32) | index};
    }
    /// @brief Equality of the packed values.
    [[nodiscard]] friend constexpr bool operator==(session_id a, session_id b) noexcept {
        return a.value_ == b.value_;
    }
    /// @brief Inequality of the packed values.
    [[nodiscard]] friend constexpr bool operator!=(session_id a, session_id b) noexcept {
        return a.value_ != b.value_;
    }

private:
    constexpr explicit session_id(std::uint64_t value) noexcept : value_(value) {}
    std::uint64_t value_ = 0;
};

} // namespace switchboard

/// @brief `std::hash` support, so a `session_id` can key standard unordered containers.
template <>
struct std::hash<switchboard::session_id> {
    /// @brief Hash of the packed value.
    std::size_t operator()(switchboard::session_id id) const noexcept {
        return std::hash<std::uint64_t>{}(id.value());
    }
};
