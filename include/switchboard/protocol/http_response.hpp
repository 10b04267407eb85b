/// @file
/// @brief Plain HTTP/1.1 responses as `payload`s (RFC 9112 section 4 status line, RFC 9110
/// sections 8.3 and 8.6 Content-Type and Content-Length, 7.6.1 Connection), for the few pages a
/// chat server answers on its WebSocket listener: the page at `GET /`, `/metrics`, `/healthz`,
/// 404, and the refusals of the request parser (http_request.hpp) and of the upgrade
/// (websocket/handshake.hpp). Standard library only, sans-I/O.
///
/// Every response here closes the connection (`Connection: close`) and carries its length, so
/// the server writes it, shuts down its sending side and is done: no keep-alive, no chunking.
#pragma once

#include "../config.hpp"
#include "../payload.hpp"
#include "http_request.hpp"

#include <charconv>
#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <string_view>

namespace switchboard::protocol {

/// @brief One header line of a response: a name and a value.
struct http_field {
    std::string_view name;  ///< A token (`Allow`, `Cache-Control`, ...).
    std::string_view value; ///< The value as written.
};

/// @brief The reason phrase of a status code (RFC 9110 section 15), `""` for a code without
/// one here (RFC 9112 section 4 allows an empty reason phrase).
/// @note Thread-safe (pure function).
[[nodiscard]] constexpr std::string_view http_reason_phrase(int status) noexcept {
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "";
    }
}

namespace detail {

// Writes `s`, turning every control byte but HTAB into '?', so that no caller-supplied name or
// value can end the header line early or start another one (response splitting).
inline char* put_field_text(char* out, std::string_view s) noexcept {
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        *out++ = (c < 0x20 && c != '\t') || c == 0x7F ? '?' : ch;
    }
    return out;
}

// "HTTP/1.1 <status> <reason>\r\n", the fields with a non-empty name, the `extra` ones, then
// Content-Length (when `with_length`), Connection (when `connection` is not empty), the empty
// line and the body parts.
inline payload http_message(int status, std::initializer_list<http_field> fields,
                            std::initializer_list<http_field> extra, bool with_length,
                            std::string_view connection, std::initializer_list<std::string_view> body) {
    SWITCHBOARD_ASSERT(status >= 100 && status <= 599, "an HTTP status code is 100-599");
    if (status < 100 || status > 599) status = 500;
    const std::string_view reason = http_reason_phrase(status);
    std::size_t body_size = 0;
    for (const std::string_view b : body) body_size += b.size();
    char length[24];
    const std::size_t length_size =
        static_cast<std::size_t>(std::to_chars(length, length + sizeof length, body_size).ptr - length);

    constexpr std::string_view version = "HTTP/1.1 ", crlf = "\r\n", colon = ": ";
    constexpr std::string_view content_length = "Content-Length: ", connection_name = "Connection: ";
    std::size_t size = version.size() + 3 + 1 + reason.size() + crlf.size();
    for (const auto* list : {&fields, &extra})
        for (const http_field& f : *list)
            if (!f.name.empty()) size += f.name.size() + colon.size() + f.value.size() + crlf.size();
    if (with_length) size += content_length.size() + length_size + crlf.size();
    if (!connection.empty()) size += connection_name.size() + connection.size() + crlf.size();
    size += crlf.size() + body_size;

    const auto put = [](char* out, std::string_view s) noexcept {
        if (!s.empty()) std::memcpy(out, s.data(), s.size());
        return out + s.size();
    };
    return payload::build(size, [&](char* out) {
        out = put(out, version);
        *out++ = static_cast<char>('0' + status / 100);
        *out++ = static_cast<char>('0' + status / 10 % 10);
        *out++ = static_cast<char>('0' + status % 10);
        *out++ = ' ';
        out = put(put(out, reason), crlf);
        for (const auto* list : {&fields, &extra})
            for (const http_field& f : *list) {
                if (f.name.empty()) continue;
                out = put_field_text(out, f.name);
                out = put(out, colon);
                out = put(put_field_text(out, f.value), crlf);
            }
        if (with_length) out = put(put(put(out, content_length), {length, length_size}), crlf);
        if (!connection.empty()) out = put(put(put(out, connection_name), connection), crlf);
        out = put(out, crlf);
        for (const std::string_view b : body) out = put(out, b);
    });
}

} // namespace detail

/// @brief A complete HTTP/1.1 response that closes the connection: status line, Content-Type
/// (when `content_type` is not empty), the `extra_headers`, Content-Length, `Connection: close`,
/// the empty line and `body`.
/// @param status        the status code, 100-599 (asserted; outside it, 500 is written).
/// @param content_type  e.g. `text/html; charset=utf-8`, `text/plain; version=0.0.4` (the
///                      Prometheus text format); empty for no Content-Type (an empty body).
/// @param body          the body bytes, copied (any size below 4 GiB).
/// @param extra_headers more header lines, in order (`{{"Allow", "GET"}}` for a 405,
///                      `{{"Retry-After", "5"}}` for a 503, `{{"Cache-Control", "no-store"}}`).
///                      A control byte (but HTAB in a value) in a name or value is written as
///                      `?`: a header can never split the response.
/// @return the response bytes, one allocation.
/// @throws std::bad_alloc when memory runs out.
/// @note Thread-safe (pure function). The server answers `GET /`, `/metrics`, `/healthz` and
///       404 with it.
[[nodiscard]] inline payload http_response(int status, std::string_view content_type, std::string_view body,
                                           std::initializer_list<http_field> extra_headers = {}) {
    return detail::http_message(status, {{content_type.empty() ? std::string_view{} : "Content-Type", content_type}},
                                extra_headers, true, "close", {body});
}

/// @brief A short `text/plain` response that closes the connection, with the body
/// `<status> <reason>[: <detail>]` and LF (`400 Bad Request: invalid-line-ending`).
/// @param status        the status code, 100-599.
/// @param detail        what went wrong, for a human (an error's `to_string()`); may be empty.
/// @param extra_headers as for `http_response()`.
/// @return the response bytes, one allocation.
/// @throws std::bad_alloc when memory runs out.
/// @note Thread-safe (pure function).
[[nodiscard]] inline payload http_text_response(int status, std::string_view detail,
                                                std::initializer_list<http_field> extra_headers = {}) {
    char code[4] = {static_cast<char>('0' + status / 100 % 10), static_cast<char>('0' + status / 10 % 10),
                    static_cast<char>('0' + status % 10), ' '};
    return detail::http_message(status, {{"Content-Type", "text/plain; charset=utf-8"}}, extra_headers, true,
                                "close", {std::string_view(code, 4), http_reason_phrase(status),
                                 detail.empty() ? std::string_view{} : ": ", detail, "\n"});
}

/// @brief The response to a request head the parser refused: `http_text_response()` with the
/// error's status (400, 414, 431, 505) and name.
/// @param error a parse error other than `none` (asserted; `none` gives a 400).
/// @throws std::bad_alloc when memory runs out.
/// @note Thread-safe (pure function).
[[nodiscard]] inline payload http_error_response(http_parse_error error) {
    SWITCHBOARD_ASSERT(error != http_parse_error::none, "http_error_response: no error to answer");
    const int status = error == http_parse_error::none ? 400 : http_status_of(error);
    return http_text_response(status, to_string(error));
}

} // namespace switchboard::protocol
