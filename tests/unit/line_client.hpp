// Unit-test fixture: one line-protocol client of a router, on an in-memory transport, with the
// time given as values (a fake clock: the test says when each line arrives).
#pragma once

#include <switchboard/in_memory_transport.hpp>
#include <switchboard/protocol/line_session.hpp>
#include <switchboard/router.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard_test {

class line_client {
public:
    explicit line_client(switchboard::router& r)
        : router_(&r), id_(r.open_session(transport_, switchboard::protocol::line_event_encoder::instance())),
          session_(r, id_, switchboard::protocol::line_session_options{}) {}
    ~line_client() { close(); }
    line_client(const line_client&) = delete;
    line_client& operator=(const line_client&) = delete;

    /// Sends one line received at `now_ms` (Unix ms), as the Asio adapter does: touch, then input.
    void say(std::string_view line, std::int64_t now_ms = -1) {
        if (now_ms >= 0) router_->touch(id_, now_ms);
        (void)session_.on_input(std::string(line) + "\n");
    }
    /// Every line received since the last call.
    std::vector<std::string> lines() { return transport_.take_lines(); }
    /// The connection goes (as an adapter reports it).
    void close() {
        if (!closed_) (void)router_->close_session(id_);
        closed_ = true;
    }
    [[nodiscard]] bool transport_closed() const noexcept { return transport_.closed(); }
    [[nodiscard]] switchboard::session_id id() const noexcept { return id_; }
    switchboard::in_memory_transport& transport() noexcept { return transport_; }

private:
    switchboard::router* router_;
    switchboard::in_memory_transport transport_;
    switchboard::session_id id_;
    switchboard::protocol::line_session session_;
    bool closed_ = false;
};

using lines_t = std::vector<std::string>;

/// Router options with session policy `p` (and `max` sessions per user under multi).
inline switchboard::router_options with_policy(switchboard::session_policy p, std::size_t max = 8) {
    switchboard::router_options o;
    o.sessions = p;
    o.max_sessions_per_user = max;
    return o;
}

/// Router options with the offline inbox `store` (and session policy `p`).
inline switchboard::router_options with_inbox(switchboard::inbox_store& store,
                                              switchboard::session_policy p = switchboard::session_policy::exclusive) {
    switchboard::router_options o;
    o.inbox = &store;
    o.sessions = p;
    return o;
}

} // namespace switchboard_test
