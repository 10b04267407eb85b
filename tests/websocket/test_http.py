#!/usr/bin/env python3
"""tcp_chat's WebSocket port as an HTTP server: the upgrade and its refusals (exact statuses),
the Origin allowlist (--ws-origin), the page, /healthz, /metrics (scraped before and after
traffic), 404, 431, and 503 over --max-conns. Usage: test_http.py <path to tcp_chat>."""
import asyncio
import base64
import hashlib
import socket

import websockets

import harness
from harness import (AsyncServerTest, ServerTest, WsJsonClient, WsLineClient, exchange, http_exchange, http_get,
                     register, upgrade_request)


class Upgrade(ServerTest):
    """docs/websocket.md, "The upgrade" (RFC 6455 section 4.2.1)."""

    def test_valid_upgrade_gets_101_with_the_accept_key(self):
        key = harness.new_key()
        with socket.create_connection(("127.0.0.1", self.server.ws_port), timeout=harness.READ_TIMEOUT) as s:
            s.sendall(upgrade_request(key=key))
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(4096)
                self.assertTrue(chunk, head)
                head += chunk
        lines = head.split(b"\r\n\r\n")[0].decode().split("\r\n")
        self.assertEqual(lines[0], "HTTP/1.1 101 Switching Protocols")
        headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        self.assertEqual(headers["sec-websocket-accept"], accept.decode())
        self.assertEqual(headers["sec-websocket-protocol"], "switchboard.line")
        self.assertEqual(headers["upgrade"].lower(), "websocket")

    def check_refused(self, request, status):
        got, headers, body = http_exchange(self.server.ws_port, request)
        self.assertEqual(got, status, f"{request!r} answered {got}: {body!r}")
        tokens = [t.strip().lower() for t in headers.get("connection", "").split(",")]
        self.assertIn("close", tokens)  # one request per connection
        return headers

    def test_missing_key_is_400(self):
        self.check_refused(upgrade_request(key=""), 400)

    def test_invalid_key_is_400(self):
        for key in ("abc", "AAAAAAAAAAAAAAAAAAAAAA", base64.b64encode(b"x" * 15).decode(),
                    base64.b64encode(b"x" * 17).decode()):
            self.check_refused(upgrade_request(key=key), 400)

    def test_version_8_is_426_naming_13(self):
        headers = self.check_refused(upgrade_request(version="8"), 426)
        self.assertEqual(headers.get("sec-websocket-version"), "13")

    def test_post_is_400(self):
        self.check_refused(upgrade_request(method="POST", extra=("Content-Length: 0",)), 400)

    def test_wrong_path_is_404(self):
        self.check_refused(upgrade_request(path="/chat"), 404)

    def test_only_unknown_subprotocols_is_400(self):
        self.check_refused(upgrade_request(protocols=("chat.v2",)), 400)


class OriginAllowlist(AsyncServerTest):
    """--ws-origin: a listed origin upgrades, another gets 403, none at all upgrades."""
    server_args = ("--ws-origin", "http://good.example")

    async def test_allowed_origin_upgrades(self):
        c = await WsJsonClient.open(self.server, origin="http://good.example")
        await register(c, "good")
        await c.close()

    async def test_other_origin_is_403(self):
        for origin in ("http://evil.example", "https://good.example", "http://good.example:8080"):
            with self.assertRaises(websockets.exceptions.InvalidStatusCode) as refused:
                await WsJsonClient.open(self.server, origin=origin)
            self.assertEqual(refused.exception.status_code, 403, origin)

    async def test_no_origin_upgrades(self):
        c = await WsLineClient.open(self.server)  # the websockets client sends no Origin unless told
        await register(c, "tool")
        await c.close()
        raw = await asyncio.to_thread(harness.RawWebSocket.connect, self.server.ws_port)  # no Origin
        raw.close()


