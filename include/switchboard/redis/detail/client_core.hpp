// The engine shared by redis::connection and redis::subscriber: one hiredis asynchronous context at
// a time, attached to the io_context (hiredis_asio.hpp), connect timeout, reconnect with capped
// doubling backoff and jitter, a FIFO of pending replies with a command timeout, and the rules for
// freeing a context (hiredis 0.14 async.c):
//
// - redisAsyncFree() from inside a reply callback is deferred by hiredis itself (REDIS_IN_CALLBACK:
//   it sets REDIS_FREEING and frees once the callback returns). From inside the connect or the
//   disconnect callback it is not: the context would be freed under hiredis' feet. So no user code
//   runs from those two callbacks (on_up / on_down are posted), and a drop requested while this
//   core is inside them is posted too.
// - __redisAsyncFree() runs the pending reply callbacks (NULL reply), then the subscription
//   callbacks (NULL), then ev.cleanup, then onDisconnect (only if it had connected), then
//   redisFree(). After a failed connect hiredis calls onConnect(REDIS_ERR) and then frees, without
//   onDisconnect.
//
// Each context gets a `link` (ac->data and every callback's privdata). Dropping a context
// "abandons" its link (owner = nullptr): the core answers the link's pending handlers with nullptr
// at once, and whatever hiredis calls later on that link is ignored. A link is deleted once hiredis
// will not name it again: after onDisconnect / onConnect(REDIS_ERR) (deletion posted), or right
// after a synchronous redisAsyncFree() of a context that never connected.
#pragma once

#include "../../asio/backend.hpp"
#include "../connection_options.hpp"
#include "../hiredis_asio.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace switchboard::redis {

namespace detail {

class client_core;

struct pending_reply {
    reply_handler handler; // may be empty (a subscription confirmation nobody waits for)
    std::chrono::steady_clock::time_point deadline;
};

struct link {
    client_core* owner = nullptr; // null once abandoned
    redisAsyncContext* ac = nullptr;
    net::io_context* io = nullptr;
    std::uint64_t generation = 0;
    bool connected = false;
    std::deque<pending_reply> pending;
    std::unordered_set<std::string> loaded_scripts; // sha1 of the scripts EVALed on this link
};

class client_core : public std::enable_shared_from_this<client_core> {
public:
    client_core(net::io_context& io, connection_options options)
        : io_(io), options_(std::move(options)), connect_timer_(io), command_timer_(io),
          rng_(std::random_device{}()) {}

    client_core(const client_core&) = delete;
    client_core& operator=(const client_core&) = delete;

    ~client_core() { stop(); }

    // Internal hooks (set by connection / subscriber).
    std::function<void()> ready_hook;   // posted after each connect; must call mark_up() when ready
    std::function<void()> user_up;      // on_up
    std::function<void()> user_down;    // on_down
    std::function<void(std::string_view, std::string_view)> message_hook; // pub/sub "message"

    void start() {
        if (started_) return;
        started_ = true;
        stopped_ = false;
        connect_now();
    }

    void stop() {
        stopped_ = true;
        started_ = false;
        connect_timer_.cancel();
        command_timer_.cancel();
        command_timer_armed_ = false;
        up_ = false;
        abandon();
    }

    [[nodiscard]] bool connected() const noexcept { return link_ != nullptr && link_->connected; }
    [[nodiscard]] bool up() const noexcept { return up_; }
    [[nodiscard]] link* current() const noexcept { return connected() ? link_ : nullptr; }

    // The connection is ready (for a subscriber: everything subscribed again): on_up.
    void mark_up() {
        if (up_ || !connected()) return;
        up_ = true;
        attempt_ = 0; // reset here, not at the TCP connect: a Redis that accepts and drops at once
                      // (maxclients, a subscriber whose SUBSCRIBE fails) keeps backing off
        if (user_up) user_up();
    }

    // Sends one command. pubsub: the reply (and later messages) go through the subscription
    // callback, and `replies` FIFO entries are expected (one per channel of a SUBSCRIBE; the last
    // one carries `h`); replies == 0: no entry at all (UNSUBSCRIBE).
    bool send(const std::vector<std::string_view>& argv, reply_handler h, bool pubsub = false,
              std::size_t replies = 1) {
        link* l = current();
        if (l == nullptr || argv.empty()) return false;
        argv_.clear();
        lengths_.clear();
        for (std::string_view a : argv) {
            argv_.push_back(a.empty() ? "" : a.data()); // never a null pointer to hiredis' memcpy
            lengths_.push_back(a.size());
        }
        if (redisAsyncCommandArgv(l->ac, pubsub ? &subscription_callback : &reply_callback, l,
                                  static_cast<int>(argv_.size()), argv_.data(),
                                  lengths_.data()) != REDIS_OK) {
            return false;
        }
        const auto deadline = std::chrono::steady_clock::now() + options_.command_timeout;
        for (std::size_t i = 1; i < replies; ++i) l->pending.push_back(pending_reply{{}, deadline});
        if (replies > 0) l->pending.push_back(pending_reply{std::move(h), deadline});
        arm_command_timer();
        return true;
    }

