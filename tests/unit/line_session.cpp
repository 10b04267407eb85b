// protocol::line_session over in_memory_transport: every row and rule of the line protocol v1
// (issue 2, "Line protocol v1 (exact)"), and chunking independence.
#include <switchboard/in_memory_transport.hpp>
#include <switchboard/protocol/line.hpp>
#include <switchboard/protocol/line_session.hpp>
#include <switchboard/router.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using switchboard::in_memory_transport;
using switchboard::router;
using switchboard::session_id;
using switchboard::status;
using switchboard::protocol::input_result;
using switchboard::protocol::line_session;
using switchboard::protocol::line_session_options;
using lines = std::vector<std::string>;

namespace {

struct client {
    in_memory_transport t;
    session_id id;
    std::unique_ptr<line_session> ls;
    input_result last = input_result::keep_reading;

    // Sends bytes as one chunk; returns what this client received since the last call.
    lines send(std::string_view bytes) {
        last = ls->on_input(bytes);
        return t.take_lines();
    }
    lines take() { return t.take_lines(); }
};

// A router plus line-protocol sessions on in-memory transports (what an adapter does).
struct server {
    line_session_options options;
    router r;
    std::deque<client> clients;

    explicit server(line_session_options opt = {}) : options(std::move(opt)) {}

    client& connect() {
        client& c = clients.emplace_back();
        c.id = r.open_session(c.t, switchboard::protocol::line_event_encoder::instance());
        c.ls = std::make_unique<line_session>(r, c.id, options);
        return c;
    }
    client& connect_as(const std::string& user) {
        client& c = connect();
        REQUIRE(c.send("/register " + user + "\n") == lines{"ok register " + user});
        return c;
    }
    void disconnect(client& c) { REQUIRE(r.close_session(c.id) == status::ok); }
};

} // namespace

// ---- greeting ---------------------------------------------------------------------------------

TEST_CASE("line_session: greet() sends each greeting line as `* <line>`", "[session]") {
    server s;
    client& c = s.connect();
    c.ls->greet("welcome to switchboard\n\nregister with /register <name>\n");
    CHECK(c.take() == lines{"* welcome to switchboard", "* register with /register <name>"});

    client& q = s.connect();
    q.ls->greet("");
    CHECK(q.t.received().empty());

    client& c1 = s.connect();
    c1.ls->greet("single line, no LF");
    CHECK(c1.t.take_bytes() == "* single line, no LF\n");
}

TEST_CASE("line_session: options and greeting text may go away after use", "[session][lifetime]") {
    // The session reads its options at construction and the greeting during greet() only, so a
    // caller may pass temporaries.
    router r;
    in_memory_transport t;
    const session_id id = r.open_session(t, switchboard::protocol::line_event_encoder::instance());
    line_session ls(r, id, [] {
        line_session_options o;
        o.max_line = 8;
        return o;
    }());
    ls.greet(std::string("hello"));
    CHECK(t.take_lines() == lines{"* hello"});
    ls.on_input("/register abcdefghij\n/who\n");
    CHECK(t.take_lines() == lines{"err line-too-long", "who"});
}

// ---- /register ---------------------------------------------------------------------------------

TEST_CASE("line_session: /register row", "[session][register]") {
    server s;
    client& a = s.connect();
    client& b = s.connect();
    CHECK(a.send("/register Alice\n") == lines{"ok register alice"});
    CHECK(b.send("/register ALICE\n") == lines{"err name-taken alice"});
    CHECK(a.send("/register bob\n") == lines{"err already-registered alice"});
    CHECK(a.send("/register alice\n") == lines{"err already-registered alice"});
    CHECK(b.send("/register b@d!\n") == lines{"err invalid-name b@d!"});
    CHECK(b.send("/register b@d! secret\n") == lines{"err invalid-name b@d!"}); // the name part only
    CHECK(b.send("/register  bob\n") == lines{"err usage register"});        // empty name
    CHECK(b.send("/register " + std::string(41, 'x') + "\n") == lines{"err invalid-name " + std::string(41, 'x')});
    CHECK(b.send("/register caf\xC3\xA9\n") == lines{"err invalid-name caf\xC3\xA9"});
    CHECK(b.send("/register\n") == lines{"err usage register"});
    CHECK(b.send("/register \n") == lines{"err usage register"});
    CHECK(b.send("/REGISTER " + std::string(40, 'B') + "\n") == lines{"ok register " + std::string(40, 'b')});
    CHECK(a.take().empty());
}

