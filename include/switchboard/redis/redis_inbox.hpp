/// @file
/// @brief `switchboard::redis::inbox`: the inbox shared by the nodes of a cluster (issue #14,
/// item 5), an `inbox_store` on Redis Streams. A message queued through one node is replayed when
/// its recipient registers on another; acknowledgements and `/send` de-duplication records work
/// across nodes. Part of the target `switchboard::redis` (hiredis, on a `redis::connection`).
///
/// ## Data model in Redis
///
/// Every key is under the prefix (`inbox_options::prefix`, the backplane's, default `sb:`), and
/// every key has a TTL except the one global floor.
///
/// | key | type | contents | TTL |
/// |---|---|---|---|
/// | `<p>inbox:<user>` | stream | one entry per stored message, ID `<seq>-0` (the ms part is the user's sequence number), fields `f` (sender), `t` (text), `at` (Unix ms when stored) | known_ttl (30 days), restarted at each write |
/// | `<p>inboxmeta:<user>` | hash | `seq`: the highest sequence number ever given to the user. Exists = the user is known | known_ttl, restarted at each write, at `remember()` and at `load()` |
/// | `<p>inboxfloor` | string | the highest sequence number given to anyone: a user whose meta expired starts above it, so a number is never given twice | none (one key per cluster) |
/// | `<p>sent:<user>` | list | the user's de-duplication records `key at seq queued` (decimal, `queued` 0/1), newest first, at most `dedup_window` | dedup_ttl (1 day), restarted at each push |
/// | `<p>inboxonce:<user>` | sorted set | message key `<incarnation>:<counter>` -> the number it was stored under (`append_once()`), the newest `once_keys` | once_ttl (1 h), restarted at each store by key |
/// | `<p>user:<user>` | hash | the directory entry (backplane's claim script); read only: it exists while some node holds a session of the user | the directory's |
///
/// ## Scripts (redis/inbox_scripts.hpp; each atomic, all take the prefix as `ARGV[1]`)
///
/// | script | what it does | result |
/// |---|---|---|
/// | load | a node takes the user (or refreshes a user it holds: `after` = its cache's highest): creates the meta (above the floor) when missing, restarts its TTL, drops the entries older than `ttl` from the front (`XTRIM MINID`) | the user's `seq`, its entries above `after` in order, its newest records, the first entry's number |
/// | append_held | the node holding the user chose `seq` = its cache's highest + 1: stored only if `seq` is above the meta's (else another node appended meanwhile) and the stream has room; `XADD <seq>-0`, `HSET seq`, raises the floor, pushes the record, restarts the TTLs | `ok seq`, `conflict given`, `full given` |
/// | append_offline | for a user held nowhere: refused when `<p>user:<user>` exists (it is online on some node: the message goes there), or the user is unknown, or the stream is full; else `seq` = meta + 1 and stored as above | `ok seq`, `held`, `unknown`, `full` |
/// | append_once | a message several nodes holding the user received, with its key: stored under `seq` = meta + 1 unless the key is in `<p>inboxonce:<user>` already (then nothing is stored) | `ok`/`dup`/`full`, the number, the user's highest number, the first entry's number, the entries above the caller's `after` |
/// | remember | creates the meta (above the floor) when missing; restarts its TTL | 1 |
/// | record | pushes one de-duplication record (LPUSH, LTRIM to the window, PEXPIRE) | 1 |
///
/// `acknowledge()`, `remove_all()` and `expire()` send `XTRIM <p>inbox:<user> MINID <n+1>`
/// directly (or, once the node saw another node append to a user it holds, `XDEL` of exactly the
/// entries it removed: see `inbox::acknowledge()`). A stream at its bound drops its expired entries before an append is refused
/// `inbox_full`; otherwise an offline user's old entries go at its next load, its keys by TTL.
///
/// ## What Redis must be
///
/// One Redis (replicas and Sentinel allowed, not Redis Cluster: the scripts name keys they do not
/// declare), version 6.2 or newer (`XTRIM MINID`), with persistence for the guarantee: `appendonly
/// yes`. With `appendfsync everysec` (the default) an append answered `ok` survives a crash or
/// `kill -9` of the Redis process (the AOF is written before the reply goes out), but up to about
/// a second of them can be lost to a power cut or an OS crash, and up to two when the disk is
/// slow enough that Redis postpones the write; `appendfsync always` closes both windows at the
/// cost of one fsync per write batch. A Redis without persistence that restarts forgets every
/// stored message and every known user (and the floor).
#pragma once

#include "../inbox_store.hpp"
#include "../names.hpp"
#include "../status.hpp"
#include "connection.hpp"
#include "inbox_scripts.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace switchboard::redis {

/// @brief Options of a `redis::inbox`: where its keys are, and its bounds.
struct inbox_options {
    /// @brief Prefix of every key (default `sb:`): the backplane's (`backplane_options::prefix`),
    /// since the offline append reads the directory's `<prefix>user:<name>`.
    std::string prefix = "sb:";
    /// @brief Messages stored per user (default 1000); one more is `inbox_full`.
    std::size_t max_per_user = 1000;
    /// @brief How long a message stays stored (default 7 days), counted from when it was stored.
    std::chrono::seconds ttl{604800};
    /// @brief How long a user's inbox keys live after its last write or registration (default
    /// 30 days): a user that nobody wrote to and that did not register for that long is forgotten
    /// (then unknown: messages to it while offline are `user_not_found`).
    std::chrono::seconds known_ttl{2592000};
    /// @brief Appends and records sent to Redis and not yet completed, at most (default 65,536);
    /// one more is `store_busy` (backpressure: memory stays bounded while Redis is slow).
    std::size_t max_pending = 65536;
    /// @brief De-duplication records kept per sender (default 1000; the router's
    /// `router_options::dedup_window`). 0 keeps none.
    std::size_t dedup_window = 1000;
    /// @brief TTL of a sender's record list, restarted at each push (default 1 day); records
    /// older than it are also left out at load and by `expire()`.
    std::chrono::seconds dedup_ttl{86400};
    /// @brief Keys of messages stored once for a user held on several nodes
    /// (`append_once()`), kept per user (default 4096, the newest): a node that receives a
    /// message after this many later ones of the same user were stored stores it again. 0 counts
    /// as 1.
    std::size_t once_keys = 4096;
    /// @brief TTL of a user's set of message keys, restarted at each store by key (default 1 h):
    /// the keys matter only until every holding node received the message (milliseconds).
    std::chrono::seconds once_ttl{3600};
};

