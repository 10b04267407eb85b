/// @file
/// @brief `switchboard::redis::backplane`: one node of a cluster of routers on Redis (issue #14).
/// Implements `switchboard::directory` with the Lua scripts of directory_scripts.hpp on a
/// `redis::connection`, keeps a remote session ("proxy") in the router for every session another
/// node holds, carries directed events to their node in one `PUBLISH` per node and event-loop
/// turn, and room events on one channel per room. docs/cluster.md is the reference: the data
/// model in Redis, the guarantees and the failure modes.
#pragma once

#include "../asio/backend.hpp"
#include "../cluster_format.hpp"
#include "../directory.hpp"
#include "../router.hpp"
#include "connection.hpp"
#include "directory_scripts.hpp"
#include "subscriber.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace switchboard::redis {

/// @brief Construction options of a `backplane`.
struct backplane_options {
    /// @brief This node's id, unique in the cluster and stable across restarts (1 to 40 bytes of
    /// `[A-Za-z0-9_.-]`). A node started again with the same id takes over from its previous run
    /// (whose entries are dropped at once).
    std::string node_id;
    /// @brief Prefix of every Redis key and channel (default `sb:`): clusters sharing a Redis
    /// use different prefixes.
    std::string prefix = "sb:";
    /// @brief Where Redis is, and the client's time limits (two connections are made: commands,
    /// and the subscriber).
    connection_options redis;
    /// @brief How long the node's lease lasts without a renewal (default 3 s). Renewed every
    /// third of it; a node that cannot renew it in time stops routing across nodes, and the other
    /// nodes drop its sessions within a lease and one heartbeat of its last renewal.
    std::chrono::milliseconds lease{3000};
    /// @brief How long a confirmed send (`confirm()`, docs/cluster.md "Confirmed sends") waits for
    /// the receiving nodes' answer before it is answered `cluster_unavailable` (default 10 s; at
    /// least the lease). Checked at each heartbeat (every lease / 3). A send whose records all
    /// went to one node is answered at once when that node is buried (`down`: crashed, frozen
    /// past its lease, stopped), so this bounds the wait only for a node that lives but does not
    /// answer (overloaded, its store slow, the answer lost).
    std::chrono::milliseconds confirm_timeout{10000};
    /// @brief The backstop TTL of every directory key (default 24 h): refreshed while the node
    /// lives; reclaims what a cluster that vanished entirely left behind.
    std::chrono::milliseconds directory_ttl{std::chrono::hours(24)};
    /// @brief User keys refreshed, and entries of lapsed nodes deleted, per heartbeat (default 256).
    std::size_t heartbeat_slice = 256;
    /// @brief The router's `router_options::sessions`: the policy the re-assert after a
    /// reconnect applies (`replace` counts as `exclusive` there: a later claim won).
    session_policy sessions = session_policy::exclusive;
    /// @brief The router's `router_options::max_sessions_per_user`: the cluster-wide cap under
    /// `session_policy::multi`.
    std::size_t max_sessions_per_user = 8;
    /// @brief Called with one line for each change of the node's state (joined, lease lost,
    /// Redis lost, resynchronised); never message text. Called under the router mutex on the
    /// backplane's io_context. Empty: silent.
    std::function<void(std::string_view)> log;
    /// @brief Called when the directory granted `user` to a local session, before the router is
    /// told (`router::claim_completed()`): the host prepares what the registration needs — the
    /// cluster inbox loads the user's stored messages (`redis::inbox::load()`) — and calls
    /// `done(true)` to complete the registration, or `done(false)` to refuse it with
    /// `cluster_unavailable` (the entry is released). Called under the router mutex on the
    /// backplane's io_context; `done` may be called at once or later from that io_context, without
    /// the router mutex held. Empty: the registration completes at once.
    std::function<void(const name& user, std::function<void(bool)> done)> on_granted;
    /// @brief Called once for each local session whose grant completed (`on_granted`'s
    /// `done(true)`) when it gives the name up (`directory::released()`): the cluster inbox
    /// unloads the user (`redis::inbox::unload()`). Under the router mutex. Empty: nothing.
    std::function<void(const name& user)> on_released;
    /// @brief Called when another node reports that a session of `user` there acknowledged its
    /// messages through `through` (`backplane::acknowledged()` on that node): the cluster inbox
    /// drops them from its cache (`redis::inbox::acknowledged_elsewhere()`), so no session here
    /// is handed them again. Under the router mutex, on the backplane's io_context. Empty:
    /// nothing.
    std::function<void(const name& user, std::uint64_t through)> on_acknowledged;
};

/// @brief Running totals of a backplane, for logs and metrics. Monotonic.
struct backplane_counters {
    std::uint64_t claims = 0;           ///< Claims sent to Redis.
    std::uint64_t claims_unavailable = 0; ///< Claims answered `cluster_unavailable`.
    std::uint64_t publishes = 0;        ///< PUBLISH commands sent (directed batches and room events).
    std::uint64_t records_out = 0;      ///< Directed events sent to other nodes.
    std::uint64_t records_in = 0;       ///< Directed events received and handed to a local session.
    std::uint64_t confirmed = 0;        ///< Confirmed sends answered `ok` by a receiving node (`confirm()`).
    std::uint64_t confirm_failed = 0;   ///< Confirmed sends that every receiving node refused, or whose node was buried.
    std::uint64_t confirm_timeouts = 0; ///< Confirmed sends with no answer within `backplane_options::confirm_timeout`.
    std::uint64_t records_dropped = 0;  ///< Received events for no open local session, for another
                                        ///< incarnation, or malformed.
    std::uint64_t unavailable = 0;      ///< Deliveries to remote sessions refused (Redis out of reach).
    std::uint64_t resyncs = 0;          ///< Snapshots loaded (start, reconnects, a gap in the dirseq).
    std::uint64_t lease_losses = 0;     ///< Times the node found it had lost its lease.
};

/// @brief One node of a cluster on Redis: the router's directory, its remote sessions and the
/// transport between nodes.
///
/// Usage: construct it, name it in `router_options::directory`, construct the router, then
/// `start(router, &router_mutex)` and run the io_context; `stop()` leaves the cluster (the node's
/// users go offline on the other nodes at once). docs/cluster.md describes the protocol.
///
/// What it does for the router:
/// - `claim()` runs the claim script (atomic: with `exclusive`, two nodes registering one name
///   at once give exactly one winner) and answers with `router::claim_completed()`;
///   `cluster_unavailable` when Redis or the lease is not there.
/// - Remote sessions: every session of another node is a proxy in the router, kept in step with
///   the directory by loading a snapshot with its sequence number and applying the changes
///   published after it (a gap, a reconnect or a restart of Redis loads it again).
/// - A proxy's transport appends `(session id, cluster-format event)` to the batch of its node;
///   each batch is one `PUBLISH <prefix>to:<node>` per event-loop turn. While Redis is out of
///   reach it returns `delivery::unavailable`, which `route()` reports as `cluster_unavailable`.
/// - Room events started here are published on `<prefix>room:<room>` with this node's id; the
///   node subscribes to the rooms it has local members in and relays what others publish.
/// - Heartbeat: renews the lease every third of it, sweeps lapsed nodes; a node that finds its
///   lease lost closes its local sessions that hold names and joins again as a new
///   incarnation. After a reconnect it re-asserts its entries (all of them after Redis lost its
///   data), closing the sessions whose names another node took meanwhile.
///
/// Thread safety: the backplane's io_context (the one given to the constructor) must run on one
/// thread (hiredis is not thread-safe); it may be the application's io_context when that runs on
/// one thread, or one of its own beside a multi-threaded one. The `directory` methods and the
/// proxies' transports are called by the router, under the router mutex, from any thread: they
/// only record and post. Everything else runs on the backplane's io_context and takes the router
/// mutex (given to `start()`) around what touches the router or the backplane's state.
class backplane final : public directory {
public:
    /// @brief A stopped backplane.
    /// @param io the io_context running the two Redis connections and every handler; one thread.
    /// @param options see `backplane_options`; `node_id` must be a valid name.
    /// @throws std::invalid_argument when `options.node_id` is not 1-40 bytes of `[A-Za-z0-9_.-]`.
    backplane(net::io_context& io, backplane_options options)
        : io_(io), o_(std::move(options)), conn_(io, o_.redis), sub_(io, o_.redis), timer_(io),
          scripts_{make_script(directory_scripts::get().claim), make_script(directory_scripts::get().release),
                   make_script(directory_scripts::get().heartbeat), make_script(directory_scripts::get().start),
                   make_script(directory_scripts::get().snapshot), make_script(directory_scripts::get().reassert),
                   make_script(directory_scripts::get().leave)} {
        if (!is_valid_name(o_.node_id)) throw std::invalid_argument("backplane: node_id must be 1-40 of [A-Za-z0-9_.-]");
        if (o_.lease.count() < 30) o_.lease = std::chrono::milliseconds(30);
        dir_channel_ = o_.prefix + "dir";
        to_channel_ = o_.prefix + "to:" + o_.node_id;
        room_prefix_ = o_.prefix + "room:";
        incarnation_ = fresh_incarnation();
    }

