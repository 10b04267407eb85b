/// @file
/// @brief `switchboard::payload`: an immutable, reference-counted byte buffer shared by every
/// recipient of a message (zero-copy fan-out).
#pragma once

#include "config.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <string_view>
#include <utility>

// Under AddressSanitizer every payload comes from operator new, so that a use after free of a
// payload is reported instead of hidden by a recycled block.
#if !defined(SWITCHBOARD_NO_PAYLOAD_CACHE)
#if defined(__SANITIZE_ADDRESS__)
#define SWITCHBOARD_NO_PAYLOAD_CACHE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SWITCHBOARD_NO_PAYLOAD_CACHE 1
#endif
#endif
#endif

namespace switchboard {

namespace detail {

/// @brief A per-thread cache of small payload blocks, so that the steady state of routing makes
/// no heap allocation: a payload is built, delivered (copied into write buffers or queued) and
/// released, and its block serves the next message.
///
/// Blocks of `block_bytes` (payloads of up to 248 bytes) freed on a thread are kept on that
/// thread's list, at most `max_blocks` of them (16 KiB); others go to `operator delete`. A
/// block may be freed on another thread than the one that built it (it then joins that thread's
/// list). The list is freed when its thread ends; blocks freed after that, during the thread's
/// own exit, go to `operator delete`. Define `SWITCHBOARD_NO_PAYLOAD_CACHE` to allocate every
/// payload with `operator new` (the default under AddressSanitizer).
///
/// Thread safety: each thread uses only its own list.
class payload_cache {
public:
    /// @brief Size of a cached block, header included.
    static constexpr std::size_t block_bytes = 256;
    /// @brief Blocks kept per thread.
    static constexpr std::size_t max_blocks = 64;

    /// @brief A block of at least `bytes` bytes.
    /// @throws std::bad_alloc when memory runs out.
    static void* allocate(std::size_t bytes) {
#ifndef SWITCHBOARD_NO_PAYLOAD_CACHE
        if (bytes <= block_bytes) {
            if (!dead()) {
                payload_cache& c = local();
                if (c.head_) {
                    node* n = c.head_;
                    c.head_ = n->next;
                    --c.count_;
                    return n;
                }
            }
            return ::operator new(block_bytes);
        }
#endif
        return ::operator new(bytes);
    }

    /// @brief Frees a block from `allocate(bytes)`.
    static void deallocate(void* block, [[maybe_unused]] std::size_t bytes) noexcept {
#ifndef SWITCHBOARD_NO_PAYLOAD_CACHE
        if (bytes <= block_bytes && !dead()) {
            payload_cache& c = local();
            if (c.count_ < max_blocks) {
                c.head_ = ::new (block) node{c.head_};
                ++c.count_;
                return;
            }
        }
#endif
        ::operator delete(block);
    }

    payload_cache() = default;
    payload_cache(const payload_cache&) = delete;
    payload_cache& operator=(const payload_cache&) = delete;
    ~payload_cache() {
        dead() = true;
        while (head_) {
            node* next = head_->next;
            ::operator delete(static_cast<void*>(head_));
            head_ = next;
        }
    }

private:
    struct node {
        node* next;
    };
    static payload_cache& local() noexcept {
        thread_local payload_cache cache;
        return cache;
    }
    // Trivially destructible, so it stays readable during the thread's exit, after `local()`'s
    // object is gone.
    static bool& dead() noexcept {
        thread_local bool gone = false;
        return gone;
    }

    // Unused when SWITCHBOARD_NO_PAYLOAD_CACHE is defined.
    [[maybe_unused]] node* head_ = nullptr;
    [[maybe_unused]] std::size_t count_ = 0;
};

} // namespace detail

/// @brief Immutable bytes with shared ownership: copying a payload copies a pointer, never the
/// bytes.
///
/// A router encodes a message once into a payload and hands the same payload to every target
/// transport; each transport keeps its copy until the bytes are written. The bytes and the
/// reference count live in one block (one per message, none per recipient), taken from a per-thread
/// cache for payloads of up to 248 bytes (`detail::payload_cache`), so routing small messages
/// makes no heap allocation in the steady state.
/// The bytes are opaque to switchboard: any content, including NUL and non-UTF-8 bytes.
///
/// Thread safety: the bytes never change after construction, so any number of threads may read
/// the same payload. Copies of one payload may be made and destroyed on different threads at once
/// (the count is atomic, as for `std::shared_ptr`). One `payload` object itself is not to be
/// assigned from two threads at once.
class payload {
public:
    /// @brief An empty payload: `size() == 0`, no allocation.
    payload() noexcept = default;

