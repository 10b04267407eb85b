// router_fuzz: libFuzzer target for switchboard::router. The input is a program of operations on
// up to 8 session slots (open, close, register, join, leave, route, publish, send, disconnect,
// close-and-reopen, calls with stale ids, user-not-found handler changes), run against the router
// and against a shadow model (std::map/std::set) of who holds which name and who is in which room.
// After every operation the router's answers, the payloads each in_memory_transport received and
// all of the router's queries are compared with the model; any mismatch aborts.
//
// Input format (any byte string is valid; reads past the end yield 0):
//   a setup of 5 bytes, so that one mutation reaches a busy or a limited router:
//     P0 % 9 sessions are opened (slots 0..), those whose bit is set in P1 register a distinct
//     name, and those of them whose bit is set in P2 join room "lobby" (each through the checked
//     operations below); P3 bit 7: router_options::max_rooms_per_session = 1 + (P3 & 7) (else
//     the default, 64, which the 8 rooms here never reach); P4 bit 7: max_room_members =
//     1 + (P4 & 7) (else unbounded); P4 bit 6: an authorizer that refuses "eve", and names
//     starting with "a" unless the credential is "pw";
//   then, repeated: A [arguments]
//     A & 0x0F    operation (table in `step()` below), (A >> 4) & 7  slot, A >> 7  variant flag
//   names and rooms are picked from small tables by an argument byte, so collisions, case folding
//   and invalid spellings are frequent. Texts: a length byte (% 8), then that many bytes.
// Built with -fsanitize=fuzzer (SWITCHBOARD_BUILD_FUZZ, scripts/fuzz), or with replay_main.cpp
// as router_fuzz_replay, which replays tests/fuzz/corpus/router_fuzz/ under CTest.
#include "fuzz_support.hpp"

#include <switchboard/in_memory_transport.hpp>
#include <switchboard/payload.hpp>
#include <switchboard/router.hpp>
#include <switchboard/session_id.hpp>
#include <switchboard/status.hpp>
#include <switchboard/protocol/line.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using switchboard::close_mode;
using switchboard::fanout_scope;
using switchboard::in_memory_transport;
using switchboard::name;
using switchboard::payload;
using switchboard::route_result;
using switchboard::router;
using switchboard::session_id;
using switchboard::status;
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

// User names: case variants of one name, a 40-byte name, and invalid spellings.
constexpr std::string_view user_names[] = {
    "alice", "Alice", "ALICE", "bob", "Bob", "carol", "dave", "eve", "x", "a.b-c_d",
    "Q234567890123456789012345678901234567890",  // 40 bytes: valid
    "q234567890123456789012345678901234567890x", // 41 bytes: invalid
    "", "bad name", "bad!", "caf\xc3\xa9", "alice ",
};
// Room names: 8 distinct valid rooms once folded (so a session is in at most 8 rooms), some
// sharing a spelling with a user name, plus invalid spellings.
constexpr std::string_view room_names[] = {
    "lobby", "LOBBY", "Lobby", "dev", "DEV", "alice", "r1", "r2", "r3", "r4", "x",
    "", "no space", "#lobby", "r2345678901234567890123456789012345678901", // 41 bytes
};

// One entry of a name table, worked out once (the checks after every step walk the tables).
struct spelling {
    std::string_view raw;
    bool valid;
    std::string folded;
    std::optional<name> parsed; // name::parse(raw): must agree with `valid` and `folded`
};

template <std::size_t N>
std::vector<spelling> make_table(const std::string_view (&raws)[N]) {
    std::vector<spelling> out;
    for (std::string_view raw : raws) {
        spelling sp{raw, reference_valid_name(raw), reference_fold(raw), name::parse(raw)};
        FUZZ_CHECK_MSG(sp.parsed.has_value() == sp.valid && (!sp.valid || sp.parsed->view() == sp.folded),
                       "name::parse disagrees with the model on \"" + escaped(raw) + "\"");
        out.push_back(std::move(sp));
    }
    return out;
}

const spelling& user_spelling(std::size_t i) {
    static const std::vector<spelling> table = make_table(user_names);
    return table[i % table.size()];
}
const spelling& room_spelling(std::size_t i) {
    static const std::vector<spelling> table = make_table(room_names);
    return table[i % table.size()];
}
// The distinct valid rooms once folded (8), as names.
const std::vector<std::pair<std::string, name>>& distinct_rooms() {
    static const std::vector<std::pair<std::string, name>> rooms = [] {
        std::vector<std::pair<std::string, name>> out;
        for (std::size_t i = 0; i < std::size(room_names); ++i) {
            const spelling& sp = room_spelling(i);
            if (!sp.valid) continue;
            bool seen = false;
            for (const auto& r : out) seen = seen || r.first == sp.folded;
            if (!seen) out.emplace_back(sp.folded, *sp.parsed);
        }
        return out;
    }();
    return rooms;
}

std::string id_text(session_id id) {
    return std::to_string(id.index()) + "/" + std::to_string(id.generation());
}

std::string status_text(status s) { return std::string(to_string(s)); }

std::string expect_text(status got, status want) {
    return "got " + status_text(got) + ", model expects " + status_text(want);
}

