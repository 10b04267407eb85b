/// @file
/// @brief `switchboard::router`: who is connected on which session, 1:1 routing by user name,
/// rooms with zero-copy fan-out, and clean-up on disconnect. Sans-I/O: no sockets, threads or
/// clocks.
#pragma once

#include "config.hpp"
#include "detail/flat_index.hpp"
#include "directory.hpp"
#include "event.hpp"
#include "inbox_store.hpp"
#include "names.hpp"
#include "payload.hpp"
#include "session_id.hpp"
#include "status.hpp"
#include "text.hpp"
#include "transport.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace switchboard {

/// @brief Who receives a room message.
enum class fanout_scope : std::uint8_t {
    except_sender, ///< Every member but the sending session (the line protocol's `/say`).
    all_members,   ///< Every member, the sender included.
};

/// @brief Outcome of `router::route()` and `router::publish()`.
struct route_result {
    status code = status::ok;     ///< `ok`, or why nothing was sent.
    std::uint32_t delivered = 0;  ///< Sessions whose transport queued the payload.
    std::uint32_t dropped = 0;    ///< Sessions whose transport refused it (closing, slow consumer).
    std::uint32_t deferred = 0;   ///< Deliveries queued behind the one in progress, for a call
                                  ///< made from a callback (see `router`, "Ordering"); their
                                  ///< outcome is counted in `router_counters` when they happen.
    bool queued = false;          ///< A direct message was stored in the recipient's inbox
                                  ///< (`router_options::inbox`) and handed to no session: the
                                  ///< user had none, or every one has its ack window full.
    bool duplicate = false;       ///< `send()` with a client id seen before: nothing was sent
                                  ///< again; the fields repeat the first outcome.
    std::uint64_t seq = 0;        ///< The recipient's sequence number of the stored message
                                  ///< (`queued`, or delivered to a session with acks on); else 0.
    bool pending = false;         ///< A durable store commits the message (or, for `send()`, its
                                  ///< de-duplication record) later: the fields are the decision
                                  ///< so far, and the router answers the sending session with a
                                  ///< `send_outcome` event once the store reports (docs/design.md,
                                  ///< "Durable outcomes"). Never set with `memory_inbox`.

    /// @brief True when `code == status::ok` (even if no session was a target, e.g. an empty room).
    [[nodiscard]] bool ok() const noexcept { return code == status::ok; }
};

/// @brief Running totals kept by a router, for metrics. Monotonic; never reset by the router.
struct router_counters {
    std::uint64_t routed = 0;         ///< Successful `route()` and `publish()` calls.
    std::uint64_t delivered = 0;      ///< Payloads queued by transports (one per recipient).
    std::uint64_t dropped = 0;        ///< Payloads refused by transports (closing, slow consumer).
    std::uint64_t user_not_found = 0; ///< `route()` calls whose target had no session.
    std::uint64_t auth_failed = 0;    ///< Registrations the authorizer refused.
    std::uint64_t too_many_rooms = 0; ///< Joins refused by `router_options::max_rooms_per_session`.
    std::uint64_t room_full = 0;      ///< Joins refused by `router_options::max_room_members`.
    std::uint64_t queued = 0;         ///< Direct messages stored for a user with no session.
    std::uint64_t inbox_full = 0;     ///< Direct messages refused with `status::inbox_full`.
    std::uint64_t replayed = 0;       ///< Stored messages handed to a session after they were stored:
                                      ///< at registration, when acks are turned on, or as
                                      ///< acknowledgements open the ack window.
    std::uint64_t presence_events = 0; ///< Presence events handed to watchers.
    std::uint64_t typing_dropped = 0; ///< Typing events a backed-up session did not take.
    std::uint64_t duplicates = 0;     ///< `send()` calls answered from the de-duplication window.
    std::uint64_t store_failures = 0; ///< Stored messages and de-duplication records a durable
                                      ///< store failed to commit (`send_outcome` with an error).
};

/// @brief What a second registration of a user name that is online does
/// (docs/design.md, "Several sessions per user").
enum class session_policy : std::uint8_t {
    exclusive, ///< Refused with `status::name_taken` (v1, the default).
    replace,   ///< The new session takes the name; the old one gets `session_replaced`, is released
               ///< like a disconnect (its rooms hear `member_left`) and closed after its output.
               ///< Watchers see no presence change.
    multi,     ///< Up to `router_options::max_sessions_per_user` sessions hold the name; direct
               ///< messages go to each of them.
};

/// @brief Presence of a user (`router::presence_of()`).
struct presence_info {
    bool online = false;         ///< The last announced state: online from the first session's
                                 ///< registration until the offline event (after any grace period).
    std::int64_t last_seen = -1; ///< When offline: Unix time in ms of the last input from the
                                 ///< user's last session; -1 when never seen (or forgotten).
};

/// @brief Construction options of a router.
struct router_options {
    /// @brief Rooms one session may be in at once (1 to 2^24 - 1; default 64). A further `join()`
    /// returns `status::too_many_rooms`. Bounds the memory and the per-command work one client
    /// can cause (docs/security.md).
    std::size_t max_rooms_per_session = 64;
    /// @brief Members one room may hold (1 or more; default unbounded). A further `join()`
    /// returns `status::room_full`.
    std::size_t max_room_members = std::numeric_limits<std::size_t>::max();
    /// @brief How many callbacks deep a chain of causes may go (a transport's `deliver()` or the
    /// user-not-found handler calling back into the router, whose delivery calls back again,
    /// ...); 1 or more, default 16. A call that would go deeper returns `status::depth_exceeded`
    /// and does nothing, so a self-feeding loop (a bot answering every message with a message)
    /// ends instead of running forever.
    std::size_t max_callback_depth = 16;
    /// @brief What registering a name that is online does (default `exclusive`, v1).
    session_policy sessions = session_policy::exclusive;
    /// @brief Sessions one user may hold under `session_policy::multi` (1 or more; default 8);
    /// one more is `status::too_many_sessions`.
    std::size_t max_sessions_per_user = 8;
    /// @brief Users one session may watch (`watch()`; 1 or more; default 256).
    std::size_t max_watches_per_session = 256;
    /// @brief Delay before a user whose last session closed is announced offline (default 0:
    /// at once). A registration within it cancels the offline event and the online event both.
    /// Runs from `tick()`.
    std::chrono::milliseconds presence_grace{0};
    /// @brief Users gone offline whose last-seen time and de-duplication window are kept
    /// (default 100,000; about 150 bytes each, plus the window). Past it the one offline longest
    /// is forgotten (then reported as never seen); watched users are never forgotten.
    std::size_t max_offline_users = 100000;
    /// @brief Where direct messages for offline users are stored, and unacknowledged ones kept
    /// (`memory_inbox`, or a durable store); null (default) turns the offline inbox and
    /// acknowledgements off. Must outlive the router. A store that completes later (the SQLite
    /// store) calls back into the router from its completions: run them all (or destroy the
    /// store) before the router is destroyed.
    inbox_store* inbox = nullptr;
    /// @brief Acknowledged messages one session may have been handed and not yet acknowledged
    /// (1 or more; default 128; the "receive maximum" of MQTT 5, section 3.1.2.11.3). More are
    /// handed as acknowledgements come in, so a replay of a full inbox never exceeds the
    /// session's output bound (128 messages of 4 KiB are 512 KiB, under the default 1 MiB). The
    /// Asio adapter derives it from its output bound: `recommended_ack_window()` in
    /// asio/tcp_server.hpp (248 with its defaults; tcp_chat uses it).
    std::size_t ack_window = 128;
    /// @brief Client ids a user's `send()` calls are checked against: its last 1000
    /// delivered/queued sends within 10 minutes (issue #11, F). 0 turns de-duplication off.
    std::size_t dedup_window = 1000;
    /// @brief Client ids remembered by the whole router (default 1,000,000: 32 MB). Past it the
    /// windows of the users offline longest are dropped first; with none left, a user's window
    /// stops growing (its oldest id makes room).
    std::size_t max_dedup_entries = 1000000;
    /// @brief How long a client id is remembered (default 10 minutes).
    std::chrono::milliseconds dedup_ttl{600000};
    /// @brief How long after a `typing()` start a closing session still sends the stop
    /// (default 5 s: clients expire a typing indicator on their own after that).
    std::chrono::milliseconds typing_timeout{5000};
    /// @brief The cluster's directory when this router is one node of several (the Redis
    /// backplane); null (default) for a single node, whose behaviour and cost are those of v1.
    /// With it, `register_name()` of a local session asks the cluster and returns
    /// `status::pending`, names given up and room activity are reported to it, and sessions of
    /// other nodes are remote sessions (`open_remote_session()`). Must outlive the router
    /// (docs/design.md, "Clusters: the directory hook and remote sessions").
    ::switchboard::directory* directory = nullptr;
};

/// @brief Called on each presence transition of a user (`router::on_presence()`): the folded
/// name, true for online, and for offline the last-seen time (Unix ms, -1 never seen). The view is
/// valid during the call only. It may call back into the router (deliveries are deferred).
using presence_handler = std::function<void(std::string_view user, bool online, std::int64_t last_seen)>;

/// @brief Decides whether session `s` may take user name `user`, given the credential the client
/// presented (empty when none; for the line protocol, the text after `/register <user> `).
///
/// Return `status::ok` to allow; any other status refuses the registration and is what
/// `router::register_name()` returns — normally `status::auth_failed` (wrong or missing secret,
/// reserved name). The name is already validated and folded; `credential` is opaque bytes, valid
/// only during the call. Called under the router's serialisation, before the name-taken check (so
/// a wrong secret always reads `auth_failed`, whether or not the name is online). It must not
/// call back into the router. Keep it fast or pre-verified: it runs on the routing path (a slow
/// hash like PBKDF2 costs every other session that much latency on a single-threaded host).
using authorizer =
    std::function<status(session_id s, const name& user, std::string_view credential)>;

/// @brief Routes messages between sessions by user name and through rooms.
///
/// A host (an adapter, or a test) opens a session per connection with `open_session()`, feeding
/// it a `transport` through which the router delivers, and closes it with `close_session()` when
/// the connection goes. Between the two, the session may take a user name, join rooms and send.
///
/// Registration policy (v1): exclusive — one session per user name; a name held by another
/// session is refused with `status::name_taken`. `close_session()` releases exactly what that
/// session holds, never a name a newer session holds (session ids carry a generation). Several
/// sessions per user (devices) will be an opt-in policy in `router_options`: the calls keep their
/// signatures, `route()` then delivers to each session of the user and reports the count in
/// `route_result::delivered` (docs/design.md, "Several sessions per user").
///
/// Formats: each session names its wire format (`event_encoder`) when it is opened, so one router
/// serves netcat lines and browser JSON side by side. The router itself knows no wire format.
///
/// Fan-out: an event is encoded once per distinct format among its recipients, into one `payload`
/// per format, and the same payload is handed to each recipient of that format — K members of one
/// format cost one encode and K reference-count increments, not K copies of the bytes.
///
/// Text: every call that carries a message text (`route()`, `publish()`) checks it against the
/// text contract (text.hpp) and each recipient format's framing before delivering anything; a
/// refusal is `status::invalid_text` and nobody receives anything (docs/security.md, "The API
/// path").
///
/// Ordering and re-entrancy (the contract is docs/design.md, "Ordering and re-entrancy"): every
/// callback — a transport's `deliver()` and `close()`, the user-not-found handler — may call back
/// into the router. Such a call is decided at once (its status is final) but its deliveries run
/// after the delivery in progress has reached every recipient (`route_result::deferred`), so every
/// member of a room sees one order and every session sees an effect after its cause; `hold()`
/// puts a host's reply before the effects of its command. Causal depth is bounded by
/// `router_options::max_callback_depth`. The authorizer and encoders must not call back.
///
/// Thread safety (docs/design.md, "Threading model"): not thread-safe. All calls on one router
/// must be serialised by the host (one thread, a mutex, or a strand); transports are called on
/// the calling thread, under that serialisation. Distinct routers are independent.
class router {
public:
    /// @brief Called when `route()` finds no session for the target user.
    /// Arguments: the sending session, the folded target name, the message text (it met the text
    /// contract, text.hpp).
    /// The views are valid only during the call.
    using user_not_found_handler =
        std::function<void(session_id from, std::string_view target, std::string_view text)>;

    /// @brief An empty router.
    /// @param options see `router_options`.
    explicit router(router_options options = {})
        : max_rooms_per_session_(
              std::clamp<std::size_t>(options.max_rooms_per_session, 1, member::max_in_session)),
          max_room_members_(std::max<std::size_t>(options.max_room_members, 1)),
          max_depth_(static_cast<std::uint32_t>(
              std::min<std::size_t>(std::max<std::size_t>(options.max_callback_depth, 1), 1u << 16))),
          snapshots_(max_depth_ + 1), policy_(options.sessions),
          max_sessions_(static_cast<std::uint32_t>(
              std::clamp<std::size_t>(options.max_sessions_per_user, 1, 1u << 20))),
          max_watches_(std::max<std::size_t>(options.max_watches_per_session, 1)),
          grace_ms_(options.presence_grace.count()), max_offline_(options.max_offline_users),
          inbox_(options.inbox), ack_window_(std::max<std::size_t>(options.ack_window, 1)), dedup_window_(options.dedup_window), max_dedup_(options.max_dedup_entries), dedup_ttl_ms_(options.dedup_ttl.count()),
          typing_timeout_ms_(options.typing_timeout.count()), dir_(options.directory) {
        frames_.reserve(max_depth_ + 1);
    }

    router(const router&) = delete;
    router& operator=(const router&) = delete;

    // ---- sessions -------------------------------------------------------------------------

    /// @brief Opens a session that receives through `t`, in wire format `format`.
    /// @param t the session's transport; must stay valid until `close_session()` for the
    ///        returned id has returned.
    /// @param format the session's wire format (e.g. `protocol::line_event_encoder::instance()`);
    ///        must outlive the router. At most `max_formats` distinct format objects per router.
    /// @return a fresh id, never equal to the id of a closed session (up to 2^32 reuses of a slot).
    /// @throws std::bad_alloc when memory runs out; std::length_error when `format` would be the
    ///         router's `max_formats + 1`-th distinct format (a programming error).
    [[nodiscard]] session_id open_session(transport& t, const event_encoder& format) {
        return open_slot(t, format, false);
    }

    /// @brief Opens a remote session ("proxy"): a session that another node of the cluster holds,
    /// through which this router routes to it (docs/design.md, "Clusters: the directory hook and
    /// remote sessions"). Name it with `register_remote()`. It counts for lookup, direct routing,
    /// presence and `users()` exactly like a local session; it never joins rooms, never asks the
    /// directory, and is never reported to it. Close it with `close_session()` (after `touch()`
    /// with the remote last-seen time, so the offline event carries it).
    /// @param t the transport to the node holding the real session (the backplane's batch for that
    ///        node); it may return `delivery::unavailable` while that node cannot be reached.
    /// @param format normally `cluster_format::instance()` (cluster_format.hpp).
    /// @return a fresh id, as `open_session()`.
    /// @throws as `open_session()`.
    [[nodiscard]] session_id open_remote_session(transport& t, const event_encoder& format) {
        return open_slot(t, format, true);
    }

private:
    session_id open_slot(transport& t, const event_encoder& format, bool remote) {
        const std::uint8_t f = format_index(format);
        std::uint32_t index;
        if (free_session_ != npos) {
            index = free_session_;
            free_session_ = sessions_[index].next_free;
        } else {
            SWITCHBOARD_ASSERT(sessions_.size() < npos, "too many sessions");
            index = static_cast<std::uint32_t>(sessions_.size());
            sessions_.emplace_back();
        }
        session_slot& s = sessions_[index];
        s.t = &t;
        s.format = f;
        s.remote = remote;
        s.next_free = npos;
        ++open_sessions_;
        return session_id::make(index, s.generation);
    }

public:

