/// @file
/// @brief `switchboard::redis::connection`: one Redis connection on the application's Asio
/// io_context (hiredis 0.14 asynchronous API, hiredis_asio.hpp), binary-safe commands, Lua scripts
/// (EVALSHA with EVAL fallback), a command timeout that detects a frozen Redis, and reconnection
/// with capped, jittered exponential backoff. Target `switchboard::redis` (Debian
/// `libhiredis-dev`; docs/redis-client.md).
#pragma once

#include "../asio/backend.hpp"
#include "connection_options.hpp"
#include "detail/client_core.hpp"
#include "hiredis_asio.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard::redis {

/// @brief A Lua script for `connection::eval()`: its source and the SHA-1 of the source, which
/// `EVALSHA` names it by (Redis docs, "Scripting with Lua": "Script cache").
struct script {
    /// @brief The Lua source, sent with `EVAL` the first time a connection runs the script and
    /// whenever Redis answers `NOSCRIPT`.
    std::string source;
    /// @brief The lowercase hexadecimal SHA-1 of `source` (40 characters), as `SCRIPT LOAD`
    /// returns it. `make_script()` fills it.
    std::string sha1;
};

/// @brief Makes a `script` from Lua source, computing the SHA-1 locally (OpenSSL's libcrypto,
/// `EVP_Digest`), so no round trip to Redis is needed.
/// @param source the Lua source.
/// @return the script with `sha1` set; `sha1` is empty if libcrypto failed (then `eval()` always
///         sends `EVAL`).
/// @note Thread-safe (no shared state).
[[nodiscard]] inline script make_script(std::string source) {
    script s;
    s.source = std::move(source);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (EVP_Digest(s.source.data(), s.source.size(), digest, &size, EVP_sha1(), nullptr) == 1) {
        static constexpr char hex[] = "0123456789abcdef";
        s.sha1.reserve(2 * size);
        for (unsigned int i = 0; i < size; ++i) {
            s.sha1.push_back(hex[digest[i] >> 4]);
            s.sha1.push_back(hex[digest[i] & 0x0f]);
        }
    }
    return s;
}

/// @brief One Redis connection driven by the application's io_context: commands are pipelined
/// (sent without waiting for earlier replies; replies come back in order), the connection is
/// re-established after any loss, and a command without a reply within
/// `connection_options::command_timeout` drops it.
///
/// Lifecycle: `start()` connects (non-blocking `redisAsyncConnect()`), and after every loss
/// reconnects forever with backoff (`backoff_min` doubled per failed attempt up to
/// `backoff_max`, each delay drawn in [d/2, d]). `on_up` is called after each successful
/// connect, `on_down` once per loss of a connection that was up. `stop()` ends it.
///
/// Callbacks (reply handlers, on_up, on_down) run on the io_context, never from inside hiredis'
/// connect or disconnect callback; any of them may call any member, including `stop()`, and may
/// destroy the connection.
///
/// @note Thread safety: none. Every member, the constructor and the destructor must be called on
/// the io_context's serialisation (the thread running a 1-thread io_context, or a strand); hiredis'
/// contexts are not thread-safe (hiredis README). No thread is started.
class connection {
public:
    /// @brief Creates a stopped connection; nothing is sent before `start()`.
    /// @param io the io_context that runs hiredis' I/O and every callback; it must outlive the
    ///        connection.
    /// @param options where Redis is and the time limits (see `connection_options`).
    connection(net::io_context& io, connection_options options)
        : core_(std::make_shared<detail::client_core>(io, std::move(options))) {}

    /// @brief Stops (as `stop()`: pending handlers get nullptr, from inside the destructor).
    ~connection() {
        core_->stop();
        core_->user_up = nullptr;
        core_->user_down = nullptr;
    }

    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// @brief Starts connecting; after that the connection is kept up (reconnect with backoff
    /// after each loss or failed attempt) until `stop()`. No effect when already started.
    /// Returns at once: the outcome is `on_up` (a failed attempt is retried silently).
    void start() { core_->start(); }

    /// @brief Closes the connection and stops reconnecting. Every pending handler is called with
    /// nullptr before `stop()` returns (whether Redis ran those commands is unknown); `on_down` is
    /// not called. `start()` may be called again later.
    ///
    /// The context is released with `redisAsyncFree()`, not `redisAsyncDisconnect()` (which
    /// would wait for the pending replies; hiredis README, "Disconnecting"). Called from inside a
    /// reply handler, hiredis frees the context once that handler returns; the handlers still
    /// pending are answered here, at once, all the same.
    void stop() { core_->stop(); }

    /// @brief Whether commands can be sent now: connected to Redis (true from the connect until
    /// the loss is noticed; `on_up` is called shortly after it becomes true).
    [[nodiscard]] bool connected() const noexcept { return core_->connected(); }

    /// @brief The io_context that runs this connection's I/O and callbacks (the one given to the
    /// constructor): a user of the connection posts its own completions there, so that they run
    /// on the same serialisation as the reply handlers (e.g. `redis::inbox` answering a call that
    /// it could not send at all, never from inside that call).
    [[nodiscard]] net::io_context& io_context() const noexcept { return core_->io(); }

    /// @brief Sets the function called after each successful (re)connect, on the io_context.
    /// @param fn called with no argument; replaces the previous one (empty: none).
    void on_up(std::function<void()> fn) { core_->user_up = std::move(fn); }