    // Drops the current connection as a failure: pending handlers get nullptr, on_down if it
    // was up, reconnect with backoff.
    void fail() {
        if (link_ == nullptr) return;
        const bool was_up = up_;
        up_ = false;
        abandon();
        if (was_up) post_down();
        schedule_reconnect();
    }

    [[nodiscard]] net::io_context& io() noexcept { return io_; }
    [[nodiscard]] const connection_options& options() const noexcept { return options_; }

private:
    static void reply_callback(redisAsyncContext*, void* reply, void* privdata) {
        auto* l = static_cast<link*>(privdata);
        if (l->owner == nullptr) return;
        l->owner->on_reply(*l, static_cast<const redisReply*>(reply));
    }

    static void subscription_callback(redisAsyncContext*, void* reply, void* privdata) {
        auto* l = static_cast<link*>(privdata);
        const auto* r = static_cast<const redisReply*>(reply);
        // nullptr: the context is being freed; the disconnect callback handles the loss.
        if (l->owner == nullptr || r == nullptr) return;
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
            r->element[0]->type != REDIS_REPLY_STRING) {
            return;
        }
        const std::string_view kind(r->element[0]->str, r->element[0]->len);
        if (kind == "message" && r->elements >= 3) {
            client_core& c = *l->owner;
            if (c.message_hook) {
                auto self = c.weak_from_this().lock(); // the hook may destroy the subscriber
                c.message_hook(std::string_view(r->element[1]->str, r->element[1]->len),
                               std::string_view(r->element[2]->str, r->element[2]->len));
            }
        } else if (kind == "subscribe") {
            l->owner->on_reply(*l, r);
        }
        // "unsubscribe": no FIFO entry was queued for it (hiredis 0.14 may already have removed
        // the channel's callback, in which case the reply never reaches us).
    }

    static void connect_callback(const redisAsyncContext* ac, int status) {
        auto* l = static_cast<link*>(ac->data);
        if (l->owner == nullptr) {
            if (status != REDIS_OK) retire(l);
            return;
        }
        client_core& c = *l->owner;
        c.in_hiredis_callback_ = true;
        c.on_connect(*l, status);
        c.in_hiredis_callback_ = false;
    }

    static void disconnect_callback(const redisAsyncContext* ac, int /*status*/) {
        auto* l = static_cast<link*>(ac->data);
        client_core* owner = l->owner;
        l->ac = nullptr;
        if (owner != nullptr) {
            auto self = owner->weak_from_this().lock(); // a nullptr handler may destroy it
            owner->in_hiredis_callback_ = true;
            owner->on_disconnect(*l);
            owner->in_hiredis_callback_ = false;
        }
        retire(l);
    }

    // hiredis will not name `l` again: delete it once the current hiredis call has returned.
    static void retire(link* l) {
        l->owner = nullptr;
        // Owned by the handler: deleted even if the io_context is destroyed before running it.
        net::post(*l->io, [owned = std::shared_ptr<link>(l)] {});
    }

    void on_reply(link& l, const redisReply* r) {
        if (l.pending.empty()) return;
        reply_handler h = std::move(l.pending.front().handler);
        l.pending.pop_front();
        if (h) {
            auto self = weak_from_this().lock(); // the handler may destroy the connection
            h(r);
        }
    }

    void on_connect(link& l, int status) {
        connect_timer_.cancel();
        if (status != REDIS_OK) {
            // hiredis frees the context when this returns (no disconnect callback).
            l.ac = nullptr;
            link_ = nullptr;
            l.owner = nullptr;
            retire(&l);
            schedule_reconnect();
            return;
        }
        l.connected = true;
        // No user code from inside the connect callback (see the top of this file).
        net::post(io_, [weak = weak_from_this(), generation = l.generation] {
            auto self = weak.lock();
            if (!self || self->link_ == nullptr || self->link_->generation != generation) return;
            if (self->ready_hook) {
                self->ready_hook();
            } else {
                self->mark_up();
            }
        });
    }

    void on_disconnect(link& l) {
        // hiredis has already answered the pending handlers (NULL reply) and frees the context
        // when this returns.
        l.owner = nullptr;
        if (link_ != &l) return;
        link_ = nullptr;
        auto pending = std::move(l.pending);
        fire(pending);
        const bool was_up = up_;
        up_ = false;
        if (was_up) post_down();
        schedule_reconnect();
    }

    void post_down() {
        net::post(io_, [weak = weak_from_this()] {
            auto self = weak.lock();
            if (self && !self->stopped_ && self->user_down) self->user_down();
        });
    }

