// delivery_fuzz: libFuzzer target for the delivery features of issue #11 on switchboard::router —
// session policies (exclusive / replace / multi), presence (watch, grace, host callback), typing,
// the offline inbox (memory_inbox), acknowledgements, send() de-duplication, and time given as
// values (touch, tick) — on up to 8 sessions over in_memory_transports in the line format.
//
// Every operation is run against the router and against a predictive model (who holds which name,
// who has acks on, who watches whom, each user's announced presence and grace deadline, typing
// indicators, each user's ledger of stored messages, each sender's client ids). After every step:
//   1. no seq is reused for a user: every seq route()/send() reports (queued, or delivered to a
//      session with acks on) is above every seq given to that user before; every `dm <seq> ...`
//      line is one the store gave that user (same sender, same text), and each session's dm seqs
//      strictly increase (a registering ack-on session gets the ledger in seq order, before any
//      newer message);
//   2. every stored message is delivered, acknowledged, replayed or expired, never silently
//      dropped: the ledger (from route results; removed on acknowledge() == ok, on the
//      at-most-once replay to a registering session, on expiry at tick) equals the store's
//      stored() and for_each() exactly, and its bytes() and known users the model's;
//   3. per watcher and watched user, presence lines alternate online/offline after the first
//      (the state at watch time), and what a watcher was told last is presence_of();
//   4. nothing refers to a closed session: closed transports (the last few are kept) get no call
//      after close_session(), stale ids get unknown_session, sessions_of() equals the model and
//      the policy's bound;
// and every payload any session receives is exactly one line of the v1.2 event grammar, and is
// exactly what the model predicts (per session as a multiset; in order for a registering session
// or one turning acks on: the replay first).
//
// Input format (any byte string is valid; reads past the end yield 0):
//   a setup of 6 bytes:
//     S0  memory_inbox max_per_user = 1 + S0 % 8; with S4 bit 7, max_offline_users = 1 + (S0>>3) % 3
//     S1  memory_inbox ttl = 1 + S1 % 10 seconds
//     S2  max_known_users = 1 + (S2 & 7) % 6; (S2 >> 3) & 3: max_watches_per_session 1..3 (0:
//         the default); bit 5: max_bytes = 300 + 100 * (S2 >> 6) (a message costs a 128-byte
//         slot, plus sender + text + 16 when they take over 96 bytes), else the default
//     S3  session policy S3 % 3 (exclusive, replace, multi); max_sessions_per_user 1 + (S3>>2) % 4
//     S4  bit 0: presence_grace = 100 * (1 + ((S4 >> 1) & 15) % 5) ms (else 0); (S4 >> 5) & 3: the
//         on_presence handler: none, record, record + "welcome" (on online, the user's newest
//         session messages itself), record + "gone" (on offline, the lowest registered slot of
//         another user messages the user who left); bit 7: a small max_offline_users (see S0)
//     S5  a population: (S5 & 15) % 9 sessions opened, slot i registering
//         alice, bob, carol, dave, eve, alice, bob, carol; slots 0..3 turn acks on first when
//         bit 4 + i of S5 is set
//   then, repeated: A [arguments]
//     A & 0x0F    operation (table in `step()` below), (A >> 4) & 7  slot, A >> 7  flag
//   user names come from a small table (case variants, one invalid spelling); texts from a
//   table (two invalid) or, with bit 7 of the text byte, "m<step number>" (unique); client ids
//   from a table; time deltas (0 .. 10 minutes) from a table. Time only moves forward.
//
// Built with -fsanitize=fuzzer (SWITCHBOARD_BUILD_FUZZ, scripts/fuzz), or with replay_main.cpp
// as delivery_fuzz_replay, which replays tests/fuzz/corpus/delivery_fuzz/ under CTest.
#include "fuzz_support.hpp"

#include <switchboard/in_memory_transport.hpp>
#include <switchboard/inbox_store.hpp>
#include <switchboard/memory_inbox.hpp>
#include <switchboard/names.hpp>
#include <switchboard/payload.hpp>
#include <switchboard/router.hpp>
#include <switchboard/session_id.hpp>
#include <switchboard/status.hpp>
#include <switchboard/protocol/line.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace {

using switchboard::close_mode;
using switchboard::delivery;
using switchboard::in_memory_transport;
using switchboard::memory_inbox;
using switchboard::memory_inbox_options;
using switchboard::name;
using switchboard::payload;
using switchboard::route_result;
using switchboard::router;
using switchboard::session_id;
using switchboard::session_policy;
using switchboard::status;
using switchboard::stored_message;
using switchboard_fuzz::byte_reader;
using switchboard_fuzz::escaped;
using switchboard_fuzz::reference_fold;
using switchboard_fuzz::reference_valid_name;
using switchboard_fuzz::reference_valid_text;
using switchboard_fuzz::trace;

constexpr std::size_t slot_count = 8;     // sessions open at once, at most
constexpr std::size_t kept_graves = 8;    // closed transports kept alive to check they stay silent
constexpr std::size_t checked_stale = 16; // stale ids re-checked after every step
constexpr std::size_t max_steps = 4096;
constexpr std::int64_t typing_timeout_ms = 5000; // router_options' default
constexpr std::int64_t dedup_ttl_ms = 600000;    // router_options' default
constexpr std::size_t dedup_window = 1000;       // router_options' default

// User names: case variants of five names, and one invalid spelling.
constexpr std::string_view user_names[] = {"alice", "Alice", "bob", "BOB", "carol", "dave", "eve", "b@d"};
constexpr std::string_view distinct_users[] = {"alice", "bob", "carol", "dave", "eve"};
constexpr std::string_view texts[] = {"hi", "hello there", "x", "caf\xc3\xa9", "tab\there", "a b c", "", "bad\nline"};
constexpr std::string_view client_ids[] = {"c1", "c2", "C1", "retry-1", "x"};
constexpr std::int64_t deltas[] = {0, 1, 10, 99, 100, 101, 250, 499, 500, 999, 1000, 2500, 4999, 5000, 10000, 600000};

bool valid_text(std::string_view t) { return !t.empty() && reference_valid_text(t); }

struct spelling {
    std::string_view raw;
    bool valid;
    std::string folded;
    std::optional<name> parsed;
};

const spelling& user_spelling(std::size_t i) {
    static const std::vector<spelling> table = [] {
        std::vector<spelling> out;
        for (std::string_view raw : user_names) {
            spelling sp{raw, reference_valid_name(raw), reference_fold(raw), name::parse(raw)};
            FUZZ_CHECK_MSG(sp.parsed.has_value() == sp.valid && (!sp.valid || sp.parsed->view() == sp.folded),
                           "name::parse disagrees with the model on \"" + escaped(raw) + "\"");
            out.push_back(std::move(sp));
        }
        return out;
    }();
    return table[i % table.size()];
}

const spelling& spelling_of(std::string_view folded) {
    for (std::size_t i = 0; i < std::size(user_names); ++i)
        if (user_spelling(i).raw == folded) return user_spelling(i);
    FUZZ_CHECK_MSG(false, "no spelling for " + std::string(folded));
    std::abort();
}

std::string id_text(session_id id) {
    return std::to_string(id.index()) + "/" + std::to_string(id.generation());
}

std::string status_text(status s) { return std::string(to_string(s)); }

void check_status(status got, status want) {
    trace::amend("=> " + status_text(got));
    FUZZ_CHECK_MSG(got == want, "got " + status_text(got) + ", model expects " + status_text(want));
}

// ---- the line grammar of the events this target can cause --------------------------------------

struct event_line {
    enum kind_t { msg, dm, presence, typing, bye } kind = msg;
    std::string user;        // sender (msg, dm, typing) or watched user (presence)
    std::string text;        // msg, dm
    std::uint64_t seq = 0;   // dm
    bool online = false;     // presence
    std::int64_t ms = -1;    // presence offline: last seen, -1 when absent
    bool stop = false;       // typing
};

bool decimal(std::string_view s, std::uint64_t& out, bool allow_zero) {
    if (s.empty() || s.size() > 19) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    if (s.size() > 1 && s[0] == '0') return false;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
    return r.ec == std::errc{} && (allow_zero || out != 0);
}

bool folded_name(std::string_view s) { return reference_valid_name(s) && reference_fold(s) == s; }

