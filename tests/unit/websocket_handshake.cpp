// websocket::validate_upgrade and websocket_accept_key: real clients' requests accepted with the
// right 101, every refusal with its status and a well-formed response, subprotocol selection,
// Origin, and no extension ever negotiated.
#include "http_messages.hpp"

#include <switchboard/protocol/http_request.hpp>
#include <switchboard/websocket/handshake.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <string>
#include <string_view>

using switchboard::protocol::http_parse_status;
using switchboard::protocol::http_request;
using switchboard::protocol::http_request_options;
using switchboard::protocol::parse_http_request;
using switchboard::websocket::is_valid_websocket_key;
using switchboard::websocket::upgrade_options;
using switchboard::websocket::upgrade_refusal;
using switchboard::websocket::upgrade_result;
using switchboard::websocket::validate_upgrade;
using switchboard::websocket::websocket_accept_key;

namespace {

// Parses `head` (Host rules off, so that the validator's own Host check is reachable) and
// validates it.
const upgrade_options defaults; // outlives every result (they hold views into their options)

upgrade_result upgrade(std::string_view head, const upgrade_options& o = defaults) {
    http_request r;
    http_request_options lax;
    lax.require_host = false;
    const auto parsed = parse_http_request(head, r, lax);
    REQUIRE(parsed.status == http_parse_status::complete);
    return validate_upgrade(r, o);
}

// The curl request with one header line replaced (`name` empty: `line` appended) or removed
// (`line` empty).
std::string curl_with(std::string_view name, std::string_view line) {
    std::string in(http_test::curl_upgrade);
    in.resize(in.size() - 2); // drop the final empty line
    if (!name.empty()) {
        const std::size_t at = in.find(std::string(name) + ":");
        REQUIRE(at != std::string::npos);
        in.erase(at, in.find("\r\n", at) + 2 - at);
    }
    if (!line.empty()) in += std::string(line) + "\r\n";
    return in + "\r\n";
}

// The refusal's response is complete and says why.
void check_refusal(const upgrade_result& u, upgrade_refusal why, int status) {
    CHECK_FALSE(u.accepted());
    CHECK(u.refusal == why);
    CHECK(u.status == status);
    const http_test::response r = http_test::read_response(u.response.view());
    REQUIRE(r.well_formed);
    CHECK(r.status == status);
    CHECK(r.get("connection").find("close") != std::string::npos);
    CHECK(r.get("content-length") == std::to_string(r.body.size()));
    CHECK(r.get("content-type") == "text/plain; charset=utf-8");
    CHECK(r.body.find(std::string(to_string(why))) != std::string::npos);
    CHECK(r.get("sec-websocket-accept") == "<none>");
}

} // namespace