    /// @brief Closes a session: leaves each of its rooms (remaining members get `member_left`),
    /// releases its user name, and forgets its transport. Does not call `transport::close()`:
    /// the caller is the adapter, which already knows the connection is gone.
    /// @param s the session.
    /// @return `ok`, or `unknown_session` when `s` is not open (never opened, or closed
    ///         already — a stale id changes nothing, whoever holds the name now — or being closed
    ///         by an outer call, from one of whose callbacks this one comes).
    status close_session(session_id s) {
        session_slot* slot = find_live_slot(s); // a retired (replaced) session closes too
        if (!slot) return status::unknown_session;
        // From here on the session counts as closed for every call, including calls made by the
        // members told below: none can route to it, rejoin it or close it twice.
        slot->closing = true;
        release(s.index(), true);
        slot = &sessions_[s.index()];
        if (depth_ > 0) closed_in_callback_.push_back(slot->t); // skip it in outer fan-outs
        slot->closing = false;
        slot->rooms.shrink_to_fit();
        slot->extras.reset();
        slot->t = nullptr;
        slot->acks = false;
        slot->retired = false;
        slot->remote = false;
        slot->claiming = false;
        slot->replay_pending = false;
        slot->last_input = -1;
        slot->sent_through = 0;
        if (++slot->generation == 0) slot->generation = 1;
        slot->next_free = free_session_;
        free_session_ = s.index();
        --open_sessions_;
        settle();
        return status::ok;
    }

    /// @brief Asks a session's transport to close (a kick, or `/quit`). The session stays open
    /// until the adapter calls `close_session()`.
    /// @param s the session.
    /// @param mode flush queued output first (default), or drop it.
    /// @return `ok`, `unknown_session`, or `depth_exceeded`.
    status disconnect(session_id s, close_mode mode = close_mode::after_flush) {
        session_slot* slot = find_slot(s);
        if (!slot) return status::unknown_session;
        const std::uint32_t d = call_depth();
        if (d >= max_depth_) return status::depth_exceeded;
        if (depth_ > 0) { // from a callback: after the deliveries already caused
            defer(s, payload{}, d, true, mode);
            return status::ok;
        }
        transport* const t = slot->t;
        {
            const callback_scope scope(*this, 0);
            t->close(mode);
        }
        settle();
        return status::ok;
    }

    /// @brief True when `s` is open.
    /// @param s any id; a stale or null one is simply not open.
    [[nodiscard]] bool is_open(session_id s) const noexcept { return find_slot(s) != nullptr; }

    /// @brief Hands raw bytes to one session (replies and notices from the host or protocol).
    /// @param s the session.
    /// @param bytes the complete bytes to write; shared, not copied.
    /// @return `ok` when the transport queued them; `unknown_session`; `depth_exceeded`; or for
    ///         a transport that refused them (closing, slow consumer) `ok` with the refusal counted
    ///         in `counters().dropped` — the session's own close will follow.
    status send(session_id s, const payload& bytes) {
        session_slot* slot = find_slot(s);
        if (!slot) return status::unknown_session;
        const std::uint32_t d = call_depth();
        if (d >= max_depth_) return status::depth_exceeded;
        if (depth_ > 0) {
            defer(s, bytes, d, false, close_mode::after_flush);
            return status::ok;
        }
        transport* const t = slot->t;
        {
            const callback_scope scope(*this, 0);
            count(t->deliver(bytes));
        }
        settle();
        return status::ok;
    }

    /// @brief Sends one event to one session, encoded in that session's own format (the
    /// `event_encoder` it was opened with), as `send()` sends bytes: a notice of the host's or of
    /// an adapter's (another node's event for a local session, `session_closed` before a close).
    /// @param s the session.
    /// @param e the event; its views are read during the call only. Checked by the format
    ///        (`event_encoder::encode()`), not by the router.
    /// @return as `send()`: `ok` (queued, or refused by a closing or backed-up transport and
    ///         counted in `counters().dropped`); `unknown_session`; `depth_exceeded`; and
    ///         `invalid_text` when the session's format does not carry `e` (its encoder refused it).
    /// @throws std::bad_alloc when memory runs out.
    /// @note Thread safety: as every router call, under the host's serialisation.
    status notify(session_id s, const event& e) {
        const session_slot* slot = find_slot(s);
        if (!slot) return status::unknown_session;
        const payload bytes = formats_[slot->format]->encode(e);
        if (bytes.empty()) return status::invalid_text;
        return send(s, bytes);
    }

    /// @brief Keeps the deliveries that callbacks cause queued until it is destroyed (see
    /// `router::hold()`). Movable, not copyable.
    class hold_guard {
    public:
        /// @brief Takes over the hold of `other`, which then releases nothing.
        hold_guard(hold_guard&& other) noexcept : r_(other.r_) { other.r_ = nullptr; }
        hold_guard& operator=(hold_guard&&) = delete;
        hold_guard(const hold_guard&) = delete;
        hold_guard& operator=(const hold_guard&) = delete;
        /// @brief Releases the hold; the last one runs the queued deliveries.
        ~hold_guard() {
            if (r_ && --r_->holds_ == 0) r_->settle();
        }

    private:
        friend class router;
        explicit hold_guard(router& r) noexcept : r_(&r) { ++r_->holds_; }
        router* r_;
    };

    /// @brief Holds the effects of the next calls: what callbacks cause (a bot's answer, a
    /// bounce) stays queued until the returned guard is destroyed, while the host's own calls and
    /// replies (`send()`) still go out at once. A protocol layer holds around each command, so
    /// that its reply reaches the client before the events the command caused (`ok join lobby`
    /// before the bot's welcome). Holds nest; the last one released runs the queue.
    /// @return the guard; keep it for the duration of the command.
    /// @note Thread safety: as every router call, under the host's serialisation; destroy the
    ///       guard under it too.
    [[nodiscard]] hold_guard hold() noexcept { return hold_guard(*this); }

    // ---- user names -----------------------------------------------------------------------

    /// @brief Gives session `s` the user name `user` (validated and folded), if the authorizer
    /// (see `set_authorizer()`; by default none, which allows every valid name) accepts
    /// `credential`.
    /// @param s the session to name.
    /// @param user the name as the client sent it, any case; validated and folded here
    ///        (`name::parse`: 1 to 40 bytes of `[A-Za-z0-9_.-]`).
    /// @param credential opaque bytes handed to the authorizer (a secret, a token); never stored.
    /// @return `ok`; `unknown_session`; `invalid_name`; `already_registered` when `s` holds a name
    ///         (even the same) or a claim of it is pending; the authorizer's refusal (normally
    ///         `auth_failed`); `name_taken` when another session holds it — checked in this
    ///         order. With `router_options::directory`, a local session that passed these checks
    ///         gets `pending`: the cluster decides, and the session is answered later with a
    ///         `register_outcome` event (see `claim_completed()`); until then it holds no name.
    ///         A remote session (`open_remote_session()`) is named as by `register_remote()`.
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] status register_name(session_id s, std::string_view user, std::string_view credential = {}) {
        const auto n = name::parse(user);
        if (!n) return find_slot(s) ? status::invalid_name : status::unknown_session;
        return register_name(s, *n, credential);
    }

    /// @brief As above, with a name already validated and folded by `name::parse`.
    [[nodiscard]] status register_name(session_id s, const name& user, std::string_view credential = {}) {
        session_slot* slot = find_slot(s);
        if (!slot) return status::unknown_session;
        if (slot->remote) return register_remote(s, user);
        if (user.empty()) return status::invalid_name;
        if (slot->user != npos || slot->claiming) return status::already_registered;
        if (authorizer_) {
            const status verdict = authorizer_(s, user, credential);
            if (verdict != status::ok) {
                ++counters_.auth_failed;
                return verdict;
            }
            slot = find_slot(s); // the authorizer must not, but a resize would move the slot
            if (!slot) return status::unknown_session;
        }
        if (const status verdict = local_verdict(user); verdict != status::ok) return verdict;
        if (dir_) { // the cluster decides (claim_completed())
            const std::uint64_t ticket = ++next_claim_;
            claims_.push_back(claim_waiter{ticket, s, user});
            slot->claiming = true;
            dir_->claim(user, s, policy_, ticket);
            return status::pending;
        }
        if (policy_ == session_policy::replace) take_over_all(user);
        attach_name(s, user, true);
        settle();
        return status::ok;
    }

    /// @brief Finishes a registration that `register_name()` answered `pending`: the directory's
    /// answer to its `directory::claim()`. The session gets a `register_outcome` event (`user` the
    /// name, `code` the outcome), which wire formats spell as the synchronous answer
    /// (`ok register <name>`, `err name-taken <name>`). On `ok` the router checks its own state
    /// again: under `exclusive` a session that took the name meanwhile (a remote one that arrived
    /// first), under `multi` a full `max_sessions_per_user`, refuses it (`name_taken`,
    /// `too_many_sessions`); under `replace` the holders are taken over. A claim refused that way,
    /// or answered `ok` for a session closed meanwhile, is undone with `directory::released()`.
    /// @param ticket the ticket of the claim; each is answered once.
    /// @param result `ok`, `name_taken`, `too_many_sessions` or `cluster_unavailable` (any other
    ///        refusal is passed on as it is).
    /// @return the outcome told to the session; `unknown_session` when the ticket is unknown
    ///         (answered already) or its session closed meanwhile (nothing told).
    /// @note Call it from the host's serialisation, never from inside `directory::claim()`.
    /// @throws std::bad_alloc when memory runs out.
    status claim_completed(std::uint64_t ticket, status result) {
        const auto it = std::find_if(claims_.begin(), claims_.end(),
                                     [ticket](const claim_waiter& w) { return w.ticket == ticket; });
        if (it == claims_.end()) return status::unknown_session;
        const claim_waiter w = *it;
        claims_.erase(it);
        session_slot* slot = find_slot(w.s);
        if (!slot || !slot->claiming) { // closed meanwhile: nobody to tell; undo a granted claim
            if (result == status::ok && dir_) dir_->released(w.user, w.s, -1);
            return status::unknown_session;
        }
        slot->claiming = false;
        status outcome = result;
        if (outcome == status::ok && policy_ != session_policy::replace) outcome = local_verdict(w.user);
        if (result == status::ok && outcome != status::ok && dir_) dir_->released(w.user, w.s, slot->last_input);
        event e{event_kind::register_outcome, {}, w.user.view(), {}};
        e.code = outcome;
        defer_event(w.s.index(), e, false); // before the replay that attach_name() queues
        if (outcome == status::ok) {
            if (policy_ == session_policy::replace) take_over_all(w.user);
            attach_name(w.s, w.user, true);
        }
        settle();
        return outcome;
    }

    /// @brief Gives remote session `s` (`open_remote_session()`) the name `user`: the directory
    /// says a session of another node holds it. No authorizer, no directory call, no inbox replay.
    /// Under `exclusive` and `replace` the directory is the authority: the sessions this router
    /// has for the name are taken over (a local one gets `session_replaced` and is closed after
    /// its output, and is reported `released()`; a remote one is closed quietly). Under `multi`
    /// no cap is checked (the directory counted the cluster's sessions). Presence as for a local
    /// registration (online on the first session, local or remote).
    /// @param s an open remote session.
    /// @param user the folded name.
    /// @return `ok`; `unknown_session` when `s` is not an open remote session; `invalid_name`
    ///         (empty); `already_registered`.
    /// @throws std::bad_alloc when memory runs out.
    status register_remote(session_id s, const name& user) {
        const session_slot* slot = find_slot(s);
        if (!slot || !slot->remote) return status::unknown_session;
        if (user.empty()) return status::invalid_name;
        if (slot->user != npos) return status::already_registered;
        if (policy_ != session_policy::multi) take_over_all(user);
        attach_name(s, user, false);
        settle();
        return status::ok;
    }

    /// @brief Registrations answered `pending` whose `claim_completed()` has not come yet (0
    /// without a directory).
    [[nodiscard]] std::size_t pending_claims() const noexcept { return claims_.size(); }

    /// @brief True when `s` is open and waits for the answer to its registration
    /// (`register_name()` returned `pending`): a protocol holds the session's next commands.
    /// @param s the session.
    [[nodiscard]] bool registration_pending(session_id s) const noexcept {
        const session_slot* slot = find_slot(s);
        return slot && slot->claiming;
    }

    /// @brief True when `s` is an open remote session (`open_remote_session()`).
    /// @param s the session.
    [[nodiscard]] bool is_remote(session_id s) const noexcept {
        const session_slot* slot = find_slot(s);
        return slot && slot->remote;
    }

    /// @brief Installs the check run by `register_name()` (see `authorizer`); an empty function
    /// removes it, so every valid name is allowed (the default).
    /// @param a the check; called under the router's serialisation, must not call back into the
    ///        router.
    void set_authorizer(authorizer a) { authorizer_ = std::move(a); }

    /// @brief The folded user name of `s`; empty when `s` has none or is not open.
    /// @param s the session.
    /// @note The view is valid until `s` is closed.
    [[nodiscard]] std::string_view name_of(session_id s) const noexcept {
        const session_slot* slot = find_slot(s);
        return slot && slot->user != npos ? users_slots_[slot->user].id.view() : std::string_view{};
    }

    /// @brief The wire format `s` was opened with; null when `s` is not open.
    /// @param s the session.
    [[nodiscard]] const event_encoder* format_of(session_id s) const noexcept {
        const session_slot* slot = find_slot(s);
        return slot ? formats_[slot->format] : nullptr;
    }

    /// @brief True when `s` is open and holds a user name.
    /// @param s the session.
    [[nodiscard]] bool is_registered(session_id s) const noexcept {
        const session_slot* slot = find_slot(s);
        return slot && slot->user != npos;
    }

    /// @brief The session holding a user name (under `session_policy::multi`, the one that
    /// registered last; see `sessions_of()` for all of them).
    /// @param user the name, any case (validated and folded here).
    /// @return the session, or a null id when nobody holds the name or it is invalid.
    [[nodiscard]] session_id find(std::string_view user) const noexcept {
        const auto n = name::parse(user);
        return n ? find(*n) : session_id{};
    }

    /// @brief As above, with a folded name.
    [[nodiscard]] session_id find(const name& user) const noexcept {
        const std::uint32_t u = find_user(user);
        if (u == npos || users_slots_[u].sessions == 0) return session_id{};
        const std::uint32_t i = users_slots_[u].head;
        return session_id::make(i, sessions_[i].generation);
    }

    /// @brief All registered user names in ascending byte order.
    /// @return views valid until the next call that registers or closes a session.
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] std::vector<std::string_view> users() const {
        std::vector<std::string_view> out;
        out.reserve(online_users_);
        for (const user_slot& u : users_slots_)
            if (u.sessions != 0) out.push_back(u.id.view());
        std::sort(out.begin(), out.end());
        return out;
    }

    // ---- 1:1 routing ------------------------------------------------------------------------

    /// @brief Sends `text` from session `from` to the session holding user name `to`; the
    /// recipient gets the event `direct_message{user = name of from, text}`. A session may
    /// message itself. The sender is always the registered name of `from`: callers cannot name
    /// another sender.
    /// @param from the sending session; must hold a user name.
    /// @param to the recipient's user name, any case (validated and folded here).
    /// @param text the message text; must meet the text contract (text.hpp); its length is not
    ///        bounded here (the host bounds what it forwards).
    /// @return `ok` (`delivered` 1, or `dropped` 1 when the recipient's transport refused);
    ///         `unknown_session`; `not_registered` when `from` has no name; `invalid_name`;
    ///         `invalid_text` when `text` breaks the text contract or the recipient's format
    ///         refuses it (nothing delivered); `depth_exceeded`; `user_not_found` (after calling
    ///         the user-not-found handler) — checked in this order. With an inbox
    ///         (`router_options::inbox`): `ok` with `queued` and `seq` when stored for a known
    ///         user with no session (or whose sessions' ack windows are full); `inbox_full`;
    ///         `store_busy`, `store_full` or `store_failed` when the store refused it at once;
    ///         and `pending` set when a durable store commits it later, the sender then being
    ///         answered with a `send_outcome` event (docs/design.md, "Durable outcomes").
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] route_result route(session_id from, std::string_view to, std::string_view text) {
        const session_slot* slot = find_slot(from);
        if (!slot) return {status::unknown_session};
        if (slot->user == npos) return {status::not_registered};
        const auto n = name::parse(to);
        if (!n) return {status::invalid_name};
        return route(from, *n, text);
    }

    /// @brief As above, with a folded target name.
    [[nodiscard]] route_result route(session_id from, const name& to, std::string_view text) {
        return route_impl(from, to, text, nullptr, nullptr);
    }

