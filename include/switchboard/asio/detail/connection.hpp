/// @file
/// @brief `switchboard::detail::connection<Stream, Protocol>`: the connection engine. One object
/// per connection, a `transport` of the router; it wires together the stream (Stream policy,
/// asio/stream.hpp), the wire protocol (Protocol policy, protocol/policy.hpp), the lifecycle
/// state machine (lifecycle.hpp), the output pump and write loop (output_pump.hpp) and the input
/// driver (input_driver.hpp). Internal: users see it through `basic_tcp_server`.
///
/// Threads and locks. Stream operations run on the connection's strand (the stream's executor).
/// `deliver()` and `close()` run on whichever thread holds the router, so the output side and the
/// lifecycle sit behind a small output mutex. Lock order: router mutex -> output mutex ->
/// connections mutex, never the reverse. Router calls (open, input, timeouts, release) take the
/// router mutex; the hooks run outside it.
#pragma once

#include "../../payload.hpp"
#include "../../protocol/policy.hpp"
#include "../../router.hpp"
#include "../../session_id.hpp"
#include "../../transport.hpp"
#include "../server_options.hpp"
#include "../stream.hpp"
#include "input_driver.hpp"
#include "lifecycle.hpp"
#include "output_pump.hpp"
#include "server_state.hpp"
#include "timeout_sweep.hpp"

#include "../backend.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace switchboard::detail {

/// @brief Where the connection's router session stands. Guarded by the router mutex.
enum class session_state : std::uint8_t {
    none,     ///< Not opened yet (stream or protocol handshake under way).
    open,     ///< `router::open_session()` returned it; the protocol is bound to it.
    released, ///< `router::close_session()` was called (or the session never opened and never will).
};

