// line_codec_fuzz: libFuzzer target for the line protocol codec (protocol/line.hpp) and the
// per-connection protocol logic (protocol/line_session.hpp).
//
// 1. The data is fed to a line_framer in chunks whose sizes come from the input, and the lines and
//    line-too-long reports are compared with a simple reference splitter written here: same lines
//    in the same order, each over-long line reported exactly once, buffered() <= max_line() + 1
//    (and exactly the unfinished line) after every feed. The on_line callback sometimes returns
//    false; feeding the rest of the chunk again must give the same result.
// 2. Every line goes through parse_command() (compared with a reference parser; target, text and
//    word must be sub-ranges of the line) and is_valid_text() (compared with a table-driven
//    reference UTF-8 validator, also on the whole data at several alignments).
// 3. The same chunks drive three protocol::line_sessions on one router (in_memory_transports).
//    After each chunk every reply is checked and folded into a model built from the replies
//    (`ok register`, `ok join`, `ok leave`), and the router's state is checked against it: names
//    map to their sessions and back, room membership is symmetric, `who` lists exactly the
//    registered names, and a session closed after `/quit` or end of input receives nothing more.
//
// Input format (any byte string is valid):
//   byte 0        max_line = byte % 65 (0 asks the framer for 0, which it treats as 1)
//   byte 1        n = byte % 16: number of chunk-plan bytes that follow
//   n bytes       the chunk plan, used cyclically: size = p & 0x3F (0 = an empty feed),
//                 session = p >> 6 (0..2; 3 = session k % 3, then end of input for it)
//   1 byte        stop mask: on_line returns false for line i when bit (i % 8) is set
//   the rest      the data (with n = 0: one chunk, to session 0)
// Built with -fsanitize=fuzzer (SWITCHBOARD_BUILD_FUZZ, scripts/fuzz), or with replay_main.cpp
// as line_codec_fuzz_replay, which replays tests/fuzz/corpus/line_codec_fuzz/ under CTest.
#include "fuzz_support.hpp"

#include <switchboard/in_memory_transport.hpp>
#include <switchboard/names.hpp>
#include <switchboard/protocol/line.hpp>
#include <switchboard/protocol/line_session.hpp>
#include <switchboard/router.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace {

using switchboard::in_memory_transport;
using switchboard::name;
using switchboard::router;
using switchboard::session_id;
using switchboard::status;
using switchboard::protocol::command_kind;
using switchboard::protocol::input_result;
using switchboard::protocol::line_command;
using switchboard::protocol::line_framer;
using switchboard::protocol::line_session;
using switchboard::protocol::line_session_options;
using switchboard_fuzz::escaped;
using switchboard_fuzz::reference_valid_text;
using switchboard_fuzz::trace;

constexpr std::string_view too_long_marker = "\x01<line-too-long>";

// ---- references ---------------------------------------------------------------------------------

// The framer's specification (docs/protocol.md, "Framing"), written as plainly as possible: split
// at LF, drop one CR before it, a line of more than max_line bytes is one too-long report; an
// unterminated last piece counts when non-empty (reported by finish()).
std::vector<std::string> reference_lines(std::string_view data, std::size_t max_line) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos < data.size()) {
        const std::size_t lf = data.find('\n', pos);
        const bool terminated = lf != std::string_view::npos;
        std::string_view piece = data.substr(pos, terminated ? lf - pos : std::string_view::npos);
        pos = terminated ? lf + 1 : data.size();
        if (!piece.empty() && piece.back() == '\r') piece.remove_suffix(1);
        if (piece.size() > max_line) out.emplace_back(too_long_marker);
        else if (terminated || !piece.empty()) out.emplace_back(piece);
    }
    return out;
}


