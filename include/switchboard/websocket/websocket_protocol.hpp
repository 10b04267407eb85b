/// @file
/// @brief `switchboard::websocket::websocket_protocol`: WebSocket (RFC 6455) as a Protocol policy
/// of the connection engine (protocol/policy.hpp), with HTTP on the same listener: `GET /` serves
/// a page, `/healthz` and `/metrics` answer, `/ws` upgrades, anything else is 404. Sans-I/O: the
/// engine (asio/) moves the bytes, over plain TCP (`ws://`) or TLS (`wss://`), with the same
/// limits, timeouts, counters, backpressure and slow-consumer policy as the line protocol.
///
/// The data path, one header per step: the HTTP request head (protocol/http_request.hpp) and the
/// upgrade (websocket/handshake.hpp) -> frames (protocol/websocket_frame.hpp) -> a command, from
/// a JSON object (websocket/json_format.hpp, subprotocol `switchboard.json`) or a line
/// (protocol/line.hpp, subprotocol `switchboard.line`) -> `protocol::command_session` (the same
/// semantics as every format) -> the router. Events leave as one text frame each, encoded once
/// per format and shared by every recipient of that format (server frames are unmasked, so one
/// frame, header and body, serves every WebSocket member of a room).
///
/// docs/protocol.md, "WebSocket" says what clients see; docs/design.md, "The WebSocket transport"
/// why it is built this way.
#pragma once

#include "../event.hpp"
#include "../payload.hpp"
#include "../protocol/command_session.hpp"
#include "../protocol/http_request.hpp"
#include "../protocol/http_response.hpp"
#include "../protocol/line.hpp"
#include "../protocol/policy.hpp"
#include "../protocol/websocket_frame.hpp"
#include "../router.hpp"
#include "../session_id.hpp"
#include "handshake.hpp"
#include "json_format.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace switchboard::websocket {

/// @brief The frame step of the JSON format over WebSocket: each JSON text becomes one unmasked
/// text frame (RFC 6455 section 5.6). See `basic_json_format`.
struct text_frame {
    /// @brief One text frame around `body`. @throws std::bad_alloc when memory runs out.
    [[nodiscard]] static payload frame(std::string_view body) { return protocol::encode_websocket_text(body); }
    /// @brief One text frame of a body of `body_size` bytes that `fill(char*)` writes in place,
    /// after the header: the JSON is written once, into the frame. @throws std::bad_alloc when
    /// memory runs out.
    template <class Fill>
    [[nodiscard]] static payload build(std::size_t body_size, Fill&& fill) {
        return payload::build(protocol::websocket_header_size(body_size) + body_size, [&](char* out) {
            fill(out + protocol::write_websocket_header(out, protocol::websocket_opcode::text, body_size));
        });
    }
};

/// @brief Events and replies of a `switchboard.json` session: one JSON object per text frame.
using json_frames = basic_json_format<text_frame>;

/// @brief Events of a `switchboard.line` session: each line of the line protocol (the same bytes
/// as over TCP, without the LF) as one text frame. Refuses what the line encoder refuses.
///
/// Thread safety: stateless; one instance may be shared by any number of routers and threads.
class line_frame_events final : public event_encoder {
public:
    /// @brief `line_event_encoder`'s line for `e`, LF removed, in one text frame.
    /// @param e the event; read during the call only.
    /// @return the frame; empty when the line encoder refuses `e` (see `event_encoder`).
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] payload encode(const event& e) const override {
        return frame_line(protocol::line_event_encoder::instance().encode(e));
    }
    /// @brief The process-wide instance: the format to name in `router::open_session()`.
    [[nodiscard]] static const line_frame_events& instance() noexcept {
        static const line_frame_events encoder;
        return encoder;
    }
    /// @brief A line of the line protocol (LF-terminated, or empty) as one text frame without
    /// its LF; empty for an empty line. @throws std::bad_alloc when memory runs out.
    [[nodiscard]] static payload frame_line(const payload& line) {
        std::string_view v = line.view();
        if (v.empty()) return {};
        if (v.back() == '\n') v.remove_suffix(1);
        return protocol::encode_websocket_text(v);
    }
};