// ---- /msg and @ -------------------------------------------------------------------------------

TEST_CASE("line_session: /msg and @ row", "[session][msg]") {
    server s;
    client& a = s.connect_as("alice");
    client& b = s.connect_as("bob");
    client& anon = s.connect();

    CHECK(a.send("/msg Bob hello bob\n").empty()); // nothing to the sender
    CHECK(b.take() == lines{"msg alice hello bob"});
    CHECK(a.send("@BOB hi again\n").empty());
    CHECK(b.take() == lines{"msg alice hi again"});
    CHECK(a.send("/MSG bob x\n").empty());
    CHECK(b.take() == lines{"msg alice x"});

    CHECK(anon.send("/msg bob hi\n") == lines{"err not-registered"});
    CHECK(anon.send("@bob hi\n") == lines{"err not-registered"});
    CHECK(a.send("/msg Carol hi\n") == lines{"err user-not-found carol"});
    CHECK(a.send("@CAROL hi\n") == lines{"err user-not-found carol"});
    CHECK(a.send("/msg B@b hi\n") == lines{"err invalid-name B@b"});
    CHECK(a.send("@B@b hi\n") == lines{"err invalid-name B@b"});
    CHECK(a.send("/msg bob bell\a\n") == lines{"err invalid-text"});
    CHECK(a.send("/msg bob\n") == lines{"err usage msg"});
    CHECK(a.send("/msg bob \n") == lines{"err usage msg"});
    CHECK(a.send("/msg\n") == lines{"err usage msg"});
    CHECK(a.send("@bob\n") == lines{"err usage msg"});
    CHECK(a.send("@bob \n") == lines{"err usage msg"});
    CHECK(b.take().empty());
    CHECK(anon.take().empty());
}

TEST_CASE("line_session: /msg to oneself is delivered to oneself", "[session][msg]") {
    server s;
    client& a = s.connect_as("alice");
    CHECK(a.send("/msg ALICE memo\n") == lines{"msg alice memo"});
    CHECK(a.send("@alice memo 2\n") == lines{"msg alice memo 2"});
}

TEST_CASE("line_session: text passes byte for byte", "[session][msg]") {
    server s;
    client& a = s.connect_as("alice");
    client& b = s.connect_as("bob");
    const std::string texts[] = {
        "\ttab first",
        "tab\tin\tthe middle\t",
        "trailing spaces   ",
        " leading space",
        "  ",
        "h\xC3\xA9llo \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80",
        "/not a command",
        "@not a target",
        "ends with a backslash \\",
    };
    for (const std::string& text : texts) {
        INFO("text [" << text << "]");
        CHECK(a.send("/msg bob " + text + "\n").empty());
        CHECK(b.t.take_bytes() == "msg alice " + text + "\n");
        CHECK(a.send("@bob " + text + "\r\n").empty()); // CRLF: only the CR of the terminator goes
        CHECK(b.t.take_bytes() == "msg alice " + text + "\n");
    }
}

TEST_CASE("line_session: control bytes, CR, DEL or bad UTF-8 in text -> invalid-text, nothing delivered",
          "[session][msg]") {
    server s;
    client& a = s.connect_as("alice");
    client& b = s.connect_as("bob");
    REQUIRE(a.send("/join lobby\n") == lines{"ok join lobby"});
    REQUIRE(b.send("/join lobby\n") == lines{"ok join lobby"});
    (void)a.take();
    std::vector<std::string> bad = {
        "bare\rcr",   "cr\r in the middle", "\x1B[2J clear screen", "del\x7F", std::string("nul\0x", 5),
        "bell\a",     "\x01",         "form\ffeed",           "\xFF\xFD\x03 telnet",
        "\xC3",       "\xED\xA0\x80", "\xC0\x80",             "\xF4\x90\x80\x80",
    };
    for (int c = 0; c < 0x20; ++c)
        if (c != '\t' && c != '\n') bad.push_back("x" + std::string(1, static_cast<char>(c)) + "y");
    for (const std::string& text : bad) {
        INFO("text bytes: " << text.size());
        CHECK(a.send("/msg bob " + text + "\n") == lines{"err invalid-text"});
        CHECK(a.send("@bob " + text + "\n") == lines{"err invalid-text"});
        CHECK(a.send("/say lobby " + text + "\n") == lines{"err invalid-text"});
        CHECK(a.send("#lobby " + text + "\n") == lines{"err invalid-text"});
        CHECK(b.t.received().empty());
    }
    // Two CRs before LF: one is the terminator's, the other is text.
    CHECK(a.send("/msg bob hi\r\r\n") == lines{"err invalid-text"});
    CHECK(b.t.received().empty());
}