// Records the outcome in the trace, then compares it with the model's.
void check_status(status got, status want) {
    trace::amend("=> " + status_text(got));
    FUZZ_CHECK_MSG(got == want, expect_text(got, want));
}

// The model's copy of an in_memory_transport's state. The harness drains every transport after
// each step, so a bounded transport starts each step with nothing queued.
struct transport_model {
    std::size_t bound = std::numeric_limits<std::size_t>::max();
    bool closed = false;
    close_mode mode = close_mode::after_flush;
};

struct slot_state {
    std::unique_ptr<in_memory_transport> t;
    transport_model tm;
    session_id id{}; // the open session's id, or the last one this slot had (stale), or null
    bool open = false;
    std::string user; // folded name; empty when unregistered
    std::set<std::string> rooms;
};

struct not_found_call {
    session_id from;
    std::string target;
    std::string text;
};

// The first bytes of the input: the router's options and a starting population.
struct setup {
    std::size_t sessions = 0;
    std::uint8_t registered = 0; // bit i: slot i registers a name
    std::uint8_t in_lobby = 0;   // bit i: slot i (if registered) joins "lobby"
    std::size_t max_rooms = 0;   // 0: router_options' default
    std::size_t max_members = 0; // 0: router_options' default (unbounded)
    bool authorizer = false;

    static setup read(byte_reader& in) {
        setup st;
        st.sessions = in.byte() % (slot_count + 1);
        st.registered = in.byte();
        st.in_lobby = in.byte();
        const std::uint8_t rooms = in.byte(), members = in.byte();
        if (rooms & 0x80u) st.max_rooms = 1u + (rooms & 7u);
        if (members & 0x80u) st.max_members = 1u + (members & 7u);
        st.authorizer = (members & 0x40u) != 0;
        return st;
    }

    switchboard::router_options options() const {
        switchboard::router_options o; // the defaults, unless the input sets a limit
        if (max_rooms) o.max_rooms_per_session = max_rooms;
        if (max_members) o.max_room_members = max_members;
        return o;
    }
};

// The authorizer's policy, as the model knows it.
status authorize(std::string_view folded, std::string_view credential) {
    if (folded == "eve") return status::auth_failed;
    if (!folded.empty() && folded[0] == 'a' && credential != "pw") return status::auth_failed;
    return status::ok;
}

struct auth_call {
    session_id s;
    std::string user;
    std::string credential;
};

class harness {
public:
    explicit harness(const setup& st)
        : r_(st.options()),
          max_rooms_(st.max_rooms ? st.max_rooms : std::numeric_limits<std::size_t>::max()),
          max_members_(st.max_members ? st.max_members : std::numeric_limits<std::size_t>::max()),
          authorizer_(st.authorizer) {
        install_handler();
        if (authorizer_) {
            r_.set_authorizer([this](session_id s, const name& user, std::string_view credential) {
                auth_calls_.push_back(auth_call{s, std::string(user.view()), std::string(credential)});
                return authorize(user.view(), credential);
            });
        }
        trace::add("setup: " + std::to_string(st.sessions) + " session(s), max_rooms_per_session " +
                   (st.max_rooms ? std::to_string(st.max_rooms) : std::string("default")) +
                   ", max_room_members " +
                   (st.max_members ? std::to_string(st.max_members) : std::string("default")) +
                   (authorizer_ ? ", authorizer" : ""));
        prologue(st);
    }

    harness(const harness&) = delete;
    harness& operator=(const harness&) = delete;

    // Runs one operation read from `in`, then checks everything. Operations (A & 0x0F; s is the
    // slot, F the flag bit; U, R: a user / room table index byte; T: a text):
    //   0 open s (already open: close, then open); a byte: a bounded transport when % 4 == 0
    //   1 close s (F: close the same id again)    2, 15 register s U (U bit 7: credential "pw";
    //   3, 12 join s R   4 leave s R              F: the name overload)
    //   5, 14 route s U T (F: name overload)      6, 13 publish s R T (F: all_members; R bit 7:
    //   7 send s: a length byte, then bytes       the name overload)
    //   8 disconnect s (F: abort)                 9 close-and-reopen s; a byte as for open
    //   10 a call with a stale or never-valid id: which id, which call, U, R
    //   11 user-not-found handler: record / bounce (send() back from inside it) / none
    void step(byte_reader& in) {
        const std::uint8_t a = in.byte();
        const std::size_t s = (a >> 4) & 7u;
        const bool flag = (a & 0x80u) != 0;
        switch (a & 0x0Fu) {
        case 0: op_open(s, in.byte()); break;
        case 1: op_close(s, flag); break;
        case 2:
        case 15: op_register(s, in.byte(), flag); break;
        case 3:
        case 12: op_join(s, in.byte(), flag); break;
        case 4: op_leave(s, in.byte(), flag); break;
        case 5:
        case 14: {
            const std::uint8_t to = in.byte();
            op_route(s, to, read_text(in), flag);
            break;
        }
        case 6:
        case 13: {
            const std::uint8_t room = in.byte();
            op_publish(s, room, read_text(in), flag);
            break;
        }
        case 7: {
            const std::size_t n = 1 + in.byte() % 15u;
            op_send(s, in.take(n));
            break;
        }
        case 8: op_disconnect(s, flag ? close_mode::abort : close_mode::after_flush); break;
        case 9: op_reopen(s, in.byte()); break;
        case 10: {
            const std::uint8_t which = in.byte();
            const std::uint8_t what = in.byte();
            op_stale(which, what, in);
            break;
        }
        case 11: op_handler(in.byte()); break;
        default: break;
        }
        drain_and_compare();
        check_invariants();
    }

