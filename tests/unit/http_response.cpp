// protocol::http_response, http_text_response, http_error_response: the plain pages a WebSocket
// listener also serves (/, /metrics, /healthz, 404, 405, 503) and the parser's refusals.
#include "http_messages.hpp"

#include <switchboard/protocol/http_request.hpp>
#include <switchboard/protocol/http_response.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

using switchboard::protocol::http_error_response;
using switchboard::protocol::http_parse_error;
using switchboard::protocol::http_reason_phrase;
using switchboard::protocol::http_response;
using switchboard::protocol::http_text_response;

TEST_CASE("http_response: the exact bytes of a page", "[websocket][http]") {
    const auto p = http_response(200, "text/html; charset=utf-8", "<!doctype html><p>hi</p>\n");
    CHECK(p.view() == "HTTP/1.1 200 OK\r\n"
                      "Content-Type: text/html; charset=utf-8\r\n"
                      "Content-Length: 25\r\n"
                      "Connection: close\r\n"
                      "\r\n"
                      "<!doctype html><p>hi</p>\n");
}

TEST_CASE("http_response: each status the server answers is well-formed", "[websocket][http]") {
    struct page {
        int status;
        std::string_view reason;
        std::string_view type;
        std::string_view body;
    };
    for (const page& pg : {page{200, "OK", "text/plain; version=0.0.4", "switchboard_sessions 3\n"},
                           page{200, "OK", "text/plain", "ok\n"}, page{404, "Not Found", "text/plain", "not found\n"},
                           page{405, "Method Not Allowed", "text/plain", ""},
                           page{400, "Bad Request", "text/plain", "bad\n"},
                           page{431, "Request Header Fields Too Large", "text/plain", "x"},
                           page{503, "Service Unavailable", "text/plain", "full\n"}, page{204, "No Content", "", ""}}) {
        INFO(pg.status);
        const auto p = http_response(pg.status, pg.type, pg.body, {{"Allow", "GET"}, {"Retry-After", "5"}});
        const http_test::response r = http_test::read_response(p.view());
        REQUIRE(r.well_formed);
        CHECK(r.status == pg.status);
        CHECK(r.reason == pg.reason);
        CHECK(r.body == pg.body);
        CHECK(r.get("content-length") == std::to_string(pg.body.size()));
        CHECK(r.get("connection") == "close");
        CHECK(r.get("content-type") == (pg.type.empty() ? std::string("<none>") : std::string(pg.type)));
        CHECK(r.get("allow") == "GET");
        CHECK(r.get("retry-after") == "5");
    }
    CHECK(http_reason_phrase(599).empty());
    CHECK(http_test::read_response(http_response(599, "", "").view()).status == 599);
}

TEST_CASE("http_response: a header cannot split the response", "[websocket][http]") {
    const auto p = http_response(200, "text/plain\r\nSet-Cookie: a=b", "x", {{"X-A\r\nX-B", "1\r\n\r\nbody\0"}});
    const http_test::response r = http_test::read_response(p.view());
    REQUIRE(r.well_formed);
    CHECK(r.header_lines == 4);
    CHECK(r.get("set-cookie") == "<none>");
    CHECK(r.get("content-type") == "text/plain??Set-Cookie: a=b");
    CHECK(r.body == "x");
    const auto tab = http_response(200, "", "", {{"X", "a\tb"}});
    CHECK(http_test::read_response(tab.view()).get("x") == "a\tb");
}

TEST_CASE("http_text_response and http_error_response", "[websocket][http]") {
    const http_test::response t = http_test::read_response(http_text_response(503, "server-full").view());
    REQUIRE(t.well_formed);
    CHECK(t.status == 503);
    CHECK(t.body == "503 Service Unavailable: server-full\n");
    CHECK(http_test::read_response(http_text_response(404, "").view()).body == "404 Not Found\n");

    for (const auto e : {http_parse_error::invalid_line_ending, http_parse_error::uri_too_long,
                         http_parse_error::head_too_large, http_parse_error::too_many_headers,
                         http_parse_error::unsupported_version}) {
        INFO(to_string(e));
        const http_test::response r = http_test::read_response(http_error_response(e).view());
        REQUIRE(r.well_formed);
        CHECK(r.status == http_status_of(e));
        CHECK(r.body.find(std::string(to_string(e))) != std::string::npos);
        CHECK(r.get("connection") == "close");
        CHECK(r.get("content-length") == std::to_string(r.body.size()));
    }
}
