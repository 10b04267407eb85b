// tcp_chat's user file (examples/user_file.hpp: salted PBKDF2 through OpenSSL) as the router's
// authorizer, over real sockets: listed names need their secret, others stay open, and
// `--users-only` closes them.
#include "test_server.hpp"

#include "../../examples/user_file.hpp"

#include <cstdio>
#include <fstream>
#include <string>
#include <unistd.h>
#include <utility>

using namespace switchboard_test;
using switchboard::status;

namespace {
// A user file in a temporary directory, removed at the end of the test.
struct temp_user_file {
    std::string path;
    explicit temp_user_file(const std::string& contents) {
        char tmpl[] = "/tmp/switchboard-users-XXXXXX";
        const int fd = ::mkstemp(tmpl);
        REQUIRE(fd >= 0);
        ::close(fd);
        path = tmpl;
        std::ofstream(path) << contents;
    }
    ~temp_user_file() { std::remove(path.c_str()); }
};

// A server whose router checks names against a user file holding `lines`, as tcp_chat does.
struct auth_server {
    temp_user_file file;
    tcp_chat::user_file users;
    test_server server;
    auth_server(const std::string& lines, bool users_only) : file(lines), users(load(file.path)) {
        server.with_router([&](switchboard::router& r) { r.set_authorizer(authorizer_for(users, users_only)); });
    }
    static tcp_chat::user_file load(const std::string& path) {
        std::string error;
        auto loaded = tcp_chat::user_file::load(path, error);
        REQUIRE(loaded);
        return std::move(*loaded);
    }
    static switchboard::authorizer authorizer_for(const tcp_chat::user_file& users, bool users_only);
};

// The authorizer tcp_chat installs for --users (and --users-only).
switchboard::authorizer auth_server::authorizer_for(const tcp_chat::user_file& users, bool users_only) {
    return [&users, users_only](switchboard::session_id, const switchboard::name& user, std::string_view secret) {
        if (!users.contains(user)) return users_only ? status::auth_failed : status::ok;
        return users.verify(user, secret) ? status::ok : status::auth_failed;
    };
}
} // namespace

TEST_CASE("user file: hash_line round-trips, salts differ, bad lines are refused with their line number",
          "[integration][auth]") {
    const std::string line1 = tcp_chat::user_file::hash_line("Admin", "correct horse", 1000);
    const std::string line2 = tcp_chat::user_file::hash_line("admin", "correct horse", 1000);
    REQUIRE(line1.rfind("admin:pbkdf2-sha256:1000:", 0) == 0);
    CHECK(line1 != line2); // a fresh random salt each time
    CHECK(tcp_chat::user_file::hash_line("b@d", "x").empty());
    temp_user_file file("# comment\n\n" + line1 + "\n");
    std::string error;
    const auto users = tcp_chat::user_file::load(file.path, error);
    REQUIRE(users);
    CHECK(users->size() == 1);
    const auto admin = *switchboard::name::parse("ADMIN");
    CHECK(users->verify(admin, "correct horse"));
    CHECK_FALSE(users->verify(admin, "correct horse "));
    CHECK_FALSE(users->verify(admin, ""));
    CHECK_FALSE(users->verify(*switchboard::name::parse("bob"), "correct horse"));
    temp_user_file bad(line1 + "\nbob:pbkdf2-sha256:1000:zz:00\n");
    CHECK_FALSE(tcp_chat::user_file::load(bad.path, error));
    CHECK(error == bad.path + ":2: expected <user>:pbkdf2-sha256:<iterations>:<salt hex>:<32-byte key hex>");
    CHECK_FALSE(tcp_chat::user_file::load("/nonexistent/users", error));
}

TEST_CASE("user file: a listed name needs its secret over TCP; an unlisted one is open", "[integration][auth]") {
    auth_server s(tcp_chat::user_file::hash_line("alice", "s3cret pass", 1000) + "\n", false);
    test_server& server = s.server;
    client mallory(server.port());
    mallory.send("/register alice\n/register alice guess\n/register ALICE s3cret\n/who\n");
    CHECK(mallory.read_line() == "err auth-failed alice");
    CHECK(mallory.read_line() == "err auth-failed alice");
    CHECK(mallory.read_line() == "err auth-failed alice");
    CHECK(mallory.read_line() == "who");
    mallory.send("/register bob\n"); // not listed: open
    CHECK(mallory.read_line() == "ok register bob");
    client alice(server.port());
    alice.send("/register Alice s3cret pass\n");
    CHECK(alice.read_line() == "ok register alice");
    // The sender is always the registered identity: bob cannot speak as alice.
    mallory.send("@alice hi from bob\n");
    CHECK(alice.read_line() == "msg bob hi from bob");
    // A wrong secret reads auth-failed even while the name is online (no presence oracle).
    client eve(server.port());
    eve.send("/register alice nope\n/register alice s3cret pass\n");
    CHECK(eve.read_line() == "err auth-failed alice");
    CHECK(eve.read_line() == "err name-taken alice");
    CHECK(server.with_router([](switchboard::router& r) { return r.counters().auth_failed; }) == 4);
}

TEST_CASE("user file: with --users-only, unlisted names are refused", "[integration][auth]") {
    auth_server s(tcp_chat::user_file::hash_line("alice", "pw", 1000) + "\n", true);
    client c(s.server.port());
    c.send("/register bob\n/register alice pw\n");
    CHECK(c.read_line() == "err auth-failed bob");
    CHECK(c.read_line() == "ok register alice");
}