    /// @brief Copies `bytes` into a new buffer.
    /// @param bytes the content; at most 4 GiB - 1 bytes (asserted).
    /// @throws std::bad_alloc when memory runs out (the only exception on the routing path).
    [[nodiscard]] static payload copy_of(std::string_view bytes) {
        return build(bytes.size(), [&](char* out) {
            if (!bytes.empty()) std::memcpy(out, bytes.data(), bytes.size());
        });
    }

    /// @brief Allocates `size` bytes and lets `fill(char* out)` write them once.
    ///
    /// The way encoders build a line in place without an intermediate string.
    /// @param size exact number of bytes `fill` writes; at most 4 GiB - 1 (asserted).
    /// @param fill callable `void(char*)` that writes exactly `size` bytes.
    /// @throws std::bad_alloc when memory runs out.
    template <class Fill>
    [[nodiscard]] SWITCHBOARD_HOT_INLINE static payload build(std::size_t size, Fill&& fill) {
        SWITCHBOARD_ASSERT(size < std::numeric_limits<std::uint32_t>::max(), "payload too large");
        payload p;
        if (size == 0) return p;
        void* raw = detail::payload_cache::allocate(sizeof(header) + size);
        p.h_ = ::new (raw) header{};
        p.h_->size = static_cast<std::uint32_t>(size);
        std::forward<Fill>(fill)(p.bytes());
        return p;
    }

    /// @brief Shares the buffer of `other` (one atomic increment).
    payload(const payload& other) noexcept : h_(other.h_) {
        if (h_) h_->refs.fetch_add(1, std::memory_order_relaxed);
    }
    /// @brief Takes the buffer of `other`, leaving it empty.
    payload(payload&& other) noexcept : h_(std::exchange(other.h_, nullptr)) {}
    /// @brief Shares the buffer of `other`, releasing the current one.
    payload& operator=(const payload& other) noexcept {
        payload(other).swap(*this);
        return *this;
    }
    /// @brief Takes the buffer of `other`, releasing the current one.
    payload& operator=(payload&& other) noexcept {
        payload taken(std::move(other)); // a named temporary: payload(std::move(other)) is a
        swap(taken);                     // useless cast to g++ (-Wuseless-cast)
        return *this;
    }
    /// @brief Releases this reference; the last one frees the buffer.
    ~payload() {
        if (h_) release(); // an empty payload (most of a per-format array) costs one test, inline
    }

    /// @brief Exchanges the buffers of two payloads.
    void swap(payload& other) noexcept { std::swap(h_, other.h_); }

    /// @brief First byte of the content; valid while any copy of this payload lives.
    [[nodiscard]] const char* data() const noexcept { return h_ ? bytes() : nullptr; }
    /// @brief Number of bytes.
    [[nodiscard]] std::size_t size() const noexcept { return h_ ? h_->size : 0; }
    /// @brief True when there are no bytes.
    [[nodiscard]] bool empty() const noexcept { return h_ == nullptr; }
    /// @brief The content as a view; valid while any copy of this payload lives.
    [[nodiscard]] std::string_view view() const noexcept { return {data(), size()}; }

    /// @brief How many payload objects share this buffer (0 for an empty payload).
    /// @note A snapshot: other threads may change it at any time. Meant for tests and metrics,
    /// e.g. to show that a fan-out to K members made K references and no copy.
    [[nodiscard]] long use_count() const noexcept {
        return h_ ? static_cast<long>(h_->refs.load(std::memory_order_relaxed)) : 0;
    }

    /// @brief True when both payloads share one buffer (not merely equal bytes).
    [[nodiscard]] friend bool same_buffer(const payload& a, const payload& b) noexcept {
        return a.h_ == b.h_;
    }

private:
    struct header {
        std::atomic<std::uint32_t> refs{1};
        std::uint32_t size = 0;
    };

    char* bytes() const noexcept { return reinterpret_cast<char*>(h_ + 1); }

    void release() noexcept {
        // A count of 1 is this handle's own: no other handle exists to change it, so the
        // read-modify-write (a locked instruction) is skipped. The acquire pairs with the release
        // of other handles' decrements, as the fetch_sub's would.
        if (h_ && (h_->refs.load(std::memory_order_acquire) == 1 ||
                   h_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1)) {
            const std::size_t bytes = sizeof(header) + h_->size;
            h_->~header();
            detail::payload_cache::deallocate(h_, bytes);
        }
        h_ = nullptr;
    }

    header* h_ = nullptr;
};

} // namespace switchboard