    /// @brief Sets the function called once per loss of a connection that was up (Redis closed
    /// it, a network error, a command timeout), after the pending handlers got nullptr and before
    /// the reconnect. Not called by `stop()`.
    /// @param fn called with no argument; replaces the previous one (empty: none).
    void on_down(std::function<void()> fn) { core_->user_down = std::move(fn); }

    /// @brief Sends one command (Redis docs, "Commands"), binary-safe: each argument is sent
    /// with its length (`redisAsyncCommandArgv()`), so NUL bytes and any other byte go through.
    /// @param argv the command name and its arguments; the views need only be valid during the
    ///        call (hiredis copies them into its output buffer).
    /// @param h called exactly once with the reply, or with nullptr (see `reply_handler`);
    ///        never called when this returns false.
    /// @return true when queued; false when not connected, when `argv` is empty, or for the
    ///         commands that switch a connection to push mode (SUBSCRIBE, PSUBSCRIBE,
    ///         UNSUBSCRIBE, PUNSUBSCRIBE, MONITOR: use `subscriber`).
    [[nodiscard]] bool command(const std::vector<std::string_view>& argv, reply_handler h) {
        if (!argv.empty() && pushes(argv.front())) return false;
        return core_->send(argv, std::move(h));
    }

    /// @brief Runs a Lua script (Redis docs, "EVAL" and "EVALSHA"): `EVAL` the first time this
    /// connection (since its last reconnect) runs `s`, `EVALSHA` afterwards; when Redis answers
    /// `NOSCRIPT` (its script cache was emptied: `SCRIPT FLUSH`, or a restart not yet noticed) the
    /// call is sent again as `EVAL` and `h` gets that reply. A retried call is queued behind the
    /// commands sent meanwhile, so its order relative to them is not kept.
    /// @param s the script (`make_script()`).
    /// @param keys the keys the script touches (`KEYS[1..]`).
    /// @param args the other arguments (`ARGV[1..]`).
    /// @param h called exactly once with the script's reply (a Redis error if the script
    ///        failed), or with nullptr (see `reply_handler`); never when this returns false.
    /// @return true when queued; false when not connected.
    [[nodiscard]] bool eval(const script& s, const std::vector<std::string_view>& keys,
                            const std::vector<std::string_view>& args, reply_handler h) {
        detail::link* l = core_->current();
        if (l == nullptr) return false;
        const std::string count = std::to_string(keys.size());
        std::vector<std::string_view> argv;
        argv.reserve(3 + keys.size() + args.size());
        const bool cached = !s.sha1.empty() && l->loaded_scripts.count(s.sha1) != 0;
        argv.push_back(cached ? std::string_view("EVALSHA") : std::string_view("EVAL"));
        argv.push_back(cached ? std::string_view(s.sha1) : std::string_view(s.source));
        argv.push_back(count);
        argv.insert(argv.end(), keys.begin(), keys.end());
        argv.insert(argv.end(), args.begin(), args.end());
        if (!cached) {
            if (!s.sha1.empty()) l->loaded_scripts.insert(s.sha1);
            return core_->send(argv, std::move(h));
        }
        // Keep the arguments for an EVAL fallback: one buffer, views rebuilt on NOSCRIPT.
        auto retry = std::make_shared<eval_retry>();
        retry->source = s.source;
        retry->sha1 = s.sha1;
        retry->key_count = keys.size();
        for (std::size_t i = 3; i < argv.size(); ++i) {
            retry->sizes.push_back(argv[i].size());
            retry->bytes.append(argv[i]);
        }
        retry->handler = std::move(h);
        std::weak_ptr<detail::client_core> weak = core_;
        return core_->send(argv, [weak, retry](const redisReply* r) mutable {
            auto core = weak.lock();
            if (r != nullptr && r->type == REDIS_REPLY_ERROR && core &&
                std::string_view(r->str, r->len).substr(0, 8) == "NOSCRIPT") {
                detail::link* cur = core->current();
                if (cur != nullptr) cur->loaded_scripts.erase(retry->sha1);
                const std::string n = std::to_string(retry->key_count);
                std::vector<std::string_view> again{"EVAL", retry->source, n};
                std::size_t at = 0;
                for (std::size_t size : retry->sizes) {
                    again.emplace_back(retry->bytes.data() + at, size);
                    at += size;
                }
                if (cur != nullptr) cur->loaded_scripts.insert(retry->sha1);
                auto handler = std::move(retry->handler);
                if (core->send(again, handler)) return;
                handler(nullptr);
                return;
            }
            retry->handler(r);
        });
    }

private:
    static bool pushes(std::string_view name) noexcept {
        static constexpr std::string_view names[] = {"subscribe", "psubscribe", "unsubscribe",
                                                     "punsubscribe", "monitor"};
        for (std::string_view n : names) {
            if (name.size() != n.size()) continue;
            bool same = true;
            for (std::size_t i = 0; i < n.size() && same; ++i) {
                const char c = name[i];
                same = (c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) == n[i];
            }
            if (same) return true;
        }
        return false;
    }

    struct eval_retry {
        std::string source;
        std::string sha1;
        std::size_t key_count = 0;
        std::string bytes;             // keys then args, concatenated
        std::vector<std::size_t> sizes; // their lengths
        reply_handler handler;
    };

    std::shared_ptr<detail::client_core> core_;
};

} // namespace switchboard::redis
