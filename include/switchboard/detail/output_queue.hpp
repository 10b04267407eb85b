/// @file
/// @brief `switchboard::detail::output_queue`: a connection's queue of bytes waiting to be
/// written, which copies small payloads into shared chunks (one write buffer for many messages)
/// and keeps large ones by reference (zero-copy). Internal: used by the Asio adapters.
#pragma once

#include "../payload.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <utility>
#include <vector>

namespace switchboard::detail {

/// @brief Recycles the write chunks of many `output_queue`s (one pool per server).
///
/// Why: fan-out batches output. A read of 256 room messages to 1000 members queues about 23 MB
/// before the first write; once written, it is freed, and the next read allocates it again. Left
/// to malloc, the freed top of the heap is given back to the kernel (glibc trims above 128 KiB)
/// and every page faults in again on the next burst (docs/performance.md has what that cost).
/// The pool keeps up to `max_bytes` of free chunks instead, and `trim()`, called
/// periodically, frees the chunks that no queue took since the previous `trim()`, so an idle
/// server gives the memory back within two periods.
///
/// Chunk sizes are the powers of two from 4 KiB to 64 KiB (`chunk_classes`).
///
/// Thread safety: every member function may be called from any thread (one mutex, taken once per
/// chunk, that is once per several hundred small messages).
class chunk_pool {
public:
    /// @brief Smallest chunk, in bytes.
    static constexpr std::size_t min_chunk = 4 * 1024;
    /// @brief Number of chunk sizes: 4, 8, 16, 32 and 64 KiB.
    static constexpr std::size_t chunk_classes = 5;
    /// @brief Largest chunk, in bytes.
    static constexpr std::size_t max_chunk = min_chunk << (chunk_classes - 1);

    /// @param max_bytes free chunks kept at most, in bytes; 0 keeps none (every chunk is
    ///        allocated and freed with `new`/`delete`).
    explicit chunk_pool(std::size_t max_bytes) noexcept : max_bytes_(max_bytes) {}
    ~chunk_pool() { release_all(); }
    chunk_pool(const chunk_pool&) = delete;
    chunk_pool& operator=(const chunk_pool&) = delete;

    /// @brief A chunk of `size` bytes: a free one if the pool holds one, else a new one.
    /// @param size a power of two from `min_chunk` to `max_chunk`.
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] char* acquire(std::size_t size) {
        const std::size_t c = class_of(size);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            std::vector<char*>& list = free_[c];
            if (!list.empty()) {
                char* chunk = list.back();
                list.pop_back();
                bytes_ -= size;
                low_water_[c] = std::min(low_water_[c], list.size());
                return chunk;
            }
        }
        return new char[size];
    }

    /// @brief Gives back a chunk from `acquire(size)`; it is kept if the pool has room, else freed.
    void release(char* chunk, std::size_t size) noexcept {
        const std::size_t c = class_of(size);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (bytes_ + size <= max_bytes_) {
                try {
                    free_[c].push_back(chunk);
                    bytes_ += size;
                    return;
                } catch (...) { // the list could not grow: free the chunk instead
                }
            }
        }
        delete[] chunk;
    }

    /// @brief Frees the free chunks that stayed unused since the previous call (per size, the
    /// fewest that were free at any moment in between).
    void trim() noexcept {
        std::lock_guard<std::mutex> lock(mutex_);
        for (std::size_t c = 0; c < chunk_classes; ++c) {
            std::vector<char*>& list = free_[c];
            const std::size_t n = std::min(low_water_[c], list.size());
            for (std::size_t i = 0; i < n; ++i) delete[] list[i];
            list.erase(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(n));
            bytes_ -= n * (min_chunk << c);
            if (list.empty()) std::vector<char*>().swap(list);
            low_water_[c] = list.size();
        }
    }

    /// @brief Bytes of free chunks held.
    [[nodiscard]] std::size_t free_bytes() const noexcept {
        std::lock_guard<std::mutex> lock(mutex_);
        return bytes_;
    }