    // A ready-made population (see the input format above).
    void prologue(const setup& st) {
        // Distinct valid names (indices into user_names; with the authorizer on, the credential
        // bit is set so that "alice" and "a.b-c_d" pass and only "eve" is refused).
        constexpr std::uint8_t names[slot_count] = {0x80, 3, 5, 6, 7, 8, 0x80 | 9, 10};
        for (std::size_t s = 0; s < st.sessions; ++s) {
            open_slot(s, 1);
            if ((st.registered >> s) & 1u) op_register(s, names[s], false);
            if ((st.registered >> s) & (st.in_lobby >> s) & 1u) op_join(s, 0, false);
            drain_and_compare();
            check_invariants();
        }
    }

    // Closes everything at the end of the input: every name and room must be gone.
    void finish() {
        for (std::size_t s = 0; s < slot_count; ++s)
            if (slots_[s].open) {
                trace::add("final close " + std::to_string(s));
                close_slot(s);
                drain_and_compare();
                check_invariants();
            }
        FUZZ_CHECK(r_.session_count() == 0);
        FUZZ_CHECK(r_.user_count() == 0);
        FUZZ_CHECK(r_.room_count() == 0);
        FUZZ_CHECK(r_.users().empty());
    }

private:
    // ---- operations ------------------------------------------------------------------------

    static std::string read_text(byte_reader& in) {
        const std::size_t n = in.byte() % 8u;
        return std::string(in.take(n));
    }

    void op_open(std::size_t s, std::uint8_t bound_byte) {
        if (slots_[s].open) {
            trace::add("open " + std::to_string(s) + " (already open: close and reopen)");
            close_slot(s);
        }
        open_slot(s, bound_byte);
    }

    void op_reopen(std::size_t s, std::uint8_t bound_byte) {
        trace::add("close-and-reopen " + std::to_string(s));
        if (slots_[s].open) close_slot(s);
        open_slot(s, bound_byte);
    }

    void open_slot(std::size_t s, std::uint8_t bound_byte) {
        slot_state& sl = slots_[s];
        FUZZ_CHECK(!sl.open);
        sl.t = bound_byte % 4u == 0 ? std::make_unique<in_memory_transport>(16u + (bound_byte >> 2) % 48u)
                                    : std::make_unique<in_memory_transport>();
        sl.tm = transport_model{};
        if (bound_byte % 4u == 0) sl.tm.bound = 16u + (bound_byte >> 2) % 48u;
        const std::size_t before = r_.session_count();
        sl.id = r_.open_session(*sl.t, switchboard::protocol::line_event_encoder::instance());
        sl.open = true;
        sl.user.clear();
        sl.rooms.clear();
        trace::add("open " + std::to_string(s) + " -> " + id_text(sl.id) +
                   (sl.tm.bound == std::numeric_limits<std::size_t>::max()
                        ? std::string()
                        : " bound " + std::to_string(sl.tm.bound)));
        FUZZ_CHECK(static_cast<bool>(sl.id));
        FUZZ_CHECK(sl.id.generation() != 0);
        FUZZ_CHECK_MSG(issued_.insert(sl.id.value()).second,
                       "open_session returned an id it had returned before: " + id_text(sl.id));
        FUZZ_CHECK(r_.session_count() == before + 1);
        FUZZ_CHECK(r_.is_open(sl.id));
        FUZZ_CHECK(!r_.is_registered(sl.id));
        FUZZ_CHECK(r_.name_of(sl.id).empty());
        FUZZ_CHECK(r_.rooms_of(sl.id) == 0);
    }

    void op_close(std::size_t s, bool twice) {
        slot_state& sl = slots_[s];
        trace::add("close " + std::to_string(s) + " " + id_text(sl.id) + (twice ? " twice" : ""));
        if (!sl.open) {
            const status st = r_.close_session(sl.id);
            check_status(st, status::unknown_session);
            return;
        }
        const session_id old = sl.id;
        close_slot(s);
        if (twice) {
            const status st = r_.close_session(old);
            FUZZ_CHECK_MSG(st == status::unknown_session,
                           "second close_session of " + id_text(old) + ": " +
                               expect_text(st, status::unknown_session));
        }
    }

    // Closes an open slot: remaining members of each of its rooms get `leave <room> <user>`, the
    // name is released, the transport goes to the graveyard (silent from now on).
    void close_slot(std::size_t s) {
        slot_state& sl = slots_[s];
        FUZZ_CHECK(sl.open);
        for (const std::string& room : sl.rooms) {
            std::set<std::size_t>& members = rooms_[room];
            members.erase(s);
            for (std::size_t m : members) expect(m, "leave " + room + " " + sl.user + "\n");
            if (members.empty()) rooms_.erase(room);
        }
        if (!sl.user.empty()) holders_.erase(sl.user);
        const status st = r_.close_session(sl.id);
        FUZZ_CHECK_MSG(st == status::ok, expect_text(st, status::ok));
        // What the closing session itself was sent before the close must be nothing new: it was
        // drained at the end of the previous step and close_session() sends it nothing.
        FUZZ_CHECK_MSG(sl.t->received().empty(), "close_session delivered to the closing session");
        sl.open = false;
        sl.user.clear();
        sl.rooms.clear();
        stale_.push_back(sl.id);
        graves_.push_back(std::move(sl.t));
        if (graves_.size() > kept_graves) graves_.pop_front(); // ASan catches any later use
    }