/// @brief Replies of a `switchboard.line` session: each reply line as one text frame (no LF).
///
/// Thread safety: stateless; one instance may be shared by any number of sessions and threads.
class line_frame_replies final : public protocol::reply_encoder {
public:
    /// @brief `line_reply_encoder`'s line for `r`, LF removed, in one text frame.
    /// @param r the reply; read during the call only.
    /// @return the frame. @throws std::bad_alloc when memory runs out.
    [[nodiscard]] payload encode(const protocol::reply& r) const override {
        return line_frame_events::frame_line(protocol::line_reply_encoder::instance().encode(r));
    }
    /// @brief The process-wide instance.
    [[nodiscard]] static const line_frame_replies& instance() noexcept {
        static const line_frame_replies encoder;
        return encoder;
    }
};

/// @brief Totals of the WebSocket sessions of one server (guarded by the router's serialisation).
struct websocket_counters {
    std::uint64_t rate_limited = 0;      ///< Commands refused with `rate-limited`.
    std::uint64_t message_too_big = 0;   ///< Connections closed with 1009 (a message over `max_message`),
                                         ///< and lines or texts over `max_line` answered `line-too-long`.
    std::uint64_t protocol_errors = 0;   ///< Connections closed with 1002, 1003 or 1007.
    std::uint64_t upgrades = 0;          ///< Upgrades accepted (sessions opened).
    std::uint64_t http_requests = 0;     ///< Requests answered without an upgrade (page, metrics, 404, refusals).
};

/// @brief The WebSocket transport as the engine's Protocol policy (see the file comment).
///
/// One object per connection: the HTTP request head until the upgrade, then the frame decoder and
/// the command state of one router session. Thread safety: none of its own; the engine calls it
/// under the router's serialisation, except construction and `farewell()` (which reads an atomic).
class websocket_protocol {
public:
    /// @brief Server-wide settings and totals. Built from the server's options (`max_line`,
    /// `rate`, `greeting`); the rest is set through `basic_tcp_server::protocol_config()` before
    /// `listen()`. Guarded by the router's serialisation.
    struct config {
        /// @brief From the server's options: `max_message` = `6 * max_line + 1024`, the command
        /// rate, the greeting (sent as notices after the upgrade).
        ///
        /// `max_message` lets every JSON command carrying a text of `max_line` bytes (the most
        /// the line protocol accepts) through, however a conforming encoder escapes it: RFC 8259
        /// allows `\uXXXX` for any character, and common encoders use it (Python's `json.dumps`
        /// for every non-ASCII character, Go's `encoding/json` for `<`, `>`, `&`), up to 6 bytes
        /// per byte of text; 1024 bytes hold the rest of a command (the type, a name and an id of
        /// at most 40 bytes, escaped alike, and the punctuation). The tests/websocket test
        /// "LongTexts" found 2 * max_line + 512 too small for those encoders.
        /// @throws std::bad_alloc when the greeting cannot be copied.
        template <class Options>
        explicit config(const Options& o) : greeting(o.greeting) {
            frames.max_message = 6 * o.max_line + 1024;
            session.rate = o.rate;
            session.rate_limited = &totals.rate_limited;
            session.max_text = o.max_line; // a JSON text is bounded as a line is over TCP
            session.too_long = &totals.message_too_big;
            max_line = o.max_line;
        }
        config(const config&) = delete; // session.rate_limited points into this object
        config& operator=(const config&) = delete;

        websocket_counters totals;                 ///< The counters of every connection.
        std::size_t max_line;                      ///< `switchboard.line`: longest line (`err line-too-long` past it).
        protocol::command_session_options session; ///< Rate limit of each session.
        protocol::websocket_decoder_options frames; ///< Message size bound (RFC 6455 close 1009 past it).
        protocol::http_request_options http;       ///< Bounds of a request head (size, header count).
        upgrade_options upgrade;                   ///< Path (`/ws`), allowed origins, subprotocols.
        std::string greeting;                      ///< Notices sent after the upgrade, one per LF-separated line.
        /// @brief The body of `GET /` (`text/html; charset=utf-8`); empty: `/` is 404.
        std::string page;
        /// @brief The body of `GET /metrics` (`text/plain; version=0.0.4`, the Prometheus text
        /// format, e.g. `prometheus_text()`); empty function: `/metrics` is 404. Called under the
        /// router's serialisation: it may read the router, and must not take its mutex.
        std::function<std::string()> metrics;
    };

    /// @brief The HTTP upgrade comes first: a router session is opened once it is accepted.
    static constexpr bool has_handshake = true;