private:
    static std::size_t class_of(std::size_t size) noexcept {
        std::size_t c = 0;
        while ((min_chunk << c) < size) ++c;
        return c;
    }

    void release_all() noexcept {
        for (std::vector<char*>& list : free_)
            for (char* chunk : list) delete[] chunk;
    }

    mutable std::mutex mutex_;
    std::array<std::vector<char*>, chunk_classes> free_;
    std::array<std::size_t, chunk_classes> low_water_{}; // fewest free since the last trim()
    std::size_t bytes_ = 0;
    const std::size_t max_bytes_;
};

/// @brief FIFO of output bytes for one connection, built for gathered writes.
///
/// Why copy at all when the router hands out one shared payload: a chat line is tens of bytes,
/// and writing each by reference costs an I/O vector entry, a reference count and a kernel copy
/// per message, with at most 64 entries per `sendmsg` (Asio's limit). Copying a small payload
/// into the tail chunk costs one `memcpy`; a burst of hundreds of lines then leaves in one or two
/// buffers. Payloads longer than `copy_max` bytes stay shared (fan-out of a large message to many
/// members makes no copy).
///
/// Chunks grow from 4 KiB to 64 KiB (doubling) while the queue stays non-empty, come from and go
/// back to a `chunk_pool` if one is given, and are released as soon as they are written, so an
/// idle connection holds none.
///
/// Memory: the bytes queued, plus at most one partly written head chunk and one partly filled
/// tail chunk (each at most 64 KiB), plus one `block` (40 bytes) per chunk or referenced payload.
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
    static constexpr std::size_t min_chunk = chunk_pool::min_chunk;
    /// @brief Largest chunk allocated, in bytes.
    static constexpr std::size_t max_chunk = chunk_pool::max_chunk;

    /// @param copy_max payloads of at most this many bytes are copied, longer ones referenced;
    ///        0 references every payload. Values above `max_chunk` act as `max_chunk`.
    /// @param pool where chunks come from and go back to (must outlive the queue); null: `new`
    ///        and `delete`.
    explicit output_queue(std::size_t copy_max = 1024, chunk_pool* pool = nullptr) noexcept
        : pool_(pool), copy_max_(std::min(copy_max, max_chunk)) {}
    ~output_queue() { clear(); }
    output_queue(const output_queue&) = delete;
    output_queue& operator=(const output_queue&) = delete;

    /// @brief Appends the bytes of `p` (nothing for an empty payload).
    /// @throws std::bad_alloc when a chunk or the block list cannot grow; the queue is unchanged.
    void push(const payload& p) {
        const std::size_t n = p.size();
        if (n == 0) return;
        if (n <= tail_room_ && n <= copy_max_) { // the common case: touches neither the block list nor the pool
            std::memcpy(tail_, p.data(), n);
            tail_ += n;
            tail_room_ -= n;
        } else if (n > copy_max_) {
            reserve_block(); // so that nothing below throws
            close_tail();
            blocks_.push_back(block{p, nullptr, p.data(), 0, n, n});
            ++referenced_;
            held_ += n;
            // The chunk closed early: the next one starts small again, so that small payloads
            // between large ones do not each get a chunk grown for a burst.
            last_chunk_ = 0;
        } else {
            std::size_t capacity = std::clamp(last_chunk_ * 2, min_chunk, max_chunk);
            while (capacity < n) capacity *= 2;
            reserve_block();
            char* const chunk = pool_ ? pool_->acquire(capacity) : new char[capacity];
            close_tail();
            blocks_.push_back(block{payload{}, chunk, chunk, 0, 0, capacity});
            last_chunk_ = capacity;
            held_ += capacity;
            std::memcpy(chunk, p.data(), n);
            tail_ = chunk + n;
            tail_room_ = capacity - n;
        }
        size_ += n;
    }

    /// @brief Fills `out` with the first queued runs, in order.
    /// @param out room for `max` buffers
    /// @param max 1 or more
    /// @return how many buffers were filled: 0 when the queue is empty, else 1 to `max`; the
    ///         entries of `out` from that count on are not written.
    std::size_t gather(buffer* out, std::size_t max) noexcept {
        sync_tail();
        std::size_t filled = 0;
        for (std::size_t i = head_; i < blocks_.size() && filled < max; ++i) {
            const block& b = blocks_[i];
            if (b.end > b.begin) out[filled++] = buffer{b.data + b.begin, b.end - b.begin};
        }
        return filled;
    }

    /// @brief Releases the first `n` bytes (written by the kernel): chunks and references wholly
    /// written are released at once.
    /// @param n at most `size()`; more is clamped.
    void consume(std::size_t n) noexcept {
        n = std::min(n, size_);
        size_ -= n;
        if (size_ == 0) return clear();
        sync_tail();
        while (n > 0) { // stops inside a block: size_ > 0 is left after it
            block& b = blocks_[head_];
            const std::size_t available = b.end - b.begin;
            if (n < available) {
                b.begin += n;
                break;
            }
            n -= available;
            release(b);
            ++head_;
        }
        if (head_ >= 16 && head_ * 2 >= blocks_.size()) {
            blocks_.erase(blocks_.begin(), blocks_.begin() + static_cast<std::ptrdiff_t>(head_));
            head_ = 0;
        }
    }

    /// @brief Drops every queued byte and releases the chunks (the block list keeps a small
    /// capacity).
    void clear() noexcept {
        for (std::size_t i = head_; i < blocks_.size(); ++i) release(blocks_[i]);
        blocks_.clear();
        if (blocks_.capacity() > 8) std::vector<block>().swap(blocks_);
        head_ = 0;
        size_ = 0;
        referenced_ = 0;
        held_ = 0;
        last_chunk_ = 0;
        tail_ = nullptr;
        tail_room_ = 0;
    }

    /// @brief Bytes queued and not yet consumed.
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    /// @brief Payloads held by reference (not copied) and not yet wholly consumed.
    [[nodiscard]] std::size_t referenced() const noexcept { return referenced_; }
    /// @brief Memory the queue holds, in bytes: the whole capacity of every chunk it holds (used
    /// or not) plus the whole size of every payload it references. What a bound on a queue's
    /// memory must count: `size()` alone misses the unused room of chunks closed early.
    [[nodiscard]] std::size_t held() const noexcept { return held_; }
    /// @brief True when no byte is queued.
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    /// @brief True when a payload of `bytes` bytes would be referenced rather than copied.
    [[nodiscard]] bool references(std::size_t bytes) const noexcept { return bytes > copy_max_; }