    // `which`: bits 0..6 pick the name, bit 7 presents the credential "pw".
    void op_register(std::size_t s, std::uint8_t which, bool by_name) {
        slot_state& sl = slots_[s];
        const spelling& sp = user_spelling(which & 0x7Fu);
        const std::string_view raw = sp.raw;
        const std::string_view credential = (which & 0x80u) ? "pw" : "";
        const bool valid = sp.valid;
        const std::string& folded = sp.folded;
        // The order router::register_name documents: unknown_session, invalid_name,
        // already_registered, the authorizer's verdict, name_taken.
        const bool asks_authorizer = authorizer_ && sl.open && valid && sl.user.empty();
        const status verdict = asks_authorizer ? authorize(folded, credential) : status::ok;
        status want;
        if (!sl.open) want = status::unknown_session;
        else if (!valid) want = status::invalid_name;
        else if (!sl.user.empty()) want = status::already_registered;
        else if (verdict != status::ok) want = verdict;
        else if (holders_.count(folded)) want = status::name_taken;
        else want = status::ok;
        const bool use_name = by_name && valid;
        trace::add("register " + std::to_string(s) + " " + id_text(sl.id) + " \"" + escaped(raw) + "\"" +
                   (credential.empty() ? "" : " pw") + (use_name ? " (name overload)" : ""));
        auth_calls_.clear();
        status got;
        if (use_name) {
            got = r_.register_name(sl.id, *sp.parsed, credential);
        } else {
            got = r_.register_name(sl.id, raw, credential);
        }
        check_status(got, want);
        FUZZ_CHECK_MSG(auth_calls_.size() == (asks_authorizer ? 1u : 0u),
                       "authorizer called " + std::to_string(auth_calls_.size()) + " time(s)");
        if (asks_authorizer) {
            FUZZ_CHECK(auth_calls_[0].s == sl.id);
            FUZZ_CHECK(auth_calls_[0].user == folded);
            FUZZ_CHECK(auth_calls_[0].credential == credential);
            if (want == status::auth_failed) ++auth_failed_;
        }
        if (got == status::ok) {
            sl.user = folded;
            holders_[folded] = s;
        }
    }

    void op_join(std::size_t s, std::uint8_t which, bool by_name) {
        slot_state& sl = slots_[s];
        const spelling& sp = room_spelling(which);
        const std::string_view raw = sp.raw;
        const bool valid = sp.valid;
        const std::string& room = sp.folded;
        status want;
        if (!sl.open) want = status::unknown_session;
        else if (sl.user.empty()) want = status::not_registered;
        else if (!valid) want = status::invalid_name;
        else if (sl.rooms.count(room)) want = status::already_member;
        else if (sl.rooms.size() >= max_rooms_) want = status::too_many_rooms;
        else if (rooms_.count(room) && rooms_[room].size() >= max_members_) want = status::room_full;
        else want = status::ok;
        if (want == status::too_many_rooms) ++too_many_rooms_;
        if (want == status::room_full) ++room_full_;
        const bool use_name = by_name && valid;
        trace::add("join " + std::to_string(s) + " " + id_text(sl.id) + " \"" + escaped(raw) + "\"");
        if (want == status::ok) {
            auto it = rooms_.find(room);
            if (it != rooms_.end())
                for (std::size_t m : it->second) expect(m, "join " + room + " " + sl.user + "\n");
        }
        const status got = use_name ? r_.join(sl.id, *sp.parsed) : r_.join(sl.id, raw);
        check_status(got, want);
        if (got == status::ok) {
            FUZZ_CHECK_MSG(sl.rooms.size() < 8, "the model put a session in more than 8 rooms");
            sl.rooms.insert(room);
            rooms_[room].insert(s);
        }
    }

    void op_leave(std::size_t s, std::uint8_t which, bool by_name) {
        slot_state& sl = slots_[s];
        const spelling& sp = room_spelling(which);
        const std::string_view raw = sp.raw;
        const bool valid = sp.valid;
        const std::string& room = sp.folded;
        status want;
        if (!sl.open) want = status::unknown_session;
        else if (sl.user.empty()) want = status::not_registered;
        else if (!valid) want = status::invalid_name;
        else if (!sl.rooms.count(room)) want = status::not_member;
        else want = status::ok;
        const bool use_name = by_name && valid;
        trace::add("leave " + std::to_string(s) + " " + id_text(sl.id) + " \"" + escaped(raw) + "\"");
        if (want == status::ok) {
            for (std::size_t m : rooms_[room])
                if (m != s) expect(m, "leave " + room + " " + sl.user + "\n");
        }
        const status got = use_name ? r_.leave(sl.id, *sp.parsed) : r_.leave(sl.id, raw);
        check_status(got, want);
        if (got == status::ok) {
            sl.rooms.erase(room);
            rooms_[room].erase(s);
            if (rooms_[room].empty()) rooms_.erase(room);
        }
    }