/// @brief Running totals of a `redis::inbox`, for logs and metrics. Monotonic.
struct inbox_counters {
    std::uint64_t loads = 0;          ///< Load scripts sent.
    std::uint64_t load_failures = 0;  ///< Loads that got no usable reply (`done(false)`).
    std::uint64_t appends = 0;        ///< Append scripts sent (held and offline).
    std::uint64_t committed = 0;      ///< Appends answered `ok` by Redis.
    std::uint64_t conflicts = 0;      ///< Held appends refused: another node appended to the user meanwhile.
    std::uint64_t held_elsewhere = 0; ///< Offline appends refused: a session of the user is on some node.
    std::uint64_t lost = 0;           ///< Appends and records without a reply (connection lost)
                                      ///< or answered with a Redis error.
    std::uint64_t busy = 0;           ///< Appends and records refused at `max_pending`.
    std::uint64_t trims = 0;          ///< `XTRIM` / `XDEL` commands sent (acknowledgements, removals, expiry).
    std::uint64_t once_stored = 0;    ///< Appends by key (`append_once()`) that stored the message.
    std::uint64_t once_found = 0;     ///< Appends by key that found it stored by another node.
    std::uint64_t refreshes = 0;      ///< Loads of a user already loaded here (its cache brought up to date).
};

/// @brief The cluster inbox: an `inbox_store` whose messages, known users and de-duplication
/// records live in Redis (the data model above), shared by every node of a cluster.
///
/// Two kinds of users, per node. A **held** user has a session registered on this node: the host
/// calls `load()` once per local registration (the backplane's `on_granted`, after the directory
/// granted the name and before the router is told) and `unload()` once per release (the
/// backplane's `on_released`). The first `load()` runs one script that returns the user's highest
/// sequence number, its stored messages and its de-duplication records into a local cache; while
/// the user is held, `highest_seq()`, `stored()`, `for_each()`, `first_seq()` and
/// `for_each_sent()` answer from that cache, and an append gives the next number at once (so the
/// router can deliver it with its number before Redis answered). For everyone else those queries
/// answer 0 / nothing, and an append returns `ok` with sequence number 0: Redis gives the number
/// when it stores the message (the `inbox_store` contract, "Sequence numbers").
///
/// Completions (`on_durable` of `append()` and `record_sent()`, `done` of `load()`) run on the
/// connection's io_context, never from inside the call that started them; `on_durable` exactly
/// once per `ok` append and per record, in the order of the calls, whatever order Redis' replies
/// come in (an EVALSHA retried as EVAL after `NOSCRIPT` is answered after the commands sent
/// meanwhile). A failed held append is removed from the cache before its `on_durable` runs, and
/// its number is not given again. Commands that complete nothing (remember, `XTRIM`) are sent on
/// the same connection, so Redis runs them in the order of the calls too, except behind a script
/// retried after `NOSCRIPT` (an acknowledgement's trim that overtakes the message it covers
/// leaves that message in Redis: it is replayed at the next load, never lost).
///
/// Whether an append whose connection was lost before the reply (`cluster_unavailable`) was
/// stored is unknown: it is answered as failed (the safe side: the sender is told to retry, and a
/// duplicate is what de-duplication records are for), though it may be replayed later.
///
/// A user held on two nodes at once (`session_policy::multi` across nodes) has one cache per
/// node. A message the sending node routed to both carries a key (`message_key`), and each node
/// stores it with `append_once()`: Redis numbers it once, and each reply brings the caller's cache
/// every entry above its highest number (what the other node stored) and drops what Redis no
/// longer holds (acknowledged on the other node), so both caches show the same messages under
/// the same numbers, in order; a second `load()` of a loaded user refreshes the cache the same
/// way, and an acknowledgement is also reported to the other nodes at once (`on_acknowledge()`,
/// `acknowledged_elsewhere()`; docs/cluster.md, "One user on several nodes"). Appends without a key (a sender on this
/// node, or a message routed before the sending node saw the second node) still number from the
/// cache: two nodes doing that at once are told apart by the held script, which refuses the
/// second use of a number (`store_busy`, the loser continues above the winner's number). After
/// such a conflict the node removes from Redis only the entries it removed from its cache
/// (`XDEL`), never the other node's by a cumulative trim.
///
/// While a user's first `load()` is in flight the user is not held yet: an append to it takes the
/// offline path, which Redis refuses (`store_busy`) when the user's directory entry exists, as it
/// does from the grant on (the sender retries; the retry finds the user held).
///
/// Thread safety: none; every call, the constructor and the destructor run on the connection's
/// io_context serialisation (the router's, as for every `inbox_store`).
class inbox final : public inbox_store {
public:
    /// @brief Called once when a `load()` completes: true when the user's messages are in the
    /// cache, false when Redis could not be asked or did not answer.
    using load_handler = std::function<void(bool loaded)>;

    /// @brief A store on `conn`: the host owns and starts the connection (its own, not the
    /// backplane's, so that a slow inbox never delays the directory). Sends nothing yet.
    /// @param conn a Redis connection; it must outlive the store. Calls made while it is not
    ///        connected are refused (`cluster_unavailable`) or completed with a failure.
    /// @param o bounds and key prefix (see `inbox_options`).
    inbox(connection& conn, inbox_options o)
        : conn_(conn), o_(std::move(o)),
          scripts_{make_script(inbox_scripts::get().load), make_script(inbox_scripts::get().append_held),
                   make_script(inbox_scripts::get().append_offline), make_script(inbox_scripts::get().append_once),
                   make_script(inbox_scripts::get().remember), make_script(inbox_scripts::get().record)},
          ttl_ms_(ms(o_.ttl)), known_ttl_ms_(ms(o_.known_ttl)), dedup_ttl_ms_(ms(o_.dedup_ttl)),
          max_text_(std::to_string(o_.max_per_user)), ttl_text_(std::to_string(ttl_ms_)),
          known_ttl_text_(std::to_string(known_ttl_ms_)), window_text_(std::to_string(o_.dedup_window)),
          dedup_ttl_text_(std::to_string(dedup_ttl_ms_)), once_keys_text_(std::to_string(std::max<std::size_t>(o_.once_keys, 1))),
          once_ttl_text_(std::to_string(ms(o_.once_ttl))), self_(std::make_shared<inbox*>(this)) {}

