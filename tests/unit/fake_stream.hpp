// A Stream policy with no socket (like Beast's test::stream with a fail count), for testing the
// connection engine's lifecycle deterministically: it runs on an asio::io_context, the test feeds
// the input chunk by chunk, reads what the server wrote, limits each write to N bytes (short
// writes), holds writes in flight as long as it likes, and injects an error at the k-th
// operation (handshake, wait, read or write, counted together). Every completion is posted, so
// the test drives the engine with io_context::poll() and never sleeps.
#pragma once

#include <switchboard/asio/tcp_server.hpp>

#include <algorithm>
#include <cstddef>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace sbtest {

/// The far end of a fake_stream, kept by the test (the stream itself is moved into the server).
struct fake_peer {
    explicit fake_peer(asio::io_context& context) : io(context) {}

    asio::io_context& io;

    // ---- input -----------------------------------------------------------------------------------
    std::deque<std::string> input; // chunks not yet read; one read returns at most one chunk
    bool eof = false;              // after the chunks: end of stream
    std::error_code read_error;    // after the chunks: this error (e.g. connection_reset)

    // ---- output ----------------------------------------------------------------------------------
    std::string written;                                             // what the server wrote
    std::size_t write_limit = std::numeric_limits<std::size_t>::max(); // bytes per write at most
    bool hold_writes = false; // writes stay in flight until release_writes()

    // ---- faults ----------------------------------------------------------------------------------
    std::size_t fail_at = 0; // the operation (1-based, all kinds counted) that fails; 0: none
    std::error_code fail_error = asio::error::connection_reset;

    // ---- what happened ---------------------------------------------------------------------------
    std::size_t ops = 0, waits = 0, reads = 0, writes = 0;
    std::size_t shutdowns = 0;          // graceful ends (async_shutdown: TLS close_notify)
    bool closed_after_shutdown = false; // close() came after a completed shutdown
    bool shutdown_done = false;
    bool used_after_shutdown = false;   // a read, wait or write after the shutdown began
    const char* failed = nullptr; // the kind of operation that failed: handshake, wait, read, write
    bool prepared = false, closed = false;
    asio::ip::tcp::endpoint endpoint{asio::ip::make_address("192.0.2.1"), 40000};

    // Pending operations.
    std::function<void(const std::error_code&)> wait_handler;
    std::function<void(const std::error_code&, std::size_t)> write_handler;
    std::vector<asio::const_buffer> write_pending; // the held write's buffers, read when released

    /// Queues input; a pending readiness wait completes.
    void feed(std::string chunk) {
        input.push_back(std::move(chunk));
        wake_reader();
    }
    /// Ends the input (EOF after the queued chunks).
    void end() {
        eof = true;
        wake_reader();
    }
    /// The next read after the queued chunks fails with `ec`.
    void fail_reads(std::error_code ec) {
        read_error = ec;
        wake_reader();
    }
    /// Completes the held write (if any) and lets later writes complete at once.
    void release_writes() {
        hold_writes = false;
        if (!write_handler) return;
        // Like a kernel that takes the bytes only now: the buffers must still be valid.
        std::size_t n = 0;
        for (const auto& b : write_pending) {
            const std::size_t take = std::min(b.size(), write_limit - n);
            written.append(static_cast<const char*>(b.data()), take);
            n += take;
            if (n == write_limit) break;
        }
        write_pending.clear();
        auto h = std::move(write_handler);
        write_handler = nullptr;
        asio::post(io, [h = std::move(h), n] { h(std::error_code{}, n); });
    }
    /// Takes what the server wrote so far.
    std::string take() { return std::exchange(written, std::string{}); }
    /// Breaks the reference cycles of handlers never completed (end of a test).
    void forget_handlers() {
        wait_handler = nullptr;
        write_handler = nullptr;
    }

    // One more operation: the injected error when it is the k-th.
    std::error_code step(const char* kind) {
        ++ops;
        if (fail_at == 0 || ops != fail_at) return {};
        failed = kind;
        return fail_error;
    }

    void wake_reader() {
        if (!wait_handler) return;
        auto h = std::move(wait_handler);
        wait_handler = nullptr;
        asio::post(io, [h = std::move(h)] { h(std::error_code{}); });
    }
};

/// The Stream policy over a fake_peer.
class fake_stream {
public:
    using context_type = void;
    using executor_type = asio::io_context::executor_type;
    static constexpr bool readiness_reads = true;
    static constexpr bool short_read_drains = false; // read until would_block, like edge-triggered

