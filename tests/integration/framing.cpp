// Framing over TCP: CRLF, lines split over many reads, many lines in one write, the line-length
// limit, and the unterminated last line of a half-closed peer.
#include "test_server.hpp"

#include <string>

using namespace switchboard_test;

namespace {
// Sends `bytes` one byte per send() call (the client sets TCP_NODELAY: one segment each).
void send_bytewise(client& c, std::string_view bytes) {
    for (char ch : bytes) c.send(std::string_view(&ch, 1));
}
} // namespace

TEST_CASE("framing: one CR before LF is dropped", "[integration][framing]") {
    test_server server;
    client alice(server.port());
    alice.send("/register alice\r\n");
    REQUIRE(alice.read_line() == "ok register alice");
    client bob = registered(server.port(), "bob");
    alice.send("/msg bob crlf\r\n");
    REQUIRE(bob.read_line() == "msg alice crlf");
    alice.send("/who\r\n");
    REQUIRE(alice.read_line() == "who alice bob");
    // Only one CR is dropped: the other is part of the text, which makes it invalid.
    alice.send("/msg bob two crs\r\r\n");
    REQUIRE(alice.read_line() == "err invalid-text");
    expect_who(bob, "who alice bob");
}

TEST_CASE("framing: a line split byte by byte over the socket", "[integration][framing]") {
    test_server server;
    client alice(server.port());
    send_bytewise(alice, "/register alice\n");
    REQUIRE(alice.read_line() == "ok register alice");
    client bob = registered(server.port(), "bob");
    send_bytewise(alice, "/msg bob split over many reads\r\n");
    REQUIRE(bob.read_line() == "msg alice split over many reads");
    send_bytewise(alice, "@bob second\n/who\n");
    REQUIRE(bob.read_line() == "msg alice second");
    REQUIRE(alice.read_line() == "who alice bob");
}

TEST_CASE("framing: many lines in one write are answered in order", "[integration][framing]") {
    test_server server;
    client alice(server.port());
    alice.send("/register alice\n/join r\n/who\n/msg alice self\n\n#r nobody else\n/leave r\n/who\r\n");
    REQUIRE(alice.read_line() == "ok register alice");
    REQUIRE(alice.read_line() == "ok join r");
    REQUIRE(alice.read_line() == "who alice");
    REQUIRE(alice.read_line() == "msg alice self");
    REQUIRE(alice.read_line() == "ok leave r");
    REQUIRE(alice.read_line() == "who alice");
}

TEST_CASE("framing: a line of exactly the limit is accepted and one byte more is not",
          "[integration][framing][limit]") {
    test_server server; // default limit 4096 bytes, terminator excluded
    client alice = registered(server.port(), "alice");
    client bob = registered(server.port(), "bob");
    const std::string prefix = "/msg bob ";
    const std::string text(4096 - prefix.size(), 't');
    alice.send(prefix + text + "\n");
    REQUIRE(bob.read_line() == "msg alice " + text);
    alice.send(prefix + text + "\r\n"); // the CR of a CRLF does not count
    REQUIRE(bob.read_line() == "msg alice " + text);
    alice.send(prefix + text + "u\n");
    REQUIRE(alice.read_line() == "err line-too-long");
    expect_who(alice, "who alice bob");
    expect_who(bob, "who alice bob"); // nothing was delivered
}