bool ascii_equal_folded(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

// The command grammar of docs/protocol.md, "Commands", on its own.
line_command reference_parse(std::string_view line) {
    line_command c;
    auto split = [&](std::string_view rest) {
        const std::size_t sp = rest.find(' ');
        if (sp == std::string_view::npos || sp == 0 || sp + 1 == rest.size()) {
            c.usage_error = true;
        } else {
            c.target = rest.substr(0, sp);
            c.text = rest.substr(sp + 1);
        }
    };
    if (line.empty()) return c;
    if (line[0] == '@' || line[0] == '#') {
        c.kind = line[0] == '@' ? command_kind::msg : command_kind::say;
        split(line.substr(1));
        return c;
    }
    if (line[0] != '/') return c;
    const std::size_t sp = line.find(' ');
    const std::string_view word = sp == std::string_view::npos ? line.substr(1) : line.substr(1, sp - 1);
    const bool has_rest = sp != std::string_view::npos;
    const std::string_view rest = has_rest ? line.substr(sp + 1) : std::string_view{};
    struct entry {
        std::string_view word;
        command_kind kind;
    };
    static constexpr entry table[] = {
        {"register", command_kind::register_name}, {"msg", command_kind::msg},   {"join", command_kind::join},
        {"leave", command_kind::leave},            {"say", command_kind::say},   {"who", command_kind::who},
        {"quit", command_kind::quit},
    };
    for (const entry& e : table) {
        if (!ascii_equal_folded(word, e.word)) continue;
        c.kind = e.kind;
        if (e.kind == command_kind::msg || e.kind == command_kind::say) {
            if (has_rest) split(rest);
            else c.usage_error = true;
        } else if (e.kind == command_kind::register_name) {
            // `/register <user> [<secret>]`: the name ends at the first space, the rest (possibly
            // empty) is the secret.
            const std::size_t end = rest.find(' ');
            c.target = rest.substr(0, end);
            if (c.target.empty()) c.usage_error = true;
            else if (end != std::string_view::npos) c.text = rest.substr(end + 1);
        } else if (e.kind == command_kind::join || e.kind == command_kind::leave) {
            if (rest.empty()) c.usage_error = true;
            else c.target = rest;
        }
        return c;
    }
    c.word = word;
    return c;
}

// True when `part` is empty or lies inside `whole` (a view into it, not a copy).
bool inside(std::string_view part, std::string_view whole) {
    if (part.empty()) return true;
    const auto b = reinterpret_cast<std::uintptr_t>(whole.data());
    const auto p = reinterpret_cast<std::uintptr_t>(part.data());
    return p >= b && p + part.size() <= b + whole.size();
}

bool same_view(std::string_view a, std::string_view b) {
    return a.size() == b.size() && (a.empty() || a.data() == b.data());
}

void check_line(std::string_view line) {
    const line_command c = switchboard::protocol::parse_command(line);
    const line_command r = reference_parse(line);
    const auto what = [&] { return "line \"" + escaped(line) + "\""; }; // for failure reports only
    FUZZ_CHECK_MSG(c.kind == r.kind, what() + ": kind " + std::string(to_string(c.kind)) + ", reference " +
                                         std::string(to_string(r.kind)));
    FUZZ_CHECK_MSG(c.usage_error == r.usage_error, what() + ": usage_error disagrees");
    FUZZ_CHECK_MSG(inside(c.target, line) && inside(c.text, line) && inside(c.word, line),
                   what() + ": a parsed field is not a view into the line");
    FUZZ_CHECK_MSG(same_view(c.target, r.target),
                   what() + ": target \"" + escaped(c.target) + "\", reference \"" + escaped(r.target) +
                       "\"");
    FUZZ_CHECK_MSG(same_view(c.text, r.text),
                   what() + ": text \"" + escaped(c.text) + "\", reference \"" + escaped(r.text) + "\"");
    FUZZ_CHECK_MSG(same_view(c.word, r.word), what() + ": word \"" + escaped(c.word) + "\"");
    if ((c.kind == command_kind::msg || c.kind == command_kind::say) && !c.usage_error) {
        // "<target> <text>": one space between, the text runs to the end of the line.
        FUZZ_CHECK(!c.target.empty() && !c.text.empty());
        FUZZ_CHECK(c.target.find(' ') == std::string_view::npos);
        FUZZ_CHECK(c.target.data() + c.target.size() + 1 == c.text.data());
        FUZZ_CHECK(c.text.data() + c.text.size() == line.data() + line.size());
    }
    if (c.kind == command_kind::register_name && !c.usage_error) {
        FUZZ_CHECK(!c.target.empty() && c.target.find(' ') == std::string_view::npos);
        FUZZ_CHECK(c.target.data() == line.data() + line.find(' ') + 1);
        if (!c.text.empty()) FUZZ_CHECK(c.text.data() + c.text.size() == line.data() + line.size());
    }
    if (c.usage_error) FUZZ_CHECK(c.target.empty() && c.text.empty());
    const bool valid = switchboard::protocol::is_valid_text(line);
    FUZZ_CHECK_MSG(valid == reference_valid_text(line),
                   what() + ": is_valid_text " + (valid ? "true" : "false") + ", reference the opposite");
    if (!c.text.empty())
        FUZZ_CHECK(switchboard::protocol::is_valid_text(c.text) == reference_valid_text(c.text));
}

// ---- the chunk plan -------------------------------------------------------------------------------

struct chunk {
    std::string_view bytes;
    std::size_t session; // 0..2
    bool end_of_input;   // the session's peer half-closes after this chunk
};

std::vector<chunk> plan_chunks(std::string_view data, const std::vector<std::uint8_t>& plan) {
    std::vector<chunk> out;
    if (plan.empty()) {
        out.push_back({data, 0, false});
        return out;
    }
    std::size_t pos = 0, k = 0, idle = 0;
    while (pos < data.size()) {
        const std::uint8_t p = plan[k % plan.size()];
        std::size_t size = p & 0x3Fu;
        if (size == 0 && ++idle > plan.size()) size = data.size() - pos; // a plan of zeros only
        else if (size != 0) idle = 0;
        size = std::min(size, data.size() - pos);
        const std::size_t who = p >> 6;
        out.push_back({data.substr(pos, size), who == 3 ? k % 3 : who, who == 3});
        pos += size;
        ++k;
    }
    return out;
}

// ---- 1 and 2: framer against the reference, every line through the parser --------------------

void fuzz_framer(std::string_view data, std::size_t max_line_arg, const std::vector<chunk>& chunks,
                 std::uint8_t stop_mask) {
    line_framer f(max_line_arg);
    const std::size_t max_line = max_line_arg == 0 ? 1 : max_line_arg;
    FUZZ_CHECK(f.max_line() == max_line);
    FUZZ_CHECK(f.buffered() == 0 && !f.discarding());

    std::vector<std::string> got;
    std::size_t line_index = 0;
    std::size_t fed = 0;                       // bytes of `data` fed so far
    std::size_t line_start = 0;                // where the unfinished line starts in `data`
    for (const chunk& c : chunks) {
        std::string_view rest = c.bytes;
        for (;;) {
            bool stopped = false;
            const std::size_t consumed = f.feed(
                rest,
                [&](std::string_view line) {
                    FUZZ_CHECK(line.size() <= max_line);
                    got.emplace_back(line);
                    check_line(line);
                    stopped = ((stop_mask >> (line_index++ % 8)) & 1u) != 0;
                    return !stopped;
                },
                [&] { got.emplace_back(too_long_marker); });
            FUZZ_CHECK(consumed <= rest.size());
            if (!stopped) {
                FUZZ_CHECK_MSG(consumed == rest.size(), "feed() consumed " + std::to_string(consumed) +
                                                            " of " + std::to_string(rest.size()) + " bytes");
                break;
            }
            FUZZ_CHECK_MSG(consumed >= 1 && rest[consumed - 1] == '\n',
                           "after on_line returned false, feed() did not stop right after the LF");
            rest.remove_prefix(consumed);
            if (rest.empty()) break;
        }
        if (const std::size_t lf = c.bytes.rfind('\n'); lf != std::string_view::npos)
            line_start = fed + lf + 1;
        fed += c.bytes.size();
        // The unfinished line: buffered whole while it can still be valid, else skipped.
        const std::string_view unfinished = data.substr(line_start, fed - line_start);
        const bool can_fit = unfinished.size() <= max_line ||
                             (unfinished.size() == max_line + 1 && unfinished.back() == '\r');
        FUZZ_CHECK_MSG(f.buffered() <= f.max_line() + 1, "buffered() " + std::to_string(f.buffered()));
        if (can_fit) {
            FUZZ_CHECK_MSG(!f.discarding() && f.buffered() == unfinished.size(),
                           "buffered() " + std::to_string(f.buffered()) + " for an unfinished line of " +
                               std::to_string(unfinished.size()) + " bytes");
        } else {
            FUZZ_CHECK_MSG(f.discarding() && f.buffered() == 0,
                           "an over-long unfinished line is still buffered");
        }
    }
    f.finish([&](std::string_view line) {
        FUZZ_CHECK(!line.empty() && line.size() <= max_line);
        got.emplace_back(line);
        check_line(line);
    });
    FUZZ_CHECK(f.buffered() == 0 && !f.discarding());

    const std::vector<std::string> want = reference_lines(data, max_line);
    if (got != want) {
        std::string d = "max_line " + std::to_string(max_line) + "; framer:";
        for (const std::string& g : got) d += " \"" + escaped(g) + "\"";
        d += "; reference:";
        for (const std::string& w : want) d += " \"" + escaped(w) + "\"";
        switchboard_fuzz::fail(__FILE__, __LINE__, "framer lines == reference lines", d);
    }

    // is_valid_text on arbitrary bytes at every alignment of its 8-byte fast path.
    for (std::size_t k = 0; k < 8 && k <= data.size(); ++k) {
        const std::string_view t = data.substr(k);
        FUZZ_CHECK_MSG(switchboard::protocol::is_valid_text(t) == reference_valid_text(t),
                       "is_valid_text disagrees with the reference at offset " + std::to_string(k));
    }
}

// ---- 3: three line sessions on one router --------------------------------------------------------

struct connection {
    std::unique_ptr<in_memory_transport> t;
    session_id id{};
    std::optional<line_session> ls;
    std::string user;            // from `ok register`
    std::set<std::string> rooms; // from `ok join` / `ok leave`
    bool quit = false;           // `ok quit` was received: it must be the last line
};

class sessions_harness {
public:
    explicit sessions_harness(std::size_t max_line) {
        options_.max_line = max_line == 0 ? 1 : max_line; // every other option at its default
        for (std::size_t i = 0; i < conns_.size(); ++i) open(i);
        absorb_replies();
        check_router();
    }

    sessions_harness(const sessions_harness&) = delete;
    sessions_harness& operator=(const sessions_harness&) = delete;

    void run(const chunk& c) {
        connection& conn = conns_[c.session];
        trace::add("session " + std::to_string(c.session) + " <- \"" + escaped(c.bytes) + "\"" +
                   (c.end_of_input ? " + end of input" : ""));
        input_result res = conn.ls->on_input(c.bytes);
        if (c.end_of_input && res != input_result::quit) {
            res = conn.ls->on_end_of_input();
            FUZZ_CHECK(res == input_result::quit);
        }
        FUZZ_CHECK(conn.ls->buffered() <= options_.max_line + 1);
        absorb_replies();
        // `ok quit` <=> on_input() said quit (end of input says quit without a reply).
        FUZZ_CHECK(!conn.quit || res == input_result::quit);
        FUZZ_CHECK(conn.quit || res != input_result::quit || c.end_of_input);
        if (res == input_result::quit) {
            // What an adapter does: input is over, stop reading, close the session.
            FUZZ_CHECK(conn.ls->on_input("/who\n") == input_result::quit); // nothing more is read
            const status st = r_.close_session(conn.id);
            FUZZ_CHECK_MSG(st == status::ok, std::string(to_string(st)));
            for (const std::string& room : conn.rooms) seen_rooms_.insert(room);
            conn.user.clear();
            conn.rooms.clear();
            conn.ls.reset();
            absorb_replies(); // the leave events to the other members
            FUZZ_CHECK_MSG(conn.t->received().empty(), "a closed session received a payload");
            stale_.push_back(conn.id);
            graves_.push_back(std::move(conn.t));
            open(c.session);
            absorb_replies();
        }
        check_router();
    }

    void finish() {
        for (std::size_t i = 0; i < conns_.size(); ++i) {
            (void)conns_[i].ls->on_end_of_input();
            absorb_replies();
            FUZZ_CHECK(r_.close_session(conns_[i].id) == status::ok);
            conns_[i].user.clear();
            conns_[i].rooms.clear();
            absorb_replies();
        }
        FUZZ_CHECK(r_.session_count() == 0 && r_.user_count() == 0 && r_.room_count() == 0);
    }

private:
    void open(std::size_t i) {
        connection& conn = conns_[i];
        conn.t = std::make_unique<in_memory_transport>();
        conn.id = r_.open_session(*conn.t, switchboard::protocol::line_event_encoder::instance());
        conn.ls.emplace(r_, conn.id, options_);
        conn.quit = false;
        conn.ls->greet("welcome to the fuzzer\n\nsecond line");
    }

    // Checks every payload received since the last call and folds the replies into the model.
    void absorb_replies() {
        for (std::size_t i = 0; i < conns_.size(); ++i) {
            connection& conn = conns_[i];
            if (!conn.ls) continue;
            for (const switchboard::payload& p : conn.t->received()) absorb(i, conn, p.view());
            (void)conn.t->take_bytes();
        }
        for (const auto& g : graves_)
            FUZZ_CHECK_MSG(g->received().empty(), "a closed session received a payload");
    }

    void absorb(std::size_t i, connection& conn, std::string_view bytes) {
        // Built only for a failure report: this runs for every payload.
        const auto where = [&] { return "session " + std::to_string(i) + " got \"" + escaped(bytes) + "\""; };
        if (trace::verbose()) trace::add(where());
        FUZZ_CHECK_MSG(!bytes.empty() && bytes.back() == '\n' && bytes.find('\n') == bytes.size() - 1,
                       where() + ": not exactly one LF-terminated line");
        FUZZ_CHECK_MSG(!conn.quit, where() + ": after `ok quit`");
        const std::string_view line = bytes.substr(0, bytes.size() - 1);
        std::vector<std::string_view> words;
        for (std::size_t pos = 0; pos <= line.size();) {
            const std::size_t sp = std::min(line.find(' ', pos), line.size());
            words.push_back(line.substr(pos, sp - pos));
            pos = sp + 1;
        }
        const std::string_view w0 = words[0];
        auto arg = [&](std::size_t k) { return k < words.size() ? std::string(words[k]) : std::string(); };
        if (w0 == "ok") {
            const std::string verb = arg(1), n = arg(2);
            if (verb == "register") {
                FUZZ_CHECK_MSG(conn.user.empty(), where() + ": registered twice");
                FUZZ_CHECK_MSG(switchboard::is_valid_name(n) && name::parse(n)->view() == n,
                               where() + ": not a folded name");
                conn.user = n;
            } else if (verb == "join") {
                FUZZ_CHECK_MSG(!conn.user.empty() && conn.rooms.count(n) == 0,
                               where() + ": join disagrees with the model");
                conn.rooms.insert(n);
                FUZZ_CHECK_MSG(conn.rooms.size() <= 64, where() + ": more than 64 rooms");
                seen_rooms_.insert(n);
            } else if (verb == "leave") {
                FUZZ_CHECK_MSG(conn.rooms.erase(n) == 1, where() + ": left a room it was not in");
            } else if (verb == "quit") {
                FUZZ_CHECK(words.size() == 2);
                conn.quit = true;
            }
        } else if (w0 == "join" || w0 == "leave" || w0 == "room") {
            // Events reach members only, never about the receiver itself.
            FUZZ_CHECK_MSG(words.size() >= 3 && conn.rooms.count(arg(1)) == 1, where() + ": not a member");
            FUZZ_CHECK_MSG(arg(2) != conn.user, where() + ": an event about the receiver itself");
        } else if (w0 == "msg") {
            FUZZ_CHECK_MSG(!conn.user.empty() && words.size() >= 3, where() + ": to an unregistered session");
        } else if (w0 == "who") {
            std::vector<std::string> names;
            for (const connection& c : conns_)
                if (c.ls && !c.user.empty()) names.push_back(c.user);
            std::sort(names.begin(), names.end());
            std::string want = "who";
            for (const std::string& n : names) want += " " + n;
            FUZZ_CHECK_MSG(line == want, where() + ", model: \"" + want + "\"");
        } else {
            FUZZ_CHECK_MSG(w0 == "err" || w0 == "*", where() + ": unknown kind of line");
        }
    }

    void check_router() const {
        FUZZ_CHECK(r_.session_count() == conns_.size());
        std::size_t registered = 0;
        for (const connection& conn : conns_) {
            FUZZ_CHECK(r_.is_open(conn.id));
            FUZZ_CHECK_MSG(r_.name_of(conn.id) == conn.user, "name_of \"" + std::string(r_.name_of(conn.id)) +
                                                                 "\", replies said \"" + conn.user + "\"");
            FUZZ_CHECK(r_.is_registered(conn.id) == !conn.user.empty());
            if (!conn.user.empty()) {
                ++registered;
                FUZZ_CHECK(r_.find(conn.user) == conn.id);
            }
            FUZZ_CHECK_MSG(r_.rooms_of(conn.id) == conn.rooms.size(),
                           "rooms_of " + std::to_string(r_.rooms_of(conn.id)) + ", replies said " +
                               std::to_string(conn.rooms.size()));
            for (const std::string& room : conn.rooms) FUZZ_CHECK(r_.is_member(conn.id, *name::parse(room)));
        }
        FUZZ_CHECK(r_.user_count() == registered);
        FUZZ_CHECK(r_.users().size() == registered);
        std::size_t live_rooms = 0;
        for (const std::string& room : seen_rooms_) {
            std::size_t members = 0;
            for (const connection& conn : conns_) members += conn.rooms.count(room);
            const std::size_t size = r_.room_size(*name::parse(room));
            FUZZ_CHECK_MSG(size == members, "room " + room + ": room_size " + std::to_string(size) +
                                                ", replies said " + std::to_string(members));
            if (members) ++live_rooms;
        }
        FUZZ_CHECK_MSG(r_.room_count() == live_rooms, "room_count " + std::to_string(r_.room_count()) +
                                                          ", replies said " + std::to_string(live_rooms));
        for (session_id old : stale_) FUZZ_CHECK(!r_.is_open(old) && r_.name_of(old).empty());
    }

    line_session_options options_;
    router r_;
    std::array<connection, 3> conns_;
    std::vector<std::unique_ptr<in_memory_transport>> graves_;
    std::vector<session_id> stale_;
    std::set<std::string> seen_rooms_;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* input, std::size_t size) {
    const trace::scope trace_for_this_input;
    switchboard_fuzz::byte_reader in(input, size);
    const std::size_t max_line = in.byte() % 65u;
    std::vector<std::uint8_t> plan(in.byte() % 16u);
    for (std::uint8_t& p : plan) p = in.byte();
    const std::uint8_t stop_mask = in.byte();
    const std::string_view data = in.take(in.remaining());
    const std::vector<chunk> chunks = plan_chunks(data, plan);

    fuzz_framer(data, max_line, chunks, stop_mask);

    sessions_harness sessions(max_line);
    for (const chunk& c : chunks) sessions.run(c);
    sessions.finish();
    return 0;
}
