/// @file
/// @brief The Protocol policy of the connection engine (asio/detail/connection.hpp): what a wire
/// protocol provides so that one engine serves the line protocol today and WebSocket later.
/// Sans-I/O: no socket, no Asio, no thread; the engine moves the bytes.
///
/// A Protocol policy `P` is a class; the engine keeps one `P` object per connection (created at
/// accept, before any router session exists) and one `P::config` per server. Required members
/// (checked by `protocol::check_protocol_policy<P>()` where the compiler can check them):
///
/// | member | what the engine does with it |
/// |---|---|
/// | `using config = ...;` | server-wide protocol state: limits, greeting, counters. Constructed once per server from the server's options: `P::config(const Options&)` (reads `max_line`, `rate`, `greeting` or whatever it needs). Guarded by the router's serialisation. |
/// | `const event_encoder& format() const` | the wire format of events for this connection's router session, asked once when the session is opened (after the handshake: WebSocket picks it from the negotiated subprotocol; line: always `line_event_encoder::instance()`, a static member works). The object must outlive the router session. |
/// | `static std::string_view refusal(refusal_reason r)` | bytes written, best effort, to a connection refused by the connection limits before it is closed; empty for none. |
/// | `static constexpr bool has_handshake` | true: input goes to `handshake()` until it accepts, and only then is a router session opened (WebSocket: the HTTP upgrade). |
/// | `explicit P(config&) noexcept` | per-connection state; must not allocate (an idle connection should cost little). |
/// | `template <class Emit> handshake_result handshake(std::string_view bytes, config&, Emit&& emit)` | only if `has_handshake`: consumes the opening bytes; `emit(const payload&)` queues raw bytes (the 101 reply, or a 400 before `refused`). |
/// | `void open(router&, session_id, config&)` | the router session exists: bind to it and greet. Under the router's serialisation; may throw `std::bad_alloc`. |
/// | `template <class Pause> input_result on_input(std::string_view bytes, std::chrono::nanoseconds now, Pause&& pause)` | every byte read once the session is open; `pause()` says the output is backed up: stop after the current message and hold the rest. |
/// | `template <class Pause> input_result resume(std::chrono::nanoseconds now, Pause&& pause)` | output drained after `paused`: continue with the held input. |
/// | `void on_end_of_input()` | the peer half-closed: process an unfinished last message if the protocol allows it. |
/// | `void notify(router&, session_id, session_notice)` | tell the client why the server is about to close it (a timeout), through `router::send()`. |
/// | `payload farewell() const` | bytes queued as the last output of a graceful close (WebSocket: a close frame once the upgrade was accepted); empty for none. Called under the connection's output mutex, not the router's: it may read only state fixed at `open()` or atomics. |
/// | `static auto counters(const config&)` | a value with `rate_limited` and `line_too_long` (monotonic totals) for the server's counters. |
///
/// What a WebSocket policy would implement: `has_handshake = true`; `handshake()` parses the
/// HTTP upgrade request (picohttpparser style: consumed / partial / error), emits the `101
/// Switching Protocols` reply and returns `accepted` with the bytes it consumed (the rest are the
/// first frames); `on_input()` decodes frames (masking, fragmentation, ping/pong answered through
/// `router::send()`), turns text frames holding JSON commands into router calls; `format()` is a
/// JSON event encoder producing whole text frames; `farewell()` is a close frame (1001 going away);
/// `refusal()` an HTTP 503 reply; `notify()` a close frame with code 1008 (policy violation) and
/// the reason. The engine, the streams (plain, TLS) and every limit stay as they are.
#pragma once

#include "../event.hpp"
#include "../payload.hpp"
#include "../router.hpp"
#include "../session_id.hpp"
#include "line_session.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <utility>

