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

TEST_CASE("parse: a new command is unknown and empty, and the parser sets only its own fields",
          "[parse]") {
    // command() writes every member itself (so that GCC does not clear it with `rep stosq`, issue
    // #11): a member it got wrong would show here, and in every parse that leaves it alone.
    const line_command fresh;
    CHECK(fresh.kind == command_kind::unknown);
    CHECK_FALSE(fresh.usage_error);
    CHECK(fresh.target.empty());
    CHECK(fresh.text.empty());
    CHECK(fresh.word.empty());
    CHECK(fresh.id.empty());
    CHECK(fresh.malformed.empty());
    CHECK_FALSE(fresh.stop);
    for (const std::string_view line : {"/msg bob hi", "@bob hi", "#lobby hi", "/register alice",
                                        "/join lobby", "/who", "/frob", "hello", "/typing bob"}) {
        INFO("line: [" << std::string(line) << "]");
        const line_command c = parse_command(line);
        CHECK(c.id.empty());
        CHECK(c.malformed.empty());
        CHECK_FALSE(c.stop);
    }
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

TEST_CASE("parse: command_kind_of matches a command word case-insensitively and nothing else",
          "[parse]") {
    using switchboard::protocol::command_kind_of;
    using switchboard::protocol::to_string;
    // The reference: the word equals a command's protocol word, ASCII letters folded.
    const auto reference = [](std::string_view word) {
        for (int k = 0; k < static_cast<int>(command_kind::unknown); ++k) {
            const auto kind = static_cast<command_kind>(k);
            if (switchboard::equals_folded(word, to_string(kind))) return kind;
        }
        return command_kind::unknown;
    };
    // Every word of 1 to 3 bytes over an alphabet holding each command word's letters in both
    // cases, their neighbours under `| 0x20` ('@', '`', '[', '{', ...), digits, a control byte
    // and high bytes; plus every command word with each byte in turn replaced by each of those.
    const std::string alphabet = std::string("acdeghijklmnqrstuvwyACDEGHIJKLMNQRSTUVWY@`[{_-.09 ~\x7f") +
                                 std::string("\0\x01\x1f\x80\xc1\xcd\xe1\xed\xff", 9);
    std::size_t mismatches = 0, words = 0;
    const auto compare = [&](std::string_view w) {
        ++words;
        if (command_kind_of(w) != reference(w)) {
            ++mismatches;
            UNSCOPED_INFO("word: [" << std::string(w) << "]");
        }
    };
    std::string w;
    for (char a : alphabet) {
        compare(std::string(1, a));
        for (char b : alphabet) {
            compare(std::string{a, b});
            for (char c : alphabet) compare(std::string{a, b, c});
        }
    }
    for (int k = 0; k < static_cast<int>(command_kind::unknown); ++k) {
        const std::string word(to_string(static_cast<command_kind>(k)));
        for (std::size_t i = 0; i < word.size(); ++i)
            for (char a : alphabet) {
                w = word;
                w[i] = a;
                compare(w);
                w = word + a; // one byte longer
                compare(w);
            }
        compare(word.substr(1));
    }
    CHECK(mismatches == 0);
    CHECK(words > 200000);
    CHECK(command_kind_of("") == command_kind::unknown);
    CHECK(command_kind_of("REGISTER") == command_kind::register_name);
    CHECK(command_kind_of("unWatch") == command_kind::unwatch);
    CHECK(command_kind_of("registerx") == command_kind::unknown); // 9 bytes
    CHECK(command_kind_of(std::string_view("msg\0", 4)) == command_kind::unknown);
    CHECK(command_kind_of("m\xd3g") == command_kind::unknown); // 0xD3 | 0x20 is not 's'
    CHECK(command_kind_of("MS\x07") == command_kind::unknown);
}

TEST_CASE("parse: a line's views point into the line, the text after exactly one space",
          "[parse]") {
    const std::string line = "/msg bob hello world";
    const line_command c = parse_command(line);
    REQUIRE(c.kind == command_kind::msg);
    CHECK(c.target.data() == line.data() + 5);
    CHECK(c.text.data() == line.data() + 9);
    CHECK(c.text.size() == 11);
    const std::string at = "@bob x";
    const line_command d = parse_command(at);
    CHECK(d.target.data() == at.data() + 1);
    CHECK(d.text.data() == at.data() + 5);
    const std::string unknown = "/frobnicate a b";
    CHECK(parse_command(unknown).word.data() == unknown.data() + 1);
    check(std::string_view("/msg b\0b x", 10), command_kind::msg, false, std::string_view("b\0b", 3), "x");
    check("/who", command_kind::who, false);
    check("/w", command_kind::unknown, false, {}, {}, "w");
    check("@b  ", command_kind::msg, false, "b", " ");
}