    /// @brief What a connection over the connection limits is told: `503 Service Unavailable`.
    [[nodiscard]] static std::string_view refusal(protocol::refusal_reason) noexcept {
        return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Content-Length: 12\r\nConnection: close\r\n\r\nserver full\n";
    }

    /// @brief The refusal totals, for `tcp_server_counters` (`line_too_long` counts 1009 closes).
    [[nodiscard]] static protocol::line_counters counters(const config& c) noexcept {
        return {c.totals.rate_limited, c.totals.message_too_big};
    }

    /// @brief Per-connection state before the upgrade; allocates nothing.
    explicit websocket_protocol(config& c) noexcept : http_(c.http) {}

    /// @brief The event format of this connection's session: JSON or line frames, as negotiated.
    [[nodiscard]] const event_encoder& format() const noexcept {
        if (json_) return json_frames::instance();
        return line_frame_events::instance();
    }

    /// @brief Reads the HTTP request head and answers it: the upgrade on `config::upgrade.path`
    /// (`101`, then `accepted`), the page on `/`, `ok` on `/healthz`, the metrics on `/metrics`,
    /// 405 for another method on those, 404 for any other path, and the parser's or the
    /// upgrade's refusal (400, 403, 414, 426, 431, 505). Every answer but the 101 closes the
    /// connection (`refused`: the engine flushes it, then closes).
    /// @param bytes the bytes just read; kept (up to the head's bound) until the head is complete.
    /// @param c the server's config.
    /// @param emit `emit(const payload&)` queues bytes for the client.
    /// @return `more`, `accepted` (with the bytes of `bytes` the head used: the rest are frames)
    ///         or `refused`.
    /// @throws std::bad_alloc when memory runs out (the engine refuses the connection).
    template <class Emit>
    protocol::handshake_result handshake(std::string_view bytes, config& c, Emit&& emit) {
        using kind = protocol::handshake_result::kind;
        const std::size_t before = head_.size();
        head_.append(bytes.data(), bytes.size());
        protocol::http_request request;
        const protocol::http_parse_result parsed = http_.parse(head_, request);
        if (parsed.status == protocol::http_parse_status::partial) return {kind::more, bytes.size()};
        if (parsed.status == protocol::http_parse_status::error) {
            ++c.totals.http_requests;
            emit(protocol::http_error_response(parsed.error));
            return {kind::refused, 0};
        }
        if (c.upgrade.path.empty() || request.path == c.upgrade.path) {
            const upgrade_result up = validate_upgrade(request, c.upgrade);
            emit(up.response);
            if (!up.accepted()) {
                ++c.totals.http_requests;
                return {kind::refused, 0};
            }
            ++c.totals.upgrades;
            json_ = up.subprotocol == "switchboard.json";
            const std::size_t used = parsed.consumed - before; // the head ends in this read
            std::string().swap(head_);
            return {kind::accepted, used};
        }
        ++c.totals.http_requests;
        emit(answer_http(request, c));
        return {kind::refused, 0};
    }

    /// @brief The router session `id` exists: binds the command state and sends the greeting.
    /// @throws std::bad_alloc when memory runs out.
    void open(router& r, session_id id, config& c) {
        protocol::websocket_decoder_options frames = c.frames;
        if (json_) {
            frames.padding = json_read_padding;   // JSON is parsed where the decoder left it
            frames.defer_single_frame_utf8 = true; // simdjson's stage 1 checks the UTF-8 (feed())
        }
        decoder_.emplace(frames);
        if (json_) session_.emplace<json_session>(r, id, json_frames::instance(), c.session);
        else session_.emplace<protocol::command_session>(r, id, line_frame_replies::instance(), c.session);
        commands().greet(c.greeting);
        counters_ = &c.totals;
        max_line_ = c.max_line;
        upgraded_.store(true, std::memory_order_relaxed);
    }

    /// @brief Frames from the client: each message is applied; pings answered; a close answered
    /// and the input ended; a frame breaking RFC 6455 answered with the close code of the rule
    /// (1002, 1007, 1009) and the input ended. With flow control as the line protocol: after each
    /// message `pause()` is asked, and the rest of the input is held while the output is backed up,
    /// or while a registration waits for the cluster (`command_session::waiting()`; the lines of a
    /// line-mode message after such a `/register` are held too).
    /// @return `keep_reading`, `paused` (call `resume()`) or `quit` (flush, then close).
    /// @throws std::bad_alloc when memory runs out.
    template <class Pause>
    protocol::input_result on_input(std::string_view bytes, std::chrono::nanoseconds now, Pause&& pause) {
        if (!decoder_ || closing_.load(std::memory_order_relaxed)) return protocol::input_result::quit;
        if (!held_.empty() || !held_lines_.empty() || commands().waiting()) { // read while paused: keep the order
            held_.append(bytes.data(), bytes.size());
            return protocol::input_result::paused;
        }
        return feed(bytes, now, pause);
    }