private:
    struct send_context {            // send(): the client id whose outcome the store records
        std::uint64_t key;           // client_key(client_id)
        std::string_view client_id;
    };
    // `ctx`: a send() whose outcome is recorded (de-duplication on), else null; `confirm`: a
    // send(), recorded or not (its client id answers a confirmation: route_to_remote()), else null.
    route_result route_impl(session_id from, const name& to, std::string_view text, const send_context* ctx,
                            const send_context* confirm) {
        const session_slot* slot = find_slot(from);
        if (!slot) return {status::unknown_session};
        if (slot->user == npos) return {status::not_registered};
        const std::uint32_t target = find_user(to); // no side effect: the check order holds
        if (!is_message_text(text)) return {status::invalid_text};
        const std::uint32_t d = call_depth();
        if (d >= max_depth_) return {status::depth_exceeded};
        if (target == npos || users_slots_[target].sessions == 0) return route_offline(from, to, text, d, ctx);
        if (sessions_[from.index()].typing_on()) forget_typing(from.index(), to); // a message ends it
        const user_slot& rec = users_slots_[target];
        // v1: one session, acks off (see user_slot); a send() to a remote one is confirmed by its
        // node (route_to_remote())
        if (rec.direct && !(confirm && dir_ && sessions_[rec.head].remote)) {
            const payload bytes = formats_[rec.direct_format]->encode_checked(
                event{event_kind::direct_message, {}, users_slots_[slot->user].id.view(), text});
            if (bytes.empty()) return {status::invalid_text};
            route_result r;
            ++counters_.routed;
            if (depth_ > 0) { // from a callback: after the deliveries already caused
                defer(session_id::make(rec.head, sessions_[rec.head].generation), bytes, d, false,
                      close_mode::after_flush);
                r.deferred = 1;
                return r;
            }
            transport* const t = rec.direct;
            delivery outcome;
            {
                const callback_scope scope(*this, 0);
                outcome = t->deliver(bytes);
            }
            if (outcome == delivery::queued) {
                ++r.delivered;
                ++counters_.delivered;
            } else if (outcome == delivery::unavailable) { // a remote session's node is out of reach
                --counters_.routed;
                r = route_result{status::cluster_unavailable};
            } else {
                tally(r, outcome);
            }
            settle();
            return r;
        }
        return route_to_sessions(from, target, text, d, ctx, confirm);
    }