    void op_route(std::size_t s, std::uint8_t which, const std::string& text, bool by_name) {
        slot_state& sl = slots_[s];
        const spelling& sp = user_spelling(which);
        const std::string_view raw = sp.raw;
        const bool valid = sp.valid;
        const std::string& to = sp.folded;
        status want;
        if (!sl.open) want = status::unknown_session;
        else if (sl.user.empty()) want = status::not_registered;
        else if (!valid) want = status::invalid_name;
        else if (text.empty() || !reference_valid_text(text)) want = status::invalid_text;
        else if (!holders_.count(to)) want = status::user_not_found;
        else want = status::ok;
        const bool use_name = by_name && valid;
        trace::add("route " + std::to_string(s) + " " + id_text(sl.id) + " -> \"" + escaped(raw) + "\" \"" +
                   escaped(text) + "\"");
        if (want == status::ok) expect(holders_[to], line({"msg", sl.user, text}));
        if (want == status::user_not_found && handler_installed_ && bounce_)
            expect(s, "bounce " + to + "\n");
        calls_.clear();
        const route_result got = use_name ? r_.route(sl.id, *sp.parsed, text) : r_.route(sl.id, raw, text);
        check_status(got.code, want);
        if (want == status::user_not_found) {
            ++counters_.user_not_found;
            if (handler_installed_) {
                FUZZ_CHECK_MSG(calls_.size() == 1, "user-not-found handler called " +
                                                       std::to_string(calls_.size()) + " times");
                FUZZ_CHECK(calls_[0].from == sl.id);
                FUZZ_CHECK(calls_[0].target == to);
                FUZZ_CHECK(calls_[0].text == text);
            }
        } else {
            FUZZ_CHECK_MSG(calls_.empty(), "user-not-found handler called for " + status_text(got.code));
        }
        settle(got, want, 1);
    }

    void op_publish(std::size_t s, std::uint8_t which, const std::string& text, bool all_members) {
        slot_state& sl = slots_[s];
        const spelling& sp = room_spelling(which);
        const std::string_view raw = sp.raw;
        const bool valid = sp.valid;
        const std::string& room = sp.folded;
        const bool use_name = (which & 0x80u) != 0 && valid;
        status want;
        if (!sl.open) want = status::unknown_session;
        else if (sl.user.empty()) want = status::not_registered;
        else if (!valid) want = status::invalid_name;
        else if (text.empty() || !reference_valid_text(text)) want = status::invalid_text;
        else if (!sl.rooms.count(room)) want = status::not_member;
        else want = status::ok;
        trace::add("publish " + std::to_string(s) + " " + id_text(sl.id) + " \"" + escaped(raw) + "\" \"" +
                   escaped(text) + "\"" + (all_members ? " all_members" : ""));
        std::size_t recipients = 0;
        if (want == status::ok) {
            for (std::size_t m : rooms_[room])
                if (all_members || m != s) {
                    expect(m, line({"room", room, sl.user, text}));
                    ++recipients;
                }
        }
        const fanout_scope scope = all_members ? fanout_scope::all_members : fanout_scope::except_sender;
        calls_.clear();
        const route_result got =
            use_name ? r_.publish(sl.id, *sp.parsed, text, scope) : r_.publish(sl.id, raw, text, scope);
        check_status(got.code, want);
        FUZZ_CHECK(calls_.empty());
        settle(got, want, recipients);
    }

    // Books a route()/publish() result: a success is compared with the deliveries once the
    // transports are drained; a refusal must report no delivery at all (a bounce sent by the
    // user-not-found handler goes through send(), not into the result).
    void settle(const route_result& got, status want, std::size_t recipients) {
        if (want == status::ok) {
            ++counters_.routed;
            result_ = got;
            result_expected_ = recipients;
        } else {
            FUZZ_CHECK_MSG(got.delivered == 0 && got.dropped == 0,
                           status_text(got.code) + " with delivered " + std::to_string(got.delivered) +
                               ", dropped " + std::to_string(got.dropped));
        }
    }

    void op_send(std::size_t s, std::string_view bytes) {
        slot_state& sl = slots_[s];
        trace::add("send " + std::to_string(s) + " " + id_text(sl.id) + " \"" + escaped(bytes) + "\"");
        const status want = sl.open ? status::ok : status::unknown_session;
        if (sl.open) expect(s, std::string(bytes));
        const status got = r_.send(sl.id, payload::copy_of(bytes)); // the temporary dies here
        check_status(got, want);
    }

    void op_disconnect(std::size_t s, close_mode mode) {
        slot_state& sl = slots_[s];
        trace::add("disconnect " + std::to_string(s) + " " + id_text(sl.id) +
                   (mode == close_mode::abort ? " abort" : " after_flush"));
        const status want = sl.open ? status::ok : status::unknown_session;
        const status got = r_.disconnect(sl.id, mode);
        check_status(got, want);
        if (sl.open) {
            if (!sl.tm.closed) sl.tm.mode = mode;
            sl.tm.closed = true;
            // The session stays open (and keeps its name and rooms) until close_session().
            FUZZ_CHECK(r_.is_open(sl.id));
        }
    }