    explicit fake_stream(std::shared_ptr<fake_peer> peer) noexcept : peer_(std::move(peer)) {}

    executor_type get_executor() noexcept { return peer_->io.get_executor(); }
    void prepare(const switchboard::tcp_server_options&) noexcept { peer_->prepared = true; }
    asio::ip::tcp::endpoint remote_endpoint(std::error_code& ec) const {
        ec.clear();
        return peer_->endpoint;
    }

    template <class Handler>
    void async_handshake(Handler&& h) {
        const std::error_code ec = peer_->step("handshake");
        asio::post(peer_->io, [h = std::forward<Handler>(h), ec]() mutable { h(ec); });
    }

    template <class Handler>
    void async_wait_readable(Handler&& h) {
        ++peer_->waits;
        std::error_code ec = peer_->step("wait");
        if (!ec && peer_->closed) ec = asio::error::operation_aborted;
        const bool ready = !peer_->input.empty() || peer_->eof || peer_->read_error;
        if (ec || ready) {
            asio::post(peer_->io, [h = std::forward<Handler>(h), ec]() mutable { h(ec); });
            return;
        }
        peer_->wait_handler = std::forward<Handler>(h);
    }

    std::size_t read_some(char* data, std::size_t size, std::error_code& ec) {
        ++peer_->reads;
        if (peer_->shutdowns) peer_->used_after_shutdown = true;
        ec = peer_->step("read");
        if (ec) return 0;
        if (peer_->closed) {
            ec = asio::error::bad_descriptor;
            return 0;
        }
        if (peer_->input.empty()) {
            if (peer_->read_error) ec = peer_->read_error;
            else if (peer_->eof) ec = asio::error::eof;
            else ec = asio::error::would_block;
            return 0;
        }
        std::string& front = peer_->input.front();
        const std::size_t n = std::min(size, front.size());
        front.copy(data, n);
        front.erase(0, n);
        if (front.empty()) peer_->input.pop_front();
        return n;
    }

    template <class Handler>
    void async_write_some(const asio::const_buffer* buffers, std::size_t count, Handler&& h) {
        ++peer_->writes;
        if (peer_->shutdowns) peer_->used_after_shutdown = true;
        std::error_code ec = peer_->step("write");
        if (!ec && peer_->closed) ec = asio::error::bad_descriptor;
        if (ec) {
            asio::post(peer_->io, [h = std::forward<Handler>(h), ec]() mutable { h(ec, 0); });
            return;
        }
        if (peer_->hold_writes) {
            peer_->write_pending.assign(buffers, buffers + count);
            peer_->write_handler = std::forward<Handler>(h);
            return;
        }
        std::string bytes;
        for (std::size_t i = 0; i < count && bytes.size() < peer_->write_limit; ++i) {
            const std::size_t take = std::min(buffers[i].size(), peer_->write_limit - bytes.size());
            bytes.append(static_cast<const char*>(buffers[i].data()), take);
        }
        const std::size_t n = bytes.size();
        peer_->written += bytes;
        asio::post(peer_->io, [h = std::forward<Handler>(h), n]() mutable { h(std::error_code{}, n); });
    }

    // The graceful end (TLS: close_notify): counted; completes at once.
    template <class Handler>
    void async_shutdown(Handler&& h) {
        ++peer_->shutdowns;
        asio::post(peer_->io, [p = peer_, h = std::forward<Handler>(h)]() mutable {
            p->shutdown_done = true;
            h();
        });
    }

    void close() noexcept {
        if (peer_->closed) return;
        peer_->closed_after_shutdown = peer_->shutdown_done;
        peer_->closed = true;
        if (peer_->wait_handler) {
            auto h = std::move(peer_->wait_handler);
            peer_->wait_handler = nullptr;
            asio::post(peer_->io, [h = std::move(h)] { h(asio::error::operation_aborted); });
        }
        if (peer_->write_handler) { // the held write never reached the peer
            auto h = std::move(peer_->write_handler);
            peer_->write_handler = nullptr;
            peer_->write_pending.clear();
            asio::post(peer_->io, [h = std::move(h)] { h(asio::error::operation_aborted, 0); });
        }
    }

    static bool is_end_of_stream(const std::error_code& ec) noexcept { return ec == asio::error::eof; }
    static void refuse(asio::ip::tcp::socket&, std::string_view) noexcept {}

private:
    std::shared_ptr<fake_peer> peer_;
};

static_assert(switchboard::check_stream_policy<fake_stream>(), "fake_stream is a Stream policy");

} // namespace sbtest