    void fire(std::deque<pending_reply>& pending) {
        if (pending.empty()) return;
        auto self = weak_from_this().lock(); // null when called from the destructor
        for (auto& p : pending) {
            if (p.handler) p.handler(nullptr);
        }
        pending.clear();
    }

    // Gives up the current context (if any): pending handlers get nullptr now; hiredis frees it.
    void abandon() {
        link* l = link_;
        if (l == nullptr) return;
        link_ = nullptr;
        l->owner = nullptr;
        command_timer_.cancel();
        command_timer_armed_ = false;
        redisAsyncContext* ac = l->ac;
        const bool had_connected = (ac->c.flags & REDIS_CONNECTED) != 0;
        auto pending = std::move(l->pending);
        if (in_hiredis_callback_) {
            // Never free a context from inside its own connect / disconnect callback.
            net::post(io_, [ac, l, had_connected] {
                redisAsyncFree(ac);
                if (!had_connected) delete l; // else retired by the disconnect callback
            });
        } else {
            // Connected: hiredis calls onDisconnect (now, or once the reply callback we may be
            // inside returns), which retires the link. Not connected: freed right here, silently.
            redisAsyncFree(ac);
            if (!had_connected) delete l;
        }
        fire(pending);
    }

    void connect_now() {
        if (stopped_) return;
        redisAsyncContext* ac = redisAsyncConnect(options_.host.c_str(), options_.port);
        if (ac == nullptr) {
            schedule_reconnect();
            return;
        }
        if (ac->err != 0 || !attach(*ac, io_)) {
            redisAsyncFree(ac);
            schedule_reconnect();
            return;
        }
        // hiredis frees its read buffer whenever it is empty with more than 16 KiB unused, so a
        // connection receiving large replies (the cluster's batches) allocated it anew for each:
        // it is kept up to 1 MiB unused.
        if (ac->c.reader != nullptr) ac->c.reader->maxbuf = std::size_t{1} << 20;
        auto* l = new link;
        l->owner = this;
        l->ac = ac;
        l->io = &io_;
        l->generation = ++generation_;
        ac->data = l;
        link_ = l;
        redisAsyncSetDisconnectCallback(ac, &disconnect_callback);
        redisAsyncSetConnectCallback(ac, &connect_callback); // asks for the first write event
        if (options_.connect_timeout.count() > 0) {
            connect_timer_.expires_after(options_.connect_timeout);
            connect_timer_.async_wait([weak = weak_from_this(), generation = l->generation](const net_error_code& ec) {
                auto self = weak.lock();
                if (ec || !self || self->link_ == nullptr || self->link_->generation != generation ||
                    self->link_->connected) {
                    return;
                }
                self->abandon();
                self->schedule_reconnect();
            });
        }
    }

    void schedule_reconnect() {
        if (stopped_) return;
        using std::chrono::milliseconds;
        const auto lo = std::max<milliseconds::rep>(options_.backoff_min.count(), 1);
        const auto hi = std::max<milliseconds::rep>(options_.backoff_max.count(), lo);
        auto d = lo;
        for (unsigned i = 0; i < attempt_ && d < hi; ++i) d *= 2;
        if (d > hi) d = hi;
        if (attempt_ < 64) ++attempt_;
        std::uniform_int_distribution<milliseconds::rep> jitter(d / 2, d);
        connect_timer_.expires_after(milliseconds(jitter(rng_)));
        connect_timer_.async_wait([weak = weak_from_this()](const net_error_code& ec) {
            auto self = weak.lock();
            if (ec || !self || self->link_ != nullptr) return;
            self->connect_now();
        });
    }

    void arm_command_timer() {
        if (command_timer_armed_ || options_.command_timeout.count() <= 0 || link_ == nullptr ||
            link_->pending.empty()) {
            return;
        }
        command_timer_armed_ = true;
        command_timer_.expires_at(link_->pending.front().deadline);
        command_timer_.async_wait([weak = weak_from_this()](const net_error_code& ec) {
            auto self = weak.lock();
            if (ec || !self) return;
            self->command_timer_armed_ = false;
            link* l = self->link_;
            if (l == nullptr || l->pending.empty()) return;
            if (l->pending.front().deadline <= std::chrono::steady_clock::now()) {
                self->fail(); // a frozen Redis: drop, answer nullptr, reconnect
            } else {
                self->arm_command_timer();
            }
        });
    }

    net::io_context& io_;
    connection_options options_;
    net::steady_timer connect_timer_; // connect timeout, then the reconnect delay
    net::steady_timer command_timer_;
    bool command_timer_armed_ = false;
    link* link_ = nullptr;
    std::uint64_t generation_ = 0;
    unsigned attempt_ = 0;
    bool started_ = false;
    bool stopped_ = true;
    bool up_ = false;
    bool in_hiredis_callback_ = false;
    std::minstd_rand rng_;
    std::vector<const char*> argv_;
    std::vector<std::size_t> lengths_;
};

} // namespace detail
} // namespace switchboard::redis