TEST_CASE("framing: an over-long line gets err line-too-long once and the connection stays usable",
          "[integration][framing][limit]") {
    test_server server;
    client alice = registered(server.port(), "alice");
    client bob = registered(server.port(), "bob");

    SECTION("in one write, followed by more lines in the same write") {
        alice.send("/msg bob " + std::string(10000, 'x') + "\n/msg bob after\n/who\n");
        REQUIRE(alice.read_line() == "err line-too-long");
        REQUIRE(bob.read_line() == "msg alice after");
        REQUIRE(alice.read_line() == "who alice bob");
    }
    SECTION("over many writes") {
        alice.send("/msg bob ");
        for (int i = 0; i < 20; ++i) alice.send(std::string(1000, 'y'));
        alice.send("\n/msg bob after\n");
        REQUIRE(alice.read_line() == "err line-too-long");
        REQUIRE(bob.read_line() == "msg alice after");
        expect_who(alice, "who alice bob"); // only one error
    }
    SECTION("answered before its LF arrives, then skipped up to the LF") {
        alice.send("/msg bob " + std::string(5000, 'z'));
        REQUIRE(alice.read_line() == "err line-too-long"); // the server did not wait for the LF
        for (int i = 0; i < 16; ++i) alice.send(std::string(64 * 1024, 'z')); // 1 MiB more
        alice.send("/msg bob still skipped\n@bob after\n");
        REQUIRE(bob.read_line() == "msg alice after");
        expect_who(alice, "who alice bob");
    }
    SECTION("two over-long lines get two errors") {
        alice.send(std::string(5000, 'a') + "\n" + std::string(5000, 'b') + "\n");
        REQUIRE(alice.read_line() == "err line-too-long");
        REQUIRE(alice.read_line() == "err line-too-long");
        expect_who(alice, "who alice bob");
    }
    expect_who(bob, "who alice bob");
}

TEST_CASE("framing: the limit is tcp_server_options::max_line", "[integration][framing][limit]") {
    switchboard::tcp_server_options options;
    options.max_line = 16;
    test_server server(1, options);
    client alice = registered(server.port(), "alice");
    alice.send("/msg alice 12345\n"); // 16 bytes
    REQUIRE(alice.read_line() == "msg alice 12345");
    alice.send("/msg alice 123456\n"); // 17 bytes
    REQUIRE(alice.read_line() == "err line-too-long");
    expect_who(alice, "who alice");
}

TEST_CASE("framing: half-close processes the unterminated last line then flushes then closes",
          "[integration][framing][half-close]") {
    test_server server;

    SECTION("replies to complete lines and to the last, unterminated one") {
        client alice(server.port());
        alice.send("/register alice\n/who");
        alice.shutdown_write();
        REQUIRE(alice.read_line() == "ok register alice");
        REQUIRE(alice.read_line() == "who alice");
        alice.expect_closed();
        REQUIRE(server.wait_disconnect("alice") == switchboard::disconnect_reason::peer_closed);
    }
    SECTION("a trailing CR of the unterminated line is dropped") {
        client anon(server.port());
        anon.send("/who\r");
        anon.shutdown_write();
        REQUIRE(anon.read_line() == "who");
        anon.expect_closed();
    }
    SECTION("the last line is delivered to others, and rooms are told after it") {
        client bob = registered(server.port(), "bob");
        client alice = registered(server.port(), "alice");
        for (client* c : {&bob, &alice}) {
            c->send("/join r\n");
            REQUIRE(c->read_line() == "ok join r");
        }
        REQUIRE(bob.read_line() == "join r alice");
        alice.send("#r last words");
        alice.shutdown_write();
        REQUIRE(bob.read_line() == "room r alice last words");
        REQUIRE(bob.read_line() == "leave r alice");
        alice.expect_closed();
    }
    SECTION("every queued reply is flushed before the close") {
        client alice(server.port());
        std::string burst = "/register alice\n";
        for (int i = 0; i < 2000; ++i) burst += "/who\n";
        burst += "/msg alice end";
        alice.send(burst);
        alice.shutdown_write();
        REQUIRE(alice.read_line() == "ok register alice");
        for (int i = 0; i < 2000; ++i) {
            INFO("reply " << i);
            REQUIRE(alice.read_line() == "who alice");
        }
        REQUIRE(alice.read_line() == "msg alice end");
        alice.expect_closed();
    }
    SECTION("nothing pending: just closed") {
        client anon(server.port());
        anon.shutdown_write();
        anon.expect_closed();
    }
}
