// Shared by the WebSocket tests (and tests/fuzz/websocket_session_fuzz.cpp): client frames (masked
// by default, reserved bits and opcodes, forced length forms, a header alone), written independently
// of the library's encoder, and upgrade requests.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace websocket_test {

// Opcodes as raw numbers, so a test can also send the reserved ones.
inline constexpr unsigned op_cont = 0x0, op_text = 0x1, op_binary = 0x2, op_close = 0x8, op_ping = 0x9, op_pong = 0xA;

// A frame as a client would send it (masked by default), written independently of the encoder.
struct client_frame {
    unsigned opcode;
    std::string body;
    bool fin = true;
    unsigned rsv = 0;          // RSV1..3 as bits 0x4, 0x2, 0x1
    bool masked = true;
    unsigned length_bytes = 0; // 0: minimal form; 2 or 8: force the 16- or 64-bit form
    std::array<unsigned char, 4> key{{0x37, 0xFA, 0x21, 0x3D}};

    client_frame(unsigned op, std::string payload_bytes) : opcode(op), body(std::move(payload_bytes)) {}
    client_frame& fragment() { fin = false; return *this; }
    client_frame& unmasked() { masked = false; return *this; }
    client_frame& reserved(unsigned bits) { rsv = bits; return *this; }
    client_frame& length_in(unsigned bytes) { length_bytes = bytes; return *this; }
    client_frame& mask_key(unsigned char a, unsigned char b, unsigned char c, unsigned char d) {
        key = {{a, b, c, d}};
        return *this;
    }

    std::string header_only(std::uint64_t declared) const {
        std::string out;
        out += static_cast<char>((fin ? 0x80 : 0) | (rsv << 4) | opcode);
        const unsigned mask_bit = masked ? 0x80 : 0;
        const unsigned form = length_bytes ? length_bytes : declared <= 125 ? 0 : declared <= 0xFFFF ? 2 : 8;
        if (form == 0) {
            out += static_cast<char>(mask_bit | declared);
        } else {
            out += static_cast<char>(mask_bit | (form == 2 ? 126 : 127));
            for (unsigned k = form; k-- > 0;) out += static_cast<char>((declared >> (8 * k)) & 0xFF);
        }
        if (masked)
            for (unsigned char k : key) out += static_cast<char>(k);
        return out;
    }

    std::string str() const {
        std::string out = header_only(body.size());
        for (std::size_t i = 0; i < body.size(); ++i)
            out += masked ? static_cast<char>(static_cast<unsigned char>(body[i]) ^ key[i % 4]) : body[i];
        return out;
    }
};

// An upgrade request for `path` (Host localhost, the key of RFC 6455 section 1.3), offering
// `protocols` when not empty, with `Sec-WebSocket-Version: <version>`.
inline std::string upgrade_request(std::string_view protocols, std::string_view path = "/ws",
                                   std::string_view version = "13") {
    std::string r = "GET " + std::string(path) + " HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Version: " + std::string(version) +
                    "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    if (!protocols.empty()) r += "Sec-WebSocket-Protocol: " + std::string(protocols) + "\r\n";
    return r + "\r\n";
}

inline std::string close_body(unsigned code, std::string_view reason = {}) {
    std::string s;
    s += static_cast<char>(code >> 8);
    s += static_cast<char>(code & 0xFF);
    s += reason;
    return s;
}

} // namespace websocket_test