// ---- /join, /leave, /say and # ----------------------------------------------------------------

TEST_CASE("line_session: /join row", "[session][rooms]") {
    server s;
    client& a = s.connect_as("alice");
    client& b = s.connect_as("bob");
    client& anon = s.connect();
    CHECK(a.send("/join Lobby\n") == lines{"ok join lobby"});
    CHECK(b.send("/JOIN LOBBY\n") == lines{"ok join lobby"});
    CHECK(a.take() == lines{"join lobby bob"});
    CHECK(b.send("/join lobby\n") == lines{"err already-member lobby"});
    CHECK(b.send("/join lob by\n") == lines{"err invalid-name lob by"});
    CHECK(b.send("/join #lobby\n") == lines{"err invalid-name #lobby"});
    CHECK(anon.send("/join lobby\n") == lines{"err not-registered"});
    CHECK(b.send("/join\n") == lines{"err usage join"});
    CHECK(b.send("/join \n") == lines{"err usage join"});
    CHECK(a.take().empty());
}

TEST_CASE("line_session: /leave row", "[session][rooms]") {
    server s;
    client& a = s.connect_as("alice");
    client& b = s.connect_as("bob");
    client& c = s.connect_as("carol");
    client& anon = s.connect();
    for (client* x : {&a, &b, &c}) REQUIRE(x->send("/join lobby\n") == lines{"ok join lobby"});
    (void)a.take();
    (void)b.take();
    CHECK(b.send("/leave LOBBY\n") == lines{"ok leave lobby"});
    CHECK(a.take() == lines{"leave lobby bob"});
    CHECK(c.take() == lines{"leave lobby bob"});
    CHECK(b.send("/leave lobby\n") == lines{"err not-member lobby"});
    CHECK(b.send("/leave nowhere\n") == lines{"err not-member nowhere"});
    CHECK(b.send("/leave no where\n") == lines{"err invalid-name no where"});
    CHECK(anon.send("/leave lobby\n") == lines{"err not-registered"});
    CHECK(b.send("/leave\n") == lines{"err usage leave"});
    CHECK(b.send("/leave \n") == lines{"err usage leave"});
    CHECK(a.take().empty());
    CHECK(c.take().empty());
}

TEST_CASE("line_session: /say and # row", "[session][rooms]") {
    server s;
    client& a = s.connect_as("alice");
    client& b = s.connect_as("bob");
    client& c = s.connect_as("carol");
    client& outsider = s.connect_as("dave");
    client& anon = s.connect();
    for (client* x : {&a, &b, &c}) REQUIRE(x->send("/join lobby\n") == lines{"ok join lobby"});
    (void)a.take();
    (void)b.take();

    CHECK(a.send("/say LOBBY hello room\n").empty()); // nothing to the sender
    CHECK(b.take() == lines{"room lobby alice hello room"});
    CHECK(c.take() == lines{"room lobby alice hello room"});
    CHECK(outsider.take().empty());
    CHECK(b.send("#Lobby  two spaces \n").empty());
    CHECK(a.take() == lines{"room lobby bob  two spaces "});
    CHECK(c.take() == lines{"room lobby bob  two spaces "});

    CHECK(anon.send("/say lobby hi\n") == lines{"err not-registered"});
    CHECK(outsider.send("/say lobby hi\n") == lines{"err not-member lobby"});
    CHECK(outsider.send("#NoSuchRoom hi\n") == lines{"err not-member nosuchroom"});
    CHECK(a.send("/say lob!by hi\n") == lines{"err invalid-name lob!by"});
    CHECK(a.send("#lob!by hi\n") == lines{"err invalid-name lob!by"});
    CHECK(a.send("/say lobby \x1B\n") == lines{"err invalid-text"});
    CHECK(a.send("/say lobby\n") == lines{"err usage say"});
    CHECK(a.send("/say lobby \n") == lines{"err usage say"});
    CHECK(a.send("/say\n") == lines{"err usage say"});
    CHECK(a.send("#lobby\n") == lines{"err usage say"});
    CHECK(a.send("#lobby \n") == lines{"err usage say"});
    CHECK(b.take().empty());
    CHECK(c.take().empty());
}