    /// @brief Goes on with the input held by a `paused` result. While a registration waits for
    /// the cluster (`command_session::waiting()`) nothing is processed: `paused` again while
    /// input is held, else `keep_reading`.
    /// @throws std::bad_alloc when memory runs out.
    template <class Pause>
    protocol::input_result resume(std::chrono::nanoseconds now, Pause&& pause) {
        if (!decoder_ || closing_.load(std::memory_order_relaxed)) return protocol::input_result::quit;
        if (commands().waiting())
            return held_.empty() && held_lines_.empty() ? protocol::input_result::keep_reading
                                                        : protocol::input_result::paused;
        if (!held_lines_.empty()) { // the rest of a line-mode message, after its /register
            const std::string lines = std::move(held_lines_);
            held_lines_.clear();
            if (!apply(lines, now)) return close_with(protocol::websocket_close_code::normal, {});
            if (commands().waiting() || pause()) return protocol::input_result::paused;
        }
        const std::string rest = std::move(held_);
        held_.clear();
        return feed(rest, now, pause);
    }

    /// @brief The peer closed its side without a close frame: nothing more is applied.
    void on_end_of_input() noexcept {
        if (decoder_) commands().end();
    }

    /// @brief Tells the client why it is about to be closed: a close frame with 1008 (policy
    /// violation) and `register timeout` or `idle timeout`. Best effort when memory runs out.
    void notify(router& r, session_id id, protocol::session_notice n) noexcept {
        try {
            if (!closing_.exchange(true, std::memory_order_relaxed))
                (void)r.send(id, protocol::encode_websocket_close(
                                     protocol::websocket_close_code::policy_violation,
                                     n == protocol::session_notice::register_timeout ? "register timeout" : "idle timeout"));
        } catch (const std::bad_alloc&) {
        }
    }

    /// @brief The last output of a graceful close the client did not ask for (server stop, a
    /// kick): a close frame with 1001 (going away), unless one was sent already (`quit` is
    /// answered with 1000, a protocol error with its code);
    /// nothing before the upgrade. Reads only atomics (called under the output mutex).
    [[nodiscard]] payload farewell() const {
        if (!upgraded_.load(std::memory_order_relaxed) || closing_.load(std::memory_order_relaxed)) return {};
        try {
            return protocol::encode_websocket_close(protocol::websocket_close_code::going_away);
        } catch (const std::bad_alloc&) {
            return {};
        }
    }

    /// @brief Bytes of unfinished input held (request head, frame decoder, paused input).
    [[nodiscard]] std::size_t buffered() const noexcept {
        return head_.size() + held_.size() + held_lines_.size() + (decoder_ ? decoder_->buffered() : 0);
    }

private:
    // The answer to a request that does not upgrade (docs/protocol.md, "HTTP endpoints").
    static payload answer_http(const protocol::http_request& request, config& c) {
        const std::string_view path = request.path;
        const bool known = path == "/" || path == "/healthz" || path == "/metrics";
        if (!known || (path == "/" && c.page.empty()) || (path == "/metrics" && !c.metrics))
            return protocol::http_text_response(404, "not found");
        if (request.method != "GET") return protocol::http_text_response(405, "use GET", {{"Allow", "GET"}});
        if (path == "/") return protocol::http_response(200, "text/html; charset=utf-8", c.page);
        if (path == "/healthz") return protocol::http_response(200, "text/plain; charset=utf-8", "ok\n");
        return protocol::http_response(200, "text/plain; version=0.0.4; charset=utf-8", c.metrics());
    }

    protocol::command_session& commands() noexcept {
        if (auto* j = std::get_if<json_session>(&session_)) return j->commands();
        return std::get<protocol::command_session>(session_);
    }

    // Sends a close frame (once) and ends the input: the engine flushes it and closes.
    protocol::input_result close_with(protocol::websocket_close_code code, std::string_view reason) {
        if (!closing_.exchange(true, std::memory_order_relaxed))
            commands().send(protocol::encode_websocket_close(code, reason));
        commands().end();
        return protocol::input_result::quit;
    }