    backplane(const backplane&) = delete;
    backplane& operator=(const backplane&) = delete;

    /// @brief Stops the connections (the router must not call the backplane any more). Handlers
    /// that run from here on (a claim answered nullptr by the stopping connection) no longer
    /// touch the router, which may be gone already. Destroy it when its io_context no longer
    /// runs (after `stop()` it runs out of work), as handlers posted earlier refer to it.
    ~backplane() override {
        r_ = nullptr;
        timer_.cancel();
        conn_.stop();
        sub_.stop();
    }

    /// @brief Starts: connects to Redis, joins the cluster (a new incarnation of `node_id`),
    /// subscribes, loads the directory. Claims are answered `cluster_unavailable` until then.
    /// @param r the router whose `router_options::directory` is this backplane; must outlive it.
    /// @param router_mutex the mutex that serialises `r` (the one given to the servers), or null
    ///        when everything runs on the backplane's single-threaded io_context.
    /// @note Call it on the backplane's io_context, or before that io_context runs.
    void start(router& r, std::mutex* router_mutex = nullptr) {
        r_ = &r;
        m_ = router_mutex;
        conn_.on_up([this] { locked([this] { connection_up(); }); });
        conn_.on_down([this] { locked([this] { connection_down(); }); });
        sub_.on_up([this] { locked([this] { subscriber_up(); }); });
        sub_.on_down([this] { locked([this] { subscriber_down(); }); });
        sub_.on_message([this](std::string_view channel, std::string_view data) {
            locked([&] { message(channel, data); });
        });
        sub_.subscribe(dir_channel_);
        sub_.subscribe(to_channel_);
        conn_.start();
        sub_.start();
        arm_heartbeat();
        kick_posted_ = false; // a pump posted before start() did nothing: run what it left
        kick();
    }

    /// @brief Leaves the cluster: runs the leave script (the node's entries go at once, so its
    /// users are offline on the other nodes now rather than a lease later), then closes both
    /// connections. Thread-safe: posts to the backplane's io_context; returns at once.
    void stop() {
        net::post(io_, [this] {
            locked([this] {
                if (stopping_) return;
                stopping_ = true;
                timer_.cancel();
                const std::string now = std::to_string(unix_ms());
                const std::string ttl = std::to_string(o_.directory_ttl.count());
                const bool sent = joined_ && conn_.connected() &&
                                  conn_.eval(scripts_.leave, {}, {o_.prefix, o_.node_id, inc_text_, now, ttl},
                                             [this](const redisReply*) { net::post(io_, [this] { close_links(); }); });
                if (!sent) net::post(io_, [this] { close_links(); });
            });
        });
    }

    /// @brief True when the node can route across the cluster now: joined, both connections up,
    /// the directory loaded and the lease renewed within its duration.
    /// @note Under the router mutex (or on the backplane's io_context without one).
    [[nodiscard]] bool available() const noexcept {
        return connected_and_synced() && std::chrono::steady_clock::now() < lease_until_;
    }

    /// @brief This run's incarnation: random, fresh at each start and after a lost lease.
    [[nodiscard]] std::uint64_t incarnation() const noexcept { return incarnation_; }

    /// @brief The node id (`backplane_options::node_id`).
    [[nodiscard]] const std::string& node_id() const noexcept { return o_.node_id; }

    /// @brief Remote sessions (proxies) open in the router now.
    [[nodiscard]] std::size_t remote_sessions() const noexcept { return proxies_.size(); }

    /// @brief Running totals (see `backplane_counters`); under the router mutex.
    [[nodiscard]] const backplane_counters& counters() const noexcept { return counters_; }

    // ---- directory ------------------------------------------------------------------------------

    /// @brief Asks Redis for `user` (the claim script); answered later with
    /// `router::claim_completed()`. See `directory::claim()`.
    /// @param user the folded name.
    /// @param s the local session.
    /// @param policy the router's session policy.
    /// @param ticket the router's ticket.
    void claim(const name& user, session_id s, session_policy policy, std::uint64_t ticket) override {
        claims_.push_back(claim_request{ticket, s, user, policy});
        kick();
    }

    /// @brief A local session gave up `user`: its entry is deleted (the release script) if it
    /// is still this incarnation's. See `directory::released()`.
    /// @param user the folded name.
    /// @param s the local session.
    /// @param last_seen_ms its last input (Unix ms, -1 never), published for the other nodes'
    ///        presence.
    void released(const name& user, session_id s, std::int64_t last_seen_ms) override {
        const auto it = local_.find(s.value());
        if (it == local_.end() || it->second.user != user) return;
        const bool current = it->second.incarnation == incarnation_;
        local_.erase(it);
        if (o_.on_released) o_.on_released(user);
        if (current) {
            // Sent after this turn's publishes: the router reports the release before the
            // member_left events of the same close, which other nodes must see first (as on one
            // node: the rooms hear the leave, then watchers the offline).
            releases_.push_back(release_request{user, s, last_seen_ms});
            kick();
        }
    }

    /// @brief Subscribes to (or unsubscribes from) the room's channel. See `directory::room_active()`.
    /// @param room the folded room name.
    /// @param active true: the first local member joined; false: the last one left.
    void room_active(const name& room, bool active) override {
        room_changes_.emplace_back(std::string(room.view()), active);
        if (!active) // no local member left to tell: forget who joined it elsewhere
            for (auto& node : remote_members_) node.second.erase(std::string(room.view()));
        kick();
    }

    /// @brief The key of a direct message the router stores here for `user`, whose remote
    /// sessions are handed `remote_bytes` next: this incarnation and the next counter; each of
    /// those sessions' records then carries it, so that each node stores it once. Empty when no
    /// remote session of `user` is open here. See `directory::message_key_for()`.
    /// @param user the recipient's folded name.
    /// @param remote_bytes the payload the user's remote sessions are handed (held until this
    ///        event-loop turn's batches are published, so that its buffer names this message
    ///        however many other keyed messages the router routes before it hands this one).
    /// @return the key, or an empty one.
    [[nodiscard]] message_key message_key_for(const name& user, const payload& remote_bytes) override {
        if (user_proxies_.find(user) == user_proxies_.end()) return {};
        add_keyed(keyed_payload{remote_bytes, ++serial_, true, false});
        kick(); // flush() forgets it, whether a record is written or not
        return {incarnation_, serial_};
    }

    /// @brief Has the nodes of `user`'s sessions confirm the records of `remote_bytes`: each
    /// such record carries a confirmation request (this node, its incarnation and a counter),
    /// and the receiving node answers on this node's channel once it handed the message to the
    /// session (after the store committed it, for a session with acks on) or could not. `done`
    /// gets `ok` at the first record handed; the receiving nodes' failure when every record
    /// failed; `cluster_unavailable` when the one node its records went to was buried (`down`),
    /// when no answer came within `backplane_options::confirm_timeout` (checked at each
    /// heartbeat), or when no record was written this turn. See `directory::confirm()`.
    /// @param user the recipient's folded name.
    /// @param remote_bytes the payload the user's remote sessions are handed next.
    /// @param done see `directory::confirm()`.
    /// @return false (no confirmation) when no remote session of `user` is open here or the
    ///         cluster is out of reach (the deliveries then fail as `cluster_unavailable`).
    [[nodiscard]] bool confirm(const name& user, const payload& remote_bytes, std::function<void(status)> done) override {
        if (user_proxies_.find(user) == user_proxies_.end() || !available()) return false;
        add_keyed(keyed_payload{remote_bytes, ++serial_, false, true});
        confirmation c;
        c.done = std::move(done);
        c.until = std::chrono::steady_clock::now() + std::max(o_.confirm_timeout, o_.lease);
        confirming_.emplace(serial_, std::move(c));
        kick(); // flush() answers it at once if no record was written
        return true;
    }