// ---- /who, /quit, unknown commands ----------------------------------------------------------

TEST_CASE("line_session: /who lists users in ascending byte order, `who` alone when none",
          "[session][who]") {
    server s;
    client& anon = s.connect();
    CHECK(anon.send("/who\n") == lines{"who"});
    CHECK(anon.t.take_bytes().empty());
    client& z = s.connect_as("zed");
    s.connect_as("_under");
    client& m = s.connect();
    REQUIRE(m.send("/register Mike\n") == lines{"ok register mike"});
    s.connect_as("-dash");
    s.connect_as("0zero");
    s.connect_as(".dot");
    s.connect_as("a");
    const lines expected{"who -dash .dot 0zero _under a mike zed"};
    CHECK(anon.send("/who\n") == expected); // works before registering
    CHECK(z.send("/WHO\n") == expected);    // self included
    CHECK(z.send("/who extra words\n") == expected);
    s.disconnect(m);
    CHECK(z.send("/who\n") == lines{"who -dash .dot 0zero _under a zed"});
}

TEST_CASE("line_session: /quit replies `ok quit` and ignores the rest of the chunk", "[session][quit]") {
    server s;
    client& a = s.connect_as("alice");
    client& b = s.connect_as("bob");
    CHECK(a.send("/msg bob before\n/QUIT\n/msg bob after\n/who\n") == lines{"ok quit"});
    CHECK(a.last == input_result::quit);
    CHECK(b.take() == lines{"msg alice before"});
    // Later input is ignored too.
    CHECK(a.send("/msg bob later\n").empty());
    CHECK(a.last == input_result::quit);
    CHECK(a.ls->on_end_of_input() == input_result::quit);
    CHECK(a.take().empty());
    CHECK(b.take().empty());
    // /quit does not close by itself: the adapter flushes, closes, then closes the session.
    CHECK(s.r.is_open(a.id));
    s.disconnect(a);
    CHECK(b.send("/msg alice there?\n") == lines{"err user-not-found alice"});

    // /quit works before registering, with arguments, split across chunks.
    client& anon = s.connect();
    CHECK(anon.send("/qu").empty());
    CHECK(anon.last == input_result::keep_reading);
    CHECK(anon.send("it now\r\n/who\n") == lines{"ok quit"});
    CHECK(anon.last == input_result::quit);
}

TEST_CASE("line_session: unknown commands", "[session][unknown]") {
    server s;
    client& anon = s.connect();
    CHECK(anon.send("/Frob\n") == lines{"err unknown-command frob"});
    CHECK(anon.send("/FROB with args\n") == lines{"err unknown-command frob"});
    CHECK(anon.send("/registerx alice\n") == lines{"err unknown-command registerx"});
    CHECK(anon.send("hello there\n") == lines{"err unknown-command"});
    CHECK(anon.send(" /who\n") == lines{"err unknown-command"});
    CHECK(anon.send("*\n") == lines{"err unknown-command"});
    client& a = s.connect_as("alice");
    CHECK(a.send("just chatting\n") == lines{"err unknown-command"});
    CHECK(a.send("/Msgx bob hi\n") == lines{"err unknown-command msgx"});
}

// ---- check order ------------------------------------------------------------------------------