    // Every call with a stale (or never valid) id answers unknown_session and changes nothing.
    void op_stale(std::uint8_t which, std::uint8_t what, byte_reader& in) {
        session_id id;
        if (stale_.empty() || which % 8u == 7u) {
            // Never opened: an index past every slot, or the null id, or a future generation.
            const std::uint32_t kind = which % 3u;
            id = kind == 0 ? session_id{}
                 : kind == 1 ? session_id::make(1000u + which, 1)
                             : session_id::make(0, 0x7fffffffu);
        } else {
            id = stale_[stale_.size() - 1 - which % stale_.size()];
        }
        for (const slot_state& sl : slots_) FUZZ_CHECK(!(sl.open && sl.id == id));
        const std::string_view user = user_names[in.byte() % std::size(user_names)];
        const std::string_view room = room_names[in.byte() % std::size(room_names)];
        trace::add("stale op " + std::to_string(what % 9u) + " with " + id_text(id) + " user \"" +
                   escaped(user) + "\" room \"" + escaped(room) + "\"");
        FUZZ_CHECK(!r_.is_open(id));
        FUZZ_CHECK(!r_.is_registered(id));
        FUZZ_CHECK(r_.name_of(id).empty());
        FUZZ_CHECK(r_.rooms_of(id) == 0);
        calls_.clear();
        auth_calls_.clear();
        status got = status::ok;
        switch (what % 9u) {
        case 0: got = r_.close_session(id); break;
        case 1: got = r_.register_name(id, user); break;
        case 2: got = r_.join(id, room); break;
        case 3: got = r_.leave(id, room); break;
        case 4: got = r_.route(id, user, "stale").code; break;
        case 5: got = r_.publish(id, room, "stale", fanout_scope::all_members).code; break;
        case 6: got = r_.send(id, payload::copy_of("stale\n")); break;
        case 7: got = r_.disconnect(id, close_mode::abort); break;
        case 8:
            if (reference_valid_name(user)) got = r_.register_name(id, *name::parse(user));
            else got = r_.route(id, *name::parse("alice"), "stale").code;
            break;
        }
        check_status(got, status::unknown_session);
        FUZZ_CHECK_MSG(calls_.empty(), "a stale id reached the user-not-found handler");
        FUZZ_CHECK_MSG(auth_calls_.empty(), "a stale id reached the authorizer");
    }

    void op_handler(std::uint8_t how) {
        switch (how % 3u) {
        case 0: bounce_ = false; install_handler(); break;
        case 1: bounce_ = true; install_handler(); break;
        case 2:
            r_.on_user_not_found({});
            handler_installed_ = false;
            break;
        }
        trace::add(std::string("user-not-found handler: ") +
                   (handler_installed_ ? (bounce_ ? "bounce" : "record") : "none"));
    }

    void install_handler() {
        r_.on_user_not_found([this](session_id from, std::string_view target, std::string_view text) {
            calls_.push_back(not_found_call{from, std::string(target), std::string(text)});
            // Documented as allowed: calling back into the router from the handler.
            if (bounce_) {
                const status st = r_.send(from, payload::copy_of("bounce " + std::string(target) + "\n"));
                FUZZ_CHECK_MSG(st == status::ok, "send() from the handler: " + status_text(st));
            }
        });
        handler_installed_ = true;
    }

    // ---- expected deliveries ---------------------------------------------------------------

    // `parts` joined by single spaces, empty parts skipped, then LF (line protocol v1 encoding).
    static std::string line(std::initializer_list<std::string_view> parts) {
        std::string out;
        for (std::string_view p : parts) {
            if (p.empty()) continue;
            if (!out.empty()) out += ' ';
            out += p;
        }
        out += '\n';
        return out;
    }

    void expect(std::size_t s, std::string bytes) { expected_[s].push_back(std::move(bytes)); }