    /// @brief Publishes a room event started here on the room's channel, with this node's id.
    /// Dropped while the cluster is out of reach (the local members had it). See
    /// `directory::room_event()`.
    /// @param room the folded room name.
    /// @param e the event.
    void room_event(const name& room, const event& e) override {
        if (!available()) {
            ++counters_.unavailable;
            return;
        }
        const payload bytes = cluster_format::instance().encode(e);
        if (bytes.empty()) return;
        std::string data;
        data.reserve(1 + o_.node_id.size() + bytes.size());
        data.push_back(static_cast<char>(o_.node_id.size()));
        data.append(o_.node_id);
        data.append(bytes.view());
        out_.push_back(outgoing{room_prefix_ + std::string(room.view()), std::move(data)});
        open_batch_.clear(); // later directed events go after this one
        kick();
    }

    /// @brief A session of `user` on this node acknowledged the user's messages through
    /// `through`: the nodes holding the user's other sessions are told (one record in this
    /// turn's batch for each such node, after the events already in it), and call their
    /// `backplane_options::on_acknowledged`. Nothing when no other node holds the user, or while
    /// the cluster is out of reach (the other nodes' caches then catch up at their next reply
    /// from Redis: docs/cluster.md, "One user on several nodes"). The host calls it from the
    /// cluster inbox's acknowledgement hook (`redis::inbox::on_acknowledge()`), under the router
    /// mutex.
    /// @param user the folded name.
    /// @param through the highest sequence number acknowledged (1 or more).
    /// @throws std::bad_alloc when memory runs out.
    void acknowledged(const name& user, std::uint64_t through) {
        const auto it = user_proxies_.find(user);
        if (it == user_proxies_.end()) return;
        std::vector<const proxy*> nodes; // one per node (the user may have several sessions there)
        for (const proxy* p : it->second.sessions)
            if (std::find_if(nodes.begin(), nodes.end(), [&](const proxy* q) { return q->node_ == p->node_; }) ==
                nodes.end())
                nodes.push_back(p);
        for (const proxy* p : nodes) {
            std::string* data = batch_for(*p);
            if (data == nullptr) return;
            put_u64(*data, 0);
            put_u32(*data, static_cast<std::uint32_t>(8 + user.view().size()) | ack_bit);
            put_u64(*data, through);
            data->append(user.view());
            kick();
        }
    }

private:
    // ---- remote sessions ------------------------------------------------------------------------

    // A message keyed, or to be confirmed, this turn (message_key_for(), confirm(), send_directed()).
    struct keyed_payload {
        payload bytes;        // held: its buffer names the message until flush()
        std::uint64_t serial; // the message key's counter (with incarnation_), or the confirmation's
        bool keyed;           // its records carry the message key
        bool confirm;         // its records ask for a confirmation (confirm())
    };
    struct confirmation {
        std::function<void(status)> done;
        std::chrono::steady_clock::time_point until; // answered cluster_unavailable then
        std::size_t records = 0;                     // written for it (this turn)
        std::size_t failed = 0;                      // answered with a failure
        status failure = status::ok;                 // the first failure
        std::string node;                            // the node of its first record
        bool several_nodes = false;                  // its records went to more than one node
    };
    class proxy;

    // The remote sessions of one user open here, and whether they are on more than one node.
    struct remote_user {
        std::vector<proxy*> sessions;
        bool several_nodes = false; // the user's messages are keyed (send_directed())

        void recount() noexcept {
            several_nodes = std::any_of(sessions.begin(), sessions.end(),
                                        [&](const proxy* q) { return q->node_ != sessions.front()->node_; });
        }
    };

    // The transport of one remote session: appends to its node's batch.
    class proxy final : public transport {
    public:
        proxy(backplane& b, std::string key, std::string node, std::uint64_t inc, std::uint64_t sid,
              remote_user& siblings)
            : b_(b), key_(std::move(key)), node_(std::move(node)), inc_(inc), sid_(sid), siblings_(&siblings) {}
        delivery deliver(const payload& bytes) noexcept override { return b_.send_directed(*this, bytes); }
        void close(close_mode) noexcept override { b_.proxy_closed(key_, id_); }

        backplane& b_;
        std::string key_;  // "<node>/<sid>"
        std::string node_;
        std::uint64_t inc_;
        std::uint64_t sid_; // the session id on its node
        remote_user* siblings_; // the remote sessions of its user open here (in user_proxies_: stable)
        name user_;
        session_id id_;     // the remote session in this router
    };

    struct local_entry {
        name user;
        std::uint64_t incarnation;
    };
    struct claim_request {
        std::uint64_t ticket;
        session_id s;
        name user;
        session_policy policy;
    };
    struct release_request {
        name user;
        session_id s;
        std::int64_t last_seen = -1;
    };
    struct outgoing {
        std::string channel;
        std::string data;
        std::uint64_t inc = 0; // a directed batch: its node's incarnation
    };
    struct scripts {
        script claim, release, heartbeat, start, snapshot, reassert, leave;
    };

    // Runs f under the router mutex (unless this thread holds it already: a handler called from
    // inside a connection call); nothing once the destructor has begun.
    template <class F>
    void locked(F&& f) {
        if (!r_) return;
        if (!m_ || holding_) {
            f();
            return;
        }
        std::lock_guard<std::mutex> lock(*m_);
        holding_ = true;
        struct reset {
            bool& b;
            ~reset() { b = false; }
        } guard{holding_};
        f();
    }

    void say(const std::string& line) const {
        if (o_.log) o_.log(line);
    }

    static std::int64_t unix_ms() {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }

    static std::uint64_t fresh_incarnation() {
        std::random_device rd;
        std::uint64_t v = 0;
        while (v == 0) v = (std::uint64_t{rd()} << 32) ^ rd();
        return v;
    }

    static std::uint64_t parse_u64(std::string_view s, bool& ok) noexcept {
        std::uint64_t v = 0;
        ok = !s.empty() && s.size() <= 20;
        for (const char c : s) {
            if (c < '0' || c > '9') {
                ok = false;
                return 0;
            }
            v = v * 10 + static_cast<std::uint64_t>(c - '0');
        }
        return v;
    }

    static const char* policy_name(session_policy p) noexcept {
        return p == session_policy::exclusive ? "exclusive" : p == session_policy::replace ? "replace" : "multi";
    }