/// @brief One connection: a router session driven by `Protocol` over `Stream`.
template <class Stream, class Protocol>
class connection final : public transport,
                         public std::enable_shared_from_this<connection<Stream, Protocol>>,
                         public write_loop<connection<Stream, Protocol>>,
                         public input_driver<connection<Stream, Protocol>, Stream> {
    static_assert(check_stream_policy<Stream>(), "the Stream policy is complete");
    static_assert(protocol::check_protocol_policy<Protocol>(), "the Protocol policy is complete");

public:
    /// @brief The server state type.
    using state_type = server_state<Stream, Protocol>;

    /// @param server the server's state (kept alive by the connection).
    /// @param stream the connected stream, moved in.
    /// @param peer the remote endpoint (its address is counted by the admission).
    connection(std::shared_ptr<state_type> server, Stream&& stream, const net::ip::tcp::endpoint& peer)
        : server_(std::move(server)), pump_(server_->options.copy_max_bytes, &server_->write_pool),
          stream_(std::move(stream)), peer_(peer), connected_at_(std::chrono::steady_clock::now()),
          last_input_(connected_at_.time_since_epoch().count()), protocol_(server_->protocol) {}

    // ---- transport: called by the router, under the router mutex, on any thread -----------------

    /// @brief Queues `bytes` (never writes here); past the output bound the connection is cut as
    /// a slow consumer.
    delivery deliver(const payload& bytes) noexcept override {
        std::lock_guard<std::mutex> lock(out_mutex_);
        if (!life_.accepts_output()) return delivery::closed;
        switch (pump_.offer(bytes, server_->options.max_output_bytes)) {
        case output_pump::offer_result::queued: return delivery::queued;
        case output_pump::offer_result::start_writer: post([self = self()] { self->start_write(); }); return delivery::queued;
        case output_pump::offer_result::over_bound: break;
        }
        server_->slow_consumers.fetch_add(1, std::memory_order_relaxed);
        close_locked(close_mode::abort, disconnect_reason::slow_consumer, {});
        return delivery::slow_consumer;
    }

    /// @brief Queues an ephemeral payload (typing) unless the output is backed up (more than
    /// half of `max_output_bytes` waits: `delivery::backed_up`) or the connection is closing
    /// (`delivery::closed`, from `draining` on: a closing client has no use for it). Either way
    /// the payload is dropped and nothing else happens: an ephemeral event never counts as a
    /// slow consumer and never costs the recipient its connection, even when it would not fit
    /// under the bound (`backed_up` then too).
    delivery deliver_ephemeral(const payload& bytes) noexcept override {
        std::lock_guard<std::mutex> lock(out_mutex_);
        if (life_.input_stopped()) return delivery::closed;
        const std::size_t bound = server_->options.max_output_bytes;
        if (!pump_.backed_up(bound)) {
            switch (pump_.offer(bytes, bound)) {
            case output_pump::offer_result::queued: return delivery::queued;
            case output_pump::offer_result::start_writer:
                post([self = self()] { self->start_write(); });
                return delivery::queued;
            case output_pump::offer_result::over_bound: break;
            }
        }
        ephemeral_refused_.store(true, std::memory_order_relaxed); // after_write() tells the router
        return delivery::backed_up;
    }

    /// @brief A kick (`router::disconnect()`): reason `closed`.
    void close(close_mode mode) noexcept override { close_request(mode, disconnect_reason::closed); }

    // ---- the close path --------------------------------------------------------------------------

    /// @brief The one way to end a connection, from any thread (see lifecycle.hpp for the states).
    void close_request(close_mode mode, disconnect_reason why, const std::error_code& ec = {}) noexcept {
        std::lock_guard<std::mutex> lock(out_mutex_);
        close_locked(mode, why, ec);
    }

    /// @brief `close_request()` with the output mutex held.
    void close_locked(close_mode mode, disconnect_reason why, const std::error_code& ec) noexcept {
        switch (life_.request_close(mode, why, ec)) {
        case lifecycle_action::none: return;
        case lifecycle_action::drain: {
            drain_started_.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                                 std::memory_order_relaxed);
            const payload bye = protocol_.farewell(); // the protocol's last words, if it has any
            bool wake = false;
            if (!bye.empty() &&
                pump_.offer(bye, server_->options.max_output_bytes) == output_pump::offer_result::start_writer)
                wake = true;
            else
                wake = pump_.claim_writer();
            if (wake) post([self = self()] { self->start_write(); }); // an empty queue ends the drain
            return;
        }
        case lifecycle_action::cut:
            if (!pump_.writing()) pump_.drop(); // else the write loop drops it when the write returns
            post([self = self()] { self->finish(); });
            return;
        }
    }

    /// @brief The end of every close: on the strand, closes the stream, ends input, releases the
    /// session (once) and forgets the connection.
    void finish() {
        stream_.close();
        (void)this->end_of_input();
        release_session(disconnect_reason::error);
        {
            std::lock_guard<std::mutex> lock(out_mutex_);
            life_.finished();
        }
        if (server_->forget(this, peer_.address()))
            net::post(server_->acceptor.get_executor(), [s = server_] { s->stop_timer.cancel(); });
    }

    /// @brief The end of a drain (the writer found nothing left): the stream's graceful close
    /// (TLS: close_notify, bounded by the stream's own deadline), then `finish()`. A stream without
    /// `async_shutdown` (plain TCP) goes to `finish()` at once. Aborts never come here.
    void finish_gracefully() {
        if constexpr (has_async_shutdown<Stream>::value) {
            try {
                stream_.async_shutdown([self = self()] { self->finish(); });
                return;
            } catch (...) { // out of memory: close without it
            }
        }
        finish();
    }

    // ---- start, handshake, session ---------------------------------------------------------------

    /// @brief Socket options, then the stream's handshake; runs on the strand.
    void start() {
        stream_.prepare(server_->options);
        stream_.async_handshake([self = self()](const net_error_code& ec) { self->on_stream_ready(ec); });
    }

    /// @brief The stream is ready (TLS handshake done, or none): the connection becomes a router
    /// session — or, for a protocol with a handshake, starts reading it. A failed handshake, or a
    /// connection closed meanwhile (register timeout, stop), never becomes a session.
    void on_stream_ready(const net_error_code& ec) {
        if (ec) return close_request(close_mode::abort, disconnect_reason::error, ec);
        if constexpr (!Protocol::has_handshake) {
            bool opened = false;
            {
                std::lock_guard<std::mutex> lock(*server_->router_mutex);
                opened = open_session_locked();
            }
            if (!opened) return;
            connected();
        } else if (life_.state() != lifecycle_state::accepted) {
            return;
        }
        this->continue_reading();
    }

    // ---- called by the input driver (strand) -----------------------------------------------------

    /// @brief Hands input to the protocol under the router mutex: `bytes` just read, or (resume)
    /// what the protocol held when it paused. The protocol stops after any message that leaves the
    /// output backed up or cut, so one read's worth of commands cannot pile up replies past the bound.
    /// Bytes just read are first stamped with `router::touch()` (Unix ms, read when they arrived):
    /// "last seen" is when a line was received, even when a pause processes it later. The clock
    /// is read under the router mutex, here and for every tick, so the router's time never goes
    /// back between calls (unless the system clock itself is set back).
    protocol::input_result process_input(std::string_view bytes, bool resume) {
        const auto now = std::chrono::steady_clock::now().time_since_epoch();
        if (!resume) last_input_.store(now.count(), std::memory_order_relaxed);
        protocol::input_result r = protocol::input_result::keep_reading;
        bool just_opened = false;
        {
            std::lock_guard<std::mutex> lock(*server_->router_mutex);
            if constexpr (Protocol::has_handshake) {
                if (session_ == session_state::none) {
                    protocol::handshake_result h;
                    try {
                        h = protocol_.handshake(bytes, server_->protocol, [this](const payload& p) { (void)deliver(p); });
                    } catch (const std::bad_alloc&) {
                        h.outcome = protocol::handshake_result::kind::refused;
                    }
                    if (h.outcome == protocol::handshake_result::kind::more) return r;
                    if (h.outcome == protocol::handshake_result::kind::refused || !open_session_locked()) {
                        close_request(close_mode::after_flush, disconnect_reason::error);
                        return protocol::input_result::quit;
                    }
                    just_opened = true;
                    bytes.remove_prefix(std::min(h.consumed, bytes.size()));
                }
            }
            if (session_ == session_state::open) {
                const std::size_t bound = server_->options.max_output_bytes;
                const auto pause = [this, bound] { return life_.cut() || pump_.backed_up(bound); };
                try {
                    if (!resume) server_->routes.touch(id_, unix_time_ms(server_->options));
                    r = resume ? protocol_.resume(now, pause) : protocol_.on_input(bytes, now, pause);
                } catch (const std::bad_alloc&) {
                    r = protocol::input_result::quit;
                }
                if (!registered_.load(std::memory_order_relaxed) && server_->routes.is_registered(id_))
                    registered_.store(true, std::memory_order_relaxed);
            }
        }
        if (just_opened) connected();
        return r;
    }

    /// @brief Input is over: a half-closed peer's unfinished last message is processed when the
    /// end was clean (`clean_end`: EOF; not a TLS stream cut without close_notify, which may be
    /// a truncation), then the connection drains (or is cut after an error) and the session is
    /// released (its rooms are told).
    ///
    /// An end of input the peer sent (EOF, or a TLS stream ending without close_notify) is
    /// received input: it is stamped with `router::touch()` first. A socket error, a timeout or a
    /// stop is not: a dead peer's "last seen" stays the time of its last line, never the time it
    /// was reaped.
    void end_input(disconnect_reason reason, const std::error_code& ec, bool clean_end = true) {
        if (!this->end_of_input()) return;
        if (reason == disconnect_reason::peer_closed) {
            std::lock_guard<std::mutex> lock(*server_->router_mutex);
            if (session_ == session_state::open) {
                try {
                    server_->routes.touch(id_, unix_time_ms(server_->options));
                    if (clean_end) protocol_.on_end_of_input();
                } catch (const std::bad_alloc&) {
                }
            }
        }
        close_request(reason == disconnect_reason::error ? close_mode::abort : close_mode::after_flush, reason, ec);
        release_session(reason);
    }

    /// @brief The lifecycle left `open`: input is no longer processed.
    [[nodiscard]] bool input_stopped() const noexcept { return life_.input_stopped(); }
    /// @brief More than half the output bound waits (backpressure on the client's own input).
    [[nodiscard]] bool output_backed_up() const noexcept { return pump_.backed_up(server_->options.max_output_bytes); }

    // ---- called by the write loop (strand) -------------------------------------------------------

    /// @brief A write completed with `left` bytes still charged: resume paused input at a quarter.
    /// A refused `deliver_ephemeral()` is followed, once the output is down to a quarter, by
    /// `router::output_drained()` (an at-most-once replay goes on from where it stopped).
    void after_write(std::size_t left) {
        const bool drained = output_pump::may_resume(left, server_->options.max_output_bytes);
        this->output_drained_to(drained);
        if (drained && ephemeral_refused_.exchange(false, std::memory_order_relaxed))
            post([self = self()] {
                std::lock_guard<std::mutex> lock(*self->server_->router_mutex);
                if (self->session_ != session_state::open) return;
                try {
                    self->server_->routes.output_drained(self->id_);
                } catch (const std::bad_alloc&) {
                    // the rest of the replay stays stored for the next registration
                }
            });
    }

    // ---- the timeout sweep (acceptor strand) -----------------------------------------------------

    /// @brief Closes the connection, after the protocol's notice, when it has been unregistered or
    /// idle too long; cuts it when it has been closing gracefully for longer than `drain_timeout`
    /// without flushing. Never concurrently with itself.
    void check_timeouts(std::chrono::steady_clock::time_point now) {
        const auto drain_started = drain_started_.load(std::memory_order_relaxed);
        if (drain_started != 0) { // closing gracefully: only the drain deadline is left to check
            const auto limit = server_->options.drain_timeout;
            if (limit.count() > 0 &&
                now - std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(drain_started)) >= limit)
                close_request(close_mode::abort, disconnect_reason::slow_consumer); // the first reason stays
            return;
        }
        if (timed_out_) return;
        if constexpr (Protocol::has_handshake) {
            if (!opened_.load(std::memory_order_relaxed)) { // the handshake is still under way
                const auto limit = server_->options.handshake_timeout;
                if (limit.count() <= 0 || now - connected_at_ < limit) return;
                timed_out_ = true;
                server_->handshake_timeouts.fetch_add(1, std::memory_order_relaxed);
                close_request(close_mode::abort, disconnect_reason::error); // no session: no hook, no notice
                return;
            }
        }
        const std::chrono::steady_clock::time_point last{
            std::chrono::steady_clock::duration(last_input_.load(std::memory_order_relaxed))};
        const auto due = timeout_due(registered_.load(std::memory_order_relaxed), connected_at_, last, now,
                                     server_->options);
        if (!due) return;
        {
            std::lock_guard<std::mutex> lock(*server_->router_mutex);
            if (session_ == session_state::released) return;
            const bool open = session_ == session_state::open;
            // Registered some other way than through this connection's input (with_router)?
            if (*due == protocol::session_notice::register_timeout && open && server_->routes.is_registered(id_)) {
                registered_.store(true, std::memory_order_relaxed);
                return;
            }
            timed_out_ = true;
            if (open) protocol_.notify(server_->routes, id_, *due);
        }
        const bool reg = *due == protocol::session_notice::register_timeout;
        (reg ? server_->register_timeouts : server_->idle_timeouts).fetch_add(1, std::memory_order_relaxed);
        close_request(close_mode::after_flush,
                      reg ? disconnect_reason::register_timeout : disconnect_reason::idle_timeout);
    }

    // ---- accessors for the policies and the CRTP parts -------------------------------------------

    /// @brief The stream.
    Stream& stream() noexcept { return stream_; }
    /// @brief The server's options.
    [[nodiscard]] const tcp_server_options& options() const noexcept { return server_->options; }
    /// @brief A shared pointer to this connection (keeps it alive in handlers).
    std::shared_ptr<connection> self() { return this->shared_from_this(); }
    /// @brief The output mutex (guards the pump and the lifecycle).
    std::mutex& out_mutex() noexcept { return out_mutex_; }
    /// @brief The output pump.
    output_pump& pump() noexcept { return pump_; }
    /// @brief The lifecycle.
    lifecycle& life() noexcept { return life_; }
    /// @brief The peer's endpoint.
    [[nodiscard]] const net::ip::tcp::endpoint& peer() const noexcept { return peer_; }
    /// @brief Runs `f` on the strand, later. Best effort when memory runs out.
    template <class F>
    void post(F&& f) noexcept {
        try {
            net::post(stream_.get_executor(), std::forward<F>(f));
        } catch (...) {
        }
    }

