/// @file
/// @brief `switchboard::detail::output_pump` and `write_loop`: a connection's output side. The
/// pump is the bounded queue (`detail::output_queue`, chunks from the server's pool) with its
/// byte count and the one-write-in-flight flag; the write loop gathers the queue's head into one
/// stream write, without holding the lock while the write runs. Internal to the engine.
///
/// Backpressure lives here too: the pump says when a delivery would exceed the bound (slow
/// consumer), when the connection's own input should pause (more than half the bound waits) and
/// when it may resume (a quarter).
#pragma once

#include "../../detail/output_queue.hpp"
#include "../../payload.hpp"
#include "lifecycle.hpp"

#include "../backend.hpp"

#include <array>
#include <atomic>
#include <cstddef>
#include <mutex>

namespace switchboard::detail {

/// @brief The queue of one connection and its accounting. Thread safety: every member function
/// but `queued()` and `backed_up()` is called with the owner's output mutex held.
class output_pump {
public:
    /// @brief Buffers gathered into one write system call (Asio passes at most 64 to sendmsg).
    static constexpr std::size_t max_write_buffers = 64;
    /// @brief What a payload queued by reference costs beyond its bytes, charged against the
    /// bound: its allocation header and malloc rounding, and its block in the queue (measured
    /// before small payloads were copied: without it, 1-byte messages pinned about 3 times the
    /// bound). Copied payloads cost their bytes only.
    static constexpr std::size_t message_overhead = 64;

    /// @brief What `offer()` did.
    enum class offer_result : std::uint8_t {
        queued,       ///< Queued; a write is already in flight or scheduled.
        start_writer, ///< Queued, and the writer was idle: the caller posts a write.
        over_bound,   ///< Not queued: it would exceed the bound (or memory ran out).
    };

    /// @param copy_max see `tcp_server_options::copy_max_bytes`.
    /// @param pool the server's chunk pool; must outlive the pump.
    output_pump(std::size_t copy_max, chunk_pool* pool) noexcept : out_(copy_max, pool) {}

    /// @brief Queues `bytes` if they fit within `bound`: what the queue holds (`charge()`) plus
    /// the payload's bytes and overhead. The charge after the push may pass the bound by the
    /// unused room of one new chunk (at most `output_queue::max_chunk`).
    offer_result offer(const payload& bytes, std::size_t bound) noexcept {
        const std::size_t cost = bytes.size() + (out_.references(bytes.size()) ? message_overhead : 0);
        const std::size_t queued = queued_.load(std::memory_order_relaxed);
        if (queued > bound || cost > bound - queued) return offer_result::over_bound;
        try {
            out_.push(bytes);
        } catch (...) {
            return offer_result::over_bound;
        }
        queued_.store(charge(), std::memory_order_relaxed);
        return claim_writer() ? offer_result::start_writer : offer_result::queued;
    }

    /// @brief Marks a write as in flight (or scheduled); false when one already is.
    bool claim_writer() noexcept {
        if (writing_) return false;
        writing_ = true;
        return true;
    }

    /// @brief True while a write is in flight or scheduled.
    [[nodiscard]] bool writing() const noexcept { return writing_; }

    /// @brief The head of the queue, up to `max` runs; 0 when empty, and then the writer is idle.
    std::size_t gather(output_queue::buffer* runs, std::size_t max) noexcept {
        const std::size_t n = out_.gather(runs, max);
        if (n == 0) writing_ = false;
        return n;
    }

    /// @brief The write in flight took `n` bytes: releases them and recounts what still waits.
    /// @return the bytes still charged against the bound.
    std::size_t written(std::size_t n) noexcept {
        out_.consume(n);
        const std::size_t left = charge();
        queued_.store(left, std::memory_order_relaxed);
        return left;
    }

    /// @brief The writer stopped (write failed, or output was cut): no write is in flight.
    void writer_stopped() noexcept { writing_ = false; }