public:
    /// @brief As `route()`, with a client id for de-duplication (the line protocol's `/send`;
    /// issue #11, F): when the sending user used `client_id` in one of its last
    /// `router_options::dedup_window` sends that were delivered or queued, within
    /// `router_options::dedup_ttl`, nothing is sent again and the first outcome is returned with
    /// `duplicate` set.
    /// @param from the sending session.
    /// @param to the recipient's folded name.
    /// @param text the message text (text.hpp contract).
    /// @param client_id 1 to 40 bytes chosen by the client, compared byte for byte (the caller
    ///        validates its syntax).
    /// @return as `route()`; the usual checks (not-registered, invalid-text) run before the look-up;
    ///         `store_busy` when the first send with this id waits for a durable store (its
    ///         outcome is not known yet). With a store, a delivered send's outcome is recorded in
    ///         the store too (`inbox_store::record_sent()`), and `pending` is set while a durable
    ///         store commits it: a retry after a restart is answered from the store's records.
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] route_result send(session_id from, const name& to, std::string_view text, std::string_view client_id) {
        const session_slot* slot = find_slot(from);
        if (!slot) return {status::unknown_session};
        if (slot->user == npos) return {status::not_registered};
        if (!is_message_text(text)) return {status::invalid_text};
        const std::uint32_t sender = slot->user;
        const std::uint64_t key = client_key(client_id);
        if (dedup_window_ != 0 && !cold_[sender].sent && inbox_) restore_window(sender);
        if (dedup_window_ != 0 && cold_[sender].sent) {
            for (const sent_entry& e : cold_[sender].sent->entries) {
                if (e.key != key || now_ - e.at >= dedup_ttl_ms_) continue;
                if (e.pending) return {status::store_busy}; // its outcome is not known yet: retry later
                ++counters_.duplicates;
                route_result r;
                r.queued = e.queued;
                r.seq = e.seq;
                r.duplicate = true;
                return r;
            }
        }
        const send_context ctx{key, client_id};
        const send_context* const record = dedup_window_ != 0 ? &ctx : nullptr;
        // Confirmed across nodes with or without the window (then nothing is recorded: key 0)
        const send_context unrecorded{0, client_id};
        const name sender_name = users_slots_[sender].id; // a callback may close the session
        confirming_send_ = false;
        route_result r = route_impl(from, to, text, record, record ? record : &unrecorded);
        const bool confirming = std::exchange(confirming_send_, false); // recorded once confirmed
        if (r.ok() && !r.queued && !r.pending && r.delivered == 0 && r.deferred == 0 && r.seq == 0) {
            // Every session of the user refused it (a slow consumer being cut): not delivered.
            // Stored if the user is known, else the user is as good as gone. (A message stored
            // for an ack-on session, r.seq set, stays stored for its next registration.)
            r = route_result{};
            if (!inbox_ || !inbox_->is_known(to)) return {status::user_not_found};
            std::uint64_t ticket = 0;
            const append_result a = store_append(to, sender_name.view(), text, record, ticket);
            if (a.code != status::ok) return {a.code};
            r.queued = true;
            r.seq = a.seq;
            ++counters_.queued;
            if (ticket != 0) wait_for_store(ticket, from, sender_name, to, record, r, true, true);
        } else if (r.ok() && !r.queued && record && inbox_ && !confirming) {
            // Delivered: the store records the outcome (a retry after a restart is not delivered
            // again), and the answer waits for that record when the store commits later.
            const std::uint64_t ticket = call_store([&](inbox_store::durable_handler done) {
                inbox_->record_sent(sender_name, sent_record{key, now_, r.seq, false}, std::move(done));
            });
            if (ticket != 0) wait_for_store(ticket, from, sender_name, to, record, r, true, false);
        }
        if (r.ok() && record && find_slot(from)) remember_sent(sender, key, now_, r);
        return r;
    }

    /// @brief Store calls whose completion the router still waits for: messages and
    /// de-duplication records a durable store has not yet reported on (`route_result::pending`),
    /// and sends across nodes that no receiving node has confirmed yet (`directory::confirm()`).
    /// Each completion (which the store runs under the host's serialisation) answers its sender
    /// with a `send_outcome` event. 0 with `memory_inbox`.
    /// @return the number of such calls.
    [[nodiscard]] std::size_t store_waits() const noexcept {
        return waiters_.size() - waiters_head_ + confirm_waiters_.size();
    }

    /// @brief Sets the handler called when `route()` finds no session for its target (to log,
    /// bounce or store the message). Replaces any previous handler; an empty function removes it.
    /// Called from inside the handler, the replacement takes effect when the handler returns.
    /// @param handler see `user_not_found_handler`; it may call back into the router (its
    ///        deliveries are deferred: docs/design.md, "Ordering and re-entrancy").
    void on_user_not_found(user_not_found_handler handler) {
        if (in_not_found_handler_) replacement_handler_ = std::move(handler);
        else on_user_not_found_ = std::move(handler);
    }

    // ---- presence, typing, acknowledgements, time ------------------------------------------

    /// @brief Session `s` watches the presence of `user`: it gets the current state at once
    /// (`presence_online`, or `presence_offline` with the last-seen time, -1 when never seen),
    /// then one event per transition (docs/design.md, "Presence"). Watching oneself is allowed;
    /// the watch ends with the session.
    /// @param s a registered session.
    /// @param user a folded name.
    /// @return `ok`; `unknown_session`; `not_registered`; `invalid_name` (empty name);
    ///         `already_watching`; `too_many_watches` (`router_options::max_watches_per_session`)
    ///         — checked in this order; `depth_exceeded`.
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] status watch(session_id s, const name& user) {
        if (const status st = check_registered(s); st != status::ok) return st;
        if (user.empty()) return status::invalid_name;
        if (call_depth() >= max_depth_) return status::depth_exceeded;
        std::uint32_t u = find_user(user);
        std::vector<std::uint32_t>& mine = sessions_[s.index()].extra().watching;
        if (u != npos && std::find(mine.begin(), mine.end(), u) != mine.end()) return status::already_watching;
        if (mine.size() >= max_watches_) return status::too_many_watches;
        if (u == npos) u = add_user(user);
        cold_[u].watchers.push_back(s.index());
        mine.push_back(u);
        unlink_offline(u); // a watched user is never forgotten
        defer_event(s.index(), presence_event(u), false);
        settle();
        return status::ok;
    }

    /// @brief Ends a watch of `watch()`.
    /// @param s a registered session.
    /// @param user a folded name.
    /// @return `ok`; `unknown_session`; `not_registered`; `invalid_name`; `not_watching`.
    status unwatch(session_id s, const name& user) {
        if (const status st = check_registered(s); st != status::ok) return st;
        if (user.empty()) return status::invalid_name;
        const std::uint32_t u = find_user(user);
        if (!sessions_[s.index()].extras) return status::not_watching;
        std::vector<std::uint32_t>& mine = sessions_[s.index()].extras->watching;
        const auto it = u == npos ? mine.end() : std::find(mine.begin(), mine.end(), u);
        if (it == mine.end()) return status::not_watching;
        *it = mine.back();
        mine.pop_back();
        drop_watcher(u, s.index());
        return status::ok;
    }

    /// @brief The announced presence of `user` (what a watcher was last told; during a grace
    /// period still online).
    /// @param user a folded name.
    [[nodiscard]] presence_info presence_of(const name& user) const noexcept {
        const std::uint32_t u = find_user(user);
        if (u == npos) return {};
        return {users_slots_[u].announced, users_slots_[u].announced ? -1 : cold_[u].last_seen};
    }

    /// @brief Installs the host's presence callback (see `presence_handler`); empty removes it.
    /// @param handler called once per announced transition, after the watchers' events are queued.
    void on_presence(presence_handler handler) { on_presence_ = std::move(handler); }

    /// @brief Tells each session of `to` that `from`'s user is typing (`typing_started`) or
    /// stopped (`typing_stopped`). Ephemeral: never stored, and dropped for a session whose output
    /// is backed up (`transport::deliver_ephemeral()`). When `from` closes within
    /// `router_options::typing_timeout` of a start not followed by a stop or a direct message to
    /// `to`, the sessions of `to` get `typing_stopped`.
    /// @param from a registered session.
    /// @param to a folded name.
    /// @param stop false for "typing", true for "stopped".
    /// @return `ok` (also when `to` has no session: nobody is told); `unknown_session`;
    ///         `not_registered`; `invalid_name`; `depth_exceeded`.
    /// @throws std::bad_alloc when memory runs out.
    status typing(session_id from, const name& to, bool stop) {
        if (const status st = check_registered(from); st != status::ok) return st;
        if (to.empty()) return status::invalid_name;
        if (call_depth() >= max_depth_) return status::depth_exceeded;
        const std::uint32_t u = find_user(to);
        if (u == npos || users_slots_[u].sessions == 0) return status::ok;
        session_slot& me = sessions_[from.index()];
        forget_typing(from.index(), to);
        if (!stop) {
            std::vector<typing_note>& notes = me.extra().typing;
            if (notes.size() >= max_typing_notes) notes.erase(notes.begin()); // oldest
            notes.push_back(typing_note{to, now_});
        }
        tell_sessions(u, event{stop ? event_kind::typing_stopped : event_kind::typing_started, {},
                               users_slots_[me.user].id.view(), {}});
        settle();
        return status::ok;
    }

    /// @brief Turns acknowledgements on for session `s` (idempotent): it receives direct
    /// messages as `acked_message` with the recipient user's sequence number, each stored until
    /// acknowledged (`acknowledge()`); a registered session gets every unacknowledged message at
    /// once, in sequence order, before any newer one (docs/design.md, "Acknowledgements").
    /// @param s an open session, registered or not.
    /// @return `ok`; `unknown_session`; `not_supported` without `router_options::inbox`.
    /// @throws std::bad_alloc when memory runs out.
    status enable_acks(session_id s) {
        session_slot* slot = find_slot(s);
        if (!slot) return status::unknown_session;
        if (!inbox_) return status::not_supported;
        if (slot->acks) return status::ok;
        slot->acks = true;
        if (slot->user != npos) refresh_direct(slot->user);
        if (slot->user != npos) replay(s.index(), false);
        settle();
        return status::ok;
    }

    /// @brief The transport of `s` has room again (its output fell to a quarter of its bound):
    /// an at-most-once replay that stopped at a full output goes on, and while it has not ended,
    /// new direct messages to the user are stored behind it, so they come after it, in order
    /// (docs/design.md, "Offline inbox and acknowledgements"). Adapters call it when a
    /// `deliver_ephemeral()` was refused and the output has drained; calling it at other times
    /// does nothing.
    /// @param s the session (ignored when not open).
    /// @throws std::bad_alloc when memory runs out.
    void output_drained(session_id s) {
        session_slot* slot = find_slot(s);
        if (!slot || !slot->replay_pending || !inbox_) return;
        if (slot->user == npos || users_slots_[slot->user].sessions != 1) {
            slot->replay_pending = false; // another session came: the rest waits for the next "only" one
            if (slot->user != npos) refresh_direct(slot->user);
            return;
        }
        replay(s.index(), true);
        settle();
    }

    /// @brief True when `s` is open with acknowledgements on.
    /// @param s the session.
    [[nodiscard]] bool acks_enabled(session_id s) const noexcept {
        const session_slot* slot = find_slot(s);
        return slot && slot->acks;
    }

    /// @brief Acknowledges every stored message of `s`'s user with sequence number ≤ `seq`
    /// (cumulative); they are removed for all of the user's sessions. Again is a no-op.
    /// @param s a registered session (any of the user's).
    /// @param seq 1 or more.
    /// @return `ok`; `unknown_session`; `not_supported` without an inbox; `not_registered`;
    ///         `ack_invalid` when `seq` is 0 or above the highest sequence number given to the
    ///         user — checked in this order.
    status acknowledge(session_id s, std::uint64_t seq) {
        const session_slot* slot = find_slot(s);
        if (!slot) return status::unknown_session;
        if (!inbox_) return status::not_supported;
        if (slot->user == npos) return status::not_registered;
        const std::uint32_t u = slot->user;
        const status st = inbox_->acknowledge(users_slots_[u].id, seq);
        if (st != status::ok) return st;
        cold_[u].acked_through = std::max(cold_[u].acked_through, seq);
        const std::uint64_t highest = inbox_->highest_seq(users_slots_[u].id);
        for (std::uint32_t si = users_slots_[u].head; si != npos; si = sessions_[si].next_of_user)
            if (sessions_[si].acks && sessions_[si].sent_through < highest) top_up(si, true);
        settle();
        return st;
    }

    /// @brief Input was received from session `s` at `now_ms` (a line, or the end of input): the
    /// last-seen time its user gets when this is its last session (docs/design.md, "Time").
    /// @param s the session (ignored when not open).
    /// @param now_ms Unix time in ms, from the host's clock, taken when the input was read.
    /// For a remote session, `now_ms` is the last input of the real session on its node (the
    /// backplane calls it before `close_session()`), and the router's time is left as it is.
    void touch(session_id s, std::int64_t now_ms) noexcept {
        session_slot* slot = find_slot(s);
        if (!slot || !slot->remote) now_ = now_ms;
        if (slot) slot->last_input = now_ms;
    }

    /// @brief Advances the router's time and runs what is due: offline events at the end of
    /// their grace period, and the inbox TTL. The core never reads a clock: the host calls this
    /// (the Asio adapter every `tcp_server_options::tick_interval`), and a timed event takes
    /// effect at the first tick at or after its due time.
    /// @param now_ms Unix time in ms, from the host's clock.
    /// @throws std::bad_alloc when memory runs out.
    void tick(std::int64_t now_ms) {
        now_ = now_ms;
        while (!grace_.empty() && grace_.front().due <= now_ms) {
            const grace_entry g = grace_.front();
            grace_.pop_front();
            if (grace_valid(g)) {
                cold_[g.user].grace_due = -1;
                --grace_pending_;
                announce_offline(g.user);
                link_offline(g.user);
            }
        }
        if (inbox_) inbox_->expire(now_ms);
        settle();
    }

    /// @brief The router's time: the last value given to `tick()` or `touch()` (Unix ms; 0 before).
    [[nodiscard]] std::int64_t now() const noexcept { return now_; }

    /// @brief Number of sessions holding `user` (0 when offline).
    /// @param user a folded name.
    [[nodiscard]] std::size_t sessions_of(const name& user) const noexcept {
        const std::uint32_t u = find_user(user);
        return u == npos ? 0 : users_slots_[u].sessions;
    }

    // ---- rooms ------------------------------------------------------------------------------

    /// @brief Adds session `s` to `room`, creating the room on first join. Each member already
    /// there gets `member_joined{room, user}`; the joining session does not.
    /// @param s the joining session; must hold a user name.
    /// @param room the room's name, any case (validated and folded here).
    /// @return `ok`; `unknown_session`; `not_registered`; `invalid_name`; `already_member`;
    ///         `too_many_rooms` when `s` is in `router_options::max_rooms_per_session` rooms;
    ///         `room_full` when the room has `router_options::max_room_members` members —
    ///         checked in this order; `depth_exceeded`.
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] status join(session_id s, std::string_view room) {
        if (const status st = check_registered(s); st != status::ok) return st;
        const auto n = name::parse(room);
        return n ? join(s, *n) : status::invalid_name;
    }

    /// @brief As above, with a folded room name. A remote session (`open_remote_session()`)
    /// never joins: `not_supported` (its node fans room events out to it).
    [[nodiscard]] status join(session_id s, const name& room) {
        if (const status st = check_registered(s); st != status::ok) return st;
        if (room.empty()) return status::invalid_name;
        if (sessions_[s.index()].remote) return status::not_supported;
        if (call_depth() >= max_depth_) return status::depth_exceeded;
        std::uint32_t ri;
        const std::uint32_t found = find_room(room);
        if (found != npos && membership_of(sessions_[s.index()], found) != npos) return status::already_member;
        if (sessions_[s.index()].rooms.size() >= max_rooms_per_session_) {
            ++counters_.too_many_rooms;
            return status::too_many_rooms;
        }
        if (found != npos) {
            ri = found;
            if (rooms_[ri].members.size() >= max_room_members_) {
                ++counters_.room_full;
                return status::room_full;
            }
        } else {
            ri = allocate_room(room);
            if (dir_) dir_->room_active(room, true);
        }
        ++layout_epoch_; // fan-outs in progress re-read the member list (it may move)
        session_slot& slot = sessions_[s.index()];
        room_slot& r = rooms_[ri];
        r.members.push_back(member::make(slot.t, s.index(), slot.rooms.size(), slot.format));
        ++r.per_format[slot.format];
        slot.rooms.push_back(membership{ri, static_cast<std::uint32_t>(r.members.size() - 1)});
        // Tell the others last, when the membership is complete (their callbacks see it).
        std::optional<name> joined; // for the directory (a callback may move the user slot)
        if (dir_) joined = users_slots_[slot.user].id;
        if (found != npos)
            (void)fan_out(ri, event{event_kind::member_joined, room.view(), user_name(s.index()), {}},
                          s.index());
        if (joined) dir_->room_event(room, event{event_kind::member_joined, room.view(), joined->view(), {}});
        if (found != npos) settle();
        return status::ok;
    }

    /// @brief Removes session `s` from `room`; each remaining member gets `member_left`. The room
    /// is deleted when its last member leaves.
    /// @param s the leaving session.
    /// @param room the room's name, any case (validated and folded here).
    /// @return `ok`; `unknown_session`; `not_registered`; `invalid_name`; `not_member` (also for
    ///         a room that does not exist); `depth_exceeded`.
    status leave(session_id s, std::string_view room) {
        if (const status st = check_registered(s); st != status::ok) return st;
        const auto n = name::parse(room);
        return n ? leave(s, *n) : status::invalid_name;
    }

    /// @brief As above, with a folded room name.
    status leave(session_id s, const name& room) {
        if (const status st = check_registered(s); st != status::ok) return st;
        if (call_depth() >= max_depth_) return status::depth_exceeded;
        const std::uint32_t ri = find_room(room);
        if (ri == npos) return status::not_member;
        const std::uint32_t j = membership_of(sessions_[s.index()], ri);
        if (j == npos) return status::not_member;
        remove_membership(s.index(), j, true);
        settle();
        return status::ok;
    }

    /// @brief Sends `text` from member `from` to the members of `room`: each gets
    /// `room_message{room, user = name of from, text}`, encoded once and shared.
    /// @param from the sending session; must hold a user name and be a member of `room`.
    /// @param room the room's name, any case (validated and folded here).
    /// @param text the message text; must meet the text contract (text.hpp); its length is not
    ///        bounded here (the host bounds what it forwards).
    /// @param scope `except_sender` (default) or `all_members`.
    /// @return `ok` with counts; `unknown_session`; `not_registered`; `invalid_name`;
    ///         `invalid_text` when `text` breaks the text contract or a recipient's format refuses
    ///         it (nothing delivered to anyone); `depth_exceeded`; `not_member` (also for a room
    ///         that does not exist) — checked in this order.
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] route_result publish(session_id from, std::string_view room, std::string_view text,
                         fanout_scope scope = fanout_scope::except_sender) {
        if (const status st = check_registered(from); st != status::ok) return {st};
        const auto n = name::parse(room);
        if (!n) return {status::invalid_name};
        return publish(from, *n, text, scope);
    }

    /// @brief As above, with a folded room name.
    [[nodiscard]] route_result publish(session_id from, const name& room, std::string_view text,
                                       fanout_scope scope = fanout_scope::except_sender) {
        if (const status st = check_registered(from); st != status::ok) return {st};
        if (!is_message_text(text)) return {status::invalid_text};
        if (call_depth() >= max_depth_) return {status::depth_exceeded};
        const std::uint32_t ri = find_room(room);
        if (ri == npos) return {status::not_member};
        const session_slot& slot = sessions_[from.index()];
        if (membership_of(slot, ri) == npos) return {status::not_member};
        std::optional<name> sender; // for the directory (a callback may move the user slot)
        if (dir_) sender = users_slots_[slot.user].id;
        route_result r = fan_out(ri, event{event_kind::room_message, room.view(), users_slots_[slot.user].id.view(), text},
                                 scope == fanout_scope::except_sender ? from.index() : npos);
        if (r.ok()) {
            ++counters_.routed;
            if (sender) dir_->room_event(room, event{event_kind::room_message, room.view(), sender->view(), text});
        }
        settle();
        return r;
    }

    /// @brief Fans out a room event that started on another node of the cluster (received by the
    /// backplane) to this router's members of `room`, encoded once per format as `publish()` does.
    /// Does not call `directory::room_event()`. Trusts nothing: names and text are checked.
    /// @param room the folded room name (the event's own `room` is ignored).
    /// @param e a `room_message` (`user` the sender, `text`), `member_joined` or `member_left`
    ///        (`user` the member); views read during the call only.
    /// @return `ok` with counts (0 when no local session is a member); `invalid_name` when
    ///         `room` is empty or `e.user` is not a valid name; `not_supported` for another kind;
    ///         `invalid_text` (a `room_message` text that breaks the text contract, or a format
    ///         that refuses it: nobody gets it); `depth_exceeded`.
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] route_result relay(const name& room, const event& e) {
        const auto user = name::parse(e.user);
        if (room.empty() || !user) return {status::invalid_name};
        const bool message = e.kind == event_kind::room_message;
        if (!message && e.kind != event_kind::member_joined && e.kind != event_kind::member_left)
            return {status::not_supported};
        if (message && !is_message_text(e.text)) return {status::invalid_text};
        if (call_depth() >= max_depth_) return {status::depth_exceeded};
        const std::uint32_t ri = find_room(room);
        if (ri == npos) return {};
        route_result r = fan_out(ri, event{e.kind, room.view(), user->view(), message ? e.text : std::string_view{}}, npos);
        if (r.ok() && message) ++counters_.routed;
        settle();
        return r;
    }

    /// @brief Hands a direct message that another node routed to this router's session `to`
    /// (the backplane's directed records) to that session's user as `route()` would hand a local
    /// sender's: with acknowledgements on, it is stored first (`inbox_store::append()`, the
    /// cluster inbox) and given as `acked_message` to the user's ack-on sessions once the store
    /// has committed it; else `to` gets it as `direct_message`. The other node answered its
    /// sender already, so nobody is answered here. Under `session_policy::multi` the other node
    /// sends one record per session of the user: only the record for the user's first ack-on
    /// session stores the message (which reaches all of them), those for its other ack-on
    /// sessions are dropped (`ok`, nothing delivered). Trusts nothing: the name and text are checked.
    /// When the other node also routed the message to other nodes holding sessions of the user,
    /// it comes with a `key`: it is then stored with `inbox_store::append_once()`, so that every
    /// node gets the one number the shared store gave it (docs/cluster.md, "One user on several
    /// nodes").
    /// @param to a local (not remote) registered session.
    /// @param from the sender's name (validated and folded here).
    /// @param text the message text (text.hpp contract).
    /// @param key the message's identity across nodes; empty: the user's other sessions are not
    ///        on other nodes, as the sending node saw it.
    /// @param stored when the result is `ok` with `pending` (the store commits later), called
    ///        once with the store's outcome after the user's ack-on sessions here were handed the
    ///        message (or with the failure: then nobody was), from the store's completion; never
    ///        from inside this call, and never for another result. The backplane confirms a
    ///        `send()` to the sending node with it (docs/cluster.md, "Confirmed sends"). It must
    ///        not call back into the router. May be empty.
    /// @return `ok` (`seq` when stored, `pending` while the store commits; for a session
    ///         without acks, no counts: the delivery is counted in `counters()`);
    ///         `unknown_session` (closed meanwhile, or a remote session); `not_registered`;
    ///         `invalid_name`; `invalid_text`; `depth_exceeded`; the store's refusal
    ///         (`inbox_full`, `store_busy`, `cluster_unavailable`, ...: the message is lost, as
    ///         a cross-node message to a session whose node fails; docs/cluster.md, "Limits").
    /// @throws std::bad_alloc when memory runs out.
    [[nodiscard]] route_result deliver_remote(session_id to, std::string_view from, std::string_view text,
                                              const message_key& key = {}, inbox_store::durable_handler stored = {}) {
        const session_slot* slot = find_slot(to);
        if (!slot || slot->remote) return {status::unknown_session};
        if (slot->user == npos) return {status::not_registered};
        const auto sender = name::parse(from);
        if (!sender) return {status::invalid_name};
        if (!is_message_text(text)) return {status::invalid_text};
        if (call_depth() >= max_depth_) return {status::depth_exceeded};
        const std::uint32_t u = slot->user;
        if (!slot->acks || !inbox_) {
            const status sent = notify_checked(to, event{event_kind::direct_message, {}, sender->view(), text});
            if (sent != status::ok) return {sent};
            ++counters_.routed;
            return {}; // the delivery is counted in counters() (send())
        }
        std::uint32_t first_acks = users_slots_[u].head;
        while (first_acks != npos && !sessions_[first_acks].acks) first_acks = sessions_[first_acks].next_of_user;
        if (first_acks != to.index()) return {}; // the record for the first ack-on session stores it
        const name user = users_slots_[u].id;
        std::uint64_t ticket = 0;
        append_result a;
        if (key.empty()) a = store_append(user, sender->view(), text, nullptr, ticket);
        else a = store_append_once(user, key, sender->view(), text, ticket);
        if (a.code != status::ok) {
            if (a.code == status::inbox_full) ++counters_.inbox_full;
            return {a.code};
        }
        ++counters_.routed;
        route_result r;
        r.seq = a.seq;
        if (a.seq != 0) cold_[u].last_seq = a.seq;
        if (ticket != 0) {
            wait_for_store(ticket, session_id{}, *sender, user, nullptr, r, false, true); // top_up() at commit
            if (stored) remote_stored_.emplace(ticket, std::move(stored));
        } else {
            for (std::uint32_t si = users_slots_[u].head; si != npos; si = sessions_[si].next_of_user)
                if (sessions_[si].acks) top_up(si, false);
        }
        settle();
        return r;
    }

    /// @brief True when `s` is open and a member of `room`.
    /// @param s the session.
    /// @param room the folded room name (`name::parse`).
    [[nodiscard]] bool is_member(session_id s, const name& room) const noexcept {
        const session_slot* slot = find_slot(s);
        if (!slot) return false;
        const std::uint32_t ri = find_room(room);
        return ri != npos && membership_of(*slot, ri) != npos;
    }

    /// @brief Number of members of `room` (0 when it does not exist).
    /// @param room the folded room name (`name::parse`).
    [[nodiscard]] std::size_t room_size(const name& room) const noexcept {
        const std::uint32_t ri = find_room(room);
        return ri == npos ? 0 : rooms_[ri].members.size();
    }

    /// @brief Number of rooms `s` is in (0 when `s` is not open).
    /// @param s the session.
    [[nodiscard]] std::size_t rooms_of(session_id s) const noexcept {
        const session_slot* slot = find_slot(s);
        return slot ? slot->rooms.size() : 0;
    }

    // ---- sizes and metrics ------------------------------------------------------------------

    /// @brief Open sessions.
    [[nodiscard]] std::size_t session_count() const noexcept { return open_sessions_; }
    /// @brief Registered user names.
    [[nodiscard]] std::size_t user_count() const noexcept { return online_users_; }
    /// @brief Rooms with at least one member.
    [[nodiscard]] std::size_t room_count() const noexcept { return room_index_.size(); }
    /// @brief Running totals (see `router_counters`).
    [[nodiscard]] const router_counters& counters() const noexcept { return counters_; }

