/// @file
/// @brief `switchboard::detail::output_queue`: a connection's queue of bytes waiting to be
/// written, which copies small payloads into shared chunks (one write buffer for many messages)
/// and keeps large ones by reference (zero-copy). Internal: used by the Asio adapters.
#pragma once

#include "../payload.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

namespace switchboard::detail {

/// @brief FIFO of output bytes for one connection, built for gathered writes.
///
/// Why copy at all when the router hands out one shared payload: a chat line is tens of bytes,
/// and writing each by reference costs an I/O vector entry, a reference count and a kernel copy
/// per message, with at most 64 entries per `sendmsg` (Asio's limit). Copying a small payload
/// into the tail chunk costs one `memcpy`; a burst of hundreds of lines then leaves in one or two
/// buffers. Payloads longer than `copy_max` bytes stay shared (fan-out of a large message to many
/// members makes no copy).
///
/// Chunks grow from `min_chunk` to `max_chunk` bytes while the queue stays non-empty, and are
/// freed as soon as they are written, so an idle connection holds nothing.
///
/// Memory: the bytes queued, plus at most one partly written head chunk and one partly filled
/// tail chunk (each at most `max_chunk` bytes or the payload's size), plus one `block` (40 bytes)
/// per chunk or referenced payload.
///
/// Stability: the bytes returned by `gather()` stay valid and unchanged until `consume()` or
/// `clear()` releases them, whatever `push()` appends meanwhile (appends only write past them).
/// That is what lets a writer send them outside the owner's lock.
///
/// Thread safety: none; the owner serialises every call (the TCP adapter holds its output mutex).
class output_queue {
public:
    /// @brief One contiguous run of queued bytes.
    struct buffer {
        const char* data; ///< first byte
        std::size_t size; ///< bytes, 1 or more
    };

    /// @brief Smallest chunk allocated, in bytes.
    static constexpr std::size_t min_chunk = 4 * 1024;
    /// @brief Largest chunk allocated for copied payloads, in bytes.
    static constexpr std::size_t max_chunk = 64 * 1024;

    /// @param copy_max payloads of at most this many bytes are copied, longer ones referenced;
    ///        0 references every payload. Values above `max_chunk` act as `max_chunk`.
    explicit output_queue(std::size_t copy_max = 1024) noexcept
        : copy_max_(std::min(copy_max, max_chunk)) {}

    /// @brief Appends the bytes of `p` (nothing for an empty payload).
    /// @throws std::bad_alloc when a chunk or the block list cannot grow; the queue is unchanged.
    void push(const payload& p) {
        const std::size_t n = p.size();
        if (n == 0) return;
        if (n > copy_max_) {
            blocks_.emplace_back(block{p, nullptr, p.data(), 0, n, n});
            ++referenced_;
        } else {
            if (blocks_.size() == head_ || !blocks_.back().chunk || blocks_.back().capacity - blocks_.back().end < n) {
                const std::size_t capacity = std::max(n, std::clamp(last_chunk_ * 2, min_chunk, max_chunk));
                blocks_.reserve(blocks_.size() + 1); // so that emplace_back below cannot throw
                std::unique_ptr<char[]> chunk(new char[capacity]);
                const char* data = chunk.get();
                blocks_.emplace_back(block{payload{}, std::move(chunk), data, 0, 0, capacity});
                last_chunk_ = capacity;
            }
            block& tail = blocks_.back();
            std::memcpy(tail.chunk.get() + tail.end, p.data(), n);
            tail.end += n;
        }
        size_ += n;
    }

    /// @brief Fills `out` with the first queued runs, in order.
    /// @param out room for `max` buffers
    /// @param max 1 or more
    /// @return how many buffers were filled: 0 when the queue is empty, else 1 to `max`
    std::size_t gather(buffer* out, std::size_t max) const noexcept {
        std::size_t filled = 0;
        for (std::size_t i = head_; i < blocks_.size() && filled < max; ++i) {
            const block& b = blocks_[i];
            if (b.end > b.begin) out[filled++] = buffer{b.data + b.begin, b.end - b.begin};
        }
        return filled;
    }

    /// @brief Releases the first `n` bytes (written by the kernel): chunks and references wholly
    /// written are freed.
    /// @param n at most `size()`; more is clamped.
    void consume(std::size_t n) noexcept {
        n = std::min(n, size_);
        size_ -= n;
        if (size_ == 0) return clear();
        while (n > 0) { // stops inside a block: size_ > 0 is left after it
            block& b = blocks_[head_];
            const std::size_t available = b.end - b.begin;
            if (n < available) {
                b.begin += n;
                break;
            }
            n -= available;
            if (!b.shared.empty()) --referenced_;
            b.shared = payload{};
            b.chunk.reset();
            b.begin = b.end;
            ++head_;
        }
        if (head_ >= 16 && head_ * 2 >= blocks_.size()) {
            blocks_.erase(blocks_.begin(), blocks_.begin() + static_cast<std::ptrdiff_t>(head_));
            head_ = 0;
        }
    }

    /// @brief Drops every queued byte and frees the chunks (the block list keeps a small capacity).
    void clear() noexcept {
        blocks_.clear();
        if (blocks_.capacity() > 8) std::vector<block>().swap(blocks_);
        head_ = 0;
        size_ = 0;
        referenced_ = 0;
        last_chunk_ = 0;
    }

    /// @brief Bytes queued and not yet consumed.
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    /// @brief Payloads held by reference (not copied) and not yet wholly consumed.
    [[nodiscard]] std::size_t referenced() const noexcept { return referenced_; }
    /// @brief True when no byte is queued.
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    /// @brief True when a payload of `bytes` bytes would be referenced rather than copied.
    [[nodiscard]] bool references(std::size_t bytes) const noexcept { return bytes > copy_max_; }

private:
    struct block {
        payload shared;               // a referenced payload, or empty
        std::unique_ptr<char[]> chunk; // a chunk of copied payloads, or null
        const char* data;             // the bytes: shared.data() or chunk.get()
        std::size_t begin;            // first byte not yet consumed
        std::size_t end;              // one past the last byte queued
        std::size_t capacity;         // bytes the block can hold
    };

    std::vector<block> blocks_; // blocks before head_ are consumed (empty handles)
    std::size_t head_ = 0;
    std::size_t size_ = 0;
    std::size_t referenced_ = 0;
    std::size_t last_chunk_ = 0; // capacity of the last chunk allocated since the queue was empty
    std::size_t copy_max_;
};

} // namespace switchboard::detail