    /// @brief Destroys the cache. Completions still pending are dropped without being called
    /// (the host is going away); replies that arrive later are ignored.
    ~inbox() override = default;

    inbox(const inbox&) = delete;
    inbox& operator=(const inbox&) = delete;

    // ---- held users -------------------------------------------------------------------------

    /// @brief Takes `user` on this node (one of its sessions registered here): ref-counted, one
    /// call per local registration. The first call runs the load script (see the file comment:
    /// the user becomes known, its expired messages are dropped) and fills the cache; a call while
    /// the user is loading shares that load. A call while the user is loaded runs the script
    /// again (a refresh) before it is done: the cache drops what was acknowledged or expired
    /// meanwhile (on another node, by a session of the user held there too) and gains what was
    /// stored above its highest number, so the new session's replay is Redis' view, not a stale
    /// copy. A refresh that Redis does not answer leaves the cache as it was (`done(true)`).
    /// @param user a folded name.
    /// @param now_ms Unix time in ms (messages stored `ttl` ago or earlier are dropped).
    /// @param done called once, on the io_context (never from inside `load()`): true when the
    ///        user is held (its cache loaded; at once, without asking Redis, when it was loaded
    ///        already); false when Redis was not connected or did not answer: the host then
    ///        refuses the registration (`cluster_unavailable`), and this call holds nothing (no
    ///        `unload()` for it). May be empty.
    /// @throws std::bad_alloc when memory runs out.
    void load(const name& user, std::int64_t now_ms, load_handler done) {
        held_user& h = held_[user];
        ++h.holds;
        if (h.loading) {
            h.waiting.push_back(std::move(done));
            return;
        }
        (void)flush_remembered();
        const std::string now = std::to_string(now_ms);
        const std::uint64_t after = h.loaded ? h.highest : 0;
        const std::string after_text = std::to_string(after);
        const bool sent = conn_.eval(scripts_.load, {},
                                     {o_.prefix, user.view(), now, ttl_text_, known_ttl_text_, window_text_, after_text},
                                     [w = weak(), user, now_ms, after](const redisReply* r) {
                                         if (const auto p = w.lock()) (*p)->loaded(user, now_ms, after, r);
                                     });
        if (!sent && h.loaded) { // a refresh without Redis: the cache as it is
            post_load_done(std::move(done), true);
            return;
        }
        if (!sent) {
            if (--h.holds == 0) held_.erase(user);
            ++counters_.load_failures;
            post_load_done(std::move(done), false);
            return;
        }
        ++(h.loaded ? counters_.refreshes : counters_.loads);
        h.loading = true;
        h.waiting.push_back(std::move(done));
    }

    /// @brief Gives `user` up on this node (one of its sessions released the name): the cache
    /// goes with the last hold. No effect for a user not held.
    /// @param user a folded name.
    void unload(const name& user) {
        const auto it = held_.find(user);
        if (it == held_.end()) return;
        if (it->second.holds > 0) --it->second.holds;
        if (it->second.holds == 0 && !it->second.loading) held_.erase(it);
    }

    /// @brief True when `user` is held on this node and its cache is loaded (the queries answer
    /// from it, appends are numbered at once).
    /// @param user a folded name.
    [[nodiscard]] bool holds(const name& user) const {
        const auto it = held_.find(user);
        return it != held_.end() && it->second.loaded;
    }

    /// @brief Called by `acknowledge()` for a held user, after its cache dropped what was
    /// acknowledged: the host tells the other nodes holding the user
    /// (`backplane::acknowledged()`), whose caches then drop it too (`acknowledged_elsewhere()`).
    /// Called from inside `acknowledge()` (the router's call, under its mutex). Empty: nothing.
    using acknowledge_handler = std::function<void(const name& user, std::uint64_t through)>;

    /// @brief Sets the acknowledgement hook (see `acknowledge_handler`); replaces the previous one.
    /// @param f the hook; may be empty.
    void on_acknowledge(acknowledge_handler f) { on_acknowledge_ = std::move(f); }

    /// @brief Another node reports that a session of `user` there acknowledged through
    /// `through` (the backplane's `on_acknowledged`): the cached messages up to it are dropped,
    /// and no later reply from Redis brings them back (the other node's trim may reach Redis
    /// after this node's next script), so no session here is handed them again, and a session
    /// here that turns acks on is not replayed them. Sends nothing to Redis (the acknowledging
    /// node trims). No effect for a user not held here.
    /// @param user a folded name.
    /// @param through the highest sequence number acknowledged.
    void acknowledged_elsewhere(const name& user, std::uint64_t through) {
        const auto it = held_.find(user);
        if (it == held_.end() || !it->second.loaded) return;
        held_user& h = it->second;
        h.acked = std::max(h.acked, through);
        while (!h.messages.empty() && h.messages.front().seq <= through) h.messages.pop_front();
    }

    /// @brief Running totals (see `inbox_counters`).
    [[nodiscard]] const inbox_counters& counters() const noexcept { return counters_; }

    /// @brief Appends and records sent to Redis whose completion has not run yet (bounded by
    /// `inbox_options::max_pending`).
    [[nodiscard]] std::size_t pending() const noexcept { return slots_.size(); }

    // ---- inbox_store --------------------------------------------------------------------------

    /// @brief False: appends and records complete when Redis answers.
    [[nodiscard]] bool completes_at_once() const noexcept override { return false; }

    /// @brief Always true: only Redis knows which users are known (their meta key), and asking it
    /// here would put a round trip on the routing path. An append for a user that is not known is
    /// answered `ok` with sequence number 0 and then completed with `user_not_found`.
    [[nodiscard]] bool is_known(const name& user) const override {
        (void)user;
        return true;
    }