private:
    struct block {
        payload shared;   // a referenced payload, or empty
        char* chunk;      // a chunk of copied payloads (owned), or null
        const char* data; // the bytes: shared.data() or chunk
        std::size_t begin; // first byte not yet consumed
        std::size_t end;   // one past the last byte queued
        std::size_t capacity; // bytes the block can hold
    };

    // Room for one more block, growing geometrically (reserve(size() + 1) would reallocate the
    // list on every new block).
    void reserve_block() {
        if (blocks_.size() == blocks_.capacity()) blocks_.reserve(std::max<std::size_t>(1, blocks_.capacity() * 2));
    }

    // While the last block is a chunk being filled, its fill level lives in tail_ (so that a
    // push touches only this object and the chunk); these bring the block up to date.
    void sync_tail() noexcept {
        if (tail_) blocks_.back().end = static_cast<std::size_t>(tail_ - blocks_.back().chunk);
    }
    void close_tail() noexcept {
        sync_tail();
        tail_ = nullptr;
        tail_room_ = 0;
    }

    void release(block& b) noexcept {
        if (!b.shared.empty()) {
            held_ -= b.shared.size();
            b.shared = payload{};
            --referenced_;
        }
        if (b.chunk) {
            held_ -= b.capacity;
            if (pool_) pool_->release(b.chunk, b.capacity);
            else delete[] b.chunk;
            b.chunk = nullptr;
        }
        b.begin = b.end;
    }

    std::vector<block> blocks_; // blocks before head_ are released (empty handles)
    std::size_t head_ = 0;
    std::size_t size_ = 0;
    std::size_t referenced_ = 0;
    std::size_t held_ = 0;       // see held()
    std::size_t last_chunk_ = 0; // capacity of the last chunk allocated since the queue was empty
    char* tail_ = nullptr;       // next free byte of the last block, when it is a chunk
    std::size_t tail_room_ = 0;  // free bytes after tail_
    chunk_pool* pool_;
    std::size_t copy_max_;
};

} // namespace switchboard::detail