    static std::string_view str(const redisReply* r) noexcept {
        if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)) return {};
        return {r->str, r->len};
    }
    static const redisReply* at(const redisReply* r, std::size_t i) noexcept {
        if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements) return nullptr;
        return r->element[i];
    }

    // Router callbacks only record; what they recorded runs here, on the io_context, once per
    // event-loop turn however many events the turn made (the batching of directed events).
    void kick() {
        if (kick_posted_) return;
        kick_posted_ = true;
        net::post(io_, [this] {
            locked([this] {
                kick_posted_ = false;
                run_requests();
                flush();
            });
        });
    }

    void run_requests() {
        std::vector<claim_request> claims;
        claims.swap(claims_);
        for (claim_request& c : claims) send_claim(c);
        std::vector<std::pair<std::string, bool>> rooms;
        rooms.swap(room_changes_);
        for (auto& [room, active] : rooms) {
            if (active) sub_.subscribe(room_prefix_ + room);
            else sub_.unsubscribe(room_prefix_ + room);
        }
        std::vector<std::pair<std::string, session_id>> closes;
        closes.swap(proxy_closes_);
        for (const auto& [key, id] : closes) {
            const auto it = proxies_.find(key);
            if (it != proxies_.end() && it->second->id_ == id) close_proxy(it, -1);
        }
    }

    void send_claim(const claim_request& c) {
        if (!available()) {
            ++counters_.claims_unavailable;
            (void)r_->claim_completed(c.ticket, status::cluster_unavailable);
            return;
        }
        const char* policy = policy_name(c.policy);
        const std::string sid = std::to_string(c.s.value());
        const std::string max = std::to_string(o_.max_sessions_per_user);
        const std::string ttl = std::to_string(o_.directory_ttl.count());
        const std::uint64_t inc = incarnation_;
        inflight_.emplace(c.ticket, c);
        const bool sent = conn_.eval(scripts_.claim, {},
                                     {o_.prefix, o_.node_id, inc_text_, c.user.view(), sid, policy, max, ttl},
                                     [this, ticket = c.ticket, inc](const redisReply* r) {
                                         locked([&] { claim_answered(ticket, inc, claim_result(r)); });
                                     });
        ++counters_.claims;
        if (!sent) claim_answered(c.ticket, inc, status::cluster_unavailable);
    }

    status claim_result(const redisReply* r) {
        const std::string_view word = str(at(r, 0));
        if (word == "ok") return status::ok;
        if (word == "name_taken") return status::name_taken;
        if (word == "too_many_sessions") return status::too_many_sessions;
        if (word == "lease") lease_doubt_ = true;
        return status::cluster_unavailable;
    }

    void claim_answered(std::uint64_t ticket, std::uint64_t inc, status result) {
        const auto it = inflight_.find(ticket);
        if (it == inflight_.end()) return;
        const claim_request c = it->second;
        inflight_.erase(it);
        if (result == status::ok && inc != incarnation_) result = status::cluster_unavailable; // lease lost meanwhile
        if (result == status::ok && o_.on_granted) { // the host prepares the registration first
            o_.on_granted(c.user, [this, c, ticket, inc](bool ready) {
                locked([&] {
                    if (!ready || inc != incarnation_) {
                        // Nobody else may hold the entry this claim wrote: give it back.
                        if (inc == incarnation_) send_release(release_request{c.user, c.s, -1});
                        ++counters_.claims_unavailable;
                        (void)r_->claim_completed(ticket, status::cluster_unavailable);
                        return;
                    }
                    local_[c.s.value()] = local_entry{c.user, inc};
                    (void)r_->claim_completed(ticket, status::ok); // may call released() at once (session gone)
                });
            });
        } else {
            if (result == status::ok) local_[c.s.value()] = local_entry{c.user, inc};
            if (result == status::cluster_unavailable) ++counters_.claims_unavailable;
            (void)r_->claim_completed(ticket, result); // may call released() at once (session gone)
        }
        if (lease_doubt_) {
            lease_doubt_ = false;
            heartbeat(false);
        }
    }

    void send_release(const release_request& rel) {
        if (!joined_ || !conn_up_) return; // the re-assert after the reconnect removes it
        const std::string sid = std::to_string(rel.s.value());
        const std::string seen = std::to_string(rel.last_seen);
        (void)conn_.eval(scripts_.release, {}, {o_.prefix, o_.node_id, inc_text_, rel.user.view(), sid, seen},
                         [](const redisReply*) {});
    }

    bool connected_and_synced() const noexcept { return joined_ && synced_ && conn_up_ && sub_up_ && !stopping_; }

    // This turn's batch for p's node (opened when it is not), null while the cluster is out of
    // reach (counted in `unavailable`). Inlined: on the path of every cross-node message (out of
    // line it cost about 20 instructions per message under callgrind, scripts/callgrind-cluster).
    SWITCHBOARD_HOT_INLINE std::string* batch_for(const proxy& p) { return batch_to(p.node_, p.inc_); }
    SWITCHBOARD_HOT_INLINE std::string* batch_to(const std::string& node, std::uint64_t inc) {
        auto it = open_batch_.find(node);
        const bool open = it != open_batch_.end() && out_[it->second].inc == inc;
        // The lease's clock is read when this turn's batch for the node opens, not per
        // message (a turn lasts far less than the lease); the rest is checked every time.
        if (!(open ? connected_and_synced() : available())) {
            ++counters_.unavailable;
            return nullptr;
        }
        if (!open) {
            outgoing o{o_.prefix + "to:" + node, take_buffer(), inc};
            put_u64(o.data, inc);
            out_.push_back(std::move(o));
            it = open_batch_.insert_or_assign(node, out_.size() - 1).first;
        }
        return &out_[it->second].data;
    }

    delivery send_directed(proxy& p, const payload& bytes) noexcept {
        try {
            std::string* batch = batch_for(p);
            if (batch == nullptr) return delivery::unavailable;
            std::string& data = *batch;
            put_u64(data, p.sid_);
            // A payload keyed this turn (held in keyed_, so its buffer cannot be reused by
            // another message) names its message: the router hands one message's payload to each
            // remote session of its user, after message_key_for() when it stored it here, and
            // may route other keyed messages in between (a delivery that routes again).
            keyed_payload* k = keyed_.empty() ? nullptr : keyed_entry(bytes);
            if (k == nullptr && !p.siblings_->several_nodes) {
                put_u32(data, static_cast<std::uint32_t>(bytes.size()));
            } else {
                // The user has sessions on several other nodes, or here too: each gets the
                // message with the same key, so that the cluster inbox stores it once
                // (append_once()). A send() to confirm (confirm()) asks for an answer.
                if (k == nullptr) {
                    add_keyed(keyed_payload{bytes, ++serial_, true, false});
                    k = &keyed_.back();
                }
                k->keyed = k->keyed || p.siblings_->several_nodes;
                put_u32(data, static_cast<std::uint32_t>(bytes.size()) | (k->keyed ? keyed_bit : 0u) |
                                  (k->confirm ? confirm_bit : 0u));
                if (k->keyed) {
                    put_u64(data, incarnation_);
                    put_u64(data, k->serial);
                }
                if (k->confirm) { // who answers where: this node, its incarnation, the counter
                    put_u64(data, incarnation_);
                    put_u64(data, k->serial);
                    data.push_back(static_cast<char>(o_.node_id.size()));
                    data.append(o_.node_id);
                    if (const auto c = confirming_.find(k->serial); c != confirming_.end()) {
                        confirmation& cf = c->second;
                        if (cf.records++ == 0) cf.node = p.node_;
                        else if (cf.node != p.node_) cf.several_nodes = true;
                    }
                }
            }
            data.append(bytes.view());
            ++counters_.records_out;
            kick();
            return delivery::queued;
        } catch (...) {
            return delivery::unavailable;
        }
    }

    // This turn's entry of the message whose payload is `bytes`, null if none: newest first
    // among the few a usual turn keys; by the index past keyed_linear (a turn of many confirmed
    // sends, where every other record's miss would scan them all).
    keyed_payload* keyed_entry(const payload& bytes) noexcept {
        if (keyed_index_.empty()) {
            for (auto k = keyed_.rbegin(); k != keyed_.rend(); ++k)
                if (k->bytes.data() == bytes.data() && k->bytes.size() == bytes.size()) return &*k;
            return nullptr;
        }
        const auto it = keyed_index_.find(bytes.data());
        if (it == keyed_index_.end() || keyed_[it->second].bytes.size() != bytes.size()) return nullptr;
        return &keyed_[it->second];
    }

    // Appends k to this turn's keyed messages, indexed by buffer once there are more than
    // keyed_linear (the newest entry of a buffer wins, as in the scan). Nothing is added when
    // memory runs out (std::bad_alloc is thrown on).
    void add_keyed(keyed_payload&& k) {
        keyed_.push_back(std::move(k));
        if (keyed_.size() <= keyed_linear) return;
        try {
            if (keyed_index_.empty()) {
                keyed_index_.reserve(keyed_.size() * 2);
                for (std::size_t i = 0; i < keyed_.size(); ++i) keyed_index_.insert_or_assign(keyed_[i].bytes.data(), i);
            } else {
                keyed_index_.insert_or_assign(keyed_.back().bytes.data(), keyed_.size() - 1);
            }
        } catch (...) {
            keyed_.pop_back();
            keyed_index_.clear(); // the scan finds every entry: the next add_keyed() indexes again
            throw;
        }
    }

    // Answers a confirmation request (a record with confirm_bit) on the requesting node's
    // channel: u64 session id 0, u32 9 | confirmed_bit, u64 counter, u8 code (a status, or
    // abstained).
    void answer_confirm(const std::string& node, std::uint64_t inc, std::uint64_t serial, unsigned char code) {
        std::string* data = batch_to(node, inc);
        if (data == nullptr) return; // out of reach: the requester's timeout answers
        put_u64(*data, 0);
        put_u32(*data, 9u | confirmed_bit);
        put_u64(*data, serial);
        data->push_back(static_cast<char>(code));
        kick();
    }
    void answer_confirm(const std::string& node, std::uint64_t inc, std::uint64_t serial, status st) {
        answer_confirm(node, inc, serial, static_cast<unsigned char>(st));
    }

    // A receiving node's answer to confirmation `serial` (a status, or abstained): the first
    // `ok` completes it; a failure only once every record written for it that did not abstain
    // failed (cluster_unavailable when all of them abstained: nobody stored it).
    void confirm_answered(std::uint64_t serial, unsigned code) {
        const auto it = confirming_.find(serial);
        if (it == confirming_.end()) return; // answered already (ok, or timed out)
        confirmation& c = it->second;
        // (a code outside the enumeration, or `pending`, is no answer: trusts nothing)
        status st = code < static_cast<unsigned>(::switchboard::detail::last_status) ? static_cast<status>(code)
                                                                                     : status::cluster_unavailable;
        if (code == abstained) { // another record to that node answers for the message
            if (c.records != 0) --c.records;
            if (c.failed < c.records) return;
            st = c.failed != 0 ? c.failure : status::cluster_unavailable;
        } else if (st != status::ok) {
            if (c.failure == status::ok) c.failure = st;
            if (++c.failed < c.records) return;
            st = c.failure;
        }
        const std::function<void(status)> done = std::move(c.done);
        confirming_.erase(it);
        ++(st == status::ok ? counters_.confirmed : counters_.confirm_failed);
        done(st);
    }

    // Confirmation `serial` with no record written (its turn is over) is answered at once.
    void unanswerable(std::uint64_t serial) {
        const auto it = confirming_.find(serial);
        if (it == confirming_.end() || it->second.records != 0) return;
        const std::function<void(status)> done = std::move(it->second.done);
        confirming_.erase(it);
        done(status::cluster_unavailable);
    }

    // Answers cluster_unavailable every confirmation that `unanswered(c)` says will get no
    // answer, counting each in `counter` (the handlers run after the map is done with: they may
    // route again).
    template <class Predicate>
    void give_up_confirmations(Predicate unanswered, std::uint64_t& counter) {
        if (confirming_.empty()) return;
        std::vector<std::function<void(status)>> given_up;
        for (auto it = confirming_.begin(); it != confirming_.end();) {
            if (unanswered(it->second)) {
                given_up.push_back(std::move(it->second.done));
                it = confirming_.erase(it);
            } else {
                ++it;
            }
        }
        for (auto& done : given_up) {
            ++counter;
            done(status::cluster_unavailable);
        }
    }

    // Node `node` was buried: the confirmations whose records all went to it will get no answer.
    void node_gone(std::string_view node) {
        give_up_confirmations(
            [&](const confirmation& c) { return !c.several_nodes && c.records != 0 && c.node == node; },
            counters_.confirm_failed);
    }

    // Confirmations with no answer within confirm_timeout are answered cluster_unavailable.
    void expire_confirmations() {
        const auto now = std::chrono::steady_clock::now();
        give_up_confirmations([&](const confirmation& c) { return now >= c.until; }, counters_.confirm_timeouts);
    }

    void proxy_closed(const std::string& key, session_id id) noexcept {
        try {
            proxy_closes_.emplace_back(key, id);
            kick();
        } catch (...) {
        }
    }

    // Little-endian, one append each (a push_back per byte is a call per byte once GCC stops
    // inlining it into send_directed()).
    static void put_u64(std::string& s, std::uint64_t v) {
        char b[8];
        for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(static_cast<unsigned char>(v >> (8 * i)));
        s.append(b, sizeof b);
    }
    static void put_u32(std::string& s, std::uint32_t v) {
        char b[4];
        for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(static_cast<unsigned char>(v >> (8 * i)));
        s.append(b, sizeof b);
    }

    // One PUBLISH per batch, in the order the events were made (pipelined on one connection, so
    // every node receives them in that order).
    void flush() {
        std::vector<outgoing> out;
        out.swap(out_);
        open_batch_.clear();
        std::vector<release_request> releases;
        releases.swap(releases_);
        // Every record of this turn's keyed messages is written; a confirmation none of whose
        // records was (every transport refused) is answered now.
        if (!keyed_.empty()) {
            std::vector<keyed_payload> turn;
            turn.swap(keyed_); // (an answer may route again)
            if (!keyed_index_.empty()) {
                if (keyed_index_.bucket_count() > 4096) keyed_index_ = {}; // a burst does not pin memory
                else keyed_index_.clear();
            }
            for (const keyed_payload& k : turn)
                if (k.confirm) unanswerable(k.serial);
        }
        for (outgoing& o : out) {
            if (conn_up_ && conn_.command({"PUBLISH", o.channel, o.data}, [](const redisReply*) {})) ++counters_.publishes;
            recycle(std::move(o.data));
        }
        out.clear();
        if (out_.empty()) out_.swap(out); // keeps the vector's capacity for the next turn
        for (const release_request& rel : releases) send_release(rel);
    }

    // Batch buffers are reused from turn to turn: a batch under load is hundreds of kilobytes,
    // and allocating it anew each turn costs page faults when the allocator returns the memory
    // to the system in between. At most 8 are kept, none above 4 MiB.
    std::string take_buffer() {
        if (spare_.empty()) return std::string();
        std::string b = std::move(spare_.back());
        spare_.pop_back();
        return b;
    }
    void recycle(std::string&& b) noexcept {
        if (spare_.size() >= 8 || b.capacity() > (std::size_t{4} << 20)) return;
        b.clear();
        try {
            spare_.push_back(std::move(b));
        } catch (...) {
        }
    }

    // ---- lifecycle ------------------------------------------------------------------------------

    void connection_up() {
        conn_up_ = true;
        if (stopping_ || taken_) return;
        if (!joined_) {
            join();
            return;
        }
        heartbeat(true);
        if (sub_up_ && !synced_) resync(); // the subscriber came back first, and its snapshot failed
    }

    void connection_down() {
        conn_up_ = false;
        if (!stopping_) say("Redis connection lost; cross-node routing unavailable until it is back");
    }

    void subscriber_up() {
        sub_up_ = true;
        if (joined_ && !stopping_) resync();
    }

    void subscriber_down() {
        sub_up_ = false;
        synced_ = false;
        abandon_snapshot(); // taken before the resubscription, it could miss changes
    }

    // A snapshot in flight will not be loaded: its answer is ignored, a new one may be asked.
    void abandon_snapshot() {
        ++snap_id_;
        snap_inflight_ = false;
        buffering_ = false;
        buffered_.clear();
    }

    void close_links() {
        conn_.stop();
        sub_.stop();
    }

    // A new incarnation takes the node id (the start script).
    void join() {
        inc_text_ = std::to_string(incarnation_);
        const std::string epoch = std::to_string(fresh_incarnation());
        const auto sent_at = std::chrono::steady_clock::now();
        const std::uint64_t inc = incarnation_;
        (void)conn_.eval(scripts_.start, {},
                         {o_.prefix, o_.node_id, inc_text_, std::to_string(o_.lease.count()),
                          std::to_string(o_.directory_ttl.count()), epoch, std::to_string(unix_ms()),
                          std::to_string(o_.heartbeat_slice)},
                         [this, sent_at, inc](const redisReply* r) {
                             locked([&] {
                                 if (inc != incarnation_ || stopping_) return;
                                 if (str(at(r, 0)) != "ok") return; // retried at the next connect
                                 epoch_ = std::string(str(at(r, 1)));
                                 joined_ = true;
                                 lease_until_ = sent_at + o_.lease;
                                 say("joined the cluster as node " + o_.node_id + ", incarnation " + inc_text_);
                                 if (sub_up_) resync();
                             });
                         });
    }

    void arm_heartbeat() {
        timer_.expires_after(o_.lease / 3);
        timer_.async_wait([this](const net_error_code& ec) {
            if (ec || stopping_) return;
            locked([this] {
                drop_unconfirmed();
                expire_confirmations();
                heartbeat(false);
            });
            arm_heartbeat();
        });
    }

    // Renews the lease; `reconnected`: re-assert the entries afterwards (a lost claim answer,
    // or Redis lost its data).
    void heartbeat(bool reconnected) {
        if (!joined_ || !conn_up_ || stopping_ || taken_) return;
        if (hb_inflight_ && !reconnected) return;
        hb_inflight_ = true;
        const auto sent_at = std::chrono::steady_clock::now();
        const std::uint64_t inc = incarnation_;
        const bool sent = conn_.eval(
            scripts_.heartbeat, {},
            {o_.prefix, o_.node_id, inc_text_, std::to_string(o_.lease.count()),
             std::to_string(o_.directory_ttl.count()), epoch_, std::to_string(unix_ms()), cursor_,
             std::to_string(o_.heartbeat_slice)},
            [this, sent_at, inc, reconnected](const redisReply* r) {
                locked([&] {
                    hb_inflight_ = false;
                    if (inc != incarnation_ || stopping_ || !r) return;
                    const std::string_view word = str(at(r, 0));
                    if (word == "ok") {
                        lease_until_ = sent_at + o_.lease;
                        cursor_ = std::string(str(at(r, 1)));
                        if (cursor_.empty()) cursor_ = "0";
                        if (reconnected) reassert();
                        if (sub_up_ && !synced_) resync(); // a snapshot that failed is tried again
                        if (recheck_) { // a `down` for this incarnation came meanwhile: ask again
                            recheck_ = false;
                            heartbeat(false);
                        }
                    } else if (word == "reset") {
                        say("Redis lost the directory (restarted without persistence?): re-asserting " +
                            std::to_string(local_.size()) + " local session(s)");
                        reassert();
                    } else if (word == "lost") {
                        lose_lease(str(at(r, 1)) != "taken");
                    }
                });
            });
        if (!sent) hb_inflight_ = false;
    }

    // The directory holds exactly this incarnation's entries: the local sessions and the claims
    // still in flight (their answer comes after the re-assert, on the same connection).
    void reassert() {
        std::vector<std::string> texts;
        texts.reserve(2 * (local_.size() + inflight_.size()));
        for (const auto& [sid, entry] : local_) {
            if (entry.incarnation != incarnation_) continue;
            texts.emplace_back(entry.user.view());
            texts.push_back(std::to_string(sid));
        }
        for (const auto& [ticket, c] : inflight_) {
            texts.emplace_back(c.user.view());
            texts.push_back(std::to_string(c.s.value()));
        }
        const std::string lease = std::to_string(o_.lease.count()), ttl = std::to_string(o_.directory_ttl.count());
        const std::string epoch = std::to_string(fresh_incarnation()), now = std::to_string(unix_ms());
        const std::string max = std::to_string(o_.max_sessions_per_user);
        std::vector<std::string_view> args{o_.prefix, o_.node_id, inc_text_, lease, ttl, epoch,
                                           policy_name(o_.sessions), max, now};
        for (const std::string& t : texts) args.emplace_back(t);
        const auto sent_at = std::chrono::steady_clock::now();
        const std::uint64_t inc = incarnation_;
        (void)conn_.eval(scripts_.reassert, {}, args, [this, inc, sent_at](const redisReply* r) {
            locked([&] {
                if (inc != incarnation_ || stopping_ || !r) return;
                const std::string_view word = str(at(r, 0));
                if (word == "lost") {
                    lose_lease(false);
                    return;
                }
                if (word != "ok") return;
                epoch_ = std::string(str(at(r, 1)));
                lease_until_ = sent_at + o_.lease;
                std::size_t lost = 0;
                for (std::size_t i = 2; i + 1 < r->elements; i += 2) {
                    bool ok = false;
                    const std::uint64_t sid = parse_u64(str(at(r, i + 1)), ok);
                    const auto it = local_.find(sid);
                    if (!ok || it == local_.end()) continue;
                    close_with(session_id_from(sid), it->second.user, status::name_taken);
                    local_.erase(it);
                    ++lost;
                }
                say("re-asserted the local sessions" +
                    (lost ? "; " + std::to_string(lost) + " lost their name to another node and were closed"
                          : std::string()));
            });
        });
    }

    // Closes local session `s` (holding `user`) once its output is flushed, after telling it
    // why: a `session_closed` event with `why` (`bye <token>` in the line protocol).
    void close_with(session_id s, const name& user, status why) {
        event e;
        e.kind = event_kind::session_closed;
        e.user = user.view();
        e.code = why;
        (void)r_->notify(s, e);
        (void)r_->disconnect(s, close_mode::after_flush);
    }

    // The lease is gone: this incarnation's entries do not count any more (other nodes may hold
    // the names now), so every local session that holds a name is closed. `rejoin`: the node id
    // is free (the lease lapsed), join again as a new incarnation; else another process runs
    // with this node id, and this one stays out of the cluster.
    void lose_lease(bool rejoin) {
        ++counters_.lease_losses;
        std::unordered_map<std::uint64_t, local_entry> gone;
        gone.swap(local_);
        say(std::string("lease lost (") + (rejoin ? "it lapsed: frozen or cut off from Redis" : "another process runs as this node id") +
            "): closing " + std::to_string(gone.size()) + " local session(s) that held a name");
        joined_ = false;
        synced_ = false;
        recheck_ = false;
        abandon_snapshot();
        incarnation_ = fresh_incarnation();
        inc_text_ = std::to_string(incarnation_);
        for (const auto& [sid, entry] : gone) close_with(session_id_from(sid), entry.user, status::cluster_unavailable);
        if (!rejoin) {
            taken_ = true;
            return;
        }
        if (conn_up_) join();
    }

    // ---- the directory's replica: snapshot, then the changes after it ---------------------------

    void resync() {
        if (snap_inflight_) return;
        synced_ = false;
        snap_inflight_ = true;
        buffered_.clear();
        buffering_ = true;
        ++counters_.resyncs;
        const std::uint64_t id = ++snap_id_;
        const bool sent = conn_.eval(scripts_.snapshot, {}, {o_.prefix}, [this, id](const redisReply* r) {
            locked([&] {
                if (id != snap_id_) return; // given up (the subscriber dropped, the lease was lost)
                snap_inflight_ = false;
                if (stopping_) return;
                if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->element[0]->type != REDIS_REPLY_INTEGER) {
                    buffering_ = false;
                    return; // the next connect or heartbeat tries again
                }
                load_snapshot(r);
            });
        });
        if (!sent) {
            snap_inflight_ = false;
            buffering_ = false;
        }
    }

    void load_snapshot(const redisReply* r) {
        struct want {
            std::string name;
            std::uint64_t inc;
            bool seen;
        };
        std::unordered_map<std::string, want> wanted;
        // Redis lost its data since the last snapshot (a new epoch): the other nodes are
        // re-asserting their entries now, so a proxy missing from this snapshot may only be late,
        // not gone. It is kept, unconfirmed, until a claim confirms it or until the other node
        // had time to reconnect and re-assert (then it goes): no offline-online flap for users who
        // never left.
        const std::string epoch(str(at(r, 1)));
        const bool reset = !snap_epoch_.empty() && epoch != snap_epoch_;
        snap_epoch_ = epoch;
        const auto doubt_until = std::chrono::steady_clock::now() + o_.lease + o_.redis.backoff_max;
        for (std::size_t i = 2; i + 3 < r->elements; i += 4) {
            const std::string_view node = str(at(r, i + 1));
            if (node == o_.node_id) continue;
            bool ok1 = false, ok2 = false;
            (void)parse_u64(str(at(r, i + 2)), ok1);
            const std::uint64_t inc = parse_u64(str(at(r, i + 3)), ok2);
            if (!ok1 || !ok2) continue;
            wanted[std::string(node) + "/" + std::string(str(at(r, i + 2)))] =
                want{std::string(str(at(r, i))), inc, false};
        }
        const std::int64_t now = unix_ms();
        for (auto it = proxies_.begin(); it != proxies_.end();) {
            const auto w = wanted.find(it->first);
            if (w != wanted.end() && w->second.inc == it->second->inc_) {
                w->second.seen = true;
                unconfirmed_.erase(it->first);
                ++it;
            } else if (reset) {
                unconfirmed_.emplace(it->first, doubt_until);
                ++it;
            } else {
                it = close_proxy(it, now);
            }
        }
        for (auto& [key, w] : wanted)
            if (!w.seen) open_proxy(key, w.name, w.inc);
        last_seq_ = static_cast<std::uint64_t>(r->element[0]->integer);
        buffering_ = false;
        synced_ = true;
        std::vector<std::string> later;
        later.swap(buffered_);
        for (const std::string& m : later) apply(m);
        say("directory loaded: " + std::to_string(proxies_.size()) + " remote session(s), dirseq " +
            std::to_string(last_seq_));
    }

    // Remote sessions kept after a snapshot of a Redis that lost its data (see load_snapshot())
    // and not confirmed since by a claim: their node did not re-assert them in time.
    void drop_unconfirmed() {
        if (unconfirmed_.empty()) return;
        const auto now = std::chrono::steady_clock::now();
        std::vector<std::string> expired;
        for (const auto& [key, until] : unconfirmed_)
            if (until <= now) expired.push_back(key);
        for (const std::string& key : expired) {
            const auto it = proxies_.find(key);
            if (it != proxies_.end()) close_proxy(it, unix_ms());
            unconfirmed_.erase(key);
        }
    }

    void open_proxy(const std::string& key, std::string_view user, std::uint64_t inc) {
        const auto slash = key.find('/');
        bool ok = false;
        const std::uint64_t sid = parse_u64(std::string_view(key).substr(slash + 1), ok);
        const auto n = name::parse(user);
        if (!ok || !n) return;
        unconfirmed_.erase(key);
        remote_user& siblings = user_proxies_[*n];
        auto p = std::make_unique<proxy>(*this, key, key.substr(0, slash), inc, sid, siblings);
        p->user_ = *n;
        p->id_ = r_->open_remote_session(*p, cluster_format::instance());
        if (r_->register_remote(p->id_, *n) != status::ok) {
            (void)r_->close_session(p->id_);
            if (siblings.sessions.empty()) user_proxies_.erase(*n);
            return;
        }
        siblings.sessions.push_back(p.get());
        siblings.recount();
        proxies_[key] = std::move(p);
    }

    using proxy_map = std::unordered_map<std::string, std::unique_ptr<proxy>>;
    proxy_map::iterator close_proxy(proxy_map::iterator it, std::int64_t last_seen) {
        std::unique_ptr<proxy> p = std::move(it->second);
        unconfirmed_.erase(p->key_);
        it = proxies_.erase(it);
        remote_user& siblings = *p->siblings_;
        siblings.sessions.erase(std::find(siblings.sessions.begin(), siblings.sessions.end(), p.get()));
        if (siblings.sessions.empty()) user_proxies_.erase(p->user_);
        else siblings.recount();
        if (last_seen >= 0) r_->touch(p->id_, last_seen);
        (void)r_->close_session(p->id_); // the transport stays valid until this returns
        return it;
    }

    void message(std::string_view channel, std::string_view data) {
        if (stopping_) return; // our own leave's `down`, among others
        if (channel == dir_channel_) {
            if (buffering_) buffered_.emplace_back(data);
            else if (synced_) apply(data);
        } else if (channel == to_channel_) {
            directed(data);
        } else if (channel.substr(0, room_prefix_.size()) == room_prefix_) {
            room(channel.substr(room_prefix_.size()), data);
        }
    }

    // One change of the directory (directory_scripts.hpp lists the messages).
    void apply(std::string_view m) {
        std::vector<std::string_view> w;
        while (!m.empty()) {
            const auto sp = m.find(' ');
            w.push_back(m.substr(0, sp));
            m = sp == std::string_view::npos ? std::string_view{} : m.substr(sp + 1);
        }
        if (w.size() < 2) return;
        bool ok = false;
        const std::uint64_t seq = parse_u64(w[1], ok);
        if (!ok || seq <= last_seq_) return;
        if (seq != last_seq_ + 1) { // a change was missed: load the directory again
            say("gap in the directory's changes (" + std::to_string(last_seq_) + " then " + std::to_string(seq) +
                "): reloading");
            resync();
            return;
        }
        last_seq_ = seq;
        if (w[0] == "claim" && w.size() >= 6) {
            if (w[3] != o_.node_id) {
                const std::string key = std::string(w[3]) + "/" + std::string(w[4]);
                bool inc_ok = false;
                const std::uint64_t inc = parse_u64(w[5], inc_ok);
                unconfirmed_.erase(key);
                const auto it = proxies_.find(key);
                if (it != proxies_.end() && it->second->inc_ != inc) close_proxy(it, -1);
                if (inc_ok && proxies_.find(key) == proxies_.end()) open_proxy(key, w[2], inc);
            }
            for (std::size_t i = 6; i < w.size(); ++i) { // replaced entries: after the new one
                const auto it = proxies_.find(std::string(w[i]));
                if (it != proxies_.end()) close_proxy(it, -1);
            }
        } else if (w[0] == "release" && w.size() >= 6) {
            if (w[3] == o_.node_id) return;
            const auto it = proxies_.find(std::string(w[3]) + "/" + std::string(w[4]));
            if (it == proxies_.end()) return;
            bool seen_ok = false;
            std::int64_t seen = -1;
            if (w[5] != "-1") seen = static_cast<std::int64_t>(parse_u64(w[5], seen_ok));
            close_proxy(it, seen_ok ? seen : unix_ms());
        } else if (w[0] == "down" && w.size() >= 5) {
            bool inc_ok = false, now_ok = false;
            const std::uint64_t inc = parse_u64(w[3], inc_ok);
            const auto now = static_cast<std::int64_t>(parse_u64(w[4], now_ok));
            if (!inc_ok) return;
            if (w[2] == o_.node_id) {
                // This incarnation was buried: swept after its lease lapsed (frozen, cut off), or
                // taken over by another process started with this node id. Only the node key
                // tells which, so ask it (the heartbeat answers `lost lapsed`: join again, or
                // `lost taken`: stay out) instead of joining again and burying the other process.
                if (inc == incarnation_ && joined_) {
                    if (hb_inflight_) recheck_ = true; // sent before the bury: ask again after it
                    else heartbeat(false);
                }
                return;
            }
            members_left_with(w[2]);
            node_gone(w[2]);
            std::size_t dropped = 0;
            for (auto it = proxies_.begin(); it != proxies_.end();) {
                if (it->second->node_ == w[2] && it->second->inc_ == inc) {
                    it = close_proxy(it, now_ok ? now : unix_ms());
                    ++dropped;
                } else {
                    ++it;
                }
            }
            say("node " + std::string(w[2]) + " (incarnation " + std::string(w[3]) + ") left the cluster or was dropped: " +
                std::to_string(dropped) + " of its session(s) closed here");
        }
    }

    static session_id session_id_from(std::uint64_t v) noexcept {
        return session_id::make(static_cast<std::uint32_t>(v), static_cast<std::uint32_t>(v >> 32));
    }

    // A batch of directed events for this node: u64 incarnation, then records of u64 session id,
    // u32 length and a cluster-format event.
    void directed(std::string_view data) {
        if (data.size() < 8 || ::switchboard::detail::read_le(data.data(), 8) != incarnation_) {
            ++counters_.records_dropped;
            return;
        }
        std::size_t at = 8;
        while (data.size() - at >= 12) {
            const std::uint64_t sid = ::switchboard::detail::read_le(data.data() + at, 8);
            const std::uint64_t word = ::switchboard::detail::read_le(data.data() + at + 8, 4); // length and flags
            at += 12;
            if ((word & ack_bit) != 0) { // another node's acknowledgement (acknowledged())
                const std::uint64_t len = word & ~std::uint64_t{ack_bit};
                if (len < 8 || len > data.size() - at) break;
                const std::uint64_t through = ::switchboard::detail::read_le(data.data() + at, 8);
                const auto user = name::parse(data.substr(at + 8, static_cast<std::size_t>(len) - 8));
                if (user && through != 0 && o_.on_acknowledged) o_.on_acknowledged(*user, through);
                at += static_cast<std::size_t>(len);
                continue;
            }
            if ((word & confirmed_bit) != 0) { // the answer to a confirmation this node asked for
                if ((word & ~std::uint64_t{confirmed_bit}) != 9 || data.size() - at < 9) break;
                const std::uint64_t serial = ::switchboard::detail::read_le(data.data() + at, 8);
                const unsigned code = static_cast<unsigned char>(data[at + 8]);
                at += 9;
                confirm_answered(serial, code);
                continue;
            }
            message_key key;
            const std::uint64_t len = word & ~std::uint64_t{keyed_bit | confirm_bit};
            if ((word & keyed_bit) != 0) {
                if (data.size() - at < 16) break;
                key.origin = ::switchboard::detail::read_le(data.data() + at, 8);
                key.serial = ::switchboard::detail::read_le(data.data() + at + 8, 8);
                at += 16;
            }
            // A confirmation request: the requesting node's incarnation, counter and id.
            std::uint64_t asker_inc = 0, asker_serial = 0;
            std::string asker;
            if ((word & confirm_bit) != 0) {
                if (data.size() - at < 17) break;
                asker_inc = ::switchboard::detail::read_le(data.data() + at, 8);
                asker_serial = ::switchboard::detail::read_le(data.data() + at + 8, 8);
                const std::size_t id_len = static_cast<unsigned char>(data[at + 16]);
                at += 17;
                if (data.size() - at < id_len) break;
                asker.assign(data.substr(at, id_len));
                at += id_len;
            }
            if (len > data.size() - at) break;
            event e;
            const session_id s = session_id_from(sid);
            status st = status::cluster_unavailable; // the session is gone: a retry finds where the user is
            bool later = false;                      // answered when the store commits
            bool abstain = false;                    // answered by another record (abstained)
            if (r_->is_open(s) && !r_->is_remote(s) &&
                decode_cluster_event(data.substr(at, static_cast<std::size_t>(len)), e)) {
                // A direct message for a session with acks on is stored here first (the cluster
                // inbox), then handed as acked_message; anything else goes to the session as is.
                if (e.kind == event_kind::direct_message && r_->acks_enabled(s)) {
                    inbox_store::durable_handler stored;
                    if (!asker.empty())
                        stored = [this, asker, asker_inc, asker_serial](status done) {
                            answer_confirm(asker, asker_inc, asker_serial, done);
                        };
                    const route_result r = r_->deliver_remote(s, e.user, e.text, key, std::move(stored));
                    st = r.code;
                    later = r.ok() && r.pending;
                    // `ok` with nothing stored: not the user's first ack-on session here, whose
                    // record stores the message for all of them and answers for it
                    abstain = r.ok() && !r.pending && r.seq == 0;
                } else {
                    // router::notify() is `ok` when the transport refused it too (closing, a slow
                    // consumer being cut; counted dropped): nobody was handed it, so a
                    // confirmation says cluster_unavailable, and the sender's retry finds the
                    // user offline (stored for it) or on another session.
                    const std::uint64_t refused = r_->counters().dropped;
                    st = r_->notify(s, e);
                    if (st == status::ok && r_->counters().dropped != refused) st = status::cluster_unavailable;
                }
                if (st == status::ok) ++counters_.records_in;
                else ++counters_.records_dropped;
            } else {
                ++counters_.records_dropped;
            }
            if (!asker.empty() && !later) {
                if (abstain) answer_confirm(asker, asker_inc, asker_serial, abstained);
                else answer_confirm(asker, asker_inc, asker_serial, st);
            }
            at += static_cast<std::size_t>(len);
        }
        if (at != data.size()) ++counters_.records_dropped;
    }

    // A room event: u8 length and the origin node id, then a cluster-format event.
    void room(std::string_view room_name, std::string_view data) {
        if (data.empty()) return;
        const std::size_t id_len = static_cast<unsigned char>(data[0]);
        if (data.size() < 1 + id_len) return;
        const std::string_view origin = data.substr(1, id_len);
        if (origin == o_.node_id) return; // our own, fanned out already
        event e;
        const auto room_id = name::parse(room_name);
        if (!room_id || !decode_cluster_event(data.substr(1 + id_len), e)) {
            ++counters_.records_dropped;
            return;
        }
        if (e.kind == event_kind::member_joined || e.kind == event_kind::member_left) {
            const auto user = name::parse(e.user);
            // (counted only for a room with members here: the others are not subscribed, or
            // just stopped being)
            if (user && r_->room_size(*room_id) != 0 && r_->relay(*room_id, e).ok())
                count_member(origin, *room_id, *user, e.kind == event_kind::member_joined);
            return;
        }
        (void)r_->relay(*room_id, e);
    }

    // The sessions of `user` in `room` on node `origin`, as this node's members were told
    // (member_joined / member_left relayed): a node buried with members left makes up their
    // member_left (members_left_with()).
    void count_member(std::string_view origin, const name& room, const name& user, bool joined) {
        auto& rooms = remote_members_[std::string(origin)];
        auto& users = rooms[std::string(room.view())];
        std::uint32_t& n = users[std::string(user.view())];
        if (joined) {
            ++n;
            return;
        }
        if (n > 1) {
            --n;
            return;
        }
        users.erase(std::string(user.view()));
        if (users.empty()) rooms.erase(std::string(room.view()));
        if (rooms.empty()) remote_members_.erase(std::string(origin));
    }

    // Node `node` is gone without its sessions having left their rooms (crashed, frozen past its
    // lease, stopped): this node's members of those rooms hear member_left for each, as when a
    // session closes on one node, before its users go offline (the order of one node).
    void members_left_with(std::string_view node) {
        const auto it = remote_members_.find(std::string(node));
        if (it == remote_members_.end()) return;
        const auto rooms = std::move(it->second);
        remote_members_.erase(it);
        for (const auto& [room, users] : rooms) {
            const auto room_id = name::parse(room);
            if (!room_id) continue;
            for (const auto& [user, sessions] : users)
                for (std::uint32_t i = 0; i < sessions; ++i)
                    (void)r_->relay(*room_id, event{event_kind::member_left, room_id->view(), user, {}});
        }
    }

    net::io_context& io_;
    backplane_options o_;
    connection conn_;
    subscriber sub_;
    net::steady_timer timer_;
    scripts scripts_;
    router* r_ = nullptr;
    std::mutex* m_ = nullptr;
    bool holding_ = false; // this thread holds *m_ (handlers called from inside stop(), ...)
    std::string dir_channel_, to_channel_, room_prefix_;
    std::uint64_t incarnation_ = 0;
    std::string inc_text_;
    std::string epoch_;
    std::string cursor_ = "0";
    bool conn_up_ = false, sub_up_ = false, joined_ = false, synced_ = false, stopping_ = false;
    bool taken_ = false;       // another process runs with this node id
    bool recheck_ = false;     // a `down` for this incarnation arrived while a heartbeat was in flight
    bool hb_inflight_ = false, snap_inflight_ = false, buffering_ = false, lease_doubt_ = false;
    bool kick_posted_ = false;
    std::chrono::steady_clock::time_point lease_until_{};
    std::uint64_t last_seq_ = 0;
    std::uint64_t snap_id_ = 0;             // the snapshot whose answer is awaited
    std::string snap_epoch_;                // sb:epoch at the last snapshot loaded
    std::unordered_map<std::string, std::chrono::steady_clock::time_point> unconfirmed_; // key -> until
    std::vector<std::string> buffered_;     // dir changes received while the snapshot loads
    std::unordered_map<std::uint64_t, local_entry> local_;      // local session id -> its entry
    std::unordered_map<std::uint64_t, claim_request> inflight_; // ticket -> claim sent
    std::vector<claim_request> claims_;
    std::vector<std::pair<std::string, bool>> room_changes_;
    std::vector<std::pair<std::string, session_id>> proxy_closes_;
    proxy_map proxies_;                     // "<node>/<sid>" -> proxy
    std::unordered_map<name, remote_user, name_hash> user_proxies_; // user -> its proxies open here
    std::unordered_map<std::uint64_t, confirmation> confirming_; // counter -> a send() to confirm
    // node -> room -> user -> sessions there in the room (count_member())
    std::unordered_map<std::string, std::unordered_map<std::string, std::unordered_map<std::string, std::uint32_t>>>
        remote_members_;
    std::vector<keyed_payload> keyed_;      // this turn's keyed messages (send_directed())
    std::unordered_map<const char*, std::size_t> keyed_index_; // buffer -> index in keyed_, past keyed_linear
    static constexpr std::size_t keyed_linear = 8;              // entries looked up by a scan
    std::uint64_t serial_ = 0;              // the last key's serial (this process; with incarnation_)
    static constexpr std::uint32_t keyed_bit = 0x80000000u; // in a record's length: a message_key follows
    static constexpr std::uint32_t ack_bit = 0x40000000u;   // in a record's length: an acknowledgement (acknowledged())
    static constexpr std::uint32_t confirm_bit = 0x20000000u;   // in a message record's length: a confirmation request follows
    static constexpr std::uint32_t confirmed_bit = 0x10000000u; // in a record's length: the answer to one
    // An answer's code for a record that handed nothing because another record to the same node
    // (the user's first ack-on session there) stores the message for all of its sessions and
    // answers for it (router::deliver_remote()).
    static constexpr unsigned char abstained = 0xff;
    std::vector<release_request> releases_; // this turn's releases, sent after out_
    std::vector<outgoing> out_;             // this turn's publishes, in order
    std::vector<std::string> spare_;        // batch buffers to reuse (take_buffer(), recycle())
    std::unordered_map<std::string, std::size_t> open_batch_; // node -> its batch in out_
    backplane_counters counters_;
};

} // namespace switchboard::redis