TEST_CASE("line_session: checks run usage -> not-registered -> invalid-name -> invalid-text -> outcome",
          "[session][order]") {
    server s;
    client& anon = s.connect();
    client& a = s.connect_as("alice");
    client& b = s.connect_as("bob");

    // usage before not-registered
    CHECK(anon.send("/msg b@d\n") == lines{"err usage msg"});
    CHECK(anon.send("#b@d \n") == lines{"err usage say"});
    CHECK(anon.send("/join\n") == lines{"err usage join"});
    CHECK(a.send("/register\n") == lines{"err usage register"}); // usage before already-registered
    // not-registered before invalid-name and invalid-text
    CHECK(anon.send("/msg b@d \x1B\n") == lines{"err not-registered"});
    CHECK(anon.send("#r@@m \x1B\n") == lines{"err not-registered"});
    CHECK(anon.send("/join b@d\n") == lines{"err not-registered"});
    CHECK(anon.send("/leave b@d\n") == lines{"err not-registered"});
    // invalid-name before invalid-text
    CHECK(a.send("/msg b@d \x1B\n") == lines{"err invalid-name b@d"});
    CHECK(a.send("#r@@m \x1B\n") == lines{"err invalid-name r@@m"});
    // invalid-name before the command's own outcome
    CHECK(a.send("/register b@d\n") == lines{"err invalid-name b@d"}); // not already-registered
    CHECK(b.send("/register Al!ce\n") == lines{"err invalid-name Al!ce"});
    // invalid-text before user-not-found / not-member
    CHECK(a.send("/msg nobody \x1B\n") == lines{"err invalid-text"});
    CHECK(a.send("/say nowhere \x1B\n") == lines{"err invalid-text"});
    // then the outcome
    CHECK(a.send("/msg nobody hi\n") == lines{"err user-not-found nobody"});
    CHECK(a.send("/say nowhere hi\n") == lines{"err not-member nowhere"});
    CHECK(b.take().empty());
}

// ---- framing rules ----------------------------------------------------------------------------

TEST_CASE("line_session: empty lines are ignored, no reply", "[session][framing]") {
    server s;
    client& a = s.connect_as("alice");
    CHECK(a.send("\n").empty());
    CHECK(a.send("\r\n\n\r\n").empty());
    client& anon = s.connect();
    CHECK(anon.send("\n\n/who\n\n").size() == 1);
}

TEST_CASE("line_session: an over-long line gets `err line-too-long` once, the connection stays usable",
          "[session][framing]") {
    line_session_options opt;
    opt.max_line = 32;
    server s(opt);
    client& a = s.connect_as("alice");
    client& b = s.connect_as("bob");
    // Exactly the limit is fine: "/msg bob " is 9 bytes + 23 bytes of text = 32.
    const std::string text23(23, 't');
    CHECK(a.send("/msg bob " + text23 + "\r\n").empty());
    CHECK(b.take() == lines{"msg alice " + text23});
    // One more byte is too long, in one chunk.
    CHECK(a.send("/msg bob " + text23 + "u\n/who\n") == lines{"err line-too-long", "who alice bob"});
    CHECK(b.take().empty());
    // A long line arriving in many small chunks: reported once, memory bounded.
    lines got;
    for (int i = 0; i < 1000; ++i) {
        for (std::string& l : a.send("/msg bob xxxxxxxxxx")) got.push_back(l);
        REQUIRE(a.ls->buffered() <= 33);
    }
    CHECK(got == lines{"err line-too-long"});
    CHECK(a.send("still the same line\n/msg bob after\n").empty());
    CHECK(b.take() == lines{"msg alice after"});
    CHECK(a.ls->buffered() == 0);
}

TEST_CASE("line_session: end of input processes the unterminated last line", "[session][framing]") {
    server s;
    client& a = s.connect_as("alice");
    client& b = s.connect_as("bob");
    CHECK(a.send("/msg bob one\n/msg bob two").empty());
    CHECK(b.take() == lines{"msg alice one"});
    CHECK(a.ls->buffered() == 12);
    CHECK(a.ls->on_end_of_input() == input_result::quit);
    CHECK(b.take() == lines{"msg alice two"});
    CHECK(a.send("/msg bob ignored\n").empty());
    CHECK(b.take().empty());

    // An unterminated command gets its reply.
    client& c = s.connect();
    CHECK(c.send("/who").empty());
    CHECK(c.ls->on_end_of_input() == input_result::quit);
    CHECK(c.take() == lines{"who alice bob"});
}

TEST_CASE("line_session: every server line ends with exactly one LF, only greetings start with `*`",
          "[session][framing]") {
    server s;
    client& a = s.connect();
    a.ls->greet("hi");
    a.ls->on_input("/register alice\n/who\n/frob\nbad\n/join r\n/msg alice x\n/msg nobody y\n/leave r\n");
    const std::string out = a.t.take_bytes();
    CHECK(out ==
          "* hi\nok register alice\nwho alice\nerr unknown-command frob\nerr unknown-command\n"
          "ok join r\nmsg alice x\nerr user-not-found nobody\nok leave r\n");
}

// ---- disconnect -------------------------------------------------------------------------------