    /// @brief Drops everything queued. Only when no write is in flight (it reads the queue).
    void drop() noexcept {
        out_.clear();
        queued_.store(0, std::memory_order_relaxed);
    }

    /// @brief Bytes charged against the bound (may be read without the lock).
    [[nodiscard]] std::size_t queued() const noexcept { return queued_.load(std::memory_order_relaxed); }

    /// @brief Backpressure on the connection's own input: more than half of `bound` waits.
    /// Read without the lock (once per command): a delivery racing with it is seen at the next.
    [[nodiscard]] bool backed_up(std::size_t bound) const noexcept { return queued() > bound / 2; }
    /// @brief Input paused by `backed_up()` may resume: at most a quarter of `bound` waits.
    [[nodiscard]] static bool may_resume(std::size_t left, std::size_t bound) noexcept { return left <= bound / 4; }

private:
    // The memory the queue holds (whole chunks, whole referenced payloads) plus the bookkeeping
    // of each reference: an early-closed chunk counts whole, so alternating large and small
    // messages cannot hold several times the bound.
    std::size_t charge() const noexcept { return out_.held() + out_.referenced() * message_overhead; }

    output_queue out_;
    std::atomic<std::size_t> queued_{0}; // charge() of out_, readable without the lock
    bool writing_ = false;
};

/// @brief The write loop of a connection (CRTP): at most one write in flight; each write sends
/// the queue's head (up to 64 runs) in one stream operation; what the stream did not take, and
/// what was queued meanwhile, goes in the next. The runs stay valid while `deliver()` appends
/// behind them and only `on_written()` (on the strand) releases them, so the write runs unlocked.
///
/// `Connection` provides: `out_mutex()`, `pump()`, `life()`, `stream()`, `self()` (a
/// `shared_ptr` to itself), `post(f)` (to its strand), `after_write(left)` (resume paused input)
/// and `finish_gracefully()` (the end of a drain: the stream's graceful close, then `finish()`).
template <class Connection>
class write_loop {
public:
    // Runs on the strand. Sends the head of the queue, or, when it is empty, ends a drain.
    void start_write() {
        Connection& c = conn();
        std::array<output_queue::buffer, output_pump::max_write_buffers> runs;
        std::size_t count = 0;
        {
            std::lock_guard<std::mutex> lock(c.out_mutex());
            if (c.life().cut()) {
                c.pump().writer_stopped();
                c.pump().drop(); // no write is in flight: nothing reads the queue any more
                return;
            }
            count = c.pump().gather(runs.data(), runs.size());
            if (count == 0) {
                if (c.life().drained() == lifecycle_action::cut) c.post([self = c.self()] { self->finish_gracefully(); });
                return;
            }
        }
        std::array<net::const_buffer, output_pump::max_write_buffers> buffers;
        for (std::size_t i = 0; i < count; ++i) buffers[i] = net::const_buffer(runs[i].data, runs[i].size);
        c.stream().async_write_some(buffers.data(), count,
                                    [self = c.self()](const net_error_code& ec, std::size_t n) {
                                        self->on_written(ec, n);
                                    });
    }

    // Releases what the stream took and lowers the queued count by it, so a client that reads is
    // measured by what is really still waiting for it. A failed write cuts the connection.
    void on_written(const net_error_code& ec, std::size_t written) {
        Connection& c = conn();
        std::size_t left = 0;
        {
            std::lock_guard<std::mutex> lock(c.out_mutex());
            if (ec || c.life().cut()) {
                c.pump().writer_stopped();
                c.pump().drop();
                if (ec) c.close_locked(close_mode::abort, disconnect_reason::error, ec);
                return;
            }
            left = c.pump().written(written);
        }
        c.after_write(left);
        start_write();
    }

private:
    Connection& conn() noexcept { return static_cast<Connection&>(*this); }
};

} // namespace switchboard::detail
