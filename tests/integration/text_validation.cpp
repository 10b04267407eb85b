// <text> validation over TCP: valid UTF-8 passes byte for byte; control bytes (but TAB), a CR in
// the middle, escape sequences, invalid UTF-8 and telnet negotiation bytes get err invalid-text
// and nothing is delivered, neither directly nor to a room.
#include "test_server.hpp"

#include <string>
#include <vector>

using namespace switchboard_test;

namespace {
struct trio {
    client alice, bob, carol; // alice and bob share room "r"; carol is only there to watch
};

trio make_trio(test_server& server) {
    trio t{registered(server.port(), "alice"), registered(server.port(), "bob"),
           registered(server.port(), "carol")};
    t.alice.send("/join r\n");
    REQUIRE(t.alice.read_line() == "ok join r");
    t.bob.send("/join r\n");
    REQUIRE(t.bob.read_line() == "ok join r");
    REQUIRE(t.alice.read_line() == "join r bob");
    return t;
}
} // namespace

TEST_CASE("text: tabs and trailing spaces and multi-byte UTF-8 pass byte for byte", "[integration][text]") {
    test_server server;
    trio t = make_trio(server);
    const std::vector<std::string> texts = {
        "a\tb\t",                                  // tabs
        "trailing spaces   ",                      // trailing spaces
        "\t",                                      // a lone tab is text
        " ",                                       // a lone space is text
        "caf\xC3\xA9 \xE4\xB8\x96\xE7\x95\x8C \xF0\x9F\x8E\x89", // 2-, 3- and 4-byte sequences
        "\xC2\x80\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF\xF0\x90\x80\x80\xF4\x8F\xBF\xBF", // boundaries
        "~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}",      // printable ASCII punctuation
    };
    for (const std::string& text : texts) {
        INFO("text: " << printable(text));
        t.alice.send("/msg bob " + text + "\n");
        REQUIRE(t.bob.read_line() == "msg alice " + text);
        t.alice.send("#r " + text + "\n");
        REQUIRE(t.bob.read_line() == "room r alice " + text);
    }
    expect_who(t.alice, "who alice bob carol");
}

TEST_CASE("text: invalid text gets err invalid-text and nothing is delivered", "[integration][text]") {
    test_server server;
    trio t = make_trio(server);
    const std::vector<std::string> texts = {
        std::string("a\x00" "b", 3),   // NUL
        "bell\x07",                    // BEL
        "a\rb",                        // CR in the middle
        "\rfake line",                 // CR at the start (a bare CR overwrites the terminal line)
        "end\r\r",                      // the CR right before LF is stripped; this one is not
        "\x1b[2J\x1b[H",               // ANSI escape: clear screen
        "red \x1b[31malert",           // ANSI colour
        "\x0b\x0c",                    // VT, FF
        "del\x7f",                     // DEL
        "\x1f",                        // unit separator
        "\xff\xfb\x01",                // telnet IAC WILL ECHO
        "\xff\xfd\x18 hi",             // telnet IAC DO TERMINAL-TYPE
        "hi \xff\xf4\xff\xfd\x06",     // telnet IAC IP, IAC DO TIMING-MARK (Ctrl-C in telnet)
        "\x80",                        // lone continuation byte
        "\xc3",                        // truncated 2-byte sequence
        "\xe4\xb8",                    // truncated 3-byte sequence
        "\xc0\xaf",                    // overlong '/'
        "\xe0\x80\xaf",                // overlong 3-byte
        "\xed\xa0\x80",                // UTF-16 surrogate
        "\xf4\x90\x80\x80",            // above U+10FFFF
        "\xfe\xfe",                    // never valid in UTF-8
    };
    for (const std::string& text : texts) {
        INFO("text: " << printable(text));
        t.alice.send("/msg bob " + text + "\n");
        REQUIRE(t.alice.read_line() == "err invalid-text");
        t.alice.send("@bob " + text + "\n");
        REQUIRE(t.alice.read_line() == "err invalid-text");
        t.alice.send("#r " + text + "\n");
        REQUIRE(t.alice.read_line() == "err invalid-text");
        t.alice.send("/say r " + text + "\n");
        REQUIRE(t.alice.read_line() == "err invalid-text");
    }
    // Alice's lines were all processed (she got every error) before bob's /who: had anything been
    // delivered, it would come before the who reply.
    expect_who(t.bob, "who alice bob carol");
    expect_who(t.carol, "who alice bob carol");
}

TEST_CASE("text: a line of telnet negotiation bytes alone is not a command", "[integration][text]") {
    test_server server;
    client alice = registered(server.port(), "alice");
    alice.send("\xff\xfd\x18\xff\xfd\x20\n"); // what a telnet client may send first
    REQUIRE(alice.read_line() == "err unknown-command");
    alice.send("\xff\xfb\x01/msg alice hi\n"); // negotiation glued to the front of a command
    REQUIRE(alice.read_line() == "err unknown-command");
    expect_who(alice, "who alice");
}
