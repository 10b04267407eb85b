/// @file
/// @brief `switchboard::detail::input_driver`: a connection's input side (CRTP). Reads from the
/// stream — readiness-based into a per-thread buffer, or through the stream's own buffer (TLS) —
/// hands each chunk to the connection (which stamps it with `router::touch()` and runs the
/// protocol, both under the router mutex), pauses
/// while the connection's own output is backed up and resumes when it drained. Internal.
#pragma once

#include "../../protocol/policy.hpp"
#include "../server_options.hpp"

#include "../backend.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <system_error>

namespace switchboard::detail {

/// @brief Where a connection's input stands. Strand only.
enum class input_state : std::uint8_t {
    reading, ///< Waiting for, or reading, input.
    paused,  ///< Not reading: the connection's output is backed up (resumed by the write loop).
    over,    ///< Input ended (EOF, `/quit`, error, close); nothing is read any more.
};

/// @brief The read loop of a connection (CRTP).
///
/// `Connection` provides: `stream()`, `options()`, `self()`, `post(f)`, `input_stopped()` (the
/// lifecycle left `open`), `process_input(bytes, resume)` -> `protocol::input_result`,
/// `output_backed_up()` and `end_input(reason, error)`.
///
/// Thread safety: strand only.
template <class Connection, class Stream>
class input_driver {
public:
    /// @brief Starts or continues reading.
    void continue_reading() {
        if constexpr (Stream::readiness_reads) on_readable({});
        else read_async();
    }

    /// @brief Marks input as over; false if it already was.
    bool end_of_input() noexcept {
        if (input_ == input_state::over) return false;
        input_ = input_state::over;
        return true;
    }

    /// @brief True once input ended.
    [[nodiscard]] bool input_over() const noexcept { return input_ == input_state::over; }

    /// @brief The write loop's report: `left` bytes still wait. Resumes paused input (posted,
    /// so that the write loop goes on first) once at most a quarter of the bound waits.
    void output_drained_to(bool may_resume) {
        if (input_ != input_state::paused || !may_resume) return;
        input_ = input_state::reading;
        conn().post([self = conn().self()] { self->resume_input(); });
    }

    // Reads at most reads_per_wakeup chunks, then yields to other connections. A short read
    // means the socket is drained when the stream says so (Linux epoll): it waits at once,
    // without the read that would fail with EAGAIN. Elsewhere it reads until would_block, as
    // edge-triggered readiness needs.
    void on_readable(const net_error_code& wait_error) {
        Connection& c = conn();
        if (input_ == input_state::over) return;
        if (wait_error) return c.end_input(disconnect_reason::error, wait_error);
        const tcp_server_options& o = c.options();
        const std::size_t chunk = std::max<std::size_t>(o.read_chunk_bytes, 512);
        char* const buffer = read_buffer(chunk);
        for (unsigned i = 0; i < std::max(1u, o.reads_per_wakeup); ++i) {
            if (c.input_stopped()) return c.end_input(disconnect_reason::server_stop, {});
            net_error_code ec;
            const std::size_t n = c.stream().read_some(buffer, chunk, ec);
            if (ec == net::error::would_block || ec == net::error::try_again) return wait_readable();
            if (Stream::is_end_of_stream(ec)) return c.end_input(disconnect_reason::peer_closed, {}, ec == net::error::eof);
            if (ec) return c.end_input(disconnect_reason::error, ec);
            if (!read_on_after(c.process_input(std::string_view(buffer, n), false))) return;
            if (Stream::short_read_drains && n < chunk) return wait_readable();
        }
        c.post([self = c.self()] { self->on_readable({}); });
    }

    // Output drained after a pause: finish the held input, then read again.
    void resume_input() {
        if (input_ == input_state::over) return;
        if (read_on_after(conn().process_input({}, true))) continue_reading();
    }

    // Streams that read into their own buffer (TLS: records must go through its engine).
    void on_read(const net_error_code& ec, std::string_view bytes) {
        Connection& c = conn();
        if (input_ == input_state::over) return;
        if (c.input_stopped()) return c.end_input(disconnect_reason::server_stop, {});
        // An end other than a clean EOF (TLS: no close_notify) may be a truncation by someone on
        // the path: the unfinished last message is dropped, never processed as if complete.
        if (Stream::is_end_of_stream(ec)) return c.end_input(disconnect_reason::peer_closed, {}, ec == net::error::eof);
        if (ec) return c.end_input(disconnect_reason::error, ec);
        if (read_on_after(c.process_input(bytes, false))) read_async();
    }

private:
    Connection& conn() noexcept { return static_cast<Connection&>(*this); }

    void wait_readable() {
        conn().stream().async_wait_readable(
            [self = conn().self()](const net_error_code& ec) { self->on_readable(ec); });
    }

    void read_async() {
        conn().stream().async_read_some(
            [self = conn().self()](const net_error_code& ec, std::string_view bytes) { self->on_read(ec, bytes); });
    }

    // One read buffer per I/O thread, not per connection: an idle connection holds none.
    static char* read_buffer(std::size_t size) {
        thread_local std::unique_ptr<char[]> buffer;
        thread_local std::size_t capacity = 0;
        if (capacity < size) {
            buffer.reset(new char[size]);
            capacity = size;
        }
        return buffer.get();
    }

    // What every read path does once the protocol has had the input: end on /quit, pause while
    // the replies are backed up (the write loop resumes it once they drained). True: read on.
    bool read_on_after(protocol::input_result r) {
        if (r == protocol::input_result::quit) {
            conn().end_input(disconnect_reason::quit, {});
            return false;
        }
        if (r == protocol::input_result::paused || conn().output_backed_up()) {
            input_ = input_state::paused;
            return false;
        }
        return true;
    }

    input_state input_ = input_state::reading;
};

} // namespace switchboard::detail
