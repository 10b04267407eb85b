// Shared by the HTTP and WebSocket handshake tests: real clients' upgrade requests, and a small,
// independent reader of the responses the library builds (status line, header lines, body).
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

namespace http_test {

// Chromium 120 opening ws://localhost:8080/ws from a page, as captured (the key is RFC 6455's
// example so that the accept value is known).
inline constexpr std::string_view chromium_upgrade =
    "GET /ws HTTP/1.1\r\n"
    "Host: localhost:8080\r\n"
    "Connection: Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: http://localhost:8080\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "Sec-WebSocket-Protocol: switchboard.json, switchboard.line\r\n"
    "\r\n";

// Firefox's differences: `Connection: keep-alive, Upgrade`, more headers, no subprotocol.
inline constexpr std::string_view firefox_upgrade =
    "GET /ws HTTP/1.1\r\n"
    "Host: chat.example:443\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0\r\n"
    "Accept: */*\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Origin: https://chat.example\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate\r\n"
    "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
    "Connection: keep-alive, Upgrade\r\n"
    "Sec-Fetch-Dest: empty\r\n"
    "Sec-Fetch-Mode: websocket\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "Upgrade: websocket\r\n"
    "\r\n";

// curl 8.5 (`curl --include ws://127.0.0.1:8080/ws`): no Origin, no subprotocol.
inline constexpr std::string_view curl_upgrade =
    "GET /ws HTTP/1.1\r\n"
    "Host: 127.0.0.1:8080\r\n"
    "User-Agent: curl/8.5.0\r\n"
    "Accept: */*\r\n"
    "Upgrade: websocket\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n"
    "Connection: Upgrade\r\n"
    "\r\n";

// A response taken apart by a reader written for the tests (not the library's parser).
struct response {
    bool well_formed = false;        // status line, CRLF-terminated header lines, CRLFCRLF
    int status = 0;
    std::string reason;
    std::multimap<std::string, std::string> headers; // names lowercased
    std::string body;                // what follows the head
    std::size_t header_lines = 0;

    std::string get(const std::string& lower_name) const {
        const auto it = headers.find(lower_name);
        return it == headers.end() ? std::string("<none>") : it->second;
    }
};

inline response read_response(std::string_view bytes) {
    response r;
    const std::size_t head_end = bytes.find("\r\n\r\n");
    if (head_end == std::string_view::npos || bytes.substr(0, 9) != "HTTP/1.1 ") return r;
    const std::string_view head = bytes.substr(0, head_end + 2);
    std::size_t pos = head.find("\r\n");
    const std::string_view status_line = head.substr(0, pos);
    if (status_line.size() < 13 || status_line[12] != ' ') return r;
    for (std::size_t i = 9; i < 12; ++i)
        if (status_line[i] < '0' || status_line[i] > '9') return r;
    r.status = std::stoi(std::string(status_line.substr(9, 3)));
    r.reason = std::string(status_line.substr(13));
    pos += 2;
    while (pos < head.size()) {
        const std::size_t end = head.find("\r\n", pos);
        const std::string_view line = head.substr(pos, end - pos);
        const std::size_t colon = line.find(": ");
        if (colon == std::string_view::npos || colon == 0) return r;
        for (char c : line)
            if (c == '\r' || c == '\n' || c == '\0') return r;
        std::string name(line.substr(0, colon));
        for (char& c : name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        r.headers.emplace(name, std::string(line.substr(colon + 2)));
        ++r.header_lines;
        pos = end + 2;
    }
    r.body = std::string(bytes.substr(head_end + 4));
    r.well_formed = true;
    return r;
}

} // namespace http_test