TEST_CASE("websocket_accept_key: RFC 6455's example", "[websocket]") {
    CHECK(websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    CHECK(websocket_accept_key("x3JJHMbDL1EzLkh9GBhXDw==") == "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
    CHECK(websocket_accept_key("").size() == 28);
}

TEST_CASE("is_valid_websocket_key: base64 of exactly 16 bytes", "[websocket]") {
    CHECK(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ=="));
    CHECK(is_valid_websocket_key("AQIDBAUGBwgJCgsMDQ4PEA=="));
    CHECK(is_valid_websocket_key("/+/+/+/+/+/+/+/+/+/+/w=="));
    CHECK_FALSE(is_valid_websocket_key(""));
    CHECK_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ="));   // 23
    CHECK_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ==="));  // 25
    CHECK_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZQAA"));  // no padding: 18 bytes
    CHECK_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZR=="));  // padding bits set
    CHECK_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25j-Q=="));  // base64url alphabet
    CHECK_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25j ZQ="));
    CHECK_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ=A"));
    CHECK_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZ==="));  // 15 bytes and a bit
}

TEST_CASE("validate_upgrade: Chromium's request, the exact 101", "[websocket]") {
    const upgrade_result u = upgrade(http_test::chromium_upgrade);
    REQUIRE(u.accepted());
    CHECK(u.refusal == upgrade_refusal::none);
    CHECK(u.status == 101);
    CHECK(u.subprotocol == "switchboard.json");
    CHECK(u.subprotocol_index == 0);
    CHECK(u.subprotocol_negotiated);
    CHECK(u.response.view() == "HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                               "Sec-WebSocket-Protocol: switchboard.json\r\n"
                               "\r\n");
    // permessage-deflate was offered; no extension is ever accepted.
    CHECK(u.response.view().find("Extensions") == std::string_view::npos);
}

TEST_CASE("validate_upgrade: Firefox and curl, no subprotocol offered", "[websocket]") {
    const upgrade_result f = upgrade(http_test::firefox_upgrade); // Connection: keep-alive, Upgrade
    REQUIRE(f.accepted());
    CHECK_FALSE(f.subprotocol_negotiated);
    CHECK(f.subprotocol == "switchboard.json"); // the default: the first of the server's list
    CHECK(f.subprotocol_index == 0);
    const http_test::response fr = http_test::read_response(f.response.view());
    REQUIRE(fr.well_formed);
    CHECK(fr.get("sec-websocket-accept") == websocket_accept_key("x3JJHMbDL1EzLkh9GBhXDw=="));
    CHECK(fr.get("sec-websocket-protocol") == "<none>"); // RFC 6455 4.2.2: none offered, none named
    CHECK(fr.headers.count("content-length") == 0);     // no Content-Length on a 1xx (RFC 9110 8.6)
    CHECK(fr.body.empty());

    const upgrade_result c = upgrade(http_test::curl_upgrade); // no Origin
    REQUIRE(c.accepted());
    CHECK(c.response.view().find("Sec-WebSocket-Protocol") == std::string_view::npos);

    upgrade_options o;
    o.default_subprotocol = "switchboard.line";
    const upgrade_result d = upgrade(http_test::curl_upgrade, o);
    REQUIRE(d.accepted());
    CHECK(d.subprotocol == "switchboard.line");
    CHECK(d.subprotocol_index == 1);
    CHECK_FALSE(d.subprotocol_negotiated);
    o.default_subprotocol = "legacy";
    const upgrade_result l = upgrade(http_test::curl_upgrade, o);
    CHECK(l.subprotocol == "legacy");
    CHECK(l.subprotocol_index == upgrade_result::npos);
    o = {};
    o.subprotocols.clear();
    const upgrade_result none = upgrade(http_test::curl_upgrade, o);
    REQUIRE(none.accepted());
    CHECK(none.subprotocol.empty());
    CHECK(none.subprotocol_index == upgrade_result::npos);
}

TEST_CASE("validate_upgrade: the server's preference order picks the subprotocol", "[websocket]") {
    const std::string in = curl_with("", "Sec-WebSocket-Protocol: chat, switchboard.line");
    const upgrade_result one = upgrade(in);
    REQUIRE(one.accepted());
    CHECK(one.subprotocol == "switchboard.line");
    CHECK(one.subprotocol_index == 1);
    CHECK(http_test::read_response(one.response.view()).get("sec-websocket-protocol") == "switchboard.line");

    // Client order line, json; server order json, line: json. Offers may span several lines.
    const upgrade_result both = upgrade(curl_with("", "Sec-WebSocket-Protocol: switchboard.line\r\n"
                                                      "Sec-WebSocket-Protocol: , switchboard.json"));
    REQUIRE(both.accepted());
    CHECK(both.subprotocol == "switchboard.json");

    // An empty offer is no offer.
    const upgrade_result empty = upgrade(curl_with("", "Sec-WebSocket-Protocol: , "));
    REQUIRE(empty.accepted());
    CHECK_FALSE(empty.subprotocol_negotiated);
}

TEST_CASE("validate_upgrade: query and header case do not matter", "[websocket]") {
    CHECK(upgrade("GET /ws?room=lobby HTTP/1.1\r\nhost: h\r\nupgrade: WebSocket\r\nconnection: UPGRADE\r\n"
                  "sec-websocket-version: 13\r\nsec-websocket-key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n\r\n")
              .accepted());
    CHECK(upgrade(curl_with("", "Content-Length: 0")).accepted());
    CHECK(upgrade("GET /ws HTTP/1.2\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n\r\n")
              .accepted());
    upgrade_options any_path;
    any_path.path.clear();
    std::string other(http_test::curl_upgrade);
    other.replace(4, 3, "/chat");
    CHECK(upgrade(other, any_path).accepted());
}

TEST_CASE("validate_upgrade: method, version, path", "[websocket]") {
    std::string in(http_test::curl_upgrade);
    check_refusal(upgrade("POST" + in.substr(3)), upgrade_refusal::method_not_get, 400);
    check_refusal(upgrade("get" + in.substr(3)), upgrade_refusal::method_not_get, 400);
    std::string v10 = in;
    v10.replace(v10.find("1.1"), 3, "1.0");
    check_refusal(upgrade(v10), upgrade_refusal::http_version_too_old, 400);
    std::string other = in;
    other.replace(4, 3, "/chat");
    check_refusal(upgrade(other), upgrade_refusal::wrong_path, 404);
    other = in;
    other.replace(4, 3, "/ws/");
    check_refusal(upgrade(other), upgrade_refusal::wrong_path, 404);
}

TEST_CASE("validate_upgrade: Host", "[websocket]") {
    check_refusal(upgrade(curl_with("Host", "")), upgrade_refusal::invalid_host, 400);
    check_refusal(upgrade(curl_with("Host", "Host:")), upgrade_refusal::invalid_host, 400);
    check_refusal(upgrade(curl_with("Host", "Host: a b")), upgrade_refusal::invalid_host, 400);
    check_refusal(upgrade(curl_with("", "Host: other")), upgrade_refusal::invalid_host, 400);
}

TEST_CASE("validate_upgrade: a body would be mistaken for frames", "[websocket]") {
    check_refusal(upgrade(curl_with("", "Content-Length: 5")), upgrade_refusal::unexpected_body, 400);
    check_refusal(upgrade(curl_with("", "Content-Length: 0\r\nContent-Length: 1")), upgrade_refusal::unexpected_body,
                  400);
    check_refusal(upgrade(curl_with("", "Transfer-Encoding: chunked")), upgrade_refusal::unexpected_body, 400);
}

TEST_CASE("validate_upgrade: Upgrade and Connection", "[websocket]") {
    check_refusal(upgrade(curl_with("Upgrade", "")), upgrade_refusal::upgrade_not_websocket, 400);
    check_refusal(upgrade(curl_with("Upgrade", "Upgrade: h2c")), upgrade_refusal::upgrade_not_websocket, 400);
    check_refusal(upgrade(curl_with("Upgrade", "Upgrade: websockets")), upgrade_refusal::upgrade_not_websocket, 400);
    CHECK(upgrade(curl_with("Upgrade", "Upgrade: h2c, websocket")).accepted());
    check_refusal(upgrade(curl_with("Connection", "")), upgrade_refusal::connection_not_upgrade, 400);
    check_refusal(upgrade(curl_with("Connection", "Connection: keep-alive")), upgrade_refusal::connection_not_upgrade,
                  400);
    check_refusal(upgrade(curl_with("Connection", "Connection: upgraded")), upgrade_refusal::connection_not_upgrade,
                  400);
}

TEST_CASE("validate_upgrade: a version other than 13 is 426 with Sec-WebSocket-Version: 13", "[websocket]") {
    for (const char* line : {"", "Sec-WebSocket-Version: 8", "Sec-WebSocket-Version: 13, 8",
                             "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13", "Sec-WebSocket-Version:"}) {
        INFO(line);
        const upgrade_result u = upgrade(curl_with("Sec-WebSocket-Version", line));
        check_refusal(u, upgrade_refusal::unsupported_version, 426);
        const http_test::response r = http_test::read_response(u.response.view());
        CHECK(r.get("sec-websocket-version") == "13");
        CHECK(r.get("upgrade") == "websocket");                // RFC 9110 15.5.22
        CHECK(r.get("connection").find("Upgrade") != std::string::npos); // RFC 9110 7.8
    }
}

TEST_CASE("validate_upgrade: Sec-WebSocket-Key", "[websocket]") {
    for (const char* line :
         {"", "Sec-WebSocket-Key:", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=", "Sec-WebSocket-Key: c2hvcnQ=",
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==",
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="}) {
        INFO(line);
        check_refusal(upgrade(curl_with("Sec-WebSocket-Key", line)), upgrade_refusal::invalid_key, 400);
    }
}

TEST_CASE("validate_upgrade: Origin", "[websocket]") {
    upgrade_options o;
    o.allowed_origins = {"https://chat.example", "http://localhost:8080"};
    CHECK(upgrade(http_test::chromium_upgrade, o).accepted());
    CHECK(upgrade(http_test::firefox_upgrade, o).accepted());
    CHECK(upgrade(curl_with("", "Origin: HTTPS://Chat.Example"), o).accepted()); // RFC 6454: case-insensitive
    check_refusal(upgrade(curl_with("", "Origin: https://evil.example"), o), upgrade_refusal::origin_not_allowed,
                  403);
    check_refusal(upgrade(curl_with("", "Origin: https://chat.example.evil"), o),
                  upgrade_refusal::origin_not_allowed, 403);
    check_refusal(upgrade(curl_with("", "Origin: null"), o), upgrade_refusal::origin_not_allowed, 403);
    check_refusal(upgrade(curl_with("", "Origin: https://chat.example\r\nOrigin: https://evil.example"), o),
                  upgrade_refusal::origin_not_allowed, 403);
    // No Origin: allowed by default (non-browser clients), refused on request.
    CHECK(upgrade(http_test::curl_upgrade, o).accepted());
    o.allow_missing_origin = false;
    check_refusal(upgrade(http_test::curl_upgrade, o), upgrade_refusal::origin_not_allowed, 403);
    // An empty list allows any origin.
    CHECK(upgrade(curl_with("", "Origin: https://anything.example")).accepted());
}

TEST_CASE("validate_upgrade: offered subprotocols, none ours", "[websocket]") {
    check_refusal(upgrade(curl_with("", "Sec-WebSocket-Protocol: chat, superchat")),
                  upgrade_refusal::no_common_subprotocol, 400);
    // Matched byte for byte: the client would fail a reply naming another spelling.
    check_refusal(upgrade(curl_with("", "Sec-WebSocket-Protocol: Switchboard.JSON")),
                  upgrade_refusal::no_common_subprotocol, 400);
    upgrade_options o;
    o.subprotocols.clear();
    check_refusal(upgrade(curl_with("", "Sec-WebSocket-Protocol: switchboard.json"), o),
                  upgrade_refusal::no_common_subprotocol, 400);
}

TEST_CASE("validate_upgrade: refusal names and statuses", "[websocket]") {
    for (int e = 1; e <= static_cast<int>(upgrade_refusal::digest_unavailable); ++e) {
        const auto r = static_cast<upgrade_refusal>(e);
        INFO(e);
        CHECK_FALSE(to_string(r).empty());
        CHECK(http_status_of(r) >= 400);
    }
    CHECK(http_status_of(upgrade_refusal::none) == 101);
}