private:
    // accepted -> open, then the session: the one call site of router::open_session(). Router
    // mutex held. False when the connection was closed first (or memory ran out).
    bool open_session_locked() {
        {
            std::lock_guard<std::mutex> lock(out_mutex_);
            if (!life_.open()) return false;
        }
        try {
            id_ = server_->routes.open_session(*this, protocol_.format());
            session_ = session_state::open;
            opened_.store(true, std::memory_order_relaxed);
            protocol_.open(server_->routes, id_, server_->protocol);
        } catch (const std::bad_alloc&) {
            close_request(close_mode::abort, disconnect_reason::error);
            return session_ == session_state::open;
        }
        return true;
    }

    void connected() {
        if (server_->on_connect) server_->on_connect(tcp_connection_info{id_, peer_, {}, {}, {}});
    }

    // Closes the router session once; afterwards the router never calls this transport again.
    // The router's clock is brought up to now first, so that the close (a presence grace period's
    // start) is stamped with the time it happened, not the last sweep's.
    void release_session(disconnect_reason fallback) {
        std::string user;
        {
            std::lock_guard<std::mutex> lock(*server_->router_mutex);
            const bool was_open = session_ == session_state::open;
            session_ = session_state::released;
            if (!was_open) return; // the handshake never completed: no session, no hook
            user = std::string(server_->routes.name_of(id_));
            try {
                server_->routes.tick(unix_time_ms(server_->options));
            } catch (const std::bad_alloc&) { // the close must happen anyway; the next sweep ticks
            }
            (void)server_->routes.close_session(id_);
        }
        disconnect_reason why = fallback;
        std::error_code error;
        {
            std::lock_guard<std::mutex> lock(out_mutex_);
            why = life_.reason_or(fallback);
            error = life_.error();
        }
        if (server_->on_disconnect) server_->on_disconnect(tcp_connection_info{id_, peer_, user, why, error});
    }

    // Declared first so that it is destroyed last: the pump gives its chunks back to the server's
    // pool when it is destroyed, and this may be the last reference to the server's state.
    std::shared_ptr<state_type> server_;

    // What deliver() touches comes next, together in the object's first cache lines: a fan-out
    // visits one connection per member.
    std::mutex out_mutex_; // guards pump_ and life_ (their atomics are read without it)
    output_pump pump_;
    lifecycle life_;

    Stream stream_;                                          // strand only
    const net::ip::tcp::endpoint peer_;
    std::atomic<bool> registered_{false};                    // the session holds a name (kept while open)
    std::atomic<bool> opened_{false};                        // the router session was opened (handshake done)
    std::atomic<bool> ephemeral_refused_{false};             // a deliver_ephemeral() met a full output
    bool timed_out_ = false;                                 // sweep only (acceptor strand)
    session_state session_ = session_state::none;            // guarded by the router mutex
    const std::chrono::steady_clock::time_point connected_at_;
    std::atomic<std::chrono::steady_clock::rep> last_input_; // time of the last read, for idle_timeout
    std::atomic<std::chrono::steady_clock::rep> drain_started_{0}; // entered draining (0: not), for drain_timeout
    session_id id_;                                          // written once, under the router mutex
    Protocol protocol_;                                      // guarded by the router mutex
};

} // namespace switchboard::detail