    /// @brief Makes `user` known (its meta created above the floor when missing) and restarts the
    /// TTL of its meta: one script, not waited for (pipelined before any later append). Called
    /// while the connection is down (a host declaring its users at start-up, before the connection
    /// is up), or lost before Redis answered, it is kept and sent before the next command this
    /// store sends once connected (any call that talks to Redis, e.g. the router's `expire()`
    /// tick), so it still goes before any later append.
    /// @throws std::bad_alloc when memory runs out.
    void remember(const name& user) override {
        if (!flush_remembered() || !send_remember(user)) unsent_.insert(user);
    }

    /// @brief `inbox_store::append()`.
    /// - At `max_pending` uncompleted appends and records: `store_busy`; while the connection is
    ///   down: `cluster_unavailable` (nothing sent, `on_durable` not called).
    /// - A held user: `inbox_full` at `max_per_user` cached messages; else `ok` with the next
    ///   number, the message in the cache at once; Redis stores it unless another node gave that
    ///   number meanwhile. `on_durable`: `ok`, `store_busy` (conflict), `inbox_full`,
    ///   `cluster_unavailable` (no reply), `store_failed` (a Redis error: a script error, or
    ///   `store_full` for Redis' `OOM`).
    /// - Anyone else: `ok` with sequence number 0; Redis gives the number. `on_durable`: `ok`,
    ///   `store_busy` (a session of the user is on some node: the sender should route to it),
    ///   `user_not_found`, `inbox_full`, `cluster_unavailable`, `store_failed` / `store_full`.
    /// When `sent_key` is not 0 the sender's de-duplication record is stored with the message,
    /// in the same script.
    append_result append(const name& user, std::string_view from, std::string_view text, std::int64_t now_ms,
                         durable_handler on_durable, std::uint64_t sent_key = 0) override {
        if (slots_.size() >= o_.max_pending) {
            ++counters_.busy;
            return {status::store_busy, 0};
        }
        if (!flush_remembered()) return {status::cluster_unavailable, 0};
        const auto it = held_.find(user);
        if (it != held_.end() && it->second.loaded)
            return append_held(user, it->second, from, text, now_ms, std::move(on_durable), sent_key);
        return append_offline(user, from, text, now_ms, std::move(on_durable), sent_key);
    }

    /// @brief `inbox_store::append_once()`: a message that several nodes holding sessions of
    /// `user` received (`router::deliver_remote()` with a key) is stored once, by the first node
    /// whose script runs; Redis gives the number (the append-once script). Answered `ok` with
    /// sequence number 0 (`store_busy` at `max_pending`, `cluster_unavailable` while the
    /// connection is down); when Redis answers, the cache of a held user takes every entry it
    /// lacks above its highest number (this message, and those the user's other nodes stored)
    /// and drops those acknowledged or expired meanwhile, then `on_durable` runs: `ok` (stored
    /// here or found stored), `inbox_full`, `cluster_unavailable` (no reply), `store_failed` /
    /// `store_full` (a Redis error). So every node hands the message under the same number, and
    /// each node's cache has every message of the user, in order, once its reply came.
    /// @param user a folded name (held here: the router calls it for a registered session's user).
    /// @param key the message's identity (`message_key`), not empty.
    /// @param from the sender's folded name.
    /// @param text the text (already checked against the text contract).
    /// @param now_ms Unix time in ms (the TTL runs from it).
    /// @param on_durable see `inbox_store` (completion contract); may be empty.
    /// @throws std::bad_alloc when memory runs out.
    append_result append_once(const name& user, const message_key& key, std::string_view from, std::string_view text,
                              std::int64_t now_ms, durable_handler on_durable) override {
        if (slots_.size() >= o_.max_pending) {
            ++counters_.busy;
            return {status::store_busy, 0};
        }
        if (!flush_remembered()) return {status::cluster_unavailable, 0};
        const auto it = held_.find(user);
        const bool held = it != held_.end() && it->second.loaded;
        const std::uint64_t after = held ? it->second.highest : 0;
        const std::uint64_t id = next_slot();
        const std::string key_text = std::to_string(key.origin) + ':' + std::to_string(key.serial);
        const std::string at = std::to_string(now_ms), after_text = std::to_string(after);
        const bool sent = conn_.eval(scripts_.append_once, {},
                                     {o_.prefix, user.view(), key_text, from, text, at, max_text_, ttl_text_,
                                      known_ttl_text_, after_text, once_keys_text_, once_ttl_text_},
                                     [w = weak(), id, user, after](const redisReply* r) {
                                         if (const auto p = w.lock()) (*p)->appended_once(id, user, after, r);
                                     });
        if (!sent) return {status::cluster_unavailable, 0};
        ++counters_.appends;
        slots_.push_back(slot{std::move(on_durable)});
        return {status::ok, 0};
    }

    /// @brief Stores (or replaces, by key) a de-duplication record of `sender`: one script (LPUSH,
    /// LTRIM, PEXPIRE); the cache of a held sender has it at once. `on_durable`: `ok`,
    /// `cluster_unavailable` (not connected, or no reply), `store_busy` (at `max_pending`),
    /// `store_failed` / `store_full` (a Redis error); always on the io_context, in call order. A
    /// failed record leaves the cache before its handler runs.
    void record_sent(const name& sender, const sent_record& record, durable_handler on_durable) override {
        const std::uint64_t id = next_slot();
        status refused = status::ok;
        bool send = true;
        if (slots_.size() >= o_.max_pending) {
            ++counters_.busy;
            refused = status::store_busy;
            send = false;
        } else if (!flush_remembered()) {
            refused = status::cluster_unavailable;
            send = false;
        } else if (o_.dedup_window == 0) {
            send = false; // nothing to keep: completes ok
        } else if (!conn_.eval(scripts_.record, {}, {o_.prefix, sender.view(), encode(record), window_text_, dedup_ttl_text_},
                               [w = weak(), id, sender, record](const redisReply* r) {
                                   if (const auto p = w.lock()) (*p)->recorded(id, sender, record, r);
                               })) {
            refused = status::cluster_unavailable;
            send = false;
        }
        slots_.push_back(slot{std::move(on_durable), refused, !send});
        if (send) {
            if (const auto h = held_.find(sender); h != held_.end() && h->second.loaded) keep_record(h->second, record);
        } else {
            post_drain();
        }
    }