TEST_CASE("line_session: disconnect releases the user and its rooms, the name can be taken again",
          "[session][disconnect]") {
    server s;
    client& a = s.connect_as("alice");
    client& b = s.connect_as("bob");
    CHECK(a.send("/join r1\n/join r2\n") == lines{"ok join r1", "ok join r2"});
    CHECK(b.send("/join r1\n/join r2\n") == lines{"ok join r1", "ok join r2"});
    CHECK(a.take() == lines{"join r1 bob", "join r2 bob"});

    s.disconnect(a);
    lines left = b.take();
    std::sort(left.begin(), left.end());
    CHECK(left == lines{"leave r1 alice", "leave r2 alice"});
    CHECK(b.send("/msg alice hi\n") == lines{"err user-not-found alice"});
    CHECK(b.send("/who\n") == lines{"who bob"});

    client& a2 = s.connect();
    CHECK(a2.send("/register Alice\n") == lines{"ok register alice"});
    CHECK(b.send("@alice welcome back\n").empty());
    CHECK(a2.take() == lines{"msg bob welcome back"});
    CHECK(a2.send("#r1 am I in?\n") == lines{"err not-member r1"});
}

// ---- chunking independence --------------------------------------------------------------------

namespace {

// One step of a scripted conversation: client `who` sends `bytes`.
struct step {
    std::size_t who;
    std::string bytes;
};

const std::vector<step>& conversation() {
    static const std::vector<step> script = {
        {0, "/who\n"},
        {0, "/register Alice\r\n"},
        {1, "/register alice\n/register Bob\n"},
        {2, "/register carol\n/who\n"},
        {0, "/msg bob hi bob\n@CAROL hi carol \t\n@dave hi?\n"},
        {1, "/join lobby\n/join Lobby\n"},
        {0, "/join LOBBY\n#lobby hello h\xC3\xA9llo \xF0\x9F\x98\x80\n"},
        {2, "\n\r\n#lobby not member\n/join lobby\n/say lobby hey all  \n"},
        {1, "/msg alice bad\rtext\n/msg alice ctl\x1B[1m\n/msg b@d x\n/frob\nplain text\n"},
        {0, std::string(100, 'z') + "\n/msg bob after long\n"},
        {2, "/msg\n/msg carol\n@carol \n/register x\n/leave lobby\n/leave lobby\n"},
        {1, "/msg alice " + std::string(60, 'y') + "\n/Who\n"}, // 71 bytes > 64
        {0, "/quit\n/msg bob never\n"},
        {1, "/say lobby bye\n/leave lobby\n/msg carol last\n"},
    };
    return script;
}

// Runs the conversation; each step is fed in chunks of 1..7 bytes when `rng` is given, else whole.
// Returns the transcript: every client's output after every step, tagged.
std::string run(std::mt19937* rng) {
    line_session_options opt;
    opt.max_line = 64;
    server s(opt);
    for (int i = 0; i < 3; ++i) s.connect();
    std::string transcript;
    std::uniform_int_distribution<std::size_t> len(1, 7);
    for (const step& st : conversation()) {
        client& c = s.clients[st.who];
        if (!rng) {
            c.ls->on_input(st.bytes);
        } else {
            for (std::size_t pos = 0; pos < st.bytes.size();) {
                const std::size_t n = std::min(len(*rng), st.bytes.size() - pos);
                c.ls->on_input(std::string_view(st.bytes).substr(pos, n));
                pos += n;
            }
        }
        for (std::size_t i = 0; i < 3; ++i)
            transcript += "[" + std::to_string(i) + "]" + s.clients[i].t.take_bytes();
    }
    return transcript;
}

} // namespace