// Parses one line (terminator removed); nullopt when the grammar does not allow it.
std::optional<event_line> parse_event(std::string_view line) {
    auto next_word = [](std::string_view& rest) {
        const std::size_t sp = rest.find(' ');
        const std::string_view w = rest.substr(0, sp);
        rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
        return w;
    };
    std::string_view rest = line;
    const bool had_space = line.find(' ') != std::string_view::npos;
    const std::string_view word = next_word(rest);
    event_line e;
    if (word == "msg") {
        const std::string_view from = next_word(rest);
        if (!folded_name(from) || !valid_text(rest)) return std::nullopt;
        e.kind = event_line::msg;
        e.user = std::string(from);
        e.text = std::string(rest);
        return e;
    }
    if (word == "dm") {
        const std::string_view seq = next_word(rest);
        const std::string_view from = next_word(rest);
        if (!decimal(seq, e.seq, false) || !folded_name(from) || !valid_text(rest)) return std::nullopt;
        e.kind = event_line::dm;
        e.user = std::string(from);
        e.text = std::string(rest);
        return e;
    }
    if (word == "presence") {
        const std::string_view user = next_word(rest);
        const bool has_ms = rest.find(' ') != std::string_view::npos;
        const std::string_view state = next_word(rest);
        if (!folded_name(user)) return std::nullopt;
        e.kind = event_line::presence;
        e.user = std::string(user);
        if (state == "online" && !has_ms) {
            e.online = true;
            return e;
        }
        if (state != "offline") return std::nullopt;
        if (has_ms) {
            std::uint64_t ms = 0;
            if (!decimal(rest, ms, true) || ms > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                return std::nullopt;
            e.ms = static_cast<std::int64_t>(ms);
        }
        return e;
    }
    if (word == "typing") {
        const bool has_stop = rest.find(' ') != std::string_view::npos;
        const std::string_view from = next_word(rest);
        if (!folded_name(from)) return std::nullopt;
        e.kind = event_line::typing;
        e.user = std::string(from);
        if (has_stop) {
            if (rest != "stop") return std::nullopt;
            e.stop = true;
        }
        return e;
    }
    if (word == "bye" && had_space && rest == "replaced") {
        e.kind = event_line::bye;
        return e;
    }
    return std::nullopt;
}

// ---- a transport that notices any call after its session was closed -----------------------------

class probe_transport final : public switchboard::transport {
public:
    delivery deliver(const payload& bytes) noexcept override {
        note();
        return inner_.deliver(bytes);
    }
    delivery deliver_ephemeral(const payload& bytes) noexcept override {
        note();
        return inner_.deliver_ephemeral(bytes);
    }
    void close(close_mode mode) noexcept override {
        note();
        inner_.close(mode);
    }
    void retire() noexcept { retired_ = true; }
    [[nodiscard]] std::size_t late_calls() const noexcept { return late_; }
    in_memory_transport& inner() noexcept { return inner_; }
    [[nodiscard]] const in_memory_transport& inner() const noexcept { return inner_; }

private:
    void note() noexcept {
        if (retired_) ++late_;
    }
    in_memory_transport inner_;
    bool retired_ = false;
    std::size_t late_ = 0;
};

// ---- the model -----------------------------------------------------------------------------------

struct ledger_entry {
    std::uint64_t seq;
    std::string from;
    std::string text;
    std::int64_t at;
    std::uint64_t order; // appends to the store, counted over all users (the expiry order)
};

struct sent_entry {
    std::string cid;
    std::int64_t at;
    std::uint64_t seq;
    bool queued;
};

struct user_model {
    std::deque<ledger_entry> ledger;                                   // what the store must hold
    std::uint64_t max_given = 0;                                       // highest seq given
    std::map<std::uint64_t, std::pair<std::string, std::string>> given; // seq -> (from, text)
    bool announced = false;                                            // presence_of().online
    std::int64_t last_seen = -1;
    std::int64_t grace_due = -1;
    std::deque<sent_entry> sent;      // the user's last delivered/queued send()s
    bool in_offline_list = false;     // offline, unwatched, no grace period: may be forgotten
    std::vector<std::size_t> holders; // slots holding the name, oldest registration first
};

struct told_state {
    bool online;
    std::int64_t ms;
};

struct slot_model {
    std::unique_ptr<probe_transport> t;
    session_id id{}; // the open session's id, or the last one this slot had (stale), or null
    bool open = false;
    std::string user; // folded; empty when unregistered
    bool acks = false;
    bool tclosed = false;             // the router closed its transport (replaced)
    std::int64_t last_input = -1;     // touch()
    std::vector<std::string> watching; // in the router's order (a swap-remove on unwatch)
    std::map<std::string, std::int64_t> typing; // target user -> when the start was sent
    std::map<std::string, told_state> told;     // watched user -> the last presence line received
    std::map<std::string, std::uint64_t> last_dm; // user -> highest dm seq received

    [[nodiscard]] bool watches(const std::string& u) const {
        return std::find(watching.begin(), watching.end(), u) != watching.end();
    }
};

struct presence_call {
    std::string user;
    bool online;
    std::int64_t last_seen;
    bool operator==(const presence_call& o) const {
        return user == o.user && online == o.online && last_seen == o.last_seen;
    }
};

std::string call_text(const presence_call& c) {
    return c.user + (c.online ? " online" : " offline " + std::to_string(c.last_seen));
}

enum class handler_mode : std::uint8_t { none, record, welcome, gone };

struct setup {
    std::size_t max_per_user = 1;
    std::int64_t ttl_s = 1;
    std::size_t max_known = 1;
    std::size_t max_watches = 0; // 0: the default
    std::size_t max_bytes = 0;   // 0: the default (never reached here)
    std::size_t max_offline = switchboard::router_options{}.max_offline_users;
    session_policy policy = session_policy::exclusive;
    std::size_t max_sessions = 1;
    std::int64_t grace_ms = 0;
    handler_mode handler = handler_mode::none;
    std::size_t population = 0;
    std::uint8_t acks_mask = 0;

    static setup read(byte_reader& in) {
        setup st;
        const std::uint8_t s0 = in.byte(), s1 = in.byte(), s2 = in.byte(), s3 = in.byte(), s4 = in.byte(),
                           s5 = in.byte();
        st.max_per_user = 1u + s0 % 8u;
        st.ttl_s = 1 + s1 % 10;
        st.max_known = 1u + (s2 & 7u) % 6u;
        st.max_watches = (s2 >> 3) & 3u;
        if (s2 & 0x20u) st.max_bytes = 300u + 100u * (s2 >> 6);
        st.policy = static_cast<session_policy>(s3 % 3u);
        st.max_sessions = 1u + (s3 >> 2) % 4u;
        st.grace_ms = (s4 & 1u) ? 100 * (1 + ((s4 >> 1) & 15u) % 5) : 0;
        st.handler = static_cast<handler_mode>((s4 >> 5) & 3u);
        if (s4 & 0x80u) st.max_offline = 1u + (s0 >> 3) % 3u;
        st.population = (s5 & 15u) % (slot_count + 1);
        st.acks_mask = static_cast<std::uint8_t>(s5 >> 4);
        return st;
    }

    memory_inbox_options inbox_options() const {
        memory_inbox_options o;
        o.max_per_user = max_per_user;
        o.ttl = std::chrono::seconds{ttl_s};
        o.max_known_users = max_known;
        if (max_bytes) o.max_bytes = max_bytes;
        return o;
    }
};

std::string policy_text(session_policy p) {
    switch (p) {
    case session_policy::exclusive: return "exclusive";
    case session_policy::replace: return "replace";
    case session_policy::multi: return "multi";
    }
    return "?";
}

class harness {
public:
    explicit harness(const setup& st)
        : st_(st), inbox_(st.inbox_options()), r_(options(st, inbox_)),
          max_watches_(st.max_watches ? st.max_watches : switchboard::router_options{}.max_watches_per_session) {
        for (std::string_view u : distinct_users) users_[std::string(u)];
        if (st_.handler != handler_mode::none)
            r_.on_presence([this](std::string_view user, bool online, std::int64_t last_seen) {
                on_presence(user, online, last_seen);
            });
        static const char* handler_names[] = {"none", "record", "welcome", "gone"};
        trace::add("setup: inbox max_per_user " + std::to_string(st.max_per_user) + ", ttl " +
                   std::to_string(st.ttl_s) + " s, max_known_users " + std::to_string(st.max_known) +
                   ", max_watches " + (st.max_watches ? std::to_string(st.max_watches) : std::string("default")) +
                   ", max_bytes " + (st.max_bytes ? std::to_string(st.max_bytes) : std::string("default")) +
                   ", " + policy_text(st.policy) +
                   (st.policy == session_policy::multi ? " max " + std::to_string(st.max_sessions) : std::string()) +
                   ", grace " + std::to_string(st.grace_ms) + " ms, max_offline_users " +
                   std::to_string(st.max_offline) + ", handler " +
                   handler_names[static_cast<int>(st_.handler)] + ", population " + std::to_string(st.population));
        prologue();
    }

    harness(const harness&) = delete;
    harness& operator=(const harness&) = delete;

    // Runs one operation read from `in`, then checks everything. Operations (A & 0x0F; s is the
    // slot, F the flag bit; U a user-table byte, T a text byte, C a client-id byte, D a delta byte):
    //   0 open s (open already: close first)     1 close s (F: close the same id again)
    //   2 register s U (F: the name overload)   3 enable_acks s
    //   4, 13 route s U T (F: the name overload) 5 send s U T C (client id C)
    //   6 acknowledge s K (K picks 0, a ledger seq, the highest, highest + 1, huge, small)
    //   7 watch s U    8 unwatch s U            9 typing s U (F: stop)
    //   10 touch s D (the slot's id, open or stale; time += delta)   11 tick D (time += delta)
    //   12 close-and-reopen s                   14 a stale or never-valid id: W (which), X (call)
    //   15 retry: send() again the last send (cid, target, text), from slot s
    void step(byte_reader& in) {
        ++step_no_;
        const std::uint8_t a = in.byte();
        const std::size_t s = (a >> 4) & 7u;
        const bool flag = (a & 0x80u) != 0;
        switch (a & 0x0Fu) {
        case 0: op_open(s); break;
        case 1: op_close(s, flag); break;
        case 2: op_register(s, in.byte(), flag); break;
        case 3: op_enable_acks(s); break;
        case 4:
        case 13: {
            const std::uint8_t u = in.byte();
            const std::string text = read_text(in);
            op_route(s, u, text, flag);
            break;
        }
        case 5: {
            const std::uint8_t u = in.byte();
            const std::string text = read_text(in);
            const std::uint8_t c = in.byte();
            op_send(s, user_spelling(u), text, std::string(client_ids[c % std::size(client_ids)]));
            break;
        }
        case 6: op_ack(s, in.byte()); break;
        case 7: op_watch(s, in.byte()); break;
        case 8: op_unwatch(s, in.byte()); break;
        case 9: op_typing(s, in.byte(), flag); break;
        case 10: op_touch(s, in.byte()); break;
        case 11: op_tick(in.byte()); break;
        case 12: op_reopen(s); break;
        case 14: {
            const std::uint8_t which = in.byte();
            const std::uint8_t what = in.byte();
            op_stale(which, what);
            break;
        }
        case 15: op_retry(s); break;
        default: break;
        }
        end_step();
    }

    // Closes everything at the end of the input: every name must be gone, the store kept.
    void finish() {
        for (std::size_t s = 0; s < slot_count; ++s)
            if (slots_[s].open) {
                trace::add("final close " + std::to_string(s));
                close_slot(s);
                end_step();
            }
        FUZZ_CHECK(r_.session_count() == 0);
        FUZZ_CHECK(r_.user_count() == 0);
    }

private:
    static switchboard::router_options options(const setup& st, memory_inbox& inbox) {
        switchboard::router_options o;
        o.inbox = &inbox;
        o.sessions = st.policy;
        o.max_sessions_per_user = st.max_sessions;
        if (st.max_watches) o.max_watches_per_session = st.max_watches;
        o.presence_grace = std::chrono::milliseconds{st.grace_ms};
        o.max_offline_users = st.max_offline;
        return o;
    }

    void prologue() {
        constexpr std::uint8_t names[slot_count] = {0, 2, 4, 5, 6, 0, 2, 4}; // alice bob carol dave eve ...
        for (std::size_t s = 0; s < st_.population; ++s) {
            trace::add("population: slot " + std::to_string(s));
            open_slot(s);
            end_step();
            if (s < 4 && ((st_.acks_mask >> s) & 1u)) {
                op_enable_acks(s);
                end_step();
            }
            op_register(s, names[s], false);
            end_step();
        }
    }

    std::string read_text(byte_reader& in) const {
        const std::uint8_t t = in.byte();
        if (t & 0x80u) return "m" + std::to_string(step_no_);
        return std::string(texts[t % std::size(texts)]);
    }

    user_model& user(const std::string& folded) {
        const auto it = users_.find(folded);
        FUZZ_CHECK_MSG(it != users_.end(), "no model for user " + folded);
        return it->second;
    }

    // ---- expected deliveries -------------------------------------------------------------------

    // A line for slot s, unless the router closed its transport (which then drops everything).
    void expect(std::size_t s, std::string line) {
        if (slots_[s].tclosed) return;
        expected_[s].push_back(std::move(line));
    }

    static std::string msg_line(const std::string& from, const std::string& text) {
        return "msg " + from + " " + text + "\n";
    }
    static std::string dm_line(std::uint64_t seq, const std::string& from, const std::string& text) {
        return "dm " + std::to_string(seq) + " " + from + " " + text + "\n";
    }
    static std::string presence_line(const std::string& user, bool online, std::int64_t ms) {
        if (online) return "presence " + user + " online\n";
        return "presence " + user + " offline" + (ms >= 0 ? " " + std::to_string(ms) : std::string()) + "\n";
    }

    // ---- presence in the model -----------------------------------------------------------------

    void announce(const std::string& u) {
        user_model& um = user(u);
        const std::string line = presence_line(u, um.announced, um.last_seen);
        for (std::size_t j = 0; j < slot_count; ++j)
            if (slots_[j].open && slots_[j].watches(u)) {
                expect(j, line);
                ++presence_events_;
            }
        if (st_.handler != handler_mode::none)
            want_calls_.push_back(presence_call{u, um.announced, um.announced ? -1 : um.last_seen});
    }

    void came_online(const std::string& u) {
        user_model& um = user(u);
        if (um.grace_due != -1) { // back within the grace period: no event either way
            um.grace_due = -1;
            return;
        }
        if (um.announced) return;
        um.announced = true;
        announce(u);
    }

    void went_offline(const std::string& u) {
        user_model& um = user(u);
        if (st_.grace_ms > 0 && um.announced) {
            um.grace_due = now_ + st_.grace_ms;
            grace_queue_.emplace_back(u, um.grace_due);
            return;
        }
        if (um.announced) {
            um.announced = false;
            announce(u);
        }
        link_offline(u, slot_count);
    }

    // router_options::max_offline_users: offline users with no watcher and no grace period pending
    // join a list as they become so; past the bound the first of it is forgotten (its last-seen
    // time and its client ids; presence_of() then reports it as never seen).
    std::size_t watchers_of(const std::string& u, std::size_t except) const {
        std::size_t n = 0;
        for (std::size_t j = 0; j < slot_count; ++j)
            if (j != except && slots_[j].open && slots_[j].watches(u)) ++n;
        return n;
    }

    void link_offline(const std::string& u, std::size_t except) {
        user_model& um = user(u);
        if (um.in_offline_list || !um.holders.empty() || watchers_of(u, except) != 0 || um.grace_due != -1) return;
        um.in_offline_list = true;
        offline_list_.push_back(u);
        while (offline_list_.size() > st_.max_offline) {
            const std::string oldest = offline_list_.front();
            offline_list_.pop_front();
            user_model& gone = user(oldest);
            trace::amend("(forgets " + oldest + ")");
            gone.in_offline_list = false;
            gone.announced = false;
            gone.last_seen = -1;
            gone.sent.clear();
        }
    }

    void unlink_offline(const std::string& u) {
        user_model& um = user(u);
        if (!um.in_offline_list) return;
        um.in_offline_list = false;
        offline_list_.erase(std::find(offline_list_.begin(), offline_list_.end(), u));
    }

    // What the router's release() does to slot si: typing stops, watches end, the name goes; the
    // user goes offline unless `may_go_offline` is false (a replace takeover).
    void release(std::size_t si, bool may_go_offline) {
        slot_model& sl = slots_[si];
        const std::string u = sl.user;
        bool gone = false;
        if (!u.empty()) {
            user_model& um = user(u);
            um.holders.erase(std::find(um.holders.begin(), um.holders.end(), si));
            gone = um.holders.empty();
            if (gone) um.last_seen = sl.last_input >= 0 ? sl.last_input : now_;
            for (const auto& [target, at] : sl.typing) {
                if (now_ - at >= typing_timeout_ms) continue;
                for (std::size_t h : user(target).holders) expect(h, "typing " + u + " stop\n");
            }
        }
        FUZZ_CHECK(u.empty() ? sl.typing.empty() : true);
        sl.typing.clear();
        sl.user.clear();
        if (gone && may_go_offline) went_offline(u);
        // Watches last (router::release()): dropping one makes its user forgettable, and that may
        // be this session's own user, which has gone offline first.
        const std::vector<std::string> watching = std::move(sl.watching);
        sl.watching.clear();
        sl.told.clear();
        for (const std::string& w : watching) {
            if (w == u) continue; // its own user: went_offline() above (or a replace takeover)
            link_offline(w, si);
        }
    }

    // ---- the store's known users and bytes (memory_inbox_options) -------------------------------

    // The documented policy (memory_inbox_options::max_known_users): at the bound, registering a
    // new user forgets the known user that has had nothing stored for the longest; when every known
    // user has messages stored, the new user stays unknown.
    bool known(const std::string& u) const { return known_.count(u) != 0; }

    std::uint64_t highest_given() const {
        std::uint64_t h = 0;
        for (const auto& [n, um] : users_) h = std::max(h, um.max_given);
        return h;
    }

    void remember(const std::string& u) {
        if (known(u)) return;
        if (known_.size() >= st_.max_known && !forget_one()) return;
        known_[u] = ++idle_clock_;
    }

    bool forget_one() {
        std::string oldest;
        std::uint64_t since = 0;
        for (const auto& [n, when] : known_)
            if (user(n).ledger.empty() && (oldest.empty() || when < since)) {
                oldest = n;
                since = when;
            }
        if (oldest.empty()) return false;
        known_.erase(oldest);
        forgot_any_ = true;
        return true;
    }

    // u's inbox has just become empty (acknowledged, replayed or expired).
    void emptied(const std::string& u) {
        FUZZ_CHECK_MSG(known(u), "the model stored messages for " + u + ", who is not known");
        known_[u] = ++idle_clock_;
    }

    std::size_t max_bytes() const { return st_.max_bytes ? st_.max_bytes : memory_inbox_options{}.max_bytes; }

    // A ring slot each; a heap block too when sender and text do not fit inside the slot.
    static std::size_t cost(const std::string& from, const std::string& text) {
        const std::size_t bytes = from.size() + text.size();
        if (bytes <= memory_inbox::inline_bytes) return memory_inbox::slot_bytes;
        return memory_inbox::slot_bytes + bytes + memory_inbox::heap_overhead;
    }

    std::size_t stored_bytes() const {
        std::size_t n = 0;
        for (const auto& [u, um] : users_)
            for (const ledger_entry& e : um.ledger) n += cost(e.from, e.text);
        return n;
    }

    // ---- operations ----------------------------------------------------------------------------

    void op_open(std::size_t s) {
        if (slots_[s].open) {
            trace::add("open " + std::to_string(s) + " (open: close first)");
            close_slot(s);
        }
        open_slot(s);
    }

    void op_reopen(std::size_t s) {
        trace::add("close-and-reopen " + std::to_string(s));
        if (slots_[s].open) close_slot(s);
        open_slot(s);
    }

    void open_slot(std::size_t s) {
        slot_model& sl = slots_[s];
        FUZZ_CHECK(!sl.open);
        sl = slot_model{};
        sl.t = std::make_unique<probe_transport>();
        const std::size_t before = r_.session_count();
        sl.id = r_.open_session(*sl.t, switchboard::protocol::line_event_encoder::instance());
        sl.open = true;
        trace::add("open " + std::to_string(s) + " -> " + id_text(sl.id));
        FUZZ_CHECK(static_cast<bool>(sl.id));
        FUZZ_CHECK_MSG(issued_.insert(sl.id.value()).second,
                       "open_session returned an id it had returned before: " + id_text(sl.id));
        FUZZ_CHECK(r_.session_count() == before + 1);
        FUZZ_CHECK(r_.is_open(sl.id));
        FUZZ_CHECK(!r_.acks_enabled(sl.id));
    }

    void op_close(std::size_t s, bool twice) {
        slot_model& sl = slots_[s];
        trace::add("close " + std::to_string(s) + " " + id_text(sl.id) + (twice ? " twice" : ""));
        if (!sl.open) {
            check_status(r_.close_session(sl.id), status::unknown_session);
            return;
        }
        const session_id old = sl.id;
        close_slot(s);
        if (twice) check_status(r_.close_session(old), status::unknown_session);
    }

    // Closes an open slot; its transport goes to the graveyard (silent from now on).
    void close_slot(std::size_t s) {
        slot_model& sl = slots_[s];
        FUZZ_CHECK(sl.open);
        FUZZ_CHECK_MSG(sl.t->inner().received().empty(), "undrained payloads before a close");
        sl.open = false; // first: the presence handler's model sees the session gone
        release(s, true);
        sl.t->retire();
        const status st = r_.close_session(sl.id);
        check_status(st, status::ok);
        stale_.push_back(sl.id);
        graves_.push_back(std::move(sl.t));
        if (graves_.size() > kept_graves) graves_.pop_front();
        const session_id id = sl.id;
        sl = slot_model{};
        sl.id = id;
    }

    void op_register(std::size_t s, std::uint8_t u, bool by_name) {
        const spelling& sp = user_spelling(u);
        slot_model& sl = slots_[s];
        const bool use_name = by_name && sp.valid;
        trace::add("register " + std::to_string(s) + " " + id_text(sl.id) + " \"" + escaped(sp.raw) + "\"" +
                   (use_name ? " (name)" : ""));
        status want = status::ok;
        if (!sl.open || sl.tclosed) want = status::unknown_session; // replaced: retired
        else if (!sp.valid) want = status::invalid_name;
        else if (!sl.user.empty()) want = status::already_registered;
        else {
            const user_model& um = user(sp.folded);
            if (!um.holders.empty()) {
                if (st_.policy == session_policy::exclusive) want = status::name_taken;
                else if (st_.policy == session_policy::multi && um.holders.size() >= st_.max_sessions)
                    want = status::too_many_sessions;
            }
        }
        if (want == status::ok) {
            user_model& um = user(sp.folded);
            if (st_.policy == session_policy::replace && !um.holders.empty()) {
                FUZZ_CHECK(um.holders.size() == 1);
                const std::size_t old = um.holders.front();
                expect(old, "bye replaced\n");
                slots_[old].tclosed = true;
                release(old, false);
            }
            const bool first = um.holders.empty();
            um.holders.push_back(s);
            if (first) unlink_offline(sp.folded);
            sl.user = sp.folded;
            ordered_.insert(s);
            // router::register_name(): the store knows the user and the replay is queued before
            // the presence handler runs (what it sends comes after the replay).
            remember(sp.folded);
            replay(s, first);
        }
        const std::size_t replayed_plain = want == status::ok && !sl.acks && user(sp.folded).holders.size() == 1
                                               ? user(sp.folded).ledger.size()
                                               : 0;
        if (want == status::ok && user(sp.folded).holders.size() == 1) came_online(sp.folded);
        const status got = use_name ? r_.register_name(sl.id, *sp.parsed) : r_.register_name(sl.id, sp.raw);
        check_status(got, want);
        if (want != status::ok) return;
        std::deque<ledger_entry>& ledger = user(sp.folded).ledger;
        if (replayed_plain != 0) { // at-most-once: removed
            FUZZ_CHECK(ledger.size() == replayed_plain);
            ledger.clear();
            emptied(sp.folded);
        }
        bool same_known = inbox_.known_users() == known_.size();
        for (std::string_view u : distinct_users)
            same_known = same_known && inbox_.is_known(*name::parse(u)) == known(std::string(u));
        FUZZ_CHECK_MSG(same_known,
                       [&] {
                           std::string d = "after " + sp.folded + " registered, the store knows:";
                           for (std::string_view u : distinct_users)
                               if (inbox_.is_known(*name::parse(u))) d += " " + std::string(u);
                           d += "; the model (max_known_users " + std::to_string(st_.max_known) +
                                ", forgetting the user with nothing stored for the longest):";
                           for (const auto& [u, when] : known_) d += " " + u;
                           return d;
                       }());
    }

    // The model's replay to slot s that just registered (or turned acks on when registered).
    void replay(std::size_t s, bool only) {
        slot_model& sl = slots_[s];
        user_model& um = user(sl.user);
        if (!sl.acks && !only) return;
        for (const ledger_entry& e : um.ledger) {
            expect(s, sl.acks ? dm_line(e.seq, e.from, e.text) : msg_line(e.from, e.text));
            ++replayed_;
        }
        // At-most-once (acks off): removed, by op_register() once the call has returned.
    }

    void op_enable_acks(std::size_t s) {
        slot_model& sl = slots_[s];
        trace::add("enable_acks " + std::to_string(s) + " " + id_text(sl.id));
        const status want = sl.open && !sl.tclosed ? status::ok : status::unknown_session;
        if (want == status::ok && !sl.acks) {
            sl.acks = true;
            if (!sl.user.empty()) {
                ordered_.insert(s);
                replay(s, false);
            }
        }
        check_status(r_.enable_acks(sl.id), want);
    }

    void op_route(std::size_t s, std::uint8_t u, const std::string& text, bool by_name) {
        const spelling& to = user_spelling(u);
        const bool use_name = by_name && to.valid;
        trace::add("route " + std::to_string(s) + " " + id_text(slots_[s].id) + " -> \"" + escaped(to.raw) +
                   "\" \"" + escaped(text) + "\"" + (use_name ? " (name)" : ""));
        direct(s, to, text, use_name ? how::by_name : how::by_string, {});
    }

    void op_send(std::size_t s, const spelling& to, const std::string& text, const std::string& cid) {
        const spelling& target = to.valid ? to : user_spelling(0); // send() takes a valid name
        last_send_ = {cid, std::string(target.raw), text};
        trace::add("send " + std::to_string(s) + " " + id_text(slots_[s].id) + " [" + cid + "] -> " +
                   std::string(target.raw) + " \"" + escaped(text) + "\"");
        direct(s, target, text, how::send, cid);
    }

    void op_retry(std::size_t s) {
        const auto& [cid, to, text] = last_send_;
        trace::add("retry:");
        op_send(s, spelling_of(to), text, cid);
    }

    enum class how : std::uint8_t { by_string, by_name, send, callback };

    // route() (by string or name), send() with a client id, or route() from the presence handler:
    // predicted in the router's check order, run, checked, and applied to the model.
    void direct(std::size_t s, const spelling& to, const std::string& text, how h, const std::string& cid) {
        slot_model& sl = slots_[s];
        const bool ok_text = valid_text(text);
        status want = status::ok;
        if (!sl.open || sl.tclosed) want = status::unknown_session; // replaced: retired
        else if (sl.user.empty()) want = status::not_registered;
        else if (h == how::by_string && !to.valid) want = status::invalid_name;
        else if (!ok_text) want = status::invalid_text;
        const std::string sender = sl.user;

        // send(): the de-duplication window of the sending user.
        const sent_entry* dup = nullptr;
        if (h == how::send && want == status::ok) {
            for (const sent_entry& e : user(sender).sent)
                if (e.cid == cid && now_ - e.at < dedup_ttl_ms) dup = &e;
        }
        if (dup) {
            const route_result r = r_.send(sl.id, *to.parsed, text, cid);
            trace::amend("=> duplicate? " + std::string(r.duplicate ? "yes" : "no") + " " + status_text(r.code));
            FUZZ_CHECK_MSG(r.ok() && r.duplicate && r.queued == dup->queued && r.seq == dup->seq &&
                               r.delivered == 0 && r.dropped == 0 && r.deferred == 0,
                           "send() of client id " + cid + " used before (seq " + std::to_string(dup->seq) +
                               ", queued " + std::to_string(dup->queued) + "): got code " + status_text(r.code) +
                               " duplicate " + std::to_string(r.duplicate) + " queued " + std::to_string(r.queued) +
                               " seq " + std::to_string(r.seq) + " delivered " + std::to_string(r.delivered));
            ++duplicates_;
            return;
        }

        bool online = false, store = false, v1 = false;
        std::uint64_t want_seq = 0;
        if (want == status::ok) {
            user_model& tu = user(to.folded);
            online = !tu.holders.empty();
            if (online) {
                sl.typing.erase(to.folded); // a message ends the sender's typing indicator
                bool any_acks = false;
                for (std::size_t hs : tu.holders) any_acks = any_acks || slots_[hs].acks;
                v1 = tu.holders.size() == 1 && !any_acks;
                store = any_acks;
            } else {
                store = true;
            }
            bool known_again = false;
            if (store) {
                // An online user the store forgot is made known again before storing
                // (router::route_to_sessions()); a store that cannot is full.
                if (online && !known(to.folded)) {
                    remember(to.folded);
                    known_again = known(to.folded);
                }
                if (!known(to.folded)) {
                    want = online ? status::inbox_full : status::user_not_found;
                } else if (user(to.folded).ledger.size() >= st_.max_per_user ||
                           stored_bytes() + cost(sender, text) > max_bytes()) {
                    want = status::inbox_full;
                } else {
                    // A user the store knows again starts above every number it gave anyone
                    // once it has forgotten someone (memory_inbox::remember()).
                    want_seq = known_again ? (forgot_any_ ? highest_given() + 1 : 1)
                                           : inbox_.highest_seq(*to.parsed) + 1;
                }
            }
        }

        route_result r;
        switch (h) {
        case how::by_string: r = r_.route(sl.id, to.raw, text); break;
        case how::by_name:
        case how::callback: r = r_.route(sl.id, *to.parsed, text); break;
        case how::send: r = r_.send(sl.id, *to.parsed, text, cid); break;
        }
        trace::amend("=> " + status_text(r.code) + (r.queued ? " queued" : "") +
                     (r.seq ? " seq " + std::to_string(r.seq) : std::string()) + " delivered " +
                     std::to_string(r.delivered) + " dropped " + std::to_string(r.dropped) + " deferred " +
                     std::to_string(r.deferred));
        FUZZ_CHECK_MSG(r.code == want, "got " + status_text(r.code) + ", model expects " + status_text(want));
        FUZZ_CHECK(!r.duplicate);
        if (want == status::inbox_full) ++inbox_full_;
        if (want != status::ok) {
            FUZZ_CHECK_MSG(r.seq == 0 && !r.queued && r.delivered == 0 && r.dropped == 0 && r.deferred == 0,
                           "a refused message reports a delivery or a seq");
            return;
        }
        user_model& tu = user(to.folded);
        FUZZ_CHECK_MSG(r.queued == !online, "route_result::queued " + std::to_string(r.queued) + ", model: " +
                                                (online ? "online" : "offline"));
        if (store) {
            FUZZ_CHECK_MSG(r.seq == want_seq, "seq " + std::to_string(r.seq) + ", the store's next is " +
                                                  std::to_string(want_seq));
            FUZZ_CHECK_MSG(r.seq > tu.max_given, "seq " + std::to_string(r.seq) + " given to " + to.folded +
                                                     " again: it was given up to " + std::to_string(tu.max_given));
            tu.max_given = r.seq;
            tu.given[r.seq] = {sender, text};
            tu.ledger.push_back(ledger_entry{r.seq, sender, text, now_, ++appends_});
        } else {
            FUZZ_CHECK_MSG(r.seq == 0, "seq " + std::to_string(r.seq) + " for a message that is not stored");
        }
        if (online) {
            const std::uint32_t n = r.delivered + r.dropped + r.deferred;
            FUZZ_CHECK_MSG(n == tu.holders.size(), "route_result counts " + std::to_string(n) + " recipients, " +
                                                       to.folded + " has " + std::to_string(tu.holders.size()) +
                                                       " session(s)");
            if (v1 && h != how::callback) FUZZ_CHECK(r.deferred == 0);
            for (std::size_t hs : tu.holders)
                expect(hs, slots_[hs].acks ? dm_line(r.seq, sender, text) : msg_line(sender, text));
        } else {
            ++queued_;
            FUZZ_CHECK(r.delivered == 0 && r.dropped == 0 && r.deferred == 0);
            // Issue #11 C: a direct message to the user ends the typing indicator (the router only
            // forgets it for a user with a session).
            sl.typing.erase(to.folded);
        }
        if (h == how::send) {
            std::deque<sent_entry>& w = user(sender).sent;
            w.push_back(sent_entry{cid, now_, r.seq, r.queued});
            if (w.size() > dedup_window) w.pop_front();
        }
    }

    void op_ack(std::size_t s, std::uint8_t k) {
        slot_model& sl = slots_[s];
        std::uint64_t n = k >> 3;
        std::uint64_t highest = 0;
        bool known = false;
        if (sl.open && !sl.user.empty()) {
            const user_model& um = user(sl.user);
            const name& id = *spelling_of(sl.user).parsed;
            known = this->known(sl.user);
            highest = inbox_.highest_seq(id);
            switch (k % 8u) {
            case 0: n = 0; break;
            case 1: n = um.ledger.empty() ? 1 : um.ledger.front().seq; break;
            case 2: n = um.ledger.empty() ? um.max_given : um.ledger.back().seq; break;
            case 3: n = highest; break;
            case 4: n = highest + 1; break;
            case 5: n = std::numeric_limits<std::uint64_t>::max(); break;
            case 6: n = um.ledger.empty() ? n : um.ledger[um.ledger.size() / 2].seq; break;
            default: break;
            }
        }
        trace::add("acknowledge " + std::to_string(s) + " " + id_text(sl.id) + " " + std::to_string(n));
        status want = status::ok;
        if (!sl.open || sl.tclosed) want = status::unknown_session; // replaced: retired
        else if (sl.user.empty()) want = status::not_registered;
        else if (n == 0 || !known || n > highest) want = status::ack_invalid;
        check_status(r_.acknowledge(sl.id, n), want);
        if (want == status::ok) {
            std::deque<ledger_entry>& l = user(sl.user).ledger;
            const bool had = !l.empty();
            while (!l.empty() && l.front().seq <= n) l.pop_front();
            if (had && l.empty()) emptied(sl.user);
        }
    }

    void op_watch(std::size_t s, std::uint8_t u) {
        const spelling& sp = user_spelling(u);
        slot_model& sl = slots_[s];
        trace::add("watch " + std::to_string(s) + " " + id_text(sl.id) + " \"" + escaped(sp.raw) + "\"");
        status want = status::ok;
        if (!sl.open || sl.tclosed) want = status::unknown_session; // replaced: retired
        else if (sl.user.empty()) want = status::not_registered;
        else if (!sp.valid) want = status::invalid_name;
        else if (sl.watches(sp.folded)) want = status::already_watching;
        else if (sl.watching.size() >= max_watches_) want = status::too_many_watches;
        if (want == status::ok) {
            const user_model& um = user(sp.folded);
            sl.watching.push_back(sp.folded);
            unlink_offline(sp.folded); // a watched user is never forgotten
            sl.told.erase(sp.folded); // the next line is the first of this watch
            expect(s, presence_line(sp.folded, um.announced, um.last_seen));
        }
        check_status(r_.watch(sl.id, sp.valid ? *sp.parsed : name{}), want);
    }

    void op_unwatch(std::size_t s, std::uint8_t u) {
        const spelling& sp = user_spelling(u);
        slot_model& sl = slots_[s];
        trace::add("unwatch " + std::to_string(s) + " " + id_text(sl.id) + " \"" + escaped(sp.raw) + "\"");
        status want = status::ok;
        if (!sl.open || sl.tclosed) want = status::unknown_session; // replaced: retired
        else if (sl.user.empty()) want = status::not_registered;
        else if (!sp.valid) want = status::invalid_name;
        else if (!sl.watches(sp.folded)) want = status::not_watching;
        if (want == status::ok) {
            const auto it = std::find(sl.watching.begin(), sl.watching.end(), sp.folded);
            *it = sl.watching.back();
            sl.watching.pop_back();
            sl.told.erase(sp.folded);
            link_offline(sp.folded, s);
        }
        check_status(r_.unwatch(sl.id, sp.valid ? *sp.parsed : name{}), want);
    }

    void op_typing(std::size_t s, std::uint8_t u, bool stop) {
        const spelling& sp = user_spelling(u);
        slot_model& sl = slots_[s];
        trace::add("typing " + std::to_string(s) + " " + id_text(sl.id) + " -> \"" + escaped(sp.raw) + "\"" +
                   (stop ? " stop" : ""));
        status want = status::ok;
        if (!sl.open || sl.tclosed) want = status::unknown_session; // replaced: retired
        else if (sl.user.empty()) want = status::not_registered;
        else if (!sp.valid) want = status::invalid_name;
        if (want == status::ok && !user(sp.folded).holders.empty()) {
            sl.typing.erase(sp.folded);
            if (!stop) sl.typing[sp.folded] = now_;
            for (std::size_t h : user(sp.folded).holders)
                expect(h, "typing " + sl.user + (stop ? " stop\n" : "\n"));
        }
        check_status(r_.typing(sl.id, sp.valid ? *sp.parsed : name{}, stop), want);
    }

    void op_touch(std::size_t s, std::uint8_t d) {
        slot_model& sl = slots_[s];
        now_ += deltas[d % std::size(deltas)];
        trace::add("touch " + std::to_string(s) + " " + id_text(sl.id) + " at " + std::to_string(now_));
        if (sl.open && !sl.tclosed) sl.last_input = now_;
        r_.touch(sl.id, now_);
        FUZZ_CHECK(r_.now() == now_);
    }

    void op_tick(std::uint8_t d) {
        now_ += deltas[d % std::size(deltas)];
        trace::add("tick " + std::to_string(now_));
        // Grace periods that end, in the order they began. (The order of two users' events at one
        // tick is not specified; the model follows the router's queue, in which a grace period
        // cancelled and begun again at the same time keeps its first place.)
        while (!grace_queue_.empty() && grace_queue_.front().second <= now_) {
            const auto [u, due] = grace_queue_.front();
            grace_queue_.pop_front();
            user_model& um = user(u);
            if (um.grace_due != due) continue;
            um.grace_due = -1;
            um.announced = false;
            announce(u);
            link_offline(u, slot_count);
        }
        r_.tick(now_);
        FUZZ_CHECK(r_.now() == now_);
        // The inbox TTL (after the grace ends, as the router runs them).
        // Messages leave in the order they were stored (an inbox that becomes empty counts then).
        const std::int64_t ttl_ms = st_.ttl_s * 1000;
        std::vector<std::pair<std::uint64_t, std::string>> expired;
        for (const auto& [u, um] : users_)
            for (const ledger_entry& e : um.ledger)
                if (now_ - e.at >= ttl_ms) expired.emplace_back(e.order, u);
        std::sort(expired.begin(), expired.end());
        for (const auto& [order, u] : expired) {
            std::deque<ledger_entry>& l = user(u).ledger;
            FUZZ_CHECK(!l.empty() && l.front().order == order);
            l.pop_front();
            if (l.empty()) emptied(u);
        }
    }

    // A call with an id that is not open: one of the last closed ones, or one never issued.
    void op_stale(std::uint8_t which, std::uint8_t what) {
        session_id id;
        if (!stale_.empty() && which % 4u != 0) id = stale_[(which >> 2) % stale_.size()];
        else if (which % 8u == 4) id = session_id::make(1000u + which, 1);
        // else: the null id
        const name alice = *name::parse("alice");
        trace::add("stale id " + id_text(id) + ", call " + std::to_string(what % 10u));
        status got = status::ok;
        switch (what % 10u) {
        case 0: got = r_.register_name(id, "alice"); break;
        case 1: got = r_.enable_acks(id); break;
        case 2: got = r_.route(id, "alice", "stale").code; break;
        case 3: got = r_.send(id, alice, "stale", "c1").code; break;
        case 4: got = r_.acknowledge(id, 1); break;
        case 5: got = r_.watch(id, alice); break;
        case 6: got = r_.unwatch(id, alice); break;
        case 7: got = r_.typing(id, alice, false); break;
        case 8: got = r_.close_session(id); break;
        case 9:
            got = status::unknown_session;
            FUZZ_CHECK(!r_.acks_enabled(id));
            FUZZ_CHECK(r_.name_of(id).empty());
            break;
        }
        check_status(got, status::unknown_session);
    }

    // ---- the presence handler ------------------------------------------------------------------

    void on_presence(std::string_view user_view, bool online, std::int64_t last_seen) {
        const std::string u(user_view);
        got_calls_.push_back(presence_call{u, online, last_seen});
        trace::add("  on_presence " + call_text(got_calls_.back()));
        if (st_.handler == handler_mode::welcome && online) {
            // The user's newest session messages itself (deliveries deferred: docs/design.md).
            const user_model& um = user(u);
            FUZZ_CHECK_MSG(!um.holders.empty(), "online presence call for a user with no session");
            trace::add("  welcome: route " + std::to_string(um.holders.back()) + " -> " + u);
            direct(um.holders.back(), spelling_of(u), "welcome", how::callback, {});
        } else if (st_.handler == handler_mode::gone && !online) {
            for (std::size_t j = 0; j < slot_count; ++j)
                if (slots_[j].open && !slots_[j].user.empty() && slots_[j].user != u) {
                    trace::add("  gone: route " + std::to_string(j) + " -> " + u);
                    direct(j, spelling_of(u), "gone " + u, how::callback, {});
                    break;
                }
        }
    }

    // ---- after every step ----------------------------------------------------------------------

    void end_step() {
        drain_and_compare();
        check_invariants();
    }

    // Checks each received payload (one line of the grammar; the line invariants), compares
    // what each slot received with the model's expectations, then drains the transports.
    void drain_and_compare() {
        for (std::size_t s = 0; s < slot_count; ++s) {
            slot_model& sl = slots_[s];
            std::vector<std::string> want;
            if (auto it = expected_.find(s); it != expected_.end()) want = std::move(it->second);
            if (!sl.open) {
                FUZZ_CHECK_MSG(want.empty(), "the model expects a delivery to a closed slot");
                continue;
            }
            std::vector<std::string> got;
            for (const payload& p : sl.t->inner().received()) {
                const std::string_view v = p.view();
                FUZZ_CHECK_MSG(!v.empty() && v.back() == '\n' && v.find('\n') == v.size() - 1,
                               "slot " + std::to_string(s) + " received a payload that is not one line: \"" +
                                   escaped(v) + "\"");
                trace::amend("[" + std::to_string(s) + "] " + escaped(v));
                observe(s, v.substr(0, v.size() - 1));
                got.emplace_back(v);
            }
            auto listing = [&] {
                std::string d = "slot " + std::to_string(s) + " " + id_text(sl.id) + " received:";
                for (const std::string& g : got) d += " \"" + escaped(g) + "\"";
                d += "; model expects" + std::string(ordered_.count(s) ? " (in this order):" : ":");
                for (const std::string& w : want) d += " \"" + escaped(w) + "\"";
                return d;
            };
            if (ordered_.count(s)) {
                FUZZ_CHECK_MSG(got == want, listing());
            } else {
                std::vector<std::string> a = got, b = want;
                std::sort(a.begin(), a.end());
                std::sort(b.begin(), b.end());
                FUZZ_CHECK_MSG(a == b, listing());
            }
            FUZZ_CHECK_MSG(sl.t->inner().closed() == sl.tclosed,
                           "slot " + std::to_string(s) + ": transport closed " +
                               std::to_string(sl.t->inner().closed()) + ", model " + std::to_string(sl.tclosed));
            if (sl.tclosed) FUZZ_CHECK(sl.t->inner().closed_with() == close_mode::after_flush);
            (void)sl.t->inner().take_bytes();
        }
        for (const auto& [s, want] : expected_)
            FUZZ_CHECK_MSG(want.empty() || s < slot_count, "expected delivery to an unknown slot");
        expected_.clear();
        ordered_.clear();
        for (const auto& g : graves_) {
            FUZZ_CHECK_MSG(g->inner().received().empty(), "a closed session's transport received a payload");
            FUZZ_CHECK_MSG(g->late_calls() == 0, "a closed session's transport was called after close_session");
        }
        FUZZ_CHECK_MSG(got_calls_ == want_calls_, [&] {
            std::string d = "on_presence calls:";
            for (const presence_call& c : got_calls_) d += " [" + call_text(c) + "]";
            d += "; model expects:";
            for (const presence_call& c : want_calls_) d += " [" + call_text(c) + "]";
            return d;
        }());
        got_calls_.clear();
        want_calls_.clear();
    }

    // The invariants on one received line (without its LF), in arrival order.
    void observe(std::size_t s, std::string_view line) {
        slot_model& sl = slots_[s];
        const std::optional<event_line> e = parse_event(line);
        FUZZ_CHECK_MSG(e.has_value(), "slot " + std::to_string(s) + " received a line outside the v1.2 event "
                                      "grammar: \"" + escaped(line) + "\"");
        switch (e->kind) {
        case event_line::dm: {
            FUZZ_CHECK_MSG(!sl.user.empty(), "a dm line to an unregistered session");
            const user_model& um = user(sl.user);
            const auto it = um.given.find(e->seq);
            FUZZ_CHECK_MSG(it != um.given.end(), "dm seq " + std::to_string(e->seq) +
                                                     " to slot " + std::to_string(s) + " (" + sl.user +
                                                     "): the store never gave " + sl.user + " that seq");
            FUZZ_CHECK_MSG(it->second.first == e->user && it->second.second == e->text,
                           "dm " + std::to_string(e->seq) + " to " + sl.user + " is \"" + escaped(line) +
                               "\", the store gave that seq to the message from " + it->second.first + " \"" +
                               escaped(it->second.second) + "\"");
            std::uint64_t& last = sl.last_dm[sl.user];
            FUZZ_CHECK_MSG(e->seq > last, "slot " + std::to_string(s) + " (" + sl.user + ") received dm " +
                                              std::to_string(e->seq) + " after dm " + std::to_string(last) +
                                              ": a session's dm lines must come in seq order, each once");
            last = e->seq;
            break;
        }
        case event_line::presence: {
            FUZZ_CHECK_MSG(sl.watches(e->user), "slot " + std::to_string(s) + " got a presence line for " +
                                                          e->user + ", which it does not watch");
            const auto it = sl.told.find(e->user);
            FUZZ_CHECK_MSG(it == sl.told.end() || it->second.online != e->online,
                           "slot " + std::to_string(s) + ": presence of " + e->user + " repeated \"" + escaped(line) +
                               "\": events must alternate online/offline");
            sl.told[e->user] = told_state{e->online, e->ms};
            break;
        }
        case event_line::msg:
        case event_line::typing:
        case event_line::bye: break;
        }
    }

    void check_invariants() {
        std::size_t open = 0, online_users = 0;
        for (std::size_t s = 0; s < slot_count; ++s) {
            const slot_model& sl = slots_[s];
            if (!sl.open) {
                if (sl.id) {
                    FUZZ_CHECK(!r_.is_open(sl.id));
                    FUZZ_CHECK(r_.name_of(sl.id).empty());
                    FUZZ_CHECK(!r_.acks_enabled(sl.id));
                }
                continue;
            }
            ++open;
            if (sl.tclosed) { // replaced: retired, closed for every call but close_session()
                FUZZ_CHECK(!r_.is_open(sl.id) && r_.name_of(sl.id).empty() && !r_.acks_enabled(sl.id));
                continue;
            }
            FUZZ_CHECK(r_.is_open(sl.id));
            FUZZ_CHECK_MSG(r_.name_of(sl.id) == sl.user, "slot " + std::to_string(s) + ": name_of \"" +
                                                             std::string(r_.name_of(sl.id)) + "\", model \"" +
                                                             sl.user + "\"");
            FUZZ_CHECK(r_.is_registered(sl.id) == !sl.user.empty());
            FUZZ_CHECK(r_.acks_enabled(sl.id) == sl.acks);
        }
        FUZZ_CHECK(r_.session_count() == open);

        // Stale ids stay closed.
        const std::size_t first = stale_.size() > checked_stale ? stale_.size() - checked_stale : 0;
        for (std::size_t k = first; k < stale_.size(); ++k) {
            FUZZ_CHECK(!r_.is_open(stale_[k]));
            FUZZ_CHECK(r_.name_of(stale_[k]).empty());
        }

        std::uint64_t highest_anywhere = 0;
        std::size_t stored_total = 0;
        for (auto& [u, um] : users_) highest_anywhere = std::max(highest_anywhere, um.max_given);
        for (auto& entry : users_) {
            const std::string& u = entry.first;
            const user_model& um = entry.second;
            const name& id = *spelling_of(u).parsed;
            // Sessions of the user (4).
            const std::size_t n = r_.sessions_of(id);
            FUZZ_CHECK_MSG(n == um.holders.size(), "sessions_of(" + u + ") " + std::to_string(n) + ", model " +
                                                       std::to_string(um.holders.size()));
            FUZZ_CHECK_MSG(n <= (st_.policy == session_policy::multi ? st_.max_sessions : 1),
                           "sessions_of(" + u + ") " + std::to_string(n) + " under " + policy_text(st_.policy));
            if (!um.holders.empty()) {
                ++online_users;
                const session_id newest = slots_[um.holders.back()].id;
                FUZZ_CHECK_MSG(r_.find(id) == newest, "find(" + u + ") " + id_text(r_.find(id)) + ", model " +
                                                          id_text(newest));
                for (std::size_t h : um.holders) FUZZ_CHECK(slots_[h].open && slots_[h].user == u);
            } else {
                FUZZ_CHECK(!r_.find(id));
            }
            // Presence (3): the router's state is the model's, and what each watcher was told last.
            const switchboard::presence_info p = r_.presence_of(id);
            FUZZ_CHECK_MSG(p.online == um.announced && (um.announced || p.last_seen == um.last_seen),
                           "presence_of(" + u + "): " + (p.online ? "online" : "offline") + " " +
                               std::to_string(p.last_seen) + ", model " + (um.announced ? "online" : "offline") +
                               " " + std::to_string(um.last_seen));
            for (std::size_t s = 0; s < slot_count; ++s) {
                const slot_model& sl = slots_[s];
                if (!sl.open || sl.tclosed || !sl.watches(u)) continue;
                const auto it = sl.told.find(u);
                FUZZ_CHECK_MSG(it != sl.told.end(), "slot " + std::to_string(s) + " watches " + u +
                                                        " but was never told its presence");
                FUZZ_CHECK_MSG(it->second.online == p.online && (p.online || it->second.ms == p.last_seen),
                               "slot " + std::to_string(s) + " was last told " + u + " is " +
                                   (it->second.online ? "online" : "offline " + std::to_string(it->second.ms)) +
                                   ", presence_of says " +
                                   (p.online ? "online" : "offline " + std::to_string(p.last_seen)));
            }
            // The store (1, 2): exactly the ledger, and sequence numbers above all given.
            const std::size_t stored = inbox_.stored(id);
            std::vector<stored_message> in_store;
            inbox_.for_each(id, [&](const switchboard::stored_message_view& m) { in_store.push_back(m.owned()); });
            auto ledger_text = [&] {
                std::string d = "store for " + u + ":";
                for (const stored_message& m : in_store)
                    d += " [" + std::to_string(m.seq) + " " + m.from + " \"" + escaped(m.text) + "\" @" +
                         std::to_string(m.stored_ms) + "]";
                d += " (stored() " + std::to_string(stored) + "); ledger:";
                for (const ledger_entry& e : um.ledger)
                    d += " [" + std::to_string(e.seq) + " " + e.from + " \"" + escaped(e.text) + "\" @" +
                         std::to_string(e.at) + "]";
                return d;
            };
            bool same = stored == um.ledger.size() && in_store.size() == um.ledger.size();
            for (std::size_t k = 0; same && k < in_store.size(); ++k) {
                const stored_message& m = in_store[k];
                const ledger_entry& e = um.ledger[k];
                same = m.seq == e.seq && m.from == e.from && m.text == e.text && m.stored_ms == e.at;
            }
            FUZZ_CHECK_MSG(same, "the store differs from the ledger (a message dropped, kept, or changed): " +
                                     ledger_text());
            if (!um.ledger.empty()) FUZZ_CHECK_MSG(inbox_.is_known(id), "a user with stored messages is unknown");
            FUZZ_CHECK_MSG(inbox_.is_known(id) == known(u), "is_known(" + u + ") " +
                                                              std::to_string(inbox_.is_known(id)) + ", model " +
                                                              std::to_string(known(u)));
            if (inbox_.is_known(id)) {
                const std::uint64_t h = inbox_.highest_seq(id);
                FUZZ_CHECK_MSG(h >= um.max_given && h <= highest_anywhere,
                               "highest_seq(" + u + ") " + std::to_string(h) + ", given to " + u + " up to " +
                                   std::to_string(um.max_given) + ", to anyone up to " +
                                   std::to_string(highest_anywhere));
            }
            stored_total += stored;
        }
        FUZZ_CHECK(inbox_.message_count() == stored_total);
        FUZZ_CHECK_MSG(inbox_.bytes() == stored_bytes(), "memory_inbox::bytes() " + std::to_string(inbox_.bytes()) +
                                                             ", model " + std::to_string(stored_bytes()));
        FUZZ_CHECK(inbox_.known_users() <= st_.max_known);
        FUZZ_CHECK(inbox_.known_users() == known_.size());
        FUZZ_CHECK_MSG(r_.user_count() == online_users, "user_count " + std::to_string(r_.user_count()) +
                                                            ", model " + std::to_string(online_users));

        const auto& c = r_.counters();
        auto counts = [](std::initializer_list<std::uint64_t> values) {
            std::string out;
            for (std::uint64_t v : values) out += (out.empty() ? "" : "/") + std::to_string(v);
            return out;
        };
        FUZZ_CHECK_MSG(c.queued == queued_ && c.inbox_full == inbox_full_ && c.replayed == replayed_ &&
                           c.presence_events == presence_events_ && c.duplicates == duplicates_,
                       "counters queued/inbox_full/replayed/presence_events/duplicates " +
                           counts({c.queued, c.inbox_full, c.replayed, c.presence_events, c.duplicates}) +
                           ", model " + counts({queued_, inbox_full_, replayed_, presence_events_, duplicates_}));
    }

    setup st_;
    memory_inbox inbox_; // declared before the router, which points to it
    router r_;           // every session is closed (finish()) before the transports go
    const std::size_t max_watches_;
    std::array<slot_model, slot_count> slots_;
    std::map<std::string, user_model> users_; // the five valid folded names
    std::int64_t now_ = 0;
    std::deque<std::pair<std::string, std::int64_t>> grace_queue_; // (user, due), in the order begun
    std::deque<std::string> offline_list_; // users that may be forgotten, oldest first
    std::size_t step_no_ = 0;
    std::map<std::string, std::uint64_t> known_; // the store's known users -> when their inbox became empty
    std::uint64_t idle_clock_ = 0, appends_ = 0;
    bool forgot_any_ = false; // the store has forgotten a known user (memory_inbox)
    std::vector<session_id> stale_;
    std::set<std::uint64_t> issued_;
    std::deque<std::unique_ptr<probe_transport>> graves_;
    std::map<std::size_t, std::vector<std::string>> expected_; // this step: slot -> lines
    std::set<std::size_t> ordered_;                            // slots whose lines are compared in order
    std::vector<presence_call> want_calls_, got_calls_;
    std::tuple<std::string, std::string, std::string> last_send_{"c1", "alice", "hi"};
    std::uint64_t queued_ = 0, inbox_full_ = 0, replayed_ = 0, presence_events_ = 0, duplicates_ = 0;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const trace::scope trace_for_this_input;
    byte_reader in(data, size);
    harness h(setup::read(in));
    for (std::size_t steps = 0; !in.empty() && steps < max_steps; ++steps) h.step(in);
    h.finish();
    return 0;
}