    /// @brief `inbox_store::for_each_sent()`: the held sender's records from the cache (loaded
    /// from Redis, plus those recorded here since), oldest first, one per key (the latest
    /// outcome); nothing for a sender not held.
    void for_each_sent(const name& sender, const std::function<void(const sent_record&)>& visit) const override {
        const auto it = held_.find(sender);
        if (it == held_.end() || !it->second.loaded) return;
        for (const sent_record& r : it->second.sent) visit(r);
    }

    /// @brief `inbox_store::acknowledge()`, for a held user: removes the cached messages up to
    /// `through` and sends `XTRIM MINID through+1` (not waited for: a lost acknowledgement only
    /// means the messages are delivered again), then calls the acknowledgement hook
    /// (`on_acknowledge()`: the other nodes holding the user drop them too). Once this node learned that another node gave the
    /// user numbers its cache never saw (a conflict), it sends `XDEL` of the removed entries
    /// instead: a cumulative trim would delete the other node's messages, never shown here.
    /// @return `ok`; `ack_invalid` when `through` is 0 or above the highest number given, or the
    ///         user is not held here.
    status acknowledge(const name& user, std::uint64_t through) override {
        const auto it = held_.find(user);
        if (it == held_.end() || !it->second.loaded) return status::ack_invalid;
        held_user& h = it->second;
        if (through == 0 || through > h.highest) return status::ack_invalid;
        std::vector<std::uint64_t> removed;
        while (!h.messages.empty() && h.messages.front().seq <= through) {
            if (h.foreign) removed.push_back(h.messages.front().seq);
            h.messages.pop_front();
        }
        h.acked = std::max(h.acked, through);
        trim(user, h, through + 1, removed);
        if (on_acknowledge_) on_acknowledge_(user, through);
        return status::ok;
    }

    /// @brief The highest number given to a held user (from its cache); 0 for anyone else.
    [[nodiscard]] std::uint64_t highest_seq(const name& user) const override {
        const auto it = held_.find(user);
        return it == held_.end() || !it->second.loaded ? 0 : it->second.highest;
    }

    /// @brief Messages cached for a held user; 0 for anyone else.
    [[nodiscard]] std::size_t stored(const name& user) const override {
        const auto it = held_.find(user);
        return it == held_.end() || !it->second.loaded ? 0 : it->second.messages.size();
    }

    using inbox_store::for_each;

    /// @brief `inbox_store::for_each()` over a held user's cache (including appends not yet
    /// committed); nothing for anyone else.
    void for_each(const name& user, std::uint64_t after,
                  const std::function<bool(const stored_message_view&)>& visit) const override {
        const auto it = held_.find(user);
        if (it == held_.end() || !it->second.loaded) return;
        const auto& msgs = it->second.messages;
        auto m = std::upper_bound(msgs.begin(), msgs.end(), after,
                                  [](std::uint64_t s, const message& x) { return s < x.seq; });
        for (; m != msgs.end(); ++m)
            if (!visit(stored_message_view{m->seq, m->from, m->text, m->stored_ms})) return;
    }

    /// @brief Removes every message of a held user: the cache is cleared and `XTRIM MINID
    /// highest+1` sent (not waited for; `XDEL` of the cached ones after a conflict, as
    /// `acknowledge()`). No effect for anyone else.
    void remove_all(const name& user) override {
        const auto it = held_.find(user);
        if (it == held_.end() || !it->second.loaded) return;
        held_user& h = it->second;
        std::vector<std::uint64_t> removed;
        if (h.foreign)
            for (const message& m : h.messages) removed.push_back(m.seq);
        h.messages.clear();
        trim(user, h, h.highest + 1, removed);
    }

    /// @brief Drops, from the front of each held user's cache, the messages stored `ttl` or
    /// longer before `now_ms` (and `XTRIM`s them in Redis), and the cached records older than
    /// `dedup_ttl`. Offline users' messages are dropped at their next load (or when their stream
    /// is full), their keys by TTL.
    /// @return how many messages were dropped from the caches.
    std::size_t expire(std::int64_t now_ms) override {
        (void)flush_remembered();
        std::size_t count = 0;
        for (auto& [user, h] : held_) {
            if (!h.loaded) continue;
            std::uint64_t last = 0;
            std::vector<std::uint64_t> removed;
            while (!h.messages.empty() && now_ms - h.messages.front().stored_ms >= ttl_ms_) {
                last = h.messages.front().seq;
                if (h.foreign) removed.push_back(last);
                h.messages.pop_front();
                ++count;
            }
            if (last != 0) trim(user, h, last + 1, removed);
            h.sent.erase(std::remove_if(h.sent.begin(), h.sent.end(),
                                        [&](const sent_record& r) { return now_ms - r.at_ms >= dedup_ttl_ms_; }),
                         h.sent.end());
        }
        return count;
    }

private:
    struct message {
        std::uint64_t seq = 0;
        std::string from;
        std::string text;
        std::int64_t stored_ms = 0;
    };
    struct held_user {
        std::size_t holds = 0;          // load() calls not undone (unload(), or a failed load)
        bool loading = false;           // the load script is in flight
        bool loaded = false;            // the cache below is valid
        bool foreign = false;           // another node gave numbers this cache never saw (a conflict)
        std::uint64_t acked = 0;        // acknowledged through (here or on another node): never cached again
        std::uint64_t highest = 0;      // the highest number given (never decreases)
        std::deque<message> messages;   // in sequence order
        std::vector<sent_record> sent;  // oldest first, one per key
        std::vector<load_handler> waiting; // load() calls answered by the script in flight
    };
    // One append or record in call order: its handler runs once every earlier one ran.
    struct slot {
        durable_handler handler;
        status code = status::ok;
        bool done = false;
    };
    struct script_set {
        script load, append_held, append_offline, append_once, remember, record;
    };