namespace switchboard::protocol {

/// @brief Why the connection limits refused a connection (see `P::refusal()`).
enum class refusal_reason : std::uint8_t {
    server_full, ///< `max_connections` reached.
    per_address, ///< `max_connections_per_address` reached for the peer's address.
};

/// @brief Why the server is about to close a session it did not hear from (see `P::notify()`).
enum class session_notice : std::uint8_t {
    register_timeout, ///< No user name within the register timeout.
    idle_timeout,     ///< Registered, but silent for the idle timeout.
};

/// @brief What `P::handshake()` made of the opening bytes.
struct handshake_result {
    /// @brief The outcome.
    enum class kind : std::uint8_t {
        more,     ///< Not complete: give me more bytes (all of `bytes` were kept or consumed).
        accepted, ///< Complete: open the router session; `consumed` bytes were the handshake.
        refused,  ///< Invalid: flush what was emitted, then close.
    };
    kind outcome = kind::more; ///< See `kind`.
    std::size_t consumed = 0;  ///< With `accepted`: bytes of the input that were the handshake.
};

namespace detail {

template <class P, class = void>
struct has_format : std::false_type {};
template <class P>
struct has_format<P, std::void_t<decltype(std::declval<const P&>().format())>>
    : std::is_same<decltype(std::declval<const P&>().format()), const event_encoder&> {};

template <class P, class = void>
struct has_refusal : std::false_type {};
template <class P>
struct has_refusal<P, std::void_t<decltype(P::refusal(refusal_reason::server_full))>>
    : std::is_convertible<decltype(P::refusal(refusal_reason::server_full)), std::string_view> {};

template <class P, class = void>
struct has_handshake_flag : std::false_type {};
template <class P>
struct has_handshake_flag<P, std::void_t<decltype(P::has_handshake)>>
    : std::is_same<std::remove_cv_t<decltype(P::has_handshake)>, bool> {};

struct no_pause {
    bool operator()() const noexcept { return false; }
};

template <class P, class = void>
struct has_session_calls : std::false_type {};
template <class P>
struct has_session_calls<
    P, std::void_t<decltype(std::declval<P&>().open(std::declval<router&>(), session_id{},
                                                     std::declval<typename P::config&>())),
                   decltype(std::declval<P&>().on_input(std::string_view{}, std::chrono::nanoseconds{},
                                                        std::declval<no_pause&>())),
                   decltype(std::declval<P&>().resume(std::chrono::nanoseconds{}, std::declval<no_pause&>())),
                   decltype(std::declval<P&>().on_end_of_input()),
                   decltype(std::declval<P&>().notify(std::declval<router&>(), session_id{},
                                                      session_notice::idle_timeout)),
                   decltype(std::declval<const P&>().farewell())>>
    : std::is_same<decltype(std::declval<P&>().on_input(std::string_view{}, std::chrono::nanoseconds{},
                                                         std::declval<no_pause&>())),
                   input_result> {};

template <class P, class = void>
struct has_counters : std::false_type {};
template <class P>
struct has_counters<P, std::void_t<decltype(P::counters(std::declval<const typename P::config&>()).rate_limited),
                                   decltype(P::counters(std::declval<const typename P::config&>()).line_too_long)>>
    : std::true_type {};

} // namespace detail

/// @brief Compile-time check of a Protocol policy (see the table at the top of this file); the
/// engine calls it once per instantiation. Each failure reads as the rule that was broken.
/// @return true (the checks are `static_assert`s).
template <class P>
constexpr bool check_protocol_policy() noexcept {
    static_assert(detail::has_format<P>::value,
                  "a Protocol names its connection's event wire format: const event_encoder& format() const");
    static_assert(detail::has_refusal<P>::value,
                  "a Protocol says what a refused connection is told: static std::string_view refusal(refusal_reason)");
    static_assert(detail::has_handshake_flag<P>::value,
                  "a Protocol says whether it has a handshake: static constexpr bool has_handshake");
    static_assert(std::is_nothrow_constructible_v<P, typename P::config&>,
                  "a Protocol's per-connection state is built from its config& without throwing");
    static_assert(detail::has_session_calls<P>::value,
                  "a Protocol drives a router session: open, on_input(bytes, now, pause) -> input_result, "
                  "resume, on_end_of_input, notify, farewell");
    static_assert(detail::has_counters<P>::value,
                  "a Protocol reports its refusals: static counters(const config&) with rate_limited and line_too_long");
    return true;
}

} // namespace switchboard::protocol