    // How the batch path (feed_batch()) ended: the bytes of the frames it applied, and whether
    // the input stops there.
    enum class batch_stop : std::uint8_t { none, quit, paused };
    struct batch_outcome {
        std::size_t consumed = 0;          // bytes of the frames applied
        std::size_t covered = 0;           // bytes of the frames the batch held (>= consumed)
        batch_stop stop = batch_stop::none;
    };

    // switchboard.json: when the read starts with at least two whole single-frame text messages
    // (as the frame decoder would deliver them at once, `websocket_decoder::whole_text_frame()`),
    // they are unmasked into one batch and parsed with one simdjson stage 1
    // (`detail::json_batch`), then applied one by one with the same flow control as feed(). A
    // message the batch does not decide, and every one after it, is left to feed()'s decoder path,
    // as is everything after the batch; so is the whole batch when stage 1 refuses it (e.g. a
    // message that is not UTF-8 then closes with 1007 at its place, the messages before it
    // applied). Returns the bytes of the frames applied.
    template <class Pause>
    batch_outcome feed_batch(std::string_view bytes, std::chrono::nanoseconds now, Pause& pause) {
        protocol::websocket_text_frame frames[detail::json_batch::max_messages];
        std::size_t n = 0, at = 0, size = 0;
        while (n < detail::json_batch::max_messages) {
            const protocol::websocket_text_frame f = decoder_->whole_text_frame(bytes.substr(at));
            if (f.size == 0 || f.payload + 1 > detail::json_batch::max_bytes - size) break;
            frames[n++] = f;
            at += f.size;
            size += f.payload + 1;
        }
        if (n < 2) return {}; // a single message: read alone (a batch would cost more)
        batch_outcome done;
        done.covered = at;
        detail::json_batch batch;
        if (!batch.usable()) return done;
        at = 0;
        for (std::size_t k = 0; k < n; ++k) {
            char* const out = batch.add(frames[k].payload);
            if (out == nullptr) return done;
            protocol::websocket_decoder::unmask_text_frame(bytes.data() + at, frames[k], out);
            at += frames[k].size;
        }
        if (!batch.parse()) return done;
        json_session& session = std::get<json_session>(session_);
        for (std::size_t k = 0; k < n; ++k) {
            const json_session::batched_result r = session.on_batched_message(batch, now);
            if (r == json_session::batched_result::undecided) break;
            done.consumed += frames[k].size;
            if (r == json_session::batched_result::quit) {
                done.stop = batch_stop::quit;
                break;
            }
            if (commands().waiting() || pause()) {
                done.stop = batch_stop::paused;
                break;
            }
        }
        return done;
    }

