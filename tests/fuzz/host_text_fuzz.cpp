// host_text_fuzz: libFuzzer target for the API path of the text contract (docs/security.md, "The
// API path"). A host forwards arbitrary text through router::route() and router::publish() to
// six registered sessions on two formats (two distinct line-protocol encoder objects, so each
// fan-out encodes twice); after every call each session's received bytes are checked:
//   - a call answered `ok` gave each intended recipient exactly one payload, which is exactly one
//     LF-terminated line, `msg <from> <text>` / `room <room> <from> <text>`, with the text byte
//     for byte; everyone else got nothing;
//   - a refused call gave nobody anything, and the refusal is invalid-text exactly when the text
//     breaks the contract (empty, invalid UTF-8, a control byte but TAB; checked with the
//     reference validator of fuzz_support.hpp, not the library's own);
//   - so no text, whatever its bytes, makes any recipient see a second line.
//
// Input: a sequence of operations, each one byte (op in bits 0-1, sender in bits 2-4, flag bit 5,
// target in bits 6-7) followed, for route/publish, by a length byte and that many text bytes.
//   op 0: route sender -> user (target: u0..u3; flag: by folded name)
//   op 1: publish sender -> room r(target % 2) (flag: all_members)
//   op 2: join sender room r(target % 2)     op 3: leave sender room r(target % 2)
//
// Built by scripts/fuzz (libFuzzer, clang) and replayed from tests/fuzz/corpus/host_text_fuzz/ by
// CTest (host_text_fuzz_replay).
#include "fuzz_support.hpp"

#include <switchboard/in_memory_transport.hpp>
#include <switchboard/protocol/line.hpp>
#include <switchboard/router.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

using switchboard::fanout_scope;
using switchboard::in_memory_transport;
using switchboard::name;
using switchboard::route_result;
using switchboard::router;
using switchboard::session_id;
using switchboard::status;
using switchboard::protocol::line_event_encoder;
using switchboard_fuzz::byte_reader;
using switchboard_fuzz::escaped;
using switchboard_fuzz::reference_valid_text;
using switchboard_fuzz::trace;

namespace {

constexpr std::size_t sessions = 6;
const std::array<const char*, sessions> users = {"u0", "u1", "u2", "u3", "u4", "u5"};
const std::array<const char*, 2> rooms = {"r0", "r1"};

struct world {
    line_event_encoder second_format; // a distinct format object: fan-outs encode per format
    router r;
    std::array<in_memory_transport, sessions> t;
    std::array<session_id, sessions> id{};
    std::array<std::set<std::size_t>, 2> members;

    world() {
        for (std::size_t i = 0; i < sessions; ++i) {
            id[i] = r.open_session(t[i], i % 2 == 0 ? line_event_encoder::instance() : second_format);
            FUZZ_CHECK(r.register_name(id[i], users[i]) == status::ok);
        }
    }

    // Every session's bytes since the last call: `expected` (a set of session indexes) got exactly
    // `line`, the others nothing.
    void check_deliveries(const std::set<std::size_t>& expected, const std::string& line) {
        for (std::size_t i = 0; i < sessions; ++i) {
            const std::size_t payloads = t[i].received().size();
            const std::string got = t[i].take_bytes();
            if (!expected.count(i)) {
                FUZZ_CHECK_MSG(got.empty(), "session " + std::to_string(i) + " got \"" + escaped(got) +
                                                "\" from a call not meant for it");
                continue;
            }
            FUZZ_CHECK_MSG(payloads == 1, "session " + std::to_string(i) + " got " + std::to_string(payloads) +
                                              " payloads for one call");
            FUZZ_CHECK_MSG(got == line, "session " + std::to_string(i) + " got \"" + escaped(got) +
                                            "\", expected \"" + escaped(line) + "\"");
            // One line: the only LF is the last byte, and no CR anywhere.
            FUZZ_CHECK(got.find('\n') == got.size() - 1);
            FUZZ_CHECK(got.find('\r') == std::string::npos);
        }
    }
};

bool text_ok(std::string_view text) { return !text.empty() && reference_valid_text(text); }

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const trace::scope trace_scope;
    world w;
    byte_reader in(data, size);
    while (!in.empty()) {
        const std::uint8_t op = in.byte();
        const std::size_t from = ((op >> 2) & 7u) % sessions;
        const bool flag = (op & 0x20u) != 0;
        const std::size_t target = op >> 6;
        const std::size_t room = target % 2;
        switch (op & 3u) {
        case 0: {
            const std::string text(in.take(in.byte() % 64u));
            trace::add("route u" + std::to_string(from) + " -> " + users[target] + " \"" + escaped(text) + "\"");
            const route_result res = flag ? w.r.route(w.id[from], *name::parse(users[target]), text)
                                          : w.r.route(w.id[from], users[target], text);
            trace::amend("=> " + std::string(to_string(res.code)));
            if (text_ok(text)) {
                FUZZ_CHECK(res.ok() && res.delivered == 1);
                w.check_deliveries({target}, "msg u" + std::to_string(from) + " " + text + "\n");
            } else {
                FUZZ_CHECK(res.code == status::invalid_text && res.delivered == 0);
                w.check_deliveries({}, {});
            }
            break;
        }
        case 1: {
            const std::string text(in.take(in.byte() % 64u));
            trace::add("publish u" + std::to_string(from) + " -> " + rooms[room] + " \"" + escaped(text) + "\"" +
                       (flag ? " all_members" : ""));
            const route_result res =
                w.r.publish(w.id[from], rooms[room], text, flag ? fanout_scope::all_members : fanout_scope::except_sender);
            trace::amend("=> " + std::string(to_string(res.code)));
            if (!text_ok(text)) {
                FUZZ_CHECK(res.code == status::invalid_text && res.delivered == 0);
                w.check_deliveries({}, {});
            } else if (!w.members[room].count(from)) {
                FUZZ_CHECK(res.code == status::not_member);
                w.check_deliveries({}, {});
            } else {
                std::set<std::size_t> to = w.members[room];
                if (!flag) to.erase(from);
                FUZZ_CHECK(res.ok() && res.delivered == to.size());
                w.check_deliveries(to, "room " + std::string(rooms[room]) + " u" + std::to_string(from) + " " + text + "\n");
            }
            break;
        }
        case 2:
            trace::add("join u" + std::to_string(from) + " " + rooms[room]);
            if (w.r.join(w.id[from], rooms[room]) == status::ok) w.members[room].insert(from);
            for (auto& t : w.t) (void)t.take_bytes();
            break;
        default:
            trace::add("leave u" + std::to_string(from) + " " + rooms[room]);
            if (w.r.leave(w.id[from], rooms[room]) == status::ok) w.members[room].erase(from);
            for (auto& t : w.t) (void)t.take_bytes();
            break;
        }
    }
    return 0;
}