private:
    static constexpr std::uint32_t npos = std::numeric_limits<std::uint32_t>::max();

    struct membership {          // one room of a session
        std::uint32_t room;      // index into rooms_
        std::uint32_t in_room;   // index into that room's members
    };
    struct member { // one session of a room; transport and format cached for fan-out (16 bytes)
        static constexpr std::uint32_t max_in_session = (1u << 24) - 1;
        transport* t;
        std::uint32_t session; // index into sessions_
        std::uint32_t packed;  // index into that session's rooms (low 24 bits) | format << 24

        static member make(transport* t, std::uint32_t session, std::size_t in_session, std::uint8_t format) noexcept {
            return member{t, session, static_cast<std::uint32_t>(in_session) | std::uint32_t{format} << 24};
        }
        [[nodiscard]] std::uint32_t in_session() const noexcept { return packed & max_in_session; }
        [[nodiscard]] std::uint8_t format() const noexcept { return static_cast<std::uint8_t>(packed >> 24); }
        void set_in_session(std::size_t j) noexcept {
            packed = (packed & ~max_in_session) | static_cast<std::uint32_t>(j);
        }
    };
    struct frozen_target {   // a recipient left to a frozen fan-out
        transport* t;
        std::uint8_t format;
    };
    struct typing_note {          // a typing start not yet followed by a stop or a message
        name user;                // the recipient (by name: its user slot may be forgotten and reused)
        std::int64_t at;          // when (router time)
    };
    static constexpr std::size_t max_typing_notes = 32; // per session; the oldest goes first
    struct session_slot {
        transport* t = nullptr; // null while the slot is free
        std::uint32_t user = npos; // user slot while registered
        std::uint32_t next_of_user = npos; // the user's next session (its list starts at user_slot::head)
        std::uint32_t generation = 1;
        std::uint32_t next_free = npos;
        std::uint8_t format = 0; // index into formats_
        bool closing = false; // inside close_session(): closed for every other call
        bool acks = false;    // acknowledgements on (enable_acks())
        bool retired = false; // replaced (session_policy::replace): closed for every call but
                              // close_session(), while its transport flushes `bye replaced`
        bool remote = false;  // a session of another node (open_remote_session())
        bool claiming = false; // register_name() returned pending (claims_)
        bool replay_pending = false; // at-most-once replay stopped at a full output: the rest
                                     // follows output_drained(); new messages queue behind it
                                     // (beside the other flags: no padding of its own)
        std::int64_t last_input = -1; // touch()
        std::uint64_t sent_through = 0; // acks on: the highest seq handed to this session
        std::vector<membership> rooms;
        // What few sessions use (watches, typing indicators), allocated on first use: an idle
        // session holds one null pointer instead of two empty vectors (48 bytes).
        /// What few sessions use (watches, typing indicators), allocated on first use.
        struct extras_type {
            std::vector<std::uint32_t> watching; ///< user slots this session watches
            std::vector<typing_note> typing;     ///< typing indicators this session started
        };
        std::unique_ptr<extras_type> extras;
        // True when a typing indicator of this session is on (a message to its target ends it).
        [[nodiscard]] bool typing_on() const noexcept { return extras && !extras->typing.empty(); }
        // The extras, made now if the session had none.
        extras_type& extra() {
            if (!extras) extras = std::make_unique<extras_type>();
            return *extras;
        }
    };
    // The payload of each format among one call's recipients (`max_formats` at most). Nearly
    // every call has one format: it is kept inline, the others in an array made on demand.
    class format_payloads {
    public:
        payload& operator[](std::uint8_t f) {
            if (first_format_ == f || first_format_ == none) {
                first_format_ = f;
                return first_;
            }
            if (!rest_) rest_ = std::make_unique<std::array<payload, max_formats>>();
            return (*rest_)[f];
        }
        // Calls fn(format, payload) for each non-empty one.
        template <class Fn>
        void for_each(Fn&& fn) {
            if (first_format_ != none && !first_.empty()) fn(first_format_, first_);
            if (rest_)
                for (std::uint8_t f = 0; f < max_formats; ++f)
                    if (!(*rest_)[f].empty()) fn(f, (*rest_)[f]);
        }

    private:
        static constexpr std::uint8_t none = 0xff;
        payload first_;
        std::uint8_t first_format_ = none;
        std::unique_ptr<std::array<payload, max_formats>> rest_;
    };
    struct sent_entry {           // one client id of send() (de-duplication window)
        std::uint64_t key;
        std::int64_t at;
        std::uint64_t seq;
        bool queued;
        bool pending = false;     // a durable store has not yet committed it
    };
    struct sent_window {
        std::vector<sent_entry> entries; // a ring of at most dedup_window_ entries
        std::size_t next = 0;
    };
    // A user the router knows: online (sessions > 0), or offline and remembered for its last-seen
    // time, or watched. The name first: a lookup that compares it finds the rest in its line.
    // The first cache line holds all that route() reads for a user with one plain session: the
    // name it compares, and that session's transport and format (`direct`), so the v1 lookup
    // touches the index and this line, never the session slot.
    struct alignas(64) user_slot {
        name id;                        // 41 bytes
        std::uint8_t direct_format = 0;
        bool announced = false;         // last announced presence: online
        bool in_offline_list = false;
        std::uint32_t head = npos;      // first session; npos while offline
        transport* direct = nullptr;    // one session, acks off, no replay pending: its transport
        std::uint32_t sessions = 0;
        std::uint32_t next_free = npos;
    };
    static_assert(sizeof(user_slot) == 64, "a user slot is one cache line");
    // The rest of a user record, in cold_ at the same index: what presence, acks and the
    // de-duplication window need, apart from the line route() reads.
    struct user_cold {
        std::int64_t last_seen = -1;
        std::int64_t grace_due = -1;    // an offline event waits for this time
        std::uint64_t acked_through = 0; // the highest seq acknowledged (for the ack window)
        std::uint64_t last_seq = 0;     // the last seq the store gave a message stored through this
                                        // router (a forecast of the next; 0: ask the store)
        std::uint32_t uncommitted = 0;  // its messages a store that commits later has not yet
        std::uint64_t committed_through = 0; // reported on, and the seq below the first of them
        std::uint32_t prev_offline = npos, next_offline = npos; // the forgettable list
        std::vector<std::uint32_t> watchers; // sessions watching this user
        std::unique_ptr<sent_window> sent;
    };
    struct grace_entry {
        std::uint32_t user;
        name id;
        std::int64_t due;
    };
    struct room_slot {
        name id;
        std::vector<member> members;
        std::array<std::uint32_t, max_formats> per_format{}; // members of each format
        std::uint32_t next_free = npos;
    };

    // The index of `f` in formats_, adding it on first use.
    std::uint8_t format_index(const event_encoder& f) {
        for (std::uint32_t i = 0; i < format_count_; ++i)
            if (formats_[i] == &f) return static_cast<std::uint8_t>(i);
        if (format_count_ == max_formats)
            throw std::length_error("switchboard::router: more than max_formats distinct formats");
        formats_[format_count_] = &f;
        return static_cast<std::uint8_t>(format_count_++);
    }

    session_slot* find_slot(session_id s) noexcept {
        return const_cast<session_slot*>(static_cast<const router*>(this)->find_slot(s));
    }
    std::uint32_t find_user(const name& n) const noexcept {
        return users_.find(detail::flat_index::fold(n.hash()),
                           [&](std::uint32_t v) { return users_slots_[v].id == n; });
    }
    std::string_view user_name(std::uint32_t si) const noexcept { return users_slots_[sessions_[si].user].id.view(); }
    std::uint32_t find_room(const name& n) const noexcept {
        return room_index_.find(detail::flat_index::fold(n.hash()),
                                [&](std::uint32_t v) { return rooms_[v].id == n; });
    }

    const session_slot* find_slot(session_id s) const noexcept {
        const session_slot* slot = find_live_slot(s);
        return slot && !slot->retired ? slot : nullptr;
    }
    // As find_slot(), and also a retired session: what was queued for it still goes out, and
    // close_session() releases it.
    const session_slot* find_live_slot(session_id s) const noexcept {
        if (s.index() >= sessions_.size()) return nullptr;
        const session_slot& slot = sessions_[s.index()];
        return slot.t && !slot.closing && slot.generation == s.generation() ? &slot : nullptr;
    }
    session_slot* find_live_slot(session_id s) noexcept {
        return const_cast<session_slot*>(static_cast<const router*>(this)->find_live_slot(s));
    }

    status check_registered(session_id s) const noexcept {
        const session_slot* slot = find_slot(s);
        if (!slot) return status::unknown_session;
        return slot->user != npos ? status::ok : status::not_registered;
    }

    static std::uint32_t membership_of(const session_slot& s, std::uint32_t room) noexcept {
        for (std::size_t j = 0; j < s.rooms.size(); ++j)
            if (s.rooms[j].room == room) return static_cast<std::uint32_t>(j);
        return npos;
    }

    std::uint32_t allocate_room(const name& id) {
        std::uint32_t ri;
        if (free_room_ != npos) {
            ri = free_room_;
            free_room_ = rooms_[ri].next_free;
        } else {
            ri = static_cast<std::uint32_t>(rooms_.size());
            rooms_.emplace_back();
        }
        rooms_[ri].id = id;
        rooms_[ri].next_free = npos;
        room_index_.insert(detail::flat_index::fold(id.hash()), ri);
        return ri;
    }

    // Removes membership j of session si (swap-remove on both sides, fixing back-pointers), tells
    // the remaining members, and deletes the room when it becomes empty.
    void remove_membership(std::uint32_t si, std::size_t j, bool notify) {
        if (!frames_.empty()) freeze_fanouts(); // a fan-out in progress must not see the swap
        const membership m = sessions_[si].rooms[j];
        room_slot& r = rooms_[m.room];
        const std::size_t last_member = r.members.size() - 1;
        if (m.in_room != last_member) {
            r.members[m.in_room] = r.members[last_member];
            const member& moved = r.members[m.in_room];
            sessions_[moved.session].rooms[moved.in_session()].in_room = m.in_room;
        }
        --r.per_format[sessions_[si].format];
        r.members.pop_back();
        std::vector<membership>& mine = sessions_[si].rooms;
        const std::size_t last_room = mine.size() - 1;
        if (j != last_room) {
            mine[j] = mine[last_room];
            rooms_[mine[j].room].members[mine[j].in_room].set_in_session(j);
        }
        mine.pop_back();
        if (dir_) { // the other nodes hear it; a room with no local member left is given up
            const name room_name = r.id, user = users_slots_[sessions_[si].user].id;
            if (r.members.empty()) {
                if (notify) dir_->room_event(room_name, event{event_kind::member_left, room_name.view(), user.view(), {}});
                dir_->room_active(room_name, false);
            } else if (notify) {
                (void)fan_out(m.room, event{event_kind::member_left, room_name.view(), user.view(), {}}, npos);
                dir_->room_event(room_name, event{event_kind::member_left, room_name.view(), user.view(), {}});
                return;
            }
        }
        if (r.members.empty()) {
            room_index_.erase(detail::flat_index::fold(r.id.hash()),
                              [&](std::uint32_t v) { return rooms_[v].id == r.id; });
            r.members = std::vector<member>{};
            r.per_format = {};
            r.id = name{};
            r.next_free = free_room_;
            free_room_ = m.room;
        } else if (notify) {
            (void)fan_out(m.room, event{event_kind::member_left, r.id.view(), user_name(si), {}}, npos);
        }
    }

    // ---- users, presence, inbox (docs/design.md, "Several sessions per user", "Presence",
    // "Offline inbox and acknowledgements") ---------------------------------------------------

    std::uint32_t add_user(const name& id) {
        std::uint32_t u;
        if (free_user_ != npos) {
            u = free_user_;
            free_user_ = users_slots_[u].next_free;
        } else {
            u = static_cast<std::uint32_t>(users_slots_.size());
            users_slots_.emplace_back();
            cold_.emplace_back();
        }
        user_slot& rec = users_slots_[u];
        rec.id = id;
        rec.next_free = npos;
        users_.insert(detail::flat_index::fold(id.hash()), u);
        for (std::size_t i = waiters_head_; i < waiters_.size(); ++i) { // stored for it before it had a record
            const store_waiter& w = waiters_[i];
            if (w.appended && w.seq != 0 && w.to == id && cold_[u].uncommitted++ == 0) cold_[u].committed_through = w.seq - 1;
        }
        return u;
    }

    void remove_user(std::uint32_t u) {
        drop_window(u);
        user_slot& rec = users_slots_[u];
        users_.erase(detail::flat_index::fold(rec.id.hash()), [&](std::uint32_t v) { return v == u; });
        rec = user_slot{};
        cold_[u] = user_cold{};
        rec.next_free = free_user_;
        free_user_ = u;
    }

    // The forgettable list: offline users with no watcher and no pending offline event, oldest
    // first. Past max_offline_ the oldest is forgotten (its last-seen time and sent window).
    void link_offline(std::uint32_t u) {
        user_slot& rec = users_slots_[u];
        if (rec.in_offline_list || rec.sessions != 0 || !cold_[u].watchers.empty() || cold_[u].grace_due != -1) return;
        rec.in_offline_list = true;
        cold_[u].prev_offline = offline_tail_;
        cold_[u].next_offline = npos;
        if (offline_tail_ != npos) cold_[offline_tail_].next_offline = u;
        else offline_head_ = u;
        offline_tail_ = u;
        ++offline_count_;
        while (offline_count_ > max_offline_ && offline_head_ != npos) {
            const std::uint32_t oldest = offline_head_;
            unlink_offline(oldest);
            remove_user(oldest);
        }
    }

    void unlink_offline(std::uint32_t u) noexcept {
        user_slot& rec = users_slots_[u];
        if (!rec.in_offline_list) return;
        if (cold_[u].prev_offline != npos) cold_[cold_[u].prev_offline].next_offline = cold_[u].next_offline;
        else offline_head_ = cold_[u].next_offline;
        if (cold_[u].next_offline != npos) cold_[cold_[u].next_offline].prev_offline = cold_[u].prev_offline;
        else offline_tail_ = cold_[u].prev_offline;
        cold_[u].prev_offline = cold_[u].next_offline = npos;
        rec.in_offline_list = false;
        --offline_count_;
    }

    // ---- names (register_name(), the cluster's claims) -----------------------------------------

    // What this router's own state says of one more session for `user` under the policy.
    status local_verdict(const name& user) const noexcept {
        const std::uint32_t u = find_user(user);
        if (u == npos || users_slots_[u].sessions == 0) return status::ok;
        if (policy_ == session_policy::exclusive) return status::name_taken;
        if (policy_ == session_policy::multi && users_slots_[u].sessions >= max_sessions_)
            return status::too_many_sessions;
        return status::ok;
    }

    // Takes `user` from every session holding it. A local one hears why, is released like a
    // disconnect and closed after its output (a remote one is closed quietly: its own node is
    // told by the directory); the user never goes offline, so watchers see nothing.
    void take_over_all(const name& user) {
        const std::uint32_t u = find_user(user);
        if (u == npos) return;
        while (users_slots_[u].sessions != 0) {
            const std::uint32_t old = users_slots_[u].head;
            if (!sessions_[old].remote)
                defer_event(old, event{event_kind::session_replaced, {}, user.view(), {}}, false);
            defer(session_id::make(old, sessions_[old].generation), payload{}, call_depth(), true,
                  close_mode::after_flush);
            release(old, false);
            // Input the old session had already read (another thread, a pipelined line) must
            // not take the name back: it is closed for every call but close_session().
            sessions_[old].retired = true;
        }
    }

    // Gives session s the name `user`; `replay_inbox`: a local session, which gets the stored
    // messages (a remote one gets them on its own node).
    void attach_name(session_id s, const name& user, bool replay_inbox) {
        std::uint32_t u = find_user(user);
        if (u == npos) u = add_user(user);
        user_slot& rec = users_slots_[u];
        const bool first = rec.sessions == 0;
        session_slot* slot = &sessions_[s.index()];
        slot->user = u;
        slot->next_of_user = rec.head;
        rec.head = s.index();
        ++rec.sessions;
        if (first) {
            ++online_users_;
            unlink_offline(u);
        }
        // The store knows the user and the replay is queued before anyone hears of the session
        // (the presence handler may message it: that comes after the replay).
        if (inbox_ && replay_inbox) {
            // In a cluster, another node may have recorded this user's sends since this router's
            // de-duplication window was filled: unless another local session of the user keeps
            // it in step, it is dropped and the next send() reloads it from the store (which
            // loaded the user for this registration).
            if (dir_ && !other_local_session(u, s.index())) drop_window(u);
            inbox_->remember(user);
            replay(s.index(), first);
        }
        refresh_direct(u);
        if (first) came_online(u);
    }

    bool other_local_session(std::uint32_t u, std::uint32_t except) const noexcept {
        for (std::uint32_t si = users_slots_[u].head; si != npos; si = sessions_[si].next_of_user)
            if (si != except && !sessions_[si].remote) return true;
        return false;
    }

    // Keeps user_slot::direct in step with the user's sessions (see user_slot).
    void refresh_direct(std::uint32_t u) noexcept {
        user_slot& r = users_slots_[u];
        r.direct = nullptr;
        if (r.sessions != 1) return;
        const session_slot& s = sessions_[r.head];
        if (s.acks || s.replay_pending) return;
        r.direct = s.t;
        r.direct_format = s.format;
    }

    bool grace_valid(const grace_entry& g) const noexcept {
        return g.user < users_slots_.size() && cold_[g.user].grace_due == g.due && users_slots_[g.user].id == g.id;
    }

    event presence_event(std::uint32_t u) const noexcept {
        const user_slot& rec = users_slots_[u];
        event e{rec.announced ? event_kind::presence_online : event_kind::presence_offline, {}, rec.id.view(), {}};
        if (!rec.announced) e.last_seen = cold_[u].last_seen;
        return e;
    }

    // The first session of u registered (u was offline).
    void came_online(std::uint32_t u) {
        user_slot& rec = users_slots_[u];
        if (cold_[u].grace_due != -1) { // back within the grace period: no event either way
            cold_[u].grace_due = -1;
            --grace_pending_;
            return;
        }
        if (rec.announced) return;
        rec.announced = true;
        announce(u);
    }

    // The last session of u closed (not a replace takeover).
    void went_offline(std::uint32_t u) {
        user_slot& rec = users_slots_[u];
        if (grace_ms_ > 0 && rec.announced) {
            cold_[u].grace_due = now_ + grace_ms_;
            ++grace_pending_;
            // Entries of cancelled grace periods wait for their time; drop them when they dominate
            // (a name reconnecting in a loop would otherwise add one per reconnect).
            if (grace_.size() > 2 * grace_pending_ + 1024)
                grace_.erase(std::remove_if(grace_.begin(), grace_.end(),
                                            [this](const grace_entry& g) { return !grace_valid(g); }),
                             grace_.end());
            grace_.push_back(grace_entry{u, rec.id, cold_[u].grace_due});
            return;
        }
        if (rec.announced) announce_offline(u);
        link_offline(u);
    }

    void announce_offline(std::uint32_t u) {
        users_slots_[u].announced = false;
        announce(u);
    }

    // Tells u's watchers its announced state, then the host.
    void announce(std::uint32_t u) {
        const event e = presence_event(u);
        tell(cold_[u].watchers, e, false);
        counters_.presence_events += cold_[u].watchers.size();
        if (on_presence_) {
            const callback_scope scope(*this, call_depth());
            const name id = users_slots_[u].id; // the handler may cause the slot to move
            on_presence_(id.view(), e.kind == event_kind::presence_online, e.last_seen);
        }
    }

    void drop_watcher(std::uint32_t u, std::uint32_t si, bool may_forget = true) {
        std::vector<std::uint32_t>& w = cold_[u].watchers;
        const auto it = std::find(w.begin(), w.end(), si);
        if (it != w.end()) {
            *it = w.back();
            w.pop_back();
        }
        if (w.empty()) {
            w.shrink_to_fit();
            if (may_forget) link_offline(u);
        }
    }

    void forget_typing(std::uint32_t si, const name& to) noexcept {
        if (!sessions_[si].extras) return;
        std::vector<typing_note>& notes = sessions_[si].extras->typing;
        notes.erase(std::remove_if(notes.begin(), notes.end(), [&](const typing_note& n) { return n.user == to; }),
                    notes.end());
    }

    // Releases what session si holds, as a disconnect does: typing indicators it left on (they
    // get a stop), its watches, its rooms (members hear member_left), its user name. With
    // `may_go_offline` false (a replace takeover) its user is not announced offline.
    void release(std::uint32_t si, bool may_go_offline) {
        const std::uint32_t u = sessions_[si].user;
        bool gone = false;
        if (u != npos) { // first, so that nothing the members below cause reaches this session
            std::uint32_t* link = &users_slots_[u].head;
            while (*link != si) link = &sessions_[*link].next_of_user;
            *link = sessions_[si].next_of_user;
            sessions_[si].next_of_user = npos;
            gone = --users_slots_[u].sessions == 0;
            refresh_direct(u);
            if (dir_ && !sessions_[si].remote)
                dir_->released(users_slots_[u].id, session_id::make(si, sessions_[si].generation),
                               sessions_[si].last_input);
            if (gone) {
                --online_users_;
                cold_[u].last_seen = sessions_[si].last_input >= 0 ? sessions_[si].last_input : now_;
            }
            std::vector<typing_note> notes;
            if (sessions_[si].extras) {
                notes = std::move(sessions_[si].extras->typing);
                sessions_[si].extras->typing = {};
            }
            for (const typing_note& n : notes) {
                const std::uint32_t target = now_ - n.at < typing_timeout_ms_ ? find_user(n.user) : npos;
                if (target != npos && users_slots_[target].sessions != 0)
                    tell_sessions(target, event{event_kind::typing_stopped, {}, users_slots_[u].id.view(), {}});
            }
        }
        while (!sessions_[si].rooms.empty()) remove_membership(si, sessions_[si].rooms.size() - 1, true);
        sessions_[si].user = npos;
        // Its watches end before its own offline event (it would not receive it) but the watched
        // users become forgettable only after: one may be this session's own user, which must
        // have gone offline first; in a replace takeover it is only between two sessions.
        std::vector<std::uint32_t> watching;
        if (sessions_[si].extras) {
            watching = std::move(sessions_[si].extras->watching);
            sessions_[si].extras->watching = {};
        }
        for (const std::uint32_t w : watching) drop_watcher(w, si, false);
        if (gone && may_go_offline) went_offline(u);
        // Its own user (a self-watch) was handled by went_offline(), which may have forgotten it
        // already: its slot must not be touched again.
        for (const std::uint32_t w : watching)
            if (w != u && cold_[w].watchers.empty()) link_offline(w);
    }

    // Queues event e for each of `targets` (session indices), encoded once per format.
    void tell(const std::vector<std::uint32_t>& targets, const event& e, bool ephemeral) {
        std::array<payload, max_formats> bytes;
        const std::uint32_t d = call_depth();
        for (const std::uint32_t si : targets) {
            const std::uint8_t f = sessions_[si].format;
            if (bytes[f].empty()) bytes[f] = formats_[f]->encode_checked(e);
            if (bytes[f].empty()) continue; // the format does not carry this event
            pending_.push_back(pending{session_id::make(si, sessions_[si].generation), bytes[f], d,
                                       close_mode::after_flush, false, ephemeral});
        }
    }

    // Queues typing event e for each session of user u (ephemeral).
    void tell_sessions(std::uint32_t u, const event& e) {
        std::vector<std::uint32_t> targets;
        for (std::uint32_t si = users_slots_[u].head; si != npos; si = sessions_[si].next_of_user) targets.push_back(si);
        tell(targets, e, true);
    }

    void defer_event(std::uint32_t si, const event& e, bool ephemeral) {
        const payload bytes = formats_[sessions_[si].format]->encode_checked(e);
        if (bytes.empty()) return;
        pending_.push_back(pending{session_id::make(si, sessions_[si].generation), bytes, call_depth(),
                                   close_mode::after_flush, false, ephemeral});
    }

    // notify() for an event the router built, or whose names and text it checked: encoded
    // with encode_checked(). `s` must be open.
    status notify_checked(session_id s, const event& e) {
        const payload bytes = formats_[sessions_[s.index()].format]->encode_checked(e);
        if (bytes.empty()) return status::invalid_text;
        return send(s, bytes);
    }

    // Hands session si the stored messages of its user, queued behind the reply of the command
    // that caused it: when si has acks on, the unacknowledged ones as acked_message, kept until
    // acknowledged (top_up(): within the ack window); else, when si is the user's only session
    // (`only`), all of them as direct_message, each removed once the transport has queued it
    // (at-most-once: one the transport refuses stays stored for the next registration).
    void replay(std::uint32_t si, bool only) {
        if (sessions_[si].acks) {
            sessions_[si].sent_through = 0;
            top_up(si, true);
            return;
        }
        if (!only) return;
        if (sessions_[si].replay_pending) {
            sessions_[si].replay_pending = false;
            refresh_direct(sessions_[si].user);
        }
        const name user = users_slots_[sessions_[si].user].id;
        const std::uint32_t d = call_depth();
        inbox_->for_each(user, 0, [&](const stored_message_view& m) {
            const payload bytes =
                formats_[sessions_[si].format]->encode_checked(event{event_kind::direct_message, {}, m.from, m.text});
            pending p{session_id::make(si, sessions_[si].generation), bytes, d, close_mode::after_flush, false, false};
            p.ack_if_queued = m.seq;
            if (!bytes.empty()) pending_.push_back(std::move(p));
            ++counters_.replayed;
            return true;
        });
    }

    // Hands ack-on session si the stored messages above its sent_through, in seq order, while
    // fewer than ack_window_ are unacknowledged (from the first stored one).
    void top_up(std::uint32_t si, bool replaying) {
        session_slot& slot = sessions_[si];
        if (!slot.acks || slot.user == npos) return;
        const name user = users_slots_[slot.user].id;
        const std::uint64_t first = inbox_->first_seq(user);
        if (first == 0) { // nothing stored: everything given so far was acknowledged or expired
            slot.sent_through = std::max(slot.sent_through, inbox_->highest_seq(user));
            return;
        }
        if (slot.sent_through < first - 1) slot.sent_through = first - 1; // acknowledged or expired
        const std::uint64_t in_flight = slot.sent_through - (first - 1);
        if (in_flight >= ack_window_) return;
        std::uint64_t budget = ack_window_ - in_flight;
        const std::uint32_t d = call_depth();
        // Only what the store has committed (docs/design.md, "Durable outcomes").
        const user_cold& c = cold_[slot.user];
        const std::uint64_t limit = c.uncommitted == 0 ? ~std::uint64_t{0} : c.committed_through;
        inbox_->for_each(user, slot.sent_through, [&](const stored_message_view& m) {
            if (m.seq > limit) return false;
            event e{event_kind::acked_message, {}, m.from, m.text};
            e.seq = m.seq;
            const payload bytes = formats_[sessions_[si].format]->encode_checked(e);
            if (!bytes.empty())
                pending_.push_back(pending{session_id::make(si, sessions_[si].generation), bytes, d,
                                           close_mode::after_flush, false, false});
            sessions_[si].sent_through = m.seq;
            if (replaying) ++counters_.replayed;
            return --budget != 0;
        });
    }

    // route() to a user with no session: stored for a known user, else user-not-found.
    route_result route_offline(session_id from, const name& to, std::string_view text, std::uint32_t d,
                               const send_context* ctx) {
        if (inbox_) { // (the store answers user_not_found for a user it does not know: one look-up)
            std::uint64_t ticket = 0;
            const append_result a = store_append(to, user_name(from.index()), text, ctx, ticket);
            if (a.code == status::ok) {
                if (sessions_[from.index()].typing_on()) forget_typing(from.index(), to); // it ends it
                ++counters_.routed;
                ++counters_.queued;
                route_result r;
                r.queued = true;
                r.seq = a.seq;
                if (ticket != 0) wait_for_store(ticket, from, users_slots_[sessions_[from.index()].user].id, to, ctx, r, true, true);
                return r;
            }
            if (a.code == status::inbox_full) ++counters_.inbox_full;
            if (a.code != status::user_not_found) return {a.code};
        }
        ++counters_.user_not_found;
        if (on_user_not_found_) {
            // The handler may replace itself: the replacement is installed after the outermost
            // handler call returns (a nested one only records it).
            const bool outermost = !in_not_found_handler_;
            in_not_found_handler_ = true;
            {
                const callback_scope scope(*this, d);
                on_user_not_found_(from, to.view(), text);
            }
            if (outermost) {
                in_not_found_handler_ = false;
                if (replacement_handler_) {
                    on_user_not_found_ = std::move(*replacement_handler_);
                    replacement_handler_.reset();
                }
            }
            settle();
        }
        return {status::user_not_found};
    }

    // route() to a user with several sessions or with acks on: stored first when a session has
    // acks on (inbox_full refuses the whole message), then each session gets `msg` or `dm`.
    route_result route_to_sessions(session_id from, std::uint32_t target, std::string_view text, std::uint32_t d,
                                   const send_context* ctx, const send_context* confirm) {
        bool any_acks = false; // a session needs it stored: acks on, or an unfinished replay
        for (std::uint32_t si = users_slots_[target].head; si != npos; si = sessions_[si].next_of_user)
            any_acks = any_acks || sessions_[si].acks || sessions_[si].replay_pending;
        const std::string_view sender = user_name(from.index());
        // Encode before storing or delivering: a format's refusal leaves everyone without it. A
        // session with acks on is checked with what it gets, `acked_message` with the number the
        // store is about to give: the one after the last this router saw it give (checked, and
        // encoded again in the rare case the store gives another).
        const event plain{event_kind::direct_message, {}, sender, text};
        event acked = plain;
        acked.kind = event_kind::acked_message;
        if (any_acks)
            acked.seq = (cold_[target].last_seq != 0 ? cold_[target].last_seq : inbox_->highest_seq(users_slots_[target].id)) + 1;
        format_payloads bytes, acked_bytes;
        for (std::uint32_t si = users_slots_[target].head; si != npos; si = sessions_[si].next_of_user) {
            const std::uint8_t f = sessions_[si].format;
            payload& b = sessions_[si].acks ? acked_bytes[f] : bytes[f];
            if (b.empty()) b = formats_[f]->encode_checked(sessions_[si].acks ? acked : plain);
            if (b.empty()) return {status::invalid_text};
        }
        if (dir_ && !any_acks && depth_ == 0 && pending_head_ == pending_.size() && all_remote(target))
            return route_to_remote(from, target, bytes, confirm);
        route_result r;
        std::uint64_t ticket = 0; // the store reports durability later
        message_key key;          // the user also has sessions on other nodes: stored once for all
        if (any_acks) {
            if (dir_) key = message_key_for_remote(target, bytes);
            append_result a = key.empty() ? store_append(users_slots_[target].id, sender, text, ctx, ticket)
                                          : store_append_once(users_slots_[target].id, key, sender, text, ticket);
            if (a.code == status::user_not_found) { // the store forgot an online user: it knows it again
                inbox_->remember(users_slots_[target].id);
                a = store_append(users_slots_[target].id, sender, text, ctx, ticket);
                // A store that cannot know one more user (every known user has messages stored)
                // is as full as a full inbox: nothing is delivered, so nothing is at-most-once.
                if (a.code == status::user_not_found) a.code = status::inbox_full;
            }
            if (a.code != status::ok) {
                if (a.code == status::inbox_full) ++counters_.inbox_full;
                return {a.code};
            }
            r.seq = a.seq;
            cold_[target].last_seq = a.seq;
            if (a.seq != 0 && a.seq != acked.seq) { // not the number foreseen: encode those lines again
                // (0: a shared store numbers a keyed message at commit; top_up() encodes it then)
                acked.seq = a.seq;
                acked_bytes.for_each([&](std::uint8_t f, payload& b) { b = formats_[f]->encode_checked(acked); });
            }
        }
        ++counters_.routed;
        bool on_commit = false; // an ack-on session takes it once the store has committed it
        // The host's own call with nothing queued delivers to one ack-on session directly, after
        // the loop, as route_impl() does for a v1 session (docs/design.md, "Ordering and
        // re-entrancy"): the queue would run that delivery next anyway. Not to the sender's own
        // session, whose reply to the command (under hold()) goes first, as before.
        std::uint32_t direct = npos;
        const bool may_deliver_now = depth_ == 0 && pending_head_ == pending_.size();
        for (std::uint32_t si = users_slots_[target].head; si != npos; si = sessions_[si].next_of_user) {
            const std::size_t before = pending_.size();
            session_slot& ss = sessions_[si];
            if (ss.acks && ticket != 0) {
                // A store that commits later: handed by top_up() when it reports (store_completed()).
                on_commit = on_commit || r.seq - cold_[target].acked_through <= ack_window_; // within its window
            } else if (ss.acks && ss.sent_through + 1 == r.seq && r.seq - cold_[target].acked_through <= ack_window_) {
                // Everything before it was handed to this session and the window has room: hand
                // this one from the text in hand (what top_up() would read back from the store).
                const payload& b = acked_bytes[ss.format];
                if (b.empty()) {
                    // (empty only if the second encode refused)
                } else if (may_deliver_now && direct == npos && si != from.index()) {
                    direct = si;
                } else {
                    pending_.push_back(pending{session_id::make(si, ss.generation), b, d, close_mode::after_flush, false, false});
                }
                ss.sent_through = r.seq;
            } else if (ss.acks) {
                top_up(si, false); // this message, unless the session's ack window is full
            } else if (ss.replay_pending) {
                // stored above: it follows the rest of the replay, in order (output_drained())
            } else {
                pending_.push_back(pending{session_id::make(si, sessions_[si].generation), bytes[sessions_[si].format],
                                           d, close_mode::after_flush, false, false});
            }
            r.deferred += static_cast<std::uint32_t>(pending_.size() - before);
        }
        if (r.deferred == 0 && !on_commit && direct == npos) { // every session's ack window is full: stored, handed out on acks
            r.queued = true;
            ++counters_.queued;
        }
        // Before settle(): a delivery's callback may store another message, whose ticket follows.
        // Delivered with a client id: send() waits for the record of the outcome instead.
        // (A keyed message is never `queued`: a remote session took it. So send() records its
        // outcome apart, as for every delivered one: append_once() keeps no record.)
        if (ticket != 0)
            wait_for_store(ticket, from, users_slots_[sessions_[from.index()].user].id, users_slots_[target].id, ctx, r,
                           r.queued || !ctx, true);
        if (direct != npos) { // last: its callbacks may change the sessions the loop walked
            transport* const t = sessions_[direct].t;
            const callback_scope scope(*this, 0);
            tally(r, t->deliver(acked_bytes[sessions_[direct].format]));
        }
        settle();
        return r;
    }

    // The directory's key for a message stored here for user u, who has sessions on other
    // nodes too (directory::message_key_for(), given what those sessions are handed); empty
    // when u has no remote session or the directory gives none.
    message_key message_key_for_remote(std::uint32_t u, format_payloads& bytes) {
        for (std::uint32_t si = users_slots_[u].head; si != npos; si = sessions_[si].next_of_user)
            if (sessions_[si].remote) return dir_->message_key_for(users_slots_[u].id, bytes[sessions_[si].format]);
        return {};
    }

    bool all_remote(std::uint32_t u) const noexcept {
        for (std::uint32_t si = users_slots_[u].head; si != npos; si = sessions_[si].next_of_user)
            if (!sessions_[si].remote) return false;
        return true;
    }

    // route() to a user all of whose sessions are remote (several proxies), from the host's own
    // call with nothing queued: delivered now rather than queued, as the queue would run them
    // next anyway, so that nodes out of reach are reported (cluster_unavailable when no session
    // took it) instead of being counted dropped later. For a send() (`ctx`; its key is 0 when
    // the send is not recorded: router_options::dedup_window 0), the directory is
    // asked to have the receiving nodes confirm (directory::confirm()): the sender is answered
    // `delivered` when one of them handed it, not when it left this node (docs/cluster.md,
    // "Confirmed sends").
    route_result route_to_remote(session_id from, std::uint32_t u, format_payloads& bytes, const send_context* ctx) {
        // A delivery's callback may change the list: it is copied first, on the stack for the
        // usual few sessions (no allocation per message).
        using target = std::pair<transport*, std::uint8_t>;
        std::array<target, 8> inline_targets;
        std::vector<target> more;
        std::size_t n = 0;
        for (std::uint32_t si = users_slots_[u].head; si != npos; si = sessions_[si].next_of_user, ++n) {
            const target t{sessions_[si].t, sessions_[si].format};
            if (n < inline_targets.size()) {
                inline_targets[n] = t;
            } else {
                if (more.empty()) more.assign(inline_targets.begin(), inline_targets.end());
                more.push_back(t);
            }
        }
        const target* const targets = more.empty() ? inline_targets.data() : more.data();
        route_result r;
        std::uint64_t ticket = 0; // a confirmation the directory reports later (store_completed())
        if (ctx) {
            ticket = ++next_ticket_;
            if (!dir_->confirm(users_slots_[u].id, bytes[targets[0].second],
                               [this, ticket](status s) { store_completed(ticket, s); }))
                ticket = 0;
        }
        std::uint32_t unavailable = 0;
        {
            const callback_scope scope(*this, 0);
            for (std::size_t i = 0; i < n; ++i) {
                transport* const t = targets[i].first;
                const std::uint8_t f = targets[i].second;
                if (!closed_in_callback_.empty() &&
                    std::find(closed_in_callback_.begin(), closed_in_callback_.end(), t) != closed_in_callback_.end())
                    continue;
                const delivery d = t->deliver(bytes[f]);
                if (d == delivery::unavailable) ++unavailable;
                else tally(r, d);
            }
        }
        if (r.delivered == 0 && unavailable != 0) r = route_result{status::cluster_unavailable};
        else ++counters_.routed;
        if (ticket != 0 && r.ok() && r.delivered != 0) { // answered when a node confirms
            // (answered in any order, by any node or the timeout: kept apart from the store's
            // calls, which complete in call order)
            store_waiter w =
                waiter_for(ticket, from, users_slots_[sessions_[from.index()].user].id, users_slots_[u].id, ctx, r, true, false);
            w.confirm = true;
            confirm_waiters_.emplace(ticket, std::move(w));
            confirming_send_ = true;
        }
        settle();
        return r;
    }

    // ---- durable outcomes (docs/design.md, "Durable outcomes") ------------------------------

    // Runs call(handler), one store call with a completion handler; returns its ticket when the
    // store reports later, or 0 when it reported before returning (or never will: a refused
    // append), its status then in sync_result_ (ok when it never reported).
    template <class Call>
    std::uint64_t call_store(Call&& call) {
        if (inbox_->completes_at_once()) { // reports ok before returning: no handler to wait for
            sync_result_ = status::ok;
            std::forward<Call>(call)(inbox_store::durable_handler());
            return 0;
        }
        const std::uint64_t t = ++next_ticket_;
        sync_ticket_ = t;
        sync_result_ = status::ok;
        sync_done_ = false;
        std::forward<Call>(call)(inbox_store::durable_handler([this, t](status s) { store_completed(t, s); }));
        sync_ticket_ = 0;
        if (sync_done_ && sync_result_ != status::ok) ++counters_.store_failures;
        return sync_done_ ? 0 : t;
    }

    // Appends through the store (with the send()'s record in `ctx`); `ticket` is set when the
    // store commits later. A store that failed at once makes the append fail with its status.
    append_result store_append(const name& to, std::string_view sender, std::string_view text, const send_context* ctx,
                               std::uint64_t& ticket) {
        return store_call(ticket, [&](inbox_store::durable_handler done) {
            return inbox_->append(to, sender, text, now_, std::move(done), ctx ? ctx->key : 0);
        });
    }

    // store_append() of a message named `key` (inbox_store::append_once()).
    append_result store_append_once(const name& to, const message_key& key, std::string_view sender,
                                    std::string_view text, std::uint64_t& ticket) {
        return store_call(ticket, [&](inbox_store::durable_handler done) {
            return inbox_->append_once(to, key, sender, text, now_, std::move(done));
        });
    }

    // One append through call_store(): `append(done)` returns the store's append_result.
    // `ticket` is set when the store commits later; a store that failed at once makes the append
    // fail with its status.
    template <class Append>
    append_result store_call(std::uint64_t& ticket, Append&& append) {
        append_result a;
        ticket = call_store([&](inbox_store::durable_handler done) { a = append(std::move(done)); });
        if (a.code != status::ok) ticket = 0;
        else if (ticket == 0 && sync_result_ != status::ok) a = {sync_result_, 0};
        return a;
    }

    // The router waits for store call `ticket`: marks r pending; `answer`: this call's outcome
    // is told to the sender (send_outcome) and settles the send()'s de-duplication entry.
    // `appended`: a stored message (held back from ack-on sessions until committed), not a
    // de-duplication record.
    void wait_for_store(std::uint64_t ticket, session_id from, const name& sender, const name& to,
                        const send_context* ctx, route_result& r, bool answer, bool appended) {
        store_waiter w = waiter_for(ticket, from, sender, to, ctx, r, answer, appended);
        if (waiters_head_ >= 1024 && waiters_head_ * 2 >= waiters_.size()) { // the finished front goes
            waiters_.erase(waiters_.begin(), waiters_.begin() + static_cast<std::ptrdiff_t>(waiters_head_));
            waiters_head_ = 0;
        }
        waiters_.push_back(std::move(w));
        if (!appended || r.seq == 0) return; // (0: a shared store numbers it at commit, for a user not here)
        const std::uint32_t u = find_user(to);
        if (u != npos && cold_[u].uncommitted++ == 0) cold_[u].committed_through = r.seq - 1;
    }

    // A store's completion of call `ticket` (inbox_store's completion contract).
    void store_completed(std::uint64_t ticket, status s) {
        if (ticket == sync_ticket_) { // before the call returned
            sync_done_ = true;
            sync_result_ = s;
            return;
        }
        store_waiter w{};
        const auto confirmed = confirm_waiters_.empty() ? confirm_waiters_.end() : confirm_waiters_.find(ticket);
        if (confirmed != confirm_waiters_.end()) { // a confirmation (route_to_remote()), in any order
            w = std::move(confirmed->second);
            confirm_waiters_.erase(confirmed);
            if (confirm_waiters_.empty() && confirm_waiters_.bucket_count() > 4096) confirm_waiters_ = {};
        } else {
            // In call order: the front, unless a store breaks the contract.
            auto it = waiters_.begin() + static_cast<std::ptrdiff_t>(waiters_head_);
            while (it != waiters_.end() && it->ticket != ticket) ++it;
            if (it == waiters_.end()) return;
            w = std::move(*it);
            if (it == waiters_.begin() + static_cast<std::ptrdiff_t>(waiters_head_)) { // the usual case
                if (++waiters_head_ == waiters_.size()) { // none left: start again at the front
                    waiters_.clear();
                    waiters_head_ = 0;
                    if (waiters_.capacity() > 4096) waiters_.shrink_to_fit(); // a burst does not pin memory
                }
            } else {
                waiters_.erase(it);
            }
        }
        if (w.confirm && s == status::ok && inbox_ && w.key != 0) {
            // Delivered: the outcome is recorded now (a retry, from any node, is answered from
            // the record), and the sender answered when the record is.
            const std::uint64_t t = call_store([&](inbox_store::durable_handler done) {
                inbox_->record_sent(w.sender, sent_record{w.key, now_, 0, false}, std::move(done));
            });
            if (t != 0) {
                store_waiter next = w;
                next.ticket = t;
                next.confirm = false;
                waiters_.push_back(std::move(next));
                return;
            }
            s = sync_result_;
        }
        if (s != status::ok && !w.confirm) ++counters_.store_failures;
        if (w.key != 0) settle_sent(w.sender, w.key, s == status::ok);
        if (w.appended && w.seq != 0) { // what its ack-on sessions may be handed now reaches this message
            const std::uint32_t u = find_user(w.to);
            if (u != npos && cold_[u].uncommitted != 0) {
                --cold_[u].uncommitted;
                cold_[u].committed_through = std::max(cold_[u].committed_through, w.seq);
                for (std::uint32_t si = users_slots_[u].head; si != npos; si = sessions_[si].next_of_user)
                    if (sessions_[si].acks) top_up(si, false);
            }
        } else if (w.appended && s == status::ok) {
            // Numbered by a shared store at commit (append_once(), or an offline append for a
            // user who registered here meanwhile): it is in the store's view now, with whatever
            // other nodes stored for the user before it. Hand it, in order, to the user's
            // ack-on sessions here.
            const std::uint32_t u = find_user(w.to);
            if (u != npos)
                for (std::uint32_t si = users_slots_[u].head; si != npos; si = sessions_[si].next_of_user)
                    if (sessions_[si].acks) top_up(si, false);
        }
        if (!remote_stored_.empty()) { // deliver_remote()'s `stored`: after top_up() above
            const auto h = remote_stored_.find(w.ticket);
            if (h != remote_stored_.end()) {
                const inbox_store::durable_handler stored = std::move(h->second);
                remote_stored_.erase(h);
                if (remote_stored_.empty() && remote_stored_.bucket_count() > 4096) remote_stored_ = {}; // a burst
                stored(s);
            }
        }
        const bool silent = !w.answer || (w.client_id.empty() && s == status::ok && !w.queued); // a /msg delivered
        if (!silent && find_slot(w.from)) { // (unless the sender's session is gone)
            event e{event_kind::send_outcome, {}, w.to.view(), w.client_id};
            e.seq = s == status::ok ? w.seq : 0;
            e.code = s;
            e.queued = w.queued;
            // With nothing queued or held before it (the usual case: the host runs the store's
            // completions as a call of its own), the answer goes out at once, as a reply
            // (send()): no pending entry, no drain per completion.
            if (depth_ == 0 && holds_ == 0 && !draining_ && pending_head_ == pending_.size())
                (void)notify_checked(w.from, e);
            else
                defer_event(w.from.index(), e, false);
        }
        settle();
    }

    // The first outcome of client id `key` of user `sender` is final: kept when it was
    // committed, else forgotten (a retry is sent anew).
    void settle_sent(const name& sender, std::uint64_t key, bool committed) noexcept {
        const std::uint32_t u = find_user(sender);
        if (u == npos || !cold_[u].sent) return;
        for (sent_entry& e : cold_[u].sent->entries) {
            if (e.key != key || !e.pending) continue;
            e.pending = false;
            if (!committed) e.at = now_ - dedup_ttl_ms_; // expired
            return;
        }
    }

    // A window for user u from the records its store kept (after a restart, or after the
    // router dropped it).
    void restore_window(std::uint32_t u) {
        inbox_->for_each_sent(users_slots_[u].id, [&](const sent_record& rec) {
            if (now_ - rec.at_ms >= dedup_ttl_ms_) return;
            route_result r;
            r.seq = rec.seq;
            r.queued = rec.queued;
            remember_sent(u, rec.key, rec.at_ms, r);
        });
    }

    // Frees the sent windows of offline users, offline longest first, until the router is under
    // max_dedup_ ids or none is left.
    void drop_offline_windows() noexcept {
        for (std::uint32_t u = offline_head_; u != npos && dedup_entries_ >= max_dedup_; u = cold_[u].next_offline)
            drop_window(u);
    }
    void drop_window(std::uint32_t u) noexcept {
        if (!cold_[u].sent) return;
        dedup_entries_ -= cold_[u].sent->entries.size();
        cold_[u].sent.reset();
    }

    static std::uint64_t client_key(std::string_view id) noexcept {
        std::uint64_t h = 14695981039346656037ull ^ id.size(); // FNV-1a 64, length mixed in
        for (const char c : id) {
            h ^= static_cast<unsigned char>(c);
            h *= 1099511628211ull;
        }
        return h;
    }

    void remember_sent(std::uint32_t u, std::uint64_t key, std::int64_t at, const route_result& r) {
        if (!cold_[u].sent) cold_[u].sent = std::make_unique<sent_window>();
        sent_window& w = *cold_[u].sent;
        const sent_entry e{key, at, r.seq, r.queued, r.pending};
        if (w.entries.size() < dedup_window_ && dedup_entries_ >= max_dedup_) drop_offline_windows();
        if (w.entries.size() < dedup_window_ && dedup_entries_ < max_dedup_) {
            w.entries.push_back(e);
            ++dedup_entries_;
        } else if (!w.entries.empty()) { // full (or the router is): the oldest id makes room
            if (w.next >= w.entries.size()) w.next = 0;
            w.entries[w.next] = e;
            w.next = (w.next + 1) % w.entries.size();
        }
    }

    // Encodes once per format among the recipients (before delivering anything, so that a format's
    // refusal leaves everyone without the event: invalid_text), and hands each member but `skip`
    // (a session index or npos) its format's payload, to the members the room had when the call
    // began. Fast path: walk the live member list by index, up to its initial size (a join during a
    // delivery appends past it). Membership is only ever removed through remove_membership(), which
    // first freezes every fan-out in progress: copies the targets each has left into its own
    // buffer, which it then finishes from, skipping sessions closed meanwhile (so a transport is
    // never used after its close_session()).
    route_result fan_out(std::uint32_t ri, const event& e, std::uint32_t skip) {
        std::array<payload, max_formats> bytes;
        {
            const room_slot& room = rooms_[ri];
            const std::uint32_t skip_format = skip == npos ? npos : sessions_[skip].format;
            for (std::uint32_t f = 0; f < format_count_; ++f) {
                if (room.per_format[f] == (f == skip_format ? 1u : 0u)) continue; // no recipient
                bytes[f] = formats_[f]->encode_checked(e);
                if (bytes[f].empty()) return {status::invalid_text};
            }
        }
        route_result r;
        if (depth_ > 0) { // from a callback: queue each delivery behind the ones already caused
            const std::uint32_t d = call_depth();
            for (const member& m : rooms_[ri].members) {
                if (m.session == skip) continue;
                defer(session_id::make(m.session, sessions_[m.session].generation), bytes[m.format()], d, false,
                      close_mode::after_flush);
                ++r.deferred;
            }
            return r;
        }
        const std::size_t f = frames_.size();
        if (frames_.size() == frames_.capacity()) ++layout_epoch_; // frames_ will move
        const std::size_t end = rooms_[ri].members.size();
        frames_.push_back(fanout_frame{ri, skip, 0, end, false});
        const callback_scope scope(*this, 0);
        // Pointers cached until a callback changes the layout (layout_epoch_): then re-read.
        fanout_frame* fr = &frames_[f];
        const member* data = rooms_[ri].members.data();
        std::uint64_t epoch = layout_epoch_;
        for (std::size_t i = 0; i < end; ++i) {
            if (layout_epoch_ != epoch) {
                epoch = layout_epoch_;
                fr = &frames_[f];
                if (fr->frozen) break;
                data = rooms_[ri].members.data();
            }
            const member m = data[i];
            if (m.session == skip) continue;
            fr->next = i + 1; // where a freeze inside this delivery copies from
            tally(r, m.t->deliver(bytes[m.format()]));
        }
        if (frames_[f].frozen) {
            const std::vector<frozen_target>& rest = snapshots_[f]; // a deque: never moves
            for (const frozen_target& t : rest) {
                if (!closed_in_callback_.empty() &&
                    std::find(closed_in_callback_.begin(), closed_in_callback_.end(), t.t) != closed_in_callback_.end())
                    continue;
                tally(r, t.t->deliver(bytes[t.format]));
            }
        }
        frames_.pop_back();
        return r;
    }

    // See fan_out(). Called before any membership is removed.
    void freeze_fanouts() {
        ++layout_epoch_;
        for (std::size_t f = 0; f < frames_.size(); ++f) {
            fanout_frame& fr = frames_[f];
            if (fr.frozen) continue;
            while (snapshots_.size() <= f) snapshots_.emplace_back();
            std::vector<frozen_target>& rest = snapshots_[f];
            rest.clear();
            const std::vector<member>& members = rooms_[fr.room].members;
            for (std::size_t i = fr.next; i < fr.end; ++i)
                if (members[i].session != fr.skip) rest.push_back(frozen_target{members[i].t, members[i].format()});
            fr.frozen = true;
        }
    }

    // Marks a call out of the router (a delivery, a close, the user-not-found handler) made on
    // behalf of a call at causal depth `call_depth`: router calls made inside it are deferred and
    // run at call_depth + 1 (see call_depth()), and fan-outs skip sessions closed inside it.
    struct callback_scope {
        callback_scope(router& r, std::uint32_t call_depth) noexcept : r_(r), saved_(r.generation_) {
            ++r_.depth_;
            r_.generation_ = call_depth;
        }
        ~callback_scope() {
            r_.generation_ = saved_;
            if (--r_.depth_ == 0) r_.closed_in_callback_.clear();
        }
        callback_scope(const callback_scope&) = delete;
        callback_scope& operator=(const callback_scope&) = delete;
        router& r_;
        std::uint32_t saved_;
    };

    // The causal depth of a call being made now: 0 for the host's own call, else one more than
    // the call whose callback is running (bounded by max_depth_: a bot loop ends).
    std::uint32_t call_depth() const noexcept { return depth_ == 0 ? 0 : generation_ + 1; }

    // Queues a delivery (or a close) behind those already queued; see drain().
    void defer(session_id target, const payload& bytes, std::uint32_t call_depth, bool is_close, close_mode mode) {
        pending_.push_back(pending{target, bytes, call_depth, mode, is_close});
    }

    // Runs the deferred deliveries in the order they were caused, when the host's call (or its
    // hold) ends. Callbacks run meanwhile append behind; a session closed meanwhile is skipped.
    void settle() noexcept {
        if (pending_head_ != pending_.size() && depth_ == 0 && holds_ == 0 && !draining_) drain();
    }
    void drain() noexcept {
        draining_ = true;
        std::uint32_t replay_refused = npos; // the session whose at-most-once replay stopped
        while (pending_head_ < pending_.size()) {
            pending p = std::move(pending_[pending_head_++]);
            session_slot* slot = find_live_slot(p.target);
            if (!slot) {
                if (!p.is_close) count(delivery::closed);
                continue;
            }
            if (p.ack_if_queued != 0) {
                // At-most-once replay: only what the transport takes without cutting the session
                // (deliver_ephemeral(): refused when its output is backed up) is removed from the
                // store; from the first refusal on, the rest stays stored, in order.
                if (replay_refused == p.target.index()) continue;
                const callback_scope scope(*this, p.call_depth);
                const delivery d = slot->t->deliver_ephemeral(p.bytes);
                count(d);
                slot = find_live_slot(p.target);
                if (d == delivery::queued && inbox_ && slot && slot->user != npos) {
                    (void)inbox_->acknowledge(users_slots_[slot->user].id, p.ack_if_queued);
                } else {
                    replay_refused = p.target.index();
                    if (slot && d == delivery::backed_up && slot->user != npos) { // the rest later
                        slot->replay_pending = true;
                        refresh_direct(slot->user);
                    }
                }
                continue;
            }
            transport* const t = slot->t;
            const callback_scope scope(*this, p.call_depth);
            if (p.is_close) {
                t->close(p.mode);
            } else if (p.ephemeral) {
                const delivery d = t->deliver_ephemeral(p.bytes);
                if (d == delivery::backed_up) ++counters_.typing_dropped;
                count(d);
            } else {
                count(t->deliver(p.bytes));
            }
        }
        pending_.clear();
        pending_head_ = 0;
        if (pending_.capacity() > 4096) pending_.shrink_to_fit(); // a burst does not pin memory
        draining_ = false;
    }

    void tally(route_result& r, delivery d) noexcept {
        if (d == delivery::queued) ++r.delivered;
        else ++r.dropped;
        count(d);
    }
    void count(delivery d) noexcept {
        if (d == delivery::queued) ++counters_.delivered;
        else ++counters_.dropped;
    }

    std::array<const event_encoder*, max_formats> formats_{}; // the formats sessions named
    std::uint32_t format_count_ = 0;
    std::size_t max_rooms_per_session_;
    std::size_t max_room_members_;
    std::uint32_t max_depth_;
    std::uint32_t depth_ = 0;                          // calls out of the router in progress
    std::uint32_t generation_ = 0;                     // causal depth of the callback running
    std::uint32_t holds_ = 0;                          // hold_guards alive
    bool draining_ = false;                            // inside settle()
    struct pending {                                   // a deferred delivery or close
        session_id target;
        payload bytes;
        std::uint32_t call_depth;
        close_mode mode;
        bool is_close;
        bool ephemeral = false;                        // deliver_ephemeral(): typing
        std::uint64_t ack_if_queued = 0;               // at-most-once replay: remove through this
                                                       // seq once the transport has queued it
    };
    std::vector<pending> pending_;                     // deferred, in causal order, from pending_head_
    std::size_t pending_head_ = 0;
    struct fanout_frame {        // one fan-out in progress (see fan_out())
        std::uint32_t room;
        std::uint32_t skip;
        std::size_t next;        // next member index (fast path)
        std::size_t end;         // member count when the fan-out began
        bool frozen;             // finishing from snapshots_[its index]
    };
    std::vector<fanout_frame> frames_;                 // fan-outs in progress, innermost last
    std::uint64_t layout_epoch_ = 0;                   // bumped when member lists or frames_ may move
    std::deque<std::vector<frozen_target>> snapshots_;        // targets left to frozen fan-outs
    std::vector<transport*> closed_in_callback_;       // sessions closed inside a callback
    authorizer authorizer_;
    std::vector<session_slot> sessions_;
    std::uint32_t free_session_ = npos;
    std::size_t open_sessions_ = 0;
    detail::flat_index users_;      // user name -> user slot; the key is the slot's `id`
    std::vector<user_slot> users_slots_;
    std::vector<user_cold> cold_;    // the rest of each user record, same index
    std::uint32_t free_user_ = npos;
    std::size_t online_users_ = 0;
    std::uint32_t offline_head_ = npos, offline_tail_ = npos; // see link_offline()
    std::size_t offline_count_ = 0;
    std::deque<grace_entry> grace_;  // offline events waiting for their grace period, by due time
    std::size_t grace_pending_ = 0;  // users in their grace period (valid entries of grace_)
    session_policy policy_;
    std::uint32_t max_sessions_;
    std::size_t max_watches_;
    std::int64_t grace_ms_;
    std::size_t max_offline_;
    inbox_store* inbox_;
    std::size_t ack_window_;
    std::size_t dedup_window_;
    std::size_t max_dedup_;
    std::size_t dedup_entries_ = 0;  // client ids in every sent window
    std::int64_t dedup_ttl_ms_;
    std::int64_t typing_timeout_ms_;
    std::int64_t now_ = 0;           // Unix ms: the last tick() or touch()
    presence_handler on_presence_;
    std::vector<room_slot> rooms_;
    std::uint32_t free_room_ = npos;
    detail::flat_index room_index_; // room name -> room slot; the key is the slot's `id`
    router_counters counters_;
    user_not_found_handler on_user_not_found_;
    std::optional<user_not_found_handler> replacement_handler_;
    bool in_not_found_handler_ = false;
    struct store_waiter {            // a store call whose completion the router waits for
        std::uint64_t ticket;
        session_id from;             // the sending session (answered if still open)
        name sender;                 // its user (the de-duplication entry to settle)
        name to;
        std::string client_id;       // send(): answered as `sent`; empty for route()
        std::uint64_t key;           // send(): the de-duplication entry; else 0
        std::uint64_t seq;
        bool queued;
        bool answer;
        bool appended;               // a stored message (else a de-duplication record)
        bool confirm = false;        // a delivery another node confirms (directory::confirm())
    };
    // The waiter of call `ticket` (wait_for_store()'s parameters); marks r pending.
    store_waiter waiter_for(std::uint64_t ticket, session_id from, const name& sender, const name& to,
                            const send_context* ctx, route_result& r, bool answer, bool appended) const {
        r.pending = true;
        return store_waiter{ticket, from, sender, to,
                            ctx && answer ? std::string(ctx->client_id) : std::string(), ctx && answer ? ctx->key : 0,
                            r.seq, r.queued, answer, appended};
    }
    // In call order (the store completes in that order), from waiters_head_: a finished front
    // waiter is left behind (moved from) and the front is compacted when it is the larger part,
    // so that the steady state allocates nothing (a deque allocated and freed a block every
    // three waiters).
    std::vector<store_waiter> waiters_;
    std::size_t waiters_head_ = 0;
    std::uint64_t next_ticket_ = 0;
    bool confirming_send_ = false; // route_to_remote() waits for a confirmation (send() records later)
    // deliver_remote()'s `stored` handlers by store ticket (confirmed sends from other nodes).
    std::unordered_map<std::uint64_t, inbox_store::durable_handler> remote_stored_;
    // route_to_remote()'s waiters by ticket: the receiving nodes answer in any order.
    std::unordered_map<std::uint64_t, store_waiter> confirm_waiters_;
    std::uint64_t sync_ticket_ = 0;  // the store call in progress (call_store())
    directory* dir_;                 // router_options::directory (null: one node)
    struct claim_waiter {            // a register_name() answered pending
        std::uint64_t ticket;
        session_id s;
        name user;
    };
    std::vector<claim_waiter> claims_; // in claim order
    std::uint64_t next_claim_ = 0;
    bool sync_done_ = false;
    status sync_result_ = status::ok;
};

} // namespace switchboard