    template <class Pause>
    protocol::input_result feed(std::string_view bytes, std::chrono::nanoseconds now, Pause& pause) {
        // switchboard.json: the batch path first; the decoder path from the first frame it does
        // not take, back to the batch path after each message the decoder delivers, except over
        // the frames of a batch that was not decided whole (each of those is read alone once).
        std::size_t alone_until = 0; // bytes of `bytes` left to the decoder path
        for (;;) {
            if (json_ && alone_until == 0) {
                const batch_outcome b = feed_batch(bytes, now, pause);
                if (b.stop == batch_stop::quit) return close_with(protocol::websocket_close_code::normal, {});
                if (b.stop == batch_stop::paused) {
                    if (b.consumed == bytes.size()) return protocol::input_result::keep_reading;
                    held_.assign(bytes.data() + b.consumed, bytes.size() - b.consumed);
                    return protocol::input_result::paused;
                }
                bytes.remove_prefix(b.consumed);
                alone_until = b.covered - b.consumed;
            }
            bool quit = false, paused = false, refused = false, again = false;
            std::optional<protocol::websocket_close_code> close_code;
            std::string_view close_reason;
            const protocol::websocket_decode_result r = decoder_->feed(bytes, [&](const protocol::websocket_message& m) {
                switch (m.opcode) {
                case protocol::websocket_opcode::text:
                    if (m.utf8_unchecked) { // a single-frame JSON message: its parse checks the UTF-8
                        const json_session::unchecked_result u = std::get<json_session>(session_).on_unchecked_message(
                            m.data, now, m.data.size() + decoder_->options().padding);
                        if (u == json_session::unchecked_result::invalid_utf8) { // RFC 6455 section 8.1
                            close_code = protocol::websocket_close_code::invalid_data;
                            close_reason = protocol::to_string(protocol::websocket_error::invalid_utf8);
                            refused = true;
                            return false;
                        }
                        if (u == json_session::unchecked_result::quit) {
                            quit = true;
                            return false;
                        }
                    } else if (!apply(m.data, now)) {
                        quit = true;
                        return false;
                    }
                    break;
                case protocol::websocket_opcode::binary:
                    close_code = protocol::websocket_close_code::unsupported_data;
                    close_reason = "binary messages are not supported";
                    refused = true;
                    return false;
                case protocol::websocket_opcode::ping: commands().send(protocol::encode_websocket_pong(m.data)); break;
                case protocol::websocket_opcode::close:
                    // Echo the client's code (RFC 6455 section 5.5.1); 1005 means none was given.
                    close_code = m.code == protocol::websocket_close_code::no_status ? protocol::websocket_close_code::normal
                                                                                     : m.code;
                    return false;
                default: break; // pong: nothing to do
                }
                if (commands().waiting() || pause()) {
                    paused = true;
                    return false;
                }
                if (json_ && m.opcode == protocol::websocket_opcode::text) {
                    again = true; // back to the loop: the batch path, or the next frame read alone
                    return false;
                }
                return true;
            });
            if (r.failed()) {
                if (r.close_code() == protocol::websocket_close_code::message_too_big) ++counters_->message_too_big;
                else ++counters_->protocol_errors;
                return close_with(r.close_code(), r.reason());
            }
            if (close_code) {
                if (refused) ++counters_->protocol_errors; // 1003 or 1007 of ours, not an echoed code
                return close_with(*close_code, close_reason);
            }
            if (quit) return close_with(protocol::websocket_close_code::normal, {});
            if (r.status == protocol::websocket_decode_status::closed) return close_with(protocol::websocket_close_code::normal, {});
            if (paused && (r.consumed < bytes.size() || !held_lines_.empty())) {
                held_.assign(bytes.data() + r.consumed, bytes.size() - r.consumed);
                return protocol::input_result::paused;
            }
            if (!again || r.consumed == bytes.size()) return protocol::input_result::keep_reading;
            bytes.remove_prefix(r.consumed);
            alone_until = alone_until > r.consumed ? alone_until - r.consumed : 0;
        }
    }

    // One text message: a JSON command, or lines of the line protocol (LF-separated, a CR before
    // the LF dropped, empty lines skipped). False once `quit` was applied.
    bool apply(std::string_view text, std::chrono::nanoseconds now) {
        if (auto* j = std::get_if<json_session>(&session_))
            return j->on_message(text, now, text.size() + decoder_->options().padding) != protocol::input_result::quit;
        protocol::command_session& s = std::get<protocol::command_session>(session_);
        while (!text.empty()) {
            const std::size_t lf = text.find('\n');
            std::string_view line = text.substr(0, lf);
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            if (line.size() > max_line_) { // as over TCP: refused whole, the session kept
                ++counters_->message_too_big;
                s.reply_with(protocol::reply::error(protocol::error_token::line_too_long));
            } else if (!line.empty() && !s.apply(protocol::parse_command(line), now)) {
                return false;
            }
            if (lf == std::string_view::npos) break;
            text.remove_prefix(lf + 1);
            if (s.waiting()) { // the cluster answers /register later: the next lines wait for it
                held_lines_.assign(text.data(), text.size());
                break;
            }
        }
        return true;
    }

    protocol::http_request_parser http_;             // the request head, until the upgrade
    std::string head_;                               // its bytes (freed at the upgrade)
    std::optional<protocol::websocket_decoder> decoder_; // from the upgrade on
    std::variant<std::monostate, json_session, protocol::command_session> session_;
    std::string held_;                               // input held while paused
    std::string held_lines_;                         // line mode: the rest of a message after a
                                                     // /register the cluster answers later
    websocket_counters* counters_ = nullptr;         // the server's totals (set at open)
    std::size_t max_line_ = 0;                       // switchboard.line: longest line (set at open)
    bool json_ = false;                              // subprotocol switchboard.json (else line)
    std::atomic<bool> upgraded_{false};              // the session is open (for farewell())
    std::atomic<bool> closing_{false};               // a close frame was queued
};

static_assert(protocol::check_protocol_policy<websocket_protocol>(), "websocket_protocol is a Protocol policy");

} // namespace switchboard::websocket