    // Compares what each transport received in this step with `expected_`, then drains them.
    //
    // Per transport the model predicts a multiset (close_session's leave events come in an
    // unspecified order). A bounded transport may refuse: then it received some of the expected
    // payloads, is closed with `abort`, and one of the missing ones did not fit the bound.
    void drain_and_compare() {
        std::size_t delivered = 0, dropped = 0;
        std::map<std::string, std::vector<const payload*>> by_content;
        for (std::size_t s = 0; s < slot_count; ++s) {
            slot_state& sl = slots_[s];
            std::vector<std::string> want;
            if (auto it = expected_.find(s); it != expected_.end()) want = std::move(it->second);
            if (!sl.open) {
                FUZZ_CHECK_MSG(want.empty(), "the model expects a delivery to a closed slot");
                continue;
            }
            const std::vector<payload>& got = sl.t->received();
            std::vector<std::string> got_text;
            std::size_t got_bytes = 0;
            for (const payload& p : got) {
                got_text.emplace_back(p.view());
                got_bytes += p.size();
                by_content[std::string(p.view())].push_back(&p);
            }
            std::vector<std::string> missing = want, extra;
            for (const std::string& g : got_text) {
                auto it = std::find(missing.begin(), missing.end(), g);
                if (it == missing.end()) extra.push_back(g);
                else missing.erase(it);
            }
            auto listing = [&] {
                std::string d = "slot " + std::to_string(s) + " " + id_text(sl.id) + " received:";
                for (const std::string& g : got_text) d += " \"" + escaped(g) + "\"";
                d += "; model expects:";
                for (const std::string& w : want) d += " \"" + escaped(w) + "\"";
                return d;
            };
            FUZZ_CHECK_MSG(extra.empty(), "unexpected payload(s): " + listing());
            if (sl.tm.closed) {
                FUZZ_CHECK_MSG(got.empty(), "a closed transport received: " + listing());
                FUZZ_CHECK(sl.t->closed());
                FUZZ_CHECK(sl.t->closed_with() == sl.tm.mode);
            } else if (missing.empty()) {
                FUZZ_CHECK_MSG(!sl.t->closed(), "transport closed without reason: " + listing());
                FUZZ_CHECK(got_bytes <= sl.tm.bound);
            } else {
                // Refused as a slow consumer: only possible on a bounded transport, and only when
                // one of the missing payloads did not fit after what was queued.
                bool explained = false;
                for (const std::string& m : missing)
                    if (m.size() > sl.tm.bound - got_bytes) explained = true;
                FUZZ_CHECK_MSG(explained, "payload(s) missing: " + listing());
                FUZZ_CHECK(sl.t->closed());
                FUZZ_CHECK(sl.t->closed_with() == close_mode::abort);
                sl.tm.closed = true;
                sl.tm.mode = close_mode::abort;
            }
            delivered += got.size();
            dropped += missing.size();
        }
        for (auto& [s, want] : expected_)
            FUZZ_CHECK_MSG(want.empty() || s < slot_count, "expected delivery to an unknown slot");
        expected_.clear();

        // Zero-copy fan-out: within one step equal bytes come from one encode(), so every copy
        // shares one buffer, and the transports hold the only references.
        for (const auto& [bytes, copies] : by_content) {
            for (const payload* p : copies)
                FUZZ_CHECK_MSG(same_buffer(*p, *copies.front()),
                               "fan-out of \"" + escaped(bytes) + "\" copied the bytes");
            if (!bytes.empty())
                FUZZ_CHECK_MSG(copies.front()->use_count() == static_cast<long>(copies.size()),
                               "\"" + escaped(bytes) + "\": use_count " +
                                   std::to_string(copies.front()->use_count()) + ", recipients " +
                                   std::to_string(copies.size()));
        }

        if (result_) {
            FUZZ_CHECK_MSG(result_->delivered == delivered && result_->dropped == dropped,
                           "route_result delivered " + std::to_string(result_->delivered) + " dropped " +
                               std::to_string(result_->dropped) + "; transports got " +
                               std::to_string(delivered) + ", refused " + std::to_string(dropped));
            FUZZ_CHECK(result_->delivered + result_->dropped == result_expected_);
            result_.reset();
        }
        counters_.delivered += delivered;
        counters_.dropped += dropped;

        for (std::size_t s = 0; s < slot_count; ++s)
            if (slots_[s].open) (void)slots_[s].t->take_bytes();
        for (const auto& g : graves_)
            FUZZ_CHECK_MSG(g->received().empty(), "a closed session's transport received a payload");
    }

    // ---- invariants ------------------------------------------------------------------------

