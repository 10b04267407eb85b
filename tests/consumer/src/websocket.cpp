// Consumer smoke test for the WebSocket transport: built against switchboard::websocket /
// dependency('switchboard-websocket') / `pkg-config switchboard-websocket`. Proves the include
// path, OpenSSL's libcrypto (the upgrade's SHA-1 and base64), nlohmann_json (the JSON format) and
// simdjson (a compiled library: the parser of incoming commands, so this links -lsimdjson) are
// provided: it computes RFC 6455's example accept key and encodes and parses JSON.
#include <switchboard/websocket/handshake.hpp>
#include <switchboard/websocket/json_format.hpp>

#include <cstdio>
#include <string>

int main()
{
    // RFC 6455 section 1.3.
    const std::string accept = switchboard::websocket::websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ==");
    switchboard::event e;
    e.kind = switchboard::event_kind::direct_message;
    e.user = "alice";
    e.text = "hi";
    const std::string json = switchboard::websocket::json_text(e);
    switchboard::websocket::json_command_buffer buffer;
    const switchboard::protocol::command c =
        switchboard::websocket::parse_json_command(R"({"type":"msg","to":"bob","text":"hi"})", buffer);
    const bool ok = accept == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" && json == R"({"type":"msg","from":"alice","text":"hi"})" &&
                    c.kind == switchboard::protocol::command_kind::msg && c.target == "bob" && c.text == "hi";
    std::printf("switchboard websocket consumer: %s (%s)\n", ok ? "ok" : "failed", json.c_str());
    return ok ? 0 : 1;
}
