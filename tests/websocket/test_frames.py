#!/usr/bin/env python3
"""The frame rules of docs/websocket.md, "Frames", end to end: frames built byte by byte (masked
unless a test says otherwise) on a raw socket to the real tcp_chat, and the close frame each rule
answers (code and reason), then the end of the TCP connection. The reason names the rule
(protocol/websocket_frame.hpp, `to_string(websocket_error)`), so each test fails when its own
rule is broken, even if another rule would close with the same code.
Usage: test_frames.py <path to tcp_chat> [unittest options]."""
import socket
import struct

import harness
from harness import BINARY, CLOSE, CONT, PING, PONG, TEXT, RawWebSocket, ServerTest, close_payload, frame

MAX_LINE = 100
MAX_MESSAGE = 6 * MAX_LINE + 1024  # websocket_protocol::config: 6 * max_line + 1024


class FrameRules(ServerTest):
    server_args = ("--max-line", str(MAX_LINE))

    def connect(self, user="u"):
        """A switchboard.line session, registered as `user` (so its commands get replies)."""
        ws = RawWebSocket.connect(self.server.ws_port)
        self.addCleanup(ws.close)
        ws.send_text(f"/register {user}")
        ws.expect_text(f"ok register {user}")
        return ws

    def closes(self, data, code, reason=None, user="u"):
        """A new session sends `data` (frames) and gets a close frame `code` (with `reason`),
        then the end of the connection."""
        ws = self.connect(user)
        ws.send(data)
        ws.expect_close(code, reason)

    def alive(self, ws, payload=b"alive?"):
        """A ping round trip: the connection is open and everything before it was read."""
        ws.send_frame(PING, payload)
        self.assertEqual(ws.recv_frame(), (True, PONG, payload))

    def test_frames_sent_with_the_request_head_are_applied(self):
        s = socket.create_connection(("127.0.0.1", self.server.ws_port), timeout=harness.READ_TIMEOUT)
        self.addCleanup(s.close)
        s.sendall(harness.upgrade_request() + frame(TEXT, b"/register early") + frame(TEXT, b"/who"))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            self.assertTrue(chunk, head)
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 101 "), head)
        ws = RawWebSocket(s, rest)
        ws.expect_text(harness.GREETING_LINE)
        ws.expect_text("ok register early")
        ws.expect_text("who early")

    # ---- RFC 6455 section 5.1-5.2: the header ---------------------------------------------------

    def test_unmasked_frame_is_1002(self):
        self.closes(frame(TEXT, b"/who", masked=False), 1002, "unmasked frame")

    def test_reserved_bits_are_1002(self):
        for rsv in (4, 2, 1):  # RSV1 (permessage-deflate's bit: never negotiated), RSV2, RSV3
            self.closes(frame(TEXT, b"/who", rsv=rsv), 1002, "reserved bits set", user=f"rsv{rsv}")

    def test_unknown_opcodes_are_1002(self):
        for opcode in (0x3, 0x7, 0xB, 0xF):
            self.closes(frame(opcode, b"x"), 1002, "reserved opcode", user=f"op{opcode}")

    def test_non_minimal_lengths_are_1002(self):
        self.closes(frame(TEXT, b"/who", length_bytes=2), 1002, "non-minimal length", user="len16")
        self.closes(frame(TEXT, b"\n" * 200, length_bytes=8), 1002, "non-minimal length", user="len64")

    def test_length_with_high_bit_is_1002(self):
        self.closes(b"\x81\xff" + struct.pack("!Q", 1 << 63), 1002, "length high bit set")  # the header alone

    # ---- section 5.4-5.5: fragments and control frames ------------------------------------------

    def test_fragmented_ping_is_1002(self):
        self.closes(frame(PING, b"x", fin=False), 1002, "fragmented control frame")

    def test_control_frame_over_125_bytes_is_1002(self):
        ws = self.connect()
        self.alive(ws, b"p" * 125)  # 125 is the limit, inclusive
        ws.send_frame(PING, b"p" * 126)
        ws.expect_close(1002, "control frame too long")

    def test_continuation_without_a_message_is_1002(self):
        self.closes(frame(CONT, b"/who"), 1002, "continuation without a message")

    def test_new_message_inside_a_fragmented_one_is_1002(self):
        self.closes(frame(TEXT, b"/w", fin=False) + frame(TEXT, b"/who"), 1002, "new message inside a fragmented one")

    def test_fragments_are_joined(self):
        ws = self.connect()
        ws.send_frame(TEXT, b"/w", fin=False)
        ws.send_frame(CONT, b"", fin=False)
        ws.send_frame(CONT, b"ho", fin=True)
        ws.expect_text("who u")

    def test_ping_is_answered_with_its_payload(self):
        ws = self.connect()
        self.alive(ws, b"\x00\xffbinary payload")
        self.alive(ws, b"")

    def test_ping_between_fragments_is_answered_and_the_message_still_applied(self):
        ws = self.connect()
        ws.send_frame(TEXT, b"/w", fin=False)
        ws.send_frame(PING, b"mid")
        # answered while the message is still open (the rest is not sent yet)
        self.assertEqual(ws.recv_frame(), (True, PONG, b"mid"))
        ws.send_frame(CONT, b"ho", fin=True)
        ws.expect_text("who u")

    def test_unsolicited_pong_is_ignored(self):
        ws = self.connect()
        ws.send_frame(PONG, b"heartbeat")
        ws.send_text("/who")
        ws.expect_text("who u")

    # ---- section 5.6, 8.1: UTF-8 ----------------------------------------------------------------

    def test_code_point_split_across_fragments_is_valid(self):
        ws = self.connect()
        ws.send_frame(TEXT, "/msg u caf\u00e9".encode()[:-1], fin=False)  # ends inside the é
        ws.send_frame(CONT, "\u00e9".encode()[1:])
        ws.expect_text("msg u caf\u00e9")

    def test_invalid_utf8_split_across_fragments_is_1007_at_once(self):
        ws = self.connect()
        ws.send_frame(TEXT, b"/msg u caf\xc3", fin=False)  # a valid prefix so far
        self.alive(ws)
        ws.send_frame(CONT, b"\x28 and more", fin=False)  # not a continuation byte; no FIN yet
        ws.expect_close(1007, "text not UTF-8")

    def test_unfinished_utf8_at_the_last_fragment_is_1007(self):
        self.closes(frame(TEXT, b"/msg u caf\xc3", fin=False) + frame(CONT, b""), 1007, "text not UTF-8")

    # ---- section 7.4.1: message size (1009) -----------------------------------------------------

    def test_header_claiming_2_to_the_40_bytes_is_1009_at_once(self):
        header = b"\x81\xff" + struct.pack("!Q", 1 << 40) + b"\x01\x02\x03\x04"  # no payload follows
        self.closes(header, 1009, "message too big")

    def test_single_frame_over_max_message_is_1009_from_its_header(self):
        self.closes(frame(TEXT, b"\n" * (MAX_MESSAGE + 1))[:8], 1009, "message too big")  # header and key only

    def test_message_of_max_message_bytes_is_applied(self):
        ws = self.connect()
        body = b"\n" * (MAX_MESSAGE - 4) + b"/who"  # empty lines are skipped
        ws.send_frame(TEXT, body[:400], fin=False)
        ws.send_frame(CONT, body[400:])
        ws.expect_text("who u")

    def test_fragments_adding_up_past_max_message_are_1009(self):
        ws = self.connect()
        ws.send_frame(TEXT, b"\n" * 400, fin=False)
        self.alive(ws)  # each fragment alone is within the limit
        ws.send(frame(CONT, b"\n" * (MAX_MESSAGE - 400 + 1))[:8])  # its header is enough
        ws.expect_close(1009, "message too big")

    # ---- section 5.6: data types ----------------------------------------------------------------

    def test_binary_message_is_1003(self):
        self.closes(frame(BINARY, b"/who"), 1003, "binary messages are not supported")

    # ---- section 5.5.1, 7.4: the closing handshake ----------------------------------------------

    def test_close_1000_is_echoed_then_the_connection_closed(self):
        self.closes(frame(CLOSE, close_payload(1000, b"bye")), 1000)

    def test_close_without_payload_is_answered_1000(self):
        self.closes(frame(CLOSE, b""), 1000)

    def test_close_with_an_application_code_is_echoed(self):
        self.closes(frame(CLOSE, close_payload(4000, "\u00e9t\u00e9".encode())), 4000)

    def test_nothing_after_a_close_is_applied(self):
        self.closes(frame(CLOSE, close_payload(1000)) + frame(TEXT, b"/who"), 1000)

    def test_close_carrying_1005_or_an_invalid_code_is_1002(self):
        for code in (1005, 1006, 1015, 999, 1004, 1016, 2999, 5000, 0):
            self.closes(frame(CLOSE, close_payload(code)), 1002, "invalid close code", user=f"c{code}")

    def test_one_byte_close_payload_is_1002(self):
        self.closes(frame(CLOSE, b"\x03"), 1002, "1-byte close payload")

    def test_close_reason_not_utf8_is_1007(self):
        self.closes(frame(CLOSE, close_payload(1000, b"bad \xff reason")), 1007, "close reason not UTF-8")


if __name__ == "__main__":
    harness.main()
