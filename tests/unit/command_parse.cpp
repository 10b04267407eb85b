// protocol::parse_command: every command form, shortcuts, usage errors, unknown commands.
#include <switchboard/protocol/line.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

using switchboard::protocol::command_kind;
using switchboard::protocol::line_command;
using switchboard::protocol::parse_command;

namespace {
// A command must report exactly these fields.
void check(std::string_view line, command_kind kind, bool usage, std::string_view target = {},
           std::string_view text = {}, std::string_view word = {}) {
    INFO("line: [" << std::string(line) << "]");
    const line_command c = parse_command(line);
    CHECK(c.kind == kind);
    CHECK(c.usage_error == usage);
    CHECK(c.target == target);
    CHECK(c.text == text);
    CHECK(c.word == word);
}
} // namespace

TEST_CASE("parse: command words map to kinds and to_string", "[parse]") {
    using switchboard::protocol::to_string;
    CHECK(to_string(command_kind::register_name) == "register");
    CHECK(to_string(command_kind::msg) == "msg");
    CHECK(to_string(command_kind::join) == "join");
    CHECK(to_string(command_kind::leave) == "leave");
    CHECK(to_string(command_kind::say) == "say");
    CHECK(to_string(command_kind::who) == "who");
    CHECK(to_string(command_kind::quit) == "quit");
    CHECK(to_string(command_kind::unknown).empty());
}

TEST_CASE("parse: /register splits name and optional secret at the first space", "[parse]") {
    check("/register alice", command_kind::register_name, false, "alice");
    check("/register al ice", command_kind::register_name, false, "al", "ice");
    check("/register alice s3cret with spaces ", command_kind::register_name, false, "alice",
          "s3cret with spaces ");
    check("/register alice ", command_kind::register_name, false, "alice"); // empty secret
    check("/register a@b x", command_kind::register_name, false, "a@b", "x"); // validated later
    check("/register  alice", command_kind::register_name, true);            // empty name
}

TEST_CASE("parse: /join, /leave take the whole rest of the line", "[parse]") {
    check("/join lobby", command_kind::join, false, "lobby");
    check("/join Lobby Two", command_kind::join, false, "Lobby Two");
    check("/leave lobby", command_kind::leave, false, "lobby");
    check("/leave lo\tbby", command_kind::leave, false, "lo\tbby");
}

TEST_CASE("parse: /msg and /say split target and text at the first space", "[parse]") {
    check("/msg bob hi", command_kind::msg, false, "bob", "hi");
    check("/msg bob hello  world ", command_kind::msg, false, "bob", "hello  world ");
    check("/msg bob  two leading", command_kind::msg, false, "bob", " two leading");
    check("/msg bob \t", command_kind::msg, false, "bob", "\t");
    check("/msg b@d x", command_kind::msg, false, "b@d", "x"); // names validated later
    check("/say lobby hi all", command_kind::say, false, "lobby", "hi all");
    check("/say lobby x", command_kind::say, false, "lobby", "x");
}

TEST_CASE("parse: @ and # shortcuts", "[parse]") {
    check("@bob hi there", command_kind::msg, false, "bob", "hi there");
    check("@Bob x", command_kind::msg, false, "Bob", "x");
    check("#lobby hello", command_kind::say, false, "lobby", "hello");
    check("#lobby  spaced ", command_kind::say, false, "lobby", " spaced ");
}

TEST_CASE("parse: command words are case-insensitive", "[parse]") {
    check("/REGISTER alice", command_kind::register_name, false, "alice");
    check("/Register Alice", command_kind::register_name, false, "Alice");
    check("/MsG bob hi", command_kind::msg, false, "bob", "hi");
    check("/JOIN x", command_kind::join, false, "x");
    check("/Leave x", command_kind::leave, false, "x");
    check("/SAY r t", command_kind::say, false, "r", "t");
    check("/WHO", command_kind::who, false);
    check("/Quit", command_kind::quit, false);
}

TEST_CASE("parse: /who and /quit ignore any argument", "[parse]") {
    check("/who", command_kind::who, false);
    check("/who extra", command_kind::who, false);
    check("/who ", command_kind::who, false);
    check("/quit", command_kind::quit, false);
    check("/quit now please", command_kind::quit, false);
}

TEST_CASE("parse: usage errors", "[parse]") {
    check("/msg bob", command_kind::msg, true);
    check("/msg bob ", command_kind::msg, true);
    check("/msg", command_kind::msg, true);
    check("/msg ", command_kind::msg, true);
    check("/msg  bob hi", command_kind::msg, true); // empty target
    check("@bob", command_kind::msg, true);
    check("@bob ", command_kind::msg, true);
    check("@", command_kind::msg, true);
    check("@ bob hi", command_kind::msg, true);
    check("/say lobby", command_kind::say, true);
    check("/say lobby ", command_kind::say, true);
    check("/say", command_kind::say, true);
    check("#lobby", command_kind::say, true);
    check("#lobby ", command_kind::say, true);
    check("#", command_kind::say, true);
    check("/register", command_kind::register_name, true);
    check("/register ", command_kind::register_name, true);
    check("/join", command_kind::join, true);
    check("/join ", command_kind::join, true);
    check("/leave", command_kind::leave, true);
    check("/leave ", command_kind::leave, true);
}

TEST_CASE("parse: unknown /words keep the word as sent, bare text has no word", "[parse]") {
    check("/Frob", command_kind::unknown, false, {}, {}, "Frob");
    check("/frob with args", command_kind::unknown, false, {}, {}, "frob");
    check("/registerx alice", command_kind::unknown, false, {}, {}, "registerx");
    check("/msgbob hi", command_kind::unknown, false, {}, {}, "msgbob");
    check("/wh", command_kind::unknown, false, {}, {}, "wh");
    check("/who\textra", command_kind::unknown, false, {}, {}, "who\textra"); // TAB is not a separator
    check("/", command_kind::unknown, false);
    check("hello world", command_kind::unknown, false);
    check(" /msg bob hi", command_kind::unknown, false);
    check("msg bob hi", command_kind::unknown, false);
    check("\t#room x", command_kind::unknown, false);
    check("", command_kind::unknown, false);
}