    void check_invariants() const {
        std::size_t open = 0;
        for (std::size_t s = 0; s < slot_count; ++s) {
            const slot_state& sl = slots_[s];
            if (!sl.open) {
                if (sl.id) {
                    FUZZ_CHECK(!r_.is_open(sl.id));
                    FUZZ_CHECK(r_.name_of(sl.id).empty());
                    FUZZ_CHECK(!r_.is_registered(sl.id));
                    FUZZ_CHECK(r_.rooms_of(sl.id) == 0);
                }
                continue;
            }
            ++open;
            FUZZ_CHECK(r_.is_open(sl.id));
            FUZZ_CHECK_MSG(r_.name_of(sl.id) == sl.user, "slot " + std::to_string(s) + ": name_of \"" +
                                                             std::string(r_.name_of(sl.id)) + "\", model \"" +
                                                             sl.user + "\"");
            FUZZ_CHECK(r_.is_registered(sl.id) == !sl.user.empty());
            FUZZ_CHECK_MSG(r_.rooms_of(sl.id) == sl.rooms.size(),
                           "slot " + std::to_string(s) + ": rooms_of " + std::to_string(r_.rooms_of(sl.id)) +
                               ", model " + std::to_string(sl.rooms.size()));
            // With rooms_of() equal, the model's rooms plus one other room probe membership fully
            // (the room sizes below catch a member too many on the rooms' side).
            bool probed_outside = false;
            for (const auto& [room, n] : distinct_rooms()) {
                const bool member = sl.rooms.count(room) == 1;
                if (!member && probed_outside) continue;
                probed_outside = probed_outside || !member;
                FUZZ_CHECK_MSG(r_.is_member(sl.id, n) == member,
                               "slot " + std::to_string(s) + ", room " + room + ": is_member disagrees");
            }
        }
        FUZZ_CHECK(r_.session_count() == open);

        // Every registered name maps to its live session and back; no other name maps anywhere.
        FUZZ_CHECK_MSG(r_.user_count() == holders_.size(),
                       "user_count " + std::to_string(r_.user_count()) + ", model " +
                           std::to_string(holders_.size()));
        for (std::size_t k = 0; k < std::size(user_names); ++k) {
            const spelling& sp = user_spelling(k);
            const std::string_view raw = sp.raw;
            const std::string& folded = sp.folded;
            const session_id found = r_.find(raw);
            const auto it = sp.valid ? holders_.find(folded) : holders_.end();
            if (it == holders_.end()) {
                FUZZ_CHECK_MSG(!found, "find(\"" + escaped(raw) + "\") returned " + id_text(found) +
                                           ", model: nobody");
                continue;
            }
            const slot_state& holder = slots_[it->second];
            FUZZ_CHECK(holder.open);
            FUZZ_CHECK_MSG(found == holder.id, "find(\"" + escaped(raw) + "\") returned " + id_text(found) +
                                                   ", model " + id_text(holder.id));
            FUZZ_CHECK(r_.find(*sp.parsed) == holder.id);
            FUZZ_CHECK(r_.is_open(found));
            FUZZ_CHECK(r_.name_of(found) == folded);
        }
        const std::vector<std::string_view> users = r_.users();
        FUZZ_CHECK(users.size() == holders_.size());
        std::size_t i = 0;
        for (const auto& entry : holders_) FUZZ_CHECK(users[i++] == entry.first); // both sorted

        // Room membership is symmetric: sizes and the room count agree with the model.
        for (std::size_t k = 0; k < std::size(room_names); ++k) {
            const spelling& sp = room_spelling(k);
            if (!sp.valid) continue;
            const auto it = rooms_.find(sp.folded);
            const std::size_t want = it == rooms_.end() ? 0 : it->second.size();
            FUZZ_CHECK_MSG(r_.room_size(*sp.parsed) == want,
                           "room_size(" + sp.folded + ") " + std::to_string(r_.room_size(*sp.parsed)) +
                               ", model " + std::to_string(want));
        }
        FUZZ_CHECK_MSG(r_.room_count() == rooms_.size(), "room_count " + std::to_string(r_.room_count()) +
                                                             ", model " + std::to_string(rooms_.size()));

        // Nothing refers to a closed session.
        const std::size_t first = stale_.size() > checked_stale ? stale_.size() - checked_stale : 0;
        for (std::size_t k = first; k < stale_.size(); ++k) {
            FUZZ_CHECK(!r_.is_open(stale_[k]));
            FUZZ_CHECK(r_.name_of(stale_[k]).empty());
            FUZZ_CHECK(r_.rooms_of(stale_[k]) == 0);
            FUZZ_CHECK(!r_.is_member(stale_[k], distinct_rooms().front().second));
        }

        const auto& c = r_.counters();
        auto counts = [](std::initializer_list<std::uint64_t> values) {
            std::string out;
            for (std::uint64_t v : values) out += (out.empty() ? "" : "/") + std::to_string(v);
            return out;
        };
        FUZZ_CHECK_MSG(c.auth_failed == auth_failed_ && c.too_many_rooms == too_many_rooms_ &&
                           c.room_full == room_full_,
                       "counters auth_failed/too_many_rooms/room_full " +
                           counts({c.auth_failed, c.too_many_rooms, c.room_full}) + ", model " +
                           counts({auth_failed_, too_many_rooms_, room_full_}));
        FUZZ_CHECK_MSG(c.routed == counters_.routed && c.delivered == counters_.delivered &&
                           c.dropped == counters_.dropped && c.user_not_found == counters_.user_not_found,
                       "counters routed/delivered/dropped/user_not_found " +
                           counts({c.routed, c.delivered, c.dropped, c.user_not_found}) + ", model " +
                           counts({counters_.routed, counters_.delivered, counters_.dropped,
                                   counters_.user_not_found}));
    }

    // Declared first so that it is destroyed last: slots and graves hold transports it points to
    // only while their sessions are open, and every session is closed before destruction.
    router r_;
    const std::size_t max_rooms_;   // the model's copy of the router's limits
    const std::size_t max_members_;
    const bool authorizer_;
    std::vector<auth_call> auth_calls_;
    std::uint64_t auth_failed_ = 0, too_many_rooms_ = 0, room_full_ = 0;
    std::array<slot_state, slot_count> slots_;
    std::map<std::string, std::size_t> holders_;               // folded user name -> slot
    std::map<std::string, std::set<std::size_t>> rooms_;       // folded room name -> member slots
    std::vector<session_id> stale_;                            // ids of closed sessions
    std::set<std::uint64_t> issued_;                           // every id open_session returned
    std::deque<std::unique_ptr<in_memory_transport>> graves_;  // the last closed transports
    switchboard::router_counters counters_{};
    std::map<std::size_t, std::vector<std::string>> expected_; // this step: slot -> payloads
    std::optional<route_result> result_;                       // this step's route/publish result
    std::size_t result_expected_ = 0;                          // recipients the model counted
    std::vector<not_found_call> calls_;
    bool handler_installed_ = false;
    bool bounce_ = false;
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
