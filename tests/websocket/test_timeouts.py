#!/usr/bin/env python3
"""Deadlines of the WebSocket listener: the upgrade deadline (--handshake-timeout), counted from
the accept and never extended by bytes, and the register timeout, told with a close frame 1008.
These tests must see wall-clock time pass (a real process, real sockets); they wait for the
server's action with a bound, and measure it. Usage: test_timeouts.py <path to tcp_chat>."""
import asyncio
import select
import socket
import time

import websockets

import harness
from harness import AsyncServerTest, ServerTest, WsJsonClient, WsLineClient, register, sync, upgrade_request

# How late the server may act under load: the sweep runs every quarter of the shortest timeout
# (tcp_server_options), and a loaded 2-core machine may delay it further.
SLACK = 3.0


class HandshakeDeadline(ServerTest):
    server_args = ("--handshake-timeout", "1")

    def test_dribbling_client_is_cut_on_time_and_counted(self):
        before = harness.scrape(self.server)
        # An upgraded client, older than the deadline by the end: not cut.
        done = harness.RawWebSocket.connect(self.server.ws_port)
        self.addCleanup(done.close)
        request = upgrade_request()
        with socket.create_connection(("127.0.0.1", self.server.ws_port), timeout=harness.READ_TIMEOUT) as s:
            start = time.monotonic()
            sent, cut_at, answer = 0, None, b""
            while cut_at is None and sent < len(request):  # one byte every 200 ms: 30 s for the head
                try:
                    s.sendall(request[sent:sent + 1])
                    sent += 1
                except (BrokenPipeError, ConnectionResetError):
                    cut_at = time.monotonic()
                    break
                deadline = time.monotonic() + 0.2
                while cut_at is None and time.monotonic() < deadline:
                    readable, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
                    if readable:
                        try:
                            data = s.recv(4096)
                        except ConnectionResetError:
                            data = b""
                        if data:
                            answer += data
                        else:
                            cut_at = time.monotonic()
                self.assertLess(time.monotonic() - start, 1.0 + SLACK + 1, "never cut")
        self.assertIsNotNone(cut_at, "the whole request was sent before any cut")
        elapsed = cut_at - start
        self.assertGreaterEqual(elapsed, 0.9, f"cut after {elapsed:.2f} s, before the deadline")
        self.assertLess(elapsed, 1.0 + SLACK, f"cut after {elapsed:.2f} s")
        self.assertEqual(answer, b"", "a cut connection gets no reply")
        self.assertLess(sent, len(request) // 2)
        # The upgraded connection, now past the deadline, still works.
        done.send_text("/register done")
        done.expect_text("ok register done")
        after = harness.scrape(self.server)
        key = 'switchboard_handshake_timeouts_total{transport="ws"}'
        self.assertEqual(after[key], before[key] + 1)


class RegisterTimeout(AsyncServerTest):
    server_args = ("--register-timeout", "1")

    async def check_closed_1008(self, client):
        start = time.monotonic()
        with self.assertRaises(websockets.exceptions.ConnectionClosedError) as closed:
            while True:  # the greeting first, then the close
                await asyncio.wait_for(client.ws.recv(), harness.READ_TIMEOUT)
        elapsed = time.monotonic() - start
        self.assertEqual(closed.exception.rcvd.code, 1008)
        self.assertEqual(closed.exception.rcvd.reason, "register timeout")
        self.assertLess(elapsed, 1.0 + SLACK)

    async def test_json_client_gets_close_1008(self):
        await self.check_closed_1008(await WsJsonClient.open(self.server))

    async def test_line_client_gets_close_1008(self):
        await self.check_closed_1008(await WsLineClient.open(self.server))

    async def test_registered_client_stays(self):
        c = await WsJsonClient.open(self.server)
        await register(c, "quick")
        start = time.monotonic()
        late = await WsLineClient.open(self.server)  # cut after 1 s: the registered one is older
        with self.assertRaises(websockets.exceptions.ConnectionClosedError):
            while True:
                await asyncio.wait_for(late.ws.recv(), harness.READ_TIMEOUT)
        self.assertGreaterEqual(time.monotonic() - start, 0.9)
        await sync(c, ["quick"])
        await c.close()


class IdleTimeout(AsyncServerTest):
    server_args = ("--idle-timeout", "1")

    async def test_silent_registered_client_gets_close_1008(self):
        c = await WsJsonClient.open(self.server)
        await register(c, "sleepy")
        with self.assertRaises(websockets.exceptions.ConnectionClosedError) as closed:
            while True:
                await asyncio.wait_for(c.ws.recv(), harness.READ_TIMEOUT)
        self.assertEqual((closed.exception.rcvd.code, closed.exception.rcvd.reason), (1008, "idle timeout"))


if __name__ == "__main__":
    harness.main()
