// The README's embedding example: a router, two sessions on in-memory transports, one message.
#include <switchboard/protocol/line.hpp>   // the line protocol's wire format
#include <switchboard/switchboard.hpp>

#include <iostream>

int main() {
    switchboard::router router;                            // sans-I/O: no sockets, no threads
    switchboard::in_memory_transport alice_out, bob_out;   // your transports plug in here
    const auto& lines = switchboard::protocol::line_event_encoder::instance(); // each session's format
    auto alice = router.open_session(alice_out, lines);
    auto bob = router.open_session(bob_out, lines);
    (void)router.register_name(alice, "Alice");            // names are folded: "alice"
    (void)router.register_name(bob, "bob");

    auto sent = router.route(alice, "BOB", "hello, bob");  // 1:1 by user name
    auto missing = router.route(alice, "carol", "hi?");    // a result, not an exception

    for (const auto& line : bob_out.take_lines()) std::cout << "bob got: " << line << "\n";
    std::cout << "to carol: " << to_string(missing.code) << "\n";
    router.close_session(bob);                             // releases bob's name and rooms
    return sent.ok() && missing.code == switchboard::status::user_not_found ? 0 : 1;
}
