// The authorization hook on register (issue 4, "Identity and authorization"): the credential
// reaches it, its refusal is returned and counted, check order, and `/register <user> <secret>`.
#include <switchboard/in_memory_transport.hpp>
#include <switchboard/protocol/line_session.hpp>
#include <switchboard/router.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace switchboard;
using lines = std::vector<std::string>;

namespace {
// Allows "admin" only with the secret "open sesame"; every other name with any credential.
status admin_needs_secret(session_id, const name& user, std::string_view credential) {
    if (user.view() == "admin") return credential == "open sesame" ? status::ok : status::auth_failed;
    return status::ok;
}
} // namespace

TEST_CASE("authorizer: default allows any valid name, with or without a credential", "[auth]") {
    router r;
    in_memory_transport t1, t2;
    const session_id a = r.open_session(t1, switchboard::protocol::line_event_encoder::instance()), b = r.open_session(t2, switchboard::protocol::line_event_encoder::instance());
    CHECK(r.register_name(a, "alice") == status::ok);
    CHECK(r.register_name(b, "bob", "whatever") == status::ok);
    CHECK(r.counters().auth_failed == 0);
}

TEST_CASE("authorizer: sees session, folded name and credential; its refusal is the result", "[auth]") {
    router r;
    in_memory_transport t1, t2;
    const session_id a = r.open_session(t1, switchboard::protocol::line_event_encoder::instance()), b = r.open_session(t2, switchboard::protocol::line_event_encoder::instance());
    session_id seen_session;
    std::string seen_name, seen_credential;
    r.set_authorizer([&](session_id s, const name& user, std::string_view credential) {
        seen_session = s;
        seen_name = std::string(user.view());
        seen_credential = std::string(credential);
        return admin_needs_secret(s, user, credential);
    });
    CHECK(r.register_name(a, "ADMIN", "wrong") == status::auth_failed);
    CHECK(seen_session == a);
    CHECK(seen_name == "admin");
    CHECK(seen_credential == "wrong");
    CHECK_FALSE(r.is_registered(a));
    CHECK(r.counters().auth_failed == 1);
    CHECK(r.register_name(a, "admin") == status::auth_failed); // missing secret
    CHECK(r.register_name(a, "Admin", "open sesame") == status::ok);
    CHECK(r.name_of(a) == "admin");
    // Order: invalid-name and already-registered before the authorizer, name-taken after it,
    // so a wrong secret never tells whether the name is online.
    seen_name.clear();
    CHECK(r.register_name(b, "b@d", "x") == status::invalid_name);
    CHECK(seen_name.empty());
    CHECK(r.register_name(b, "admin", "wrong") == status::auth_failed);
    CHECK(r.register_name(b, "admin", "open sesame") == status::name_taken);
    CHECK(r.register_name(a, "other") == status::already_registered);
    // Removing it allows everything again.
    r.set_authorizer({});
    CHECK(r.register_name(b, "carol") == status::ok);
}

TEST_CASE("authorizer: `/register <user> <secret>` over the line protocol; err auth-failed <user>", "[auth][session]") {
    router r;
    r.set_authorizer(admin_needs_secret);
    in_memory_transport t;
    const session_id s = r.open_session(t, switchboard::protocol::line_event_encoder::instance());
    protocol::line_session ls(r, s, {});
    ls.on_input("/register Admin\n/register admin open\n/register admin open sesame\n/who\n");
    CHECK(t.take_lines() == lines{"err auth-failed admin", "err auth-failed admin", "ok register admin", "who admin"});
    // The secret is never echoed in any reply.
    in_memory_transport t2;
    const session_id s2 = r.open_session(t2, switchboard::protocol::line_event_encoder::instance());
    protocol::line_session ls2(r, s2, {});
    ls2.on_input("/register admin guess-1234\n/register alice ignored-secret\n");
    const lines got = t2.take_lines();
    CHECK(got == lines{"err auth-failed admin", "ok register alice"});
    for (const auto& l : got) CHECK(l.find("guess") == std::string::npos);
}