TEST_CASE("line_session: a conversation gives the exact expected transcript", "[session][chunks]") {
    const std::string expected =
        // /who before anyone registered
        "[0]who\n[1][2]"
        "[0]ok register alice\n[1][2]"
        "[0][1]err name-taken alice\nok register bob\n[2]"
        "[0][1][2]ok register carol\nwho alice bob carol\n"
        "[0]err user-not-found dave\n[1]msg alice hi bob\n[2]msg alice hi carol \t\n"
        "[0][1]ok join lobby\nerr already-member lobby\n[2]"
        "[0]ok join lobby\n[1]join lobby alice\nroom lobby alice hello h\xC3\xA9llo \xF0\x9F\x98\x80\n[2]"
        "[0]join lobby carol\nroom lobby carol hey all  \n[1]join lobby carol\nroom lobby carol hey all  \n"
        "[2]err not-member lobby\nok join lobby\n"
        "[0][1]err invalid-text\nerr invalid-text\nerr invalid-name b@d\nerr unknown-command frob\n"
        "err unknown-command\n[2]"
        "[0]err line-too-long\n[1]msg alice after long\n[2]"
        "[0]leave lobby carol\n[1]leave lobby carol\n[2]err usage msg\nerr usage msg\nerr usage msg\n"
        "err already-registered carol\nok leave lobby\nerr not-member lobby\n"
        "[0][1]err line-too-long\nwho alice bob carol\n[2]"
        "[0]ok quit\n[1][2]"
        "[0]room lobby bob bye\nleave lobby bob\n[1]ok leave lobby\n[2]msg bob last\n";
    CHECK(run(nullptr) == expected);
}

TEST_CASE("line_session: random small chunks give the same output as whole chunks", "[session][chunks]") {
    const std::string whole = run(nullptr);
    for (unsigned seed = 1; seed <= 25; ++seed) {
        std::mt19937 rng(seed);
        INFO("seed " << seed);
        CHECK(run(&rng) == whole);
    }
}

TEST_CASE("line_session: one client's whole stream in random chunks crossing line boundaries",
          "[session][chunks]") {
    const std::string stream = "/register Alice\r\n/join r\n\n/msg alice one\n" + std::string(80, 'L') +
                               "\r\n@alice two \t\n/who\n/msg alice bad\x01\n#r alone\n/frob x\n"
                               "/leave r\n/msg alice three\n/msg alice unterminated";
    auto run_stream = [&](std::mt19937* rng) {
        line_session_options opt;
        opt.max_line = 48;
        server s(opt);
        client& a = s.connect();
        if (!rng) {
            a.ls->on_input(stream);
        } else {
            std::uniform_int_distribution<std::size_t> len(1, 7);
            for (std::size_t pos = 0; pos < stream.size();) {
                const std::size_t n = std::min(len(*rng), stream.size() - pos);
                a.ls->on_input(std::string_view(stream).substr(pos, n));
                pos += n;
            }
        }
        a.ls->on_end_of_input();
        return a.t.take_bytes();
    };
    const std::string whole = run_stream(nullptr);
    CHECK(whole ==
          "ok register alice\nok join r\nmsg alice one\nerr line-too-long\nmsg alice two \t\nwho alice\n"
          "err invalid-text\nerr unknown-command frob\nok leave r\nmsg alice three\nmsg alice unterminated\n");
    for (unsigned seed = 100; seed < 130; ++seed) {
        std::mt19937 rng(seed);
        INFO("seed " << seed);
        CHECK(run_stream(&rng) == whole);
    }
}

// ---- flow control ------------------------------------------------------------------------------

TEST_CASE("line_session: a pause predicate stops after the line that backs output up; resume() continues",
          "[session][backpressure]") {
    server s;
    client& a = s.connect_as("alice");
    std::size_t replies_allowed = 3;
    auto pause = [&] { return a.t.received().size() >= replies_allowed; }; // "output backed up"
    const std::string input = "/who\n/who\n/who\n/who\n/who\n/join x\n/par"; // ends mid-line
    CHECK(a.ls->on_input(input, {}, pause) == input_result::paused);
    CHECK(a.take() == lines{"who alice", "who alice", "who alice"}); // not five
    CHECK(a.ls->held() == std::string("/who\n/who\n/join x\n/par").size());
    // Still backed up (nothing taken yet from the client's point of view): one line at a time.
    replies_allowed = 1;
    CHECK(a.ls->resume({}, pause) == input_result::paused);
    CHECK(a.take() == lines{"who alice"});
    // Drained: the rest runs; the unfinished line stays in the framer, not in the held input.
    replies_allowed = 100;
    CHECK(a.ls->resume({}, pause) == input_result::keep_reading);
    CHECK(a.take() == lines{"who alice", "ok join x"});
    CHECK(a.ls->held() == 0);
    CHECK(a.ls->buffered() == 4);
    CHECK(a.ls->on_input("t x\n/quit\n/who\n", {}, pause) == input_result::quit);
    CHECK(a.take() == lines{"err unknown-command part", "ok quit"}); // the held "/par" + "t x"
}
