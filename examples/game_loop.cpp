// A fixed-tick game loop driving the sans-I/O router through its own transport: no threads, no
// Asio, no sockets. Each player's link collects what the router delivers during a tick (events as
// values, structured_format) and the loop flushes every link once per tick, the way a game's
// network layer sends one packet per client per tick. Chat input comes from a script here; in a
// game it comes from the packets read at the start of the tick.
#include <switchboard/structured_format.hpp>
#include <switchboard/switchboard.hpp>

#include <array>
#include <cstdio>
#include <string>
#include <vector>

namespace sb = switchboard;

// One player's outbound link: the events of this tick, sent at its end.
class player_link final : public sb::transport {
public:
    std::vector<std::string> packet;

    sb::delivery deliver(const sb::payload& bytes) noexcept override {
        const auto e = sb::structured_format::decode(bytes);
        if (!e) return sb::delivery::queued;
        try {
            std::string line;
            switch (e->kind) {
            case sb::event_kind::direct_message: line = "whisper from " + std::string(e->user) + ": "; break;
            case sb::event_kind::room_message: line = "[" + std::string(e->room) + "] " + std::string(e->user) + ": "; break;
            case sb::event_kind::member_joined: line = std::string(e->user) + " joined " + std::string(e->room); break;
            case sb::event_kind::member_left: line = std::string(e->user) + " left " + std::string(e->room); break;
            default: return sb::delivery::queued; // presence, typing, ...: this game shows none
            }
            packet.push_back(line.append(e->text));
        } catch (...) {
            return sb::delivery::slow_consumer; // out of memory: drop, as a full send buffer would
        }
        return sb::delivery::queued;
    }
    void close(sb::close_mode) noexcept override {} // a kick: a game would drop the client here
};

// What players type, by tick: to a room (to_room) or to a player, and the outcome we expect.
struct chat_input {
    int tick;
    std::size_t player;
    bool to_room;
    const char* target;
    const char* text;
    sb::status expected;
};

int main() {
    sb::router router;
    const std::array<const char*, 3> names = {"ann", "ben", "cat"};
    std::array<player_link, 3> links;
    std::array<sb::session_id, 3> ids;
    for (std::size_t i = 0; i < names.size(); ++i) {
        ids[i] = router.open_session(links[i], sb::structured_format::instance());
        if (router.register_name(ids[i], names[i]) != sb::status::ok) return 1;
        if (router.join(ids[i], "match") != sb::status::ok) return 1;
    }
    const chat_input script[] = {
        {1, 0, true, "match", "gl hf", sb::status::ok},
        {2, 1, false, "cat", "flank left", sb::status::ok},
        {3, 2, true, "match", "gg", sb::status::ok},
        {3, 2, false, "dan", "anyone there?", sb::status::user_not_found},
        {4, 0, true, "match", "line one\nforged line", sb::status::invalid_text},
    };

    int unexpected = 0;
    for (int tick = 0; tick < 6; ++tick) {
        for (const chat_input& in : script) {
            if (in.tick != tick) continue;
            const sb::route_result r = in.to_room ? router.publish(ids[in.player], in.target, in.text)
                                                  : router.route(ids[in.player], in.target, in.text);
            std::printf("tick %d: %s -> %s: %s\n", tick, names[in.player], in.target, std::string(to_string(r.code)).c_str());
            if (r.code != in.expected) ++unexpected;
        }
        if (tick == 5) router.close_session(ids[1]); // ben's client times out: the others are told
        for (std::size_t i = 0; i < links.size(); ++i) { // end of tick: one packet per player
            for (const std::string& line : links[i].packet) std::printf("tick %d: to %s: %s\n", tick, names[i], line.c_str());
            links[i].packet.clear();
        }
        // A real loop sleeps until the next tick here (std::this_thread::sleep_until).
    }
    return unexpected == 0 ? 0 : 1;
}