    static std::int64_t ms(std::chrono::seconds s) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(s).count();
    }

    std::weak_ptr<inbox*> weak() const { return self_; }

    std::uint64_t next_slot() const noexcept { return first_slot_ + slots_.size(); }

    append_result append_held(const name& user, held_user& h, std::string_view from, std::string_view text,
                              std::int64_t now_ms, durable_handler on_durable, std::uint64_t sent_key) {
        if (h.messages.size() >= o_.max_per_user) return {status::inbox_full, 0};
        const std::uint64_t seq = h.highest + 1;
        const std::uint64_t id = next_slot();
        const std::string seq_text = std::to_string(seq), at = std::to_string(now_ms), key = std::to_string(sent_key);
        const bool sent = conn_.eval(
            scripts_.append_held, {},
            {o_.prefix, user.view(), seq_text, from, text, at, max_text_, ttl_text_, known_ttl_text_, key,
             window_text_, dedup_ttl_text_},
            [w = weak(), id, user, seq, sender = std::string(from), sent_key](const redisReply* r) {
                if (const auto p = w.lock()) (*p)->appended_held(id, user, seq, sender, sent_key, r);
            });
        if (!sent) return {status::cluster_unavailable, 0};
        ++counters_.appends;
        h.messages.push_back(message{seq, std::string(from), std::string(text), now_ms});
        h.highest = seq;
        slots_.push_back(slot{std::move(on_durable)});
        if (sent_key != 0) keep_record_of(from, sent_record{sent_key, now_ms, seq, true});
        return {status::ok, seq};
    }

    append_result append_offline(const name& user, std::string_view from, std::string_view text, std::int64_t now_ms,
                                 durable_handler on_durable, std::uint64_t sent_key) {
        const std::uint64_t id = next_slot();
        const std::string at = std::to_string(now_ms), key = std::to_string(sent_key);
        const bool sent = conn_.eval(
            scripts_.append_offline, {},
            {o_.prefix, user.view(), from, text, at, max_text_, ttl_text_, known_ttl_text_, key, window_text_,
             dedup_ttl_text_},
            [w = weak(), id, sender = std::string(from), sent_key, now_ms](const redisReply* r) {
                if (const auto p = w.lock()) (*p)->appended_offline(id, sender, sent_key, now_ms, r);
            });
        if (!sent) return {status::cluster_unavailable, 0};
        ++counters_.appends;
        slots_.push_back(slot{std::move(on_durable)});
        return {status::ok, 0};
    }

    // The status of a reply that is not the script's own answer: none, or a Redis error.
    status failure_of(const redisReply* r) {
        ++counters_.lost;
        if (r == nullptr) return status::cluster_unavailable;
        if (r->type == REDIS_REPLY_ERROR && std::string_view(r->str, r->len).substr(0, 3) == "OOM") return status::store_full;
        return status::store_failed;
    }

    // A script's {word, number} answer; false when the reply has another shape.
    static bool verdict(const redisReply* r, std::string_view& word, std::uint64_t& number) {
        if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != 2) return false;
        const redisReply* a = r->element[0];
        const redisReply* b = r->element[1];
        if (a->type != REDIS_REPLY_STRING && a->type != REDIS_REPLY_STATUS) return false;
        if (b->type != REDIS_REPLY_INTEGER || b->integer < 0) return false;
        word = std::string_view(a->str, a->len);
        number = static_cast<std::uint64_t>(b->integer);
        return true;
    }

    void appended_held(std::uint64_t id, const name& user, std::uint64_t seq, const std::string& sender,
                       std::uint64_t sent_key, const redisReply* r) {
        std::string_view word;
        std::uint64_t given = 0;
        status code = status::ok;
        if (!verdict(r, word, given)) code = failure_of(r);
        else if (word == "ok") ++counters_.committed;
        else if (word == "conflict") {
            ++counters_.conflicts;
            code = status::store_busy;
        } else if (word == "full") code = status::inbox_full;
        else code = failure_of(r);
        if (code != status::ok) {
            // Out of the cache first: the handler (and anything it calls) must not see it.
            if (const auto it = held_.find(user); it != held_.end() && it->second.loaded) {
                held_user& h = it->second;
                const auto m = std::lower_bound(h.messages.begin(), h.messages.end(), seq,
                                                [](const message& x, std::uint64_t s) { return x.seq < s; });
                if (m != h.messages.end() && m->seq == seq) h.messages.erase(m);
                if (given > h.highest) { // after a conflict: continue above the winner
                    h.highest = given;
                    h.foreign = true;
                }
            }
            if (sent_key != 0) drop_record_of(sender, sent_key, seq);
        }
        complete(id, code);
    }

    // The append-once script's reply {word, seq, given, first, {entries above after}}.
    void appended_once(std::uint64_t id, const name& user, std::uint64_t after, const redisReply* r) {
        status code = status::ok;
        const bool shaped = r != nullptr && r->type == REDIS_REPLY_ARRAY && r->elements == 5 &&
                            r->element[1]->type == REDIS_REPLY_INTEGER && r->element[2]->type == REDIS_REPLY_INTEGER &&
                            r->element[3]->type == REDIS_REPLY_INTEGER && r->element[2]->integer >= 0 &&
                            r->element[3]->integer >= 0;
        std::deque<message> fresh;
        const std::string_view word = shaped ? text_of(r->element[0]) : std::string_view();
        if (!shaped || !entries(r->element[4], fresh)) code = failure_of(r);
        else if (word == "ok") {
            ++counters_.once_stored;
            ++counters_.committed;
        } else if (word == "dup") ++counters_.once_found;
        else if (word == "full") code = status::inbox_full;
        else code = failure_of(r);
        if (shaped && code != status::cluster_unavailable && code != status::store_failed) {
            // Merged whatever the verdict: the reply is Redis' view of the user.
            if (const auto it = held_.find(user); it != held_.end() && it->second.loaded)
                merge(it->second, after, static_cast<std::uint64_t>(r->element[2]->integer),
                      static_cast<std::uint64_t>(r->element[3]->integer), std::move(fresh));
        }
        complete(id, code);
    }

    void appended_offline(std::uint64_t id, const std::string& sender, std::uint64_t sent_key, std::int64_t now_ms,
                          const redisReply* r) {
        std::string_view word;
        std::uint64_t seq = 0;
        status code = status::ok;
        if (!verdict(r, word, seq)) code = failure_of(r);
        else if (word == "ok") {
            ++counters_.committed;
            if (sent_key != 0) keep_record_of(sender, sent_record{sent_key, now_ms, seq, true});
        } else if (word == "held") {
            ++counters_.held_elsewhere;
            code = status::store_busy;
        } else if (word == "unknown") code = status::user_not_found;
        else if (word == "full") code = status::inbox_full;
        else code = failure_of(r);
        complete(id, code);
    }

    void recorded(std::uint64_t id, const name& sender, const sent_record& record, const redisReply* r) {
        status code = status::ok;
        if (r == nullptr || r->type == REDIS_REPLY_ERROR) {
            code = failure_of(r);
            drop_record_of(sender.view(), record.key, record.seq);
        }
        complete(id, code);
    }

    void loaded(const name& user, std::int64_t now_ms, std::uint64_t after, const redisReply* r) {
        const auto it = held_.find(user);
        if (it == held_.end()) return; // not erased while loading: cannot happen
        held_user& h = it->second;
        h.loading = false;
        std::vector<load_handler> waiting = std::move(h.waiting);
        h.waiting.clear();
        const bool refresh = h.loaded;
        const bool ok = refresh ? (refill(h, after, r), true) : fill(h, now_ms, r);
        if (ok) {
            h.loaded = true;
        } else {
            ++counters_.load_failures;
            h.holds = h.holds > waiting.size() ? h.holds - waiting.size() : 0; // those loads hold nothing
        }
        if (h.holds == 0) held_.erase(it); // every session went meanwhile (or the load failed)
        const auto alive = weak();
        for (load_handler& done : waiting) {
            if (done) done(ok);
            if (alive.expired()) return;
        }
    }

    // Fills a cache from the load script's reply {seq, {id, from, text, at, ...}, {record, ...}};
    // false (nothing changed) when the reply is missing or malformed.
    bool fill(held_user& h, std::int64_t now_ms, const redisReply* r) {
        if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != 4) return false;
        const redisReply* seq = r->element[0];
        const redisReply* flat = r->element[1];
        const redisReply* recs = r->element[2];
        std::uint64_t highest = 0;
        if (seq->type != REDIS_REPLY_STRING || !number(text_of(seq), highest)) return false;
        if (recs->type != REDIS_REPLY_ARRAY) return false;
        std::deque<message> msgs;
        if (!entries(flat, msgs)) return false;
        if (!msgs.empty()) highest = std::max(highest, msgs.back().seq);
        h.messages = std::move(msgs);
        h.highest = std::max(h.highest, highest);
        h.sent.clear();
        for (std::size_t i = recs->elements; i-- > 0;) { // oldest first
            sent_record rec;
            if (decode(text_of(recs->element[i]), rec) && now_ms - rec.at_ms < dedup_ttl_ms_) keep_record(h, rec);
        }
        return true;
    }

    // The entries of a flat reply {id, from, text, at, ...}, in order; false when malformed.
    static bool entries(const redisReply* flat, std::deque<message>& out) {
        if (flat == nullptr || flat->type != REDIS_REPLY_ARRAY || flat->elements % 4 != 0) return false;
        for (std::size_t i = 0; i < flat->elements; i += 4) {
            message m;
            const std::string_view id = text_of(flat->element[i]);
            std::int64_t at = 0;
            if (!number(id.substr(0, id.find('-')), m.seq) || !number(text_of(flat->element[i + 3]), at)) return false;
            m.from.assign(text_of(flat->element[i + 1]));
            m.text.assign(text_of(flat->element[i + 2]));
            m.stored_ms = at;
            out.push_back(std::move(m));
        }
        return true;
    }

    // A refresh's reply (the load script with `after` = the cache's highest then): what the
    // cache lacks is merged in, what Redis no longer has is dropped. A malformed reply changes
    // nothing (the cache stays as it was).
    void refill(held_user& h, std::uint64_t after, const redisReply* r) {
        if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != 4) return;
        std::uint64_t given = 0, first = 0;
        std::deque<message> fresh;
        if (!number(text_of(r->element[0]), given) || !number(text_of(r->element[3]), first) ||
            !entries(r->element[1], fresh))
            return;
        merge(h, after, given, first, std::move(fresh));
    }

    // Brings a held user's cache to Redis' view, as one script saw it: `given` the highest number
    // given, `first` the first entry left (everything below it was acknowledged or expired, on
    // whichever node), `fresh` every entry above `after` (the cache's highest when the script was
    // sent: the cache held every entry up to it). Entries the cache has already are kept, not
    // doubled; appends of this node not in Redis yet (above `given`) stay.
    static void merge(held_user& h, std::uint64_t after, std::uint64_t given, std::uint64_t first,
                      std::deque<message> fresh) {
        first = std::max(first, h.acked + 1); // an acknowledgement whose trim Redis had not run yet
        while (!h.messages.empty() && h.messages.front().seq < first) h.messages.pop_front();
        if (!fresh.empty()) {
            std::deque<message> out;
            auto a = h.messages.begin();
            for (message& m : fresh) {
                if (m.seq <= after || m.seq < first) continue;
                while (a != h.messages.end() && a->seq < m.seq) out.push_back(std::move(*a++));
                if (a != h.messages.end() && a->seq == m.seq) out.push_back(std::move(*a++));
                else out.push_back(std::move(m));
            }
            while (a != h.messages.end()) out.push_back(std::move(*a++));
            h.messages = std::move(out);
        }
        h.highest = std::max(h.highest, given);
    }

    static std::string_view text_of(const redisReply* r) {
        if (r == nullptr || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)) return {};
        return {r->str, r->len};
    }

    template <class Int>
    static bool number(std::string_view s, Int& out) {
        const auto res = std::from_chars(s.data(), s.data() + s.size(), out);
        return !s.empty() && res.ec == std::errc() && res.ptr == s.data() + s.size();
    }

    // A record as stored in `<p>sent:<user>`: `key at seq queued`, decimal.
    static std::string encode(const sent_record& r) {
        return std::to_string(r.key) + ' ' + std::to_string(r.at_ms) + ' ' + std::to_string(r.seq) + ' ' +
               (r.queued ? '1' : '0');
    }

    static bool decode(std::string_view s, sent_record& r) {
        std::string_view part[4];
        for (std::size_t i = 0; i < 4; ++i) {
            const std::size_t sp = s.find(' ');
            part[i] = s.substr(0, sp);
            s = sp == std::string_view::npos ? std::string_view() : s.substr(sp + 1);
            if (sp == std::string_view::npos && i != 3) return false;
        }
        if (!number(part[0], r.key) || r.key == 0 || !number(part[1], r.at_ms) || !number(part[2], r.seq)) return false;
        if (part[3] != "0" && part[3] != "1") return false;
        r.queued = part[3] == "1";
        return true;
    }

    // Keeps a record in a held sender's cache: replaces the one with the same key in place, else
    // adds it at the end, dropping the oldest past the window.
    void keep_record(held_user& h, const sent_record& record) {
        if (o_.dedup_window == 0) return;
        const auto same = std::find_if(h.sent.begin(), h.sent.end(), [&](const sent_record& x) { return x.key == record.key; });
        if (same != h.sent.end()) {
            *same = record;
            return;
        }
        h.sent.push_back(record);
        if (h.sent.size() > o_.dedup_window) h.sent.erase(h.sent.begin());
    }

    void keep_record_of(std::string_view sender, const sent_record& record) {
        name n;
        if (!name::parse(sender, n)) return;
        if (const auto it = held_.find(n); it != held_.end() && it->second.loaded) keep_record(it->second, record);
    }

    // A record whose commit failed leaves the cache (unless a later one replaced it).
    void drop_record_of(std::string_view sender, std::uint64_t key, std::uint64_t seq) {
        name n;
        if (!name::parse(sender, n)) return;
        const auto it = held_.find(n);
        if (it == held_.end()) return;
        auto& sent = it->second.sent;
        const auto r = std::find_if(sent.begin(), sent.end(), [&](const sent_record& x) { return x.key == key; });
        if (r != sent.end() && r->seq == seq) sent.erase(r);
    }

    // Removes from Redis what left a held user's cache: every entry below `min_id` (one XTRIM
    // MINID) while the cache has seen every number given to the user; once another node gave
    // numbers it never saw (`foreign`, after a conflict), exactly the entries it dropped (XDEL
    // `removed`), so that an acknowledgement here never deletes a message no session here was
    // shown (it stays, and is replayed at the next load).
    void trim(const name& user, const held_user& h, std::uint64_t min_id, const std::vector<std::uint64_t>& removed) {
        (void)flush_remembered();
        const std::string key = o_.prefix + "inbox:" + std::string(user.view());
        std::vector<std::string> ids;
        std::vector<std::string_view> argv;
        if (!h.foreign) {
            ids.push_back(std::to_string(min_id));
            argv = {"XTRIM", key, "MINID", ids.back()};
        } else {
            if (removed.empty()) return;
            ids.reserve(removed.size());
            argv = {"XDEL", key};
            for (std::uint64_t seq : removed) ids.push_back(std::to_string(seq) + "-0");
            for (const std::string& id : ids) argv.emplace_back(id);
        }
        if (conn_.command(argv, [](const redisReply*) {})) ++counters_.trims;
    }

    // Records the outcome of append or record `id`, then runs the handlers that are due.
    void complete(std::uint64_t id, status code) {
        if (id < first_slot_ || id - first_slot_ >= slots_.size()) return;
        slot& s = slots_[id - first_slot_]; // (the ids of slots_ fit its size: it holds them all)
        s.code = code;
        s.done = true;
        drain();
    }

    // Runs, in call order, the handlers of the completed appends and records at the front.
    void drain() {
        if (draining_) return; // a handler's own call completes later, from the io_context
        draining_ = true;
        const auto alive = weak();
        struct reset {
            bool& flag;
            std::weak_ptr<inbox*> alive;
            ~reset() {
                if (!alive.expired()) flag = false;
            }
        } guard{draining_, alive};
        while (!slots_.empty() && slots_.front().done) {
            slot s = std::move(slots_.front());
            slots_.pop_front();
            ++first_slot_;
            if (s.handler) s.handler(s.code);
            if (alive.expired()) return; // a handler destroyed the store
        }
    }

    bool send_remember(const name& user) {
        return conn_.eval(scripts_.remember, {}, {o_.prefix, user.view(), known_ttl_text_}, [w = weak(), user](const redisReply* r) {
            if (r != nullptr) return;
            if (const auto p = w.lock()) (*p)->unsent_.insert(user); // lost with the connection: again
        });
    }

    // Sends the remembers kept while disconnected; true when none is left (connected).
    bool flush_remembered() {
        if (!conn_.connected()) return false;
        while (!unsent_.empty()) {
            if (!send_remember(*unsent_.begin())) return false;
            unsent_.erase(unsent_.begin());
        }
        return true;
    }

    void post_drain() {
        net::post(conn_.io_context(), [w = weak()] {
            if (const auto p = w.lock()) (*p)->drain();
        });
    }

    void post_load_done(load_handler done, bool ok) {
        if (!done) return;
        net::post(conn_.io_context(), [w = weak(), done = std::move(done), ok] {
            if (!w.expired()) done(ok);
        });
    }

    connection& conn_;
    inbox_options o_;
    script_set scripts_;
    std::int64_t ttl_ms_;
    std::int64_t known_ttl_ms_;
    std::int64_t dedup_ttl_ms_;
    std::string max_text_, ttl_text_, known_ttl_text_, window_text_, dedup_ttl_text_; // ARGV, built once
    std::string once_keys_text_, once_ttl_text_;
    std::unordered_map<name, held_user, name_hash> held_;
    std::deque<slot> slots_;      // appends and records in call order, until their handler ran
    std::uint64_t first_slot_ = 0; // the id of slots_.front()
    bool draining_ = false;
    std::unordered_set<name, name_hash> unsent_; // remembered while disconnected, not sent yet
    inbox_counters counters_;
    acknowledge_handler on_acknowledge_;
    std::shared_ptr<inbox*> self_; // handlers hold a weak copy: after destruction they do nothing
};

} // namespace switchboard::redis
