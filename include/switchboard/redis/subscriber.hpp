/// @file
/// @brief `switchboard::redis::subscriber`: a Redis Pub/Sub subscription (Redis docs, "Pub/Sub")
/// on a connection of its own, that remembers its channels and subscribes to all of them again
/// after every reconnect, before `on_up`. Target `switchboard::redis` (docs/redis-client.md).
#pragma once

#include "../asio/backend.hpp"
#include "connection_options.hpp"
#include "detail/client_core.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard::redis {

/// @brief A Redis Pub/Sub subscriber: its own connection in subscribe mode (a connection that
/// subscribed can only (un)subscribe; Redis docs, "Pub/Sub"), the set of channels it should be
/// subscribed to, and reconnection.
///
/// The set is the truth: `subscribe()` / `unsubscribe()` change it at any time (connected or
/// not) and, when connected, send SUBSCRIBE / UNSUBSCRIBE at once. After every (re)connect the
/// whole set is subscribed again with one SUBSCRIBE, and `on_up` is called once Redis confirmed
/// every channel of it: a message published after `on_up` reaches `on_message`. Messages
/// published while the connection was down are lost (Pub/Sub keeps nothing): `on_down` /
/// `on_up` tell the application when to resynchronise. A killed Pub/Sub connection (`CLIENT
/// KILL TYPE pubsub`) and a Redis restart are survived the same way.
///
/// Reconnect, backoff and the connect timeout are those of `connection`
/// (`connection_options`). `command_timeout` applies to subscription confirmations: a
/// SUBSCRIBE not confirmed in time drops the connection. An idle subscriber (no subscription
/// change pending) does not detect a frozen Redis by itself; a `connection` used alongside (the
/// backplane's heartbeat) does.
///
/// @note Thread safety: none, as `connection`: every member, the constructor and the destructor
/// on the io_context's serialisation. Callbacks run on the io_context (never from inside
/// hiredis' connect or disconnect callback) and may call any member, or destroy the subscriber.
class subscriber {
public:
    /// @brief Creates a stopped subscriber with no channel.
    /// @param io the io_context that runs hiredis' I/O and every callback; it must outlive the
    ///        subscriber.
    /// @param options where Redis is and the time limits (see `connection_options`).
    subscriber(net::io_context& io, connection_options options)
        : core_(std::make_shared<detail::client_core>(io, std::move(options))),
          state_(std::make_shared<state>()) {
        std::weak_ptr<detail::client_core> weak_core = core_;
        std::weak_ptr<state> weak_state = state_;
        core_->ready_hook = [weak_core, weak_state] {
            auto core = weak_core.lock();
            auto st = weak_state.lock();
            if (!core || !st) return;
            resubscribe(*core, *st);
        };
        core_->message_hook = [weak_state](std::string_view channel, std::string_view payload) {
            auto st = weak_state.lock(); // held: the handler may destroy the subscriber
            if (st && st->on_message) st->on_message(channel, payload);
        };
    }

    /// @brief Stops (as `stop()`).
    ~subscriber() {
        core_->user_up = nullptr;
        core_->user_down = nullptr;
        core_->ready_hook = nullptr;
        core_->message_hook = nullptr;
        core_->stop();
    }

    subscriber(const subscriber&) = delete;
    subscriber& operator=(const subscriber&) = delete;

    /// @brief Starts connecting; after that the subscriber is kept connected and subscribed
    /// (reconnect with backoff after each loss) until `stop()`. No effect when already started.
    void start() { core_->start(); }

    /// @brief Closes the connection and stops reconnecting; the channel set is kept (a later
    /// `start()` subscribes to it again). `on_down` is not called.
    void stop() { core_->stop(); }

    /// @brief Whether the subscriber is up: connected and every channel of the set as it was at
    /// the last reconnect confirmed (true from just before `on_up` until the loss is noticed).
    [[nodiscard]] bool connected() const noexcept { return core_->up(); }

    /// @brief Adds `channel` to the set; when connected, sends SUBSCRIBE for it at once (a
    /// message published after Redis confirmed it is delivered; the confirmation is not
    /// reported). No effect when already in the set.
    /// @param channel a channel name, any bytes.
    void subscribe(std::string channel) {
        auto [it, inserted] = state_->channels.insert(std::move(channel));
        if (!inserted || !core_->connected()) return;
        (void)core_->send({"SUBSCRIBE", *it}, {}, true);
    }

    /// @brief Removes `channel` from the set; when connected, sends UNSUBSCRIBE for it at once.
    /// Messages on it that Redis sent before it processed the UNSUBSCRIBE may still reach
    /// `on_message`. No effect when not in the set.
    /// @param channel a channel name.
    void unsubscribe(std::string_view channel) {
        auto it = state_->channels.find(channel);
        if (it == state_->channels.end()) return;
        if (core_->connected()) (void)core_->send({"UNSUBSCRIBE", *it}, {}, true, 0);
        state_->channels.erase(it);
    }

    /// @brief The channels of the set, in byte order.
    [[nodiscard]] const std::set<std::string, std::less<>>& channels() const noexcept {
        return state_->channels;
    }

    /// @brief Sets the function called for each message (Redis' `message` push), on the
    /// io_context, in the order Redis sent them.
    /// @param fn called with the channel and the payload; both views are valid during the call
    ///        only (they point into hiredis' reply). Replaces the previous one.
    void on_message(std::function<void(std::string_view channel, std::string_view payload)> fn) {
        state_->on_message = std::move(fn);
    }

    /// @brief Sets the function called after each (re)connect, once every channel of the set is
    /// subscribed again (at once when the set is empty).
    /// @param fn called with no argument; replaces the previous one.
    void on_up(std::function<void()> fn) { core_->user_up = std::move(fn); }

    /// @brief Sets the function called once per loss of a subscriber that was up (Redis closed
    /// the connection or restarted, `CLIENT KILL`, a network error, a confirmation timeout),
    /// before the reconnect. Messages published from then until the next `on_up` are lost.
    /// @param fn called with no argument; replaces the previous one.
    void on_down(std::function<void()> fn) { core_->user_down = std::move(fn); }

private:
    struct state {
        std::set<std::string, std::less<>> channels;
        std::function<void(std::string_view, std::string_view)> on_message;
    };

    static void resubscribe(detail::client_core& core, state& st) {
        if (st.channels.empty()) {
            core.mark_up();
            return;
        }
        std::vector<std::string_view> argv;
        argv.reserve(st.channels.size() + 1);
        argv.emplace_back("SUBSCRIBE");
        for (const auto& c : st.channels) argv.emplace_back(c);
        std::weak_ptr<detail::client_core> weak = core.weak_from_this();
        const bool sent = core.send(
            argv,
            [weak](const redisReply* r) {
                auto c = weak.lock();
                if (c && r != nullptr) c->mark_up(); // the last channel confirmed
            },
            true, st.channels.size());
        if (!sent) core.fail();
    }

    std::shared_ptr<detail::client_core> core_;
    std::shared_ptr<state> state_;
};

} // namespace switchboard::redis