class Endpoints(ServerTest):
    """docs/websocket.md, "One listener: HTTP and WebSocket"."""

    def test_page(self):
        status, headers, body = http_get(self.server, "/")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/html"), headers["Content-Type"])
        self.assertIn(b"switchboard", body)
        self.assertEqual(int(headers["Content-Length"]), len(body))

    def test_healthz(self):
        status, headers, body = http_get(self.server, "/healthz")
        self.assertEqual((status, body), (200, b"ok\n"))
        self.assertEqual(headers["Connection"], "close")

    def test_unknown_path_is_404(self):
        self.assertEqual(http_get(self.server, "/nope")[0], 404)
        self.assertEqual(http_get(self.server, "/ws/")[0], 404)

    def test_other_method_is_405(self):
        status, headers, _ = http_exchange(self.server.ws_port, b"POST /healthz HTTP/1.1\r\nHost: x\r\n"
                                                               b"Content-Length: 0\r\n\r\n")
        self.assertEqual(status, 405)
        self.assertEqual(headers["allow"], "GET")

    def test_head_over_8192_bytes_is_431(self):
        pad = b"X-Pad: " + b"a" * 9000 + b"\r\n"
        status, _, _ = http_exchange(self.server.ws_port, b"GET / HTTP/1.1\r\nHost: x\r\n" + pad + b"\r\n")
        self.assertEqual(status, 431)

    def test_head_of_8192_bytes_is_answered(self):
        start = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
        pad = b"X-Pad: " + b"a" * (8192 - len(start) - len(b"X-Pad: \r\n\r\n")) + b"\r\n"
        request = start + pad + b"\r\n"
        self.assertEqual(len(request), 8192)
        self.assertEqual(http_exchange(self.server.ws_port, request)[0], 200)

    def test_more_than_64_headers_is_431(self):
        def request(n):  # Host and n - 1 others
            return (b"GET /healthz HTTP/1.1\r\nHost: x\r\n" +
                    b"".join(b"X-H%d: v\r\n" % i for i in range(n - 1)) + b"\r\n")
        self.assertEqual(http_exchange(self.server.ws_port, request(64))[0], 200)
        self.assertEqual(http_exchange(self.server.ws_port, request(65))[0], 431)


class Metrics(AsyncServerTest):
    """/metrics is the Prometheus text format, and its counters follow the traffic."""

    async def test_counters_grow_with_websocket_traffic(self):
        before = await asyncio.to_thread(harness.scrape, self.server)
        for name in ("switchboard_routed_total", 'switchboard_accepted_total{transport="ws"}',
                     'switchboard_accepted_total{transport="tcp"}', 'switchboard_connections{transport="ws"}',
                     'switchboard_handshake_timeouts_total{transport="ws"}', "switchboard_sessions"):
            self.assertIn(name, before)
        a = await WsJsonClient.open(self.server)
        b = await WsLineClient.open(self.server)
        await register(a, "alice")
        await register(b, "bob")
        await exchange(a, "alice", b, "bob")
        during = await asyncio.to_thread(harness.scrape, self.server)
        self.assertEqual(during["switchboard_routed_total"], before["switchboard_routed_total"] + 2)
        # the two clients, and the connection of the first scrape
        self.assertGreaterEqual(during['switchboard_accepted_total{transport="ws"}'],
                                before['switchboard_accepted_total{transport="ws"}'] + 3)
        self.assertEqual(during['switchboard_accepted_total{transport="tcp"}'], 0)
        self.assertEqual(during["switchboard_users"], 2)
        await a.close()
        await b.close()


class MaxConns(ServerTest):
    """--max-conns 1: a second connection to the WebSocket port gets 503 before any upgrade."""
    server_args = ("--max-conns", "1")

    def test_second_connection_gets_503(self):
        first = harness.RawWebSocket.connect(self.server.ws_port)  # open: it has its greeting
        try:
            status, headers, body = http_exchange(self.server.ws_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual((status, body), (503, b"server full\n"))
            self.assertEqual(headers["connection"], "close")
        finally:
            first.close()
        # once the first is gone, the slot is free again
        harness.wait_until(lambda: http_exchange(self.server.ws_port, b"GET /healthz HTTP/1.1\r\n"
                                                                       b"Host: x\r\n\r\n")[0] == 200,
                           "the connection slot to be freed")


if __name__ == "__main__":
    harness.main()
