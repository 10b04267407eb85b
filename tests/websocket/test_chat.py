#!/usr/bin/env python3
"""tcp_chat's WebSocket transport as chat clients see it: a netcat-style TCP client, a
switchboard.json and a switchboard.line WebSocket client (the `websockets` package) in one room;
subprotocol negotiation; /quit; offline messages with acknowledgements; wss; the slow-consumer
cut. Usage: test_chat.py <path to tcp_chat> [unittest options]."""
import asyncio
import json
import signal
import socket
import ssl
import time

import websockets

import harness
from harness import (AsyncServerTest, LineClient, WsJsonClient, WsLineClient, cmd_join, cmd_msg, cmd_say,
                     ev_join, ev_msg, ev_room, exchange, expect, ok_join, register, sync)


class MixedClients(AsyncServerTest):
    """docs/websocket.md: a netcat user and a browser user are in the same chat."""

    async def asyncSetUp(self):
        self.tcp = await LineClient.open(self.server)
        self.json = await WsJsonClient.open(self.server)
        self.line = await WsLineClient.open(self.server)
        self.clients = {"nc": self.tcp, "js": self.json, "ln": self.line}
        for name, c in self.clients.items():
            await register(c, name)

    async def asyncTearDown(self):
        for c in self.clients.values():
            await c.close()

    async def test_room_messages_reach_every_format(self):
        joined = []
        for name, c in self.clients.items():
            await c.send(cmd_join(c, "lobby"))
            await expect(c, ok_join(c, "lobby"))
            for other in joined:  # the members before it see the join
                o = self.clients[other]
                await expect(o, ev_join(o, "lobby", name))
            joined.append(name)
        for sender, c in self.clients.items():
            text = f"caf\u00e9 from {sender} \u2615 \"quoted\""
            await c.send(cmd_say(c, "lobby", text))
            for name, o in self.clients.items():
                if name != sender:
                    await expect(o, ev_room(o, "lobby", sender, text))
        for c in self.clients.values():
            await sync(c, self.clients)

    async def test_direct_messages_between_every_pair_of_formats(self):
        for sender, c in self.clients.items():
            for to, o in self.clients.items():
                if to > sender:  # each pair once, both ways
                    await exchange(c, sender, o, to, f"<&> \\ \t tab \u00e9 \"hi\" {to}")
        for c in self.clients.values():
            await sync(c, self.clients)

    async def test_user_not_found_in_each_format(self):
        await self.json.send(cmd_msg(self.json, "nobody", "hi"))
        await expect(self.json, {"type": "error", "error": "user-not-found", "command": "msg",
                                 "argument": "nobody"})
        await self.line.send(cmd_msg(self.line, "Nobody", "hi"))
        await expect(self.line, "err user-not-found nobody")
        await self.tcp.send("@nobody hi")
        await expect(self.tcp, "err user-not-found nobody")


class Stop(AsyncServerTest):
    """SIGTERM: every WebSocket client gets a close frame 1001 (going away), the line client an
    EOF, and tcp_chat exits 0 (docs/websocket.md, "Closing")."""

    async def test_sigterm_closes_with_1001(self):
        clients = [await WsJsonClient.open(self.server), await WsLineClient.open(self.server)]
        nc = await LineClient.open(self.server)
        await register(clients[0], "a")
        await register(clients[1], "b")
        await register(nc, "c")
        self.server.proc.send_signal(signal.SIGTERM)
        for c in clients:
            with self.assertRaises(websockets.exceptions.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(c.ws.recv(), harness.READ_TIMEOUT)
            self.assertEqual(closed.exception.rcvd.code, 1001)
        while await asyncio.wait_for(nc.reader.readline(), harness.READ_TIMEOUT):
            pass
        await nc.close()
        self.assertEqual(await asyncio.to_thread(self.server.proc.wait, harness.STARTUP_TIMEOUT), 0)


class Subprotocols(AsyncServerTest):
    """docs/websocket.md, "Subprotocols": the server's choice, the 101's header, the refusal."""

    async def negotiate(self, offered):
        ws = await websockets.connect(self.server.ws_url(), subprotocols=offered, ping_interval=None,
                                      open_timeout=harness.READ_TIMEOUT)
        try:
            return ws.subprotocol, ws.response_headers.get("Sec-WebSocket-Protocol"), await asyncio.wait_for(
                ws.recv(), harness.READ_TIMEOUT)
        finally:
            await ws.close()

    async def test_json_is_chosen_when_offered(self):
        for offered in (["switchboard.json"], ["switchboard.json", "switchboard.line"],
                        ["switchboard.line", "switchboard.json"], ["chat.v2", "switchboard.json"]):
            chosen, header, first = await self.negotiate(offered)
            self.assertEqual((chosen, header), ("switchboard.json", "switchboard.json"), offered)
            self.assertEqual(first, '{"type":"info","text":"welcome to switchboard chat"}', offered)

    async def test_line_when_only_line_is_offered(self):
        chosen, header, first = await self.negotiate(["switchboard.line", "chat.v2"])
        self.assertEqual((chosen, header), ("switchboard.line", "switchboard.line"))
        self.assertEqual(first, harness.GREETING_LINE)

    async def test_none_offered_gets_json_without_the_header(self):
        chosen, header, first = await self.negotiate(None)
        self.assertIsNone(chosen)
        self.assertIsNone(header)  # RFC 6455 4.2.2: never name one the client did not offer
        self.assertEqual(first, '{"type":"info","text":"welcome to switchboard chat"}')
        ws = await websockets.connect(self.server.ws_url(), ping_interval=None)
        try:
            await ws.recv()
            await ws.send('{"type":"register","user":"plain"}')
            self.assertEqual(await asyncio.wait_for(ws.recv(), harness.READ_TIMEOUT),
                             '{"type":"ok","command":"register","user":"plain"}')
        finally:
            await ws.close()

    async def test_only_unknown_subprotocols_are_refused_with_400(self):
        with self.assertRaises(websockets.exceptions.InvalidStatusCode) as refused:
            await websockets.connect(self.server.ws_url(), subprotocols=["chat.v2", "mqtt"],
                                     open_timeout=harness.READ_TIMEOUT)
        self.assertEqual(refused.exception.status_code, 400)


class LongTexts(AsyncServerTest):
    """A text the line protocol accepts (up to --max-line bytes) fits in one JSON message however
    a conforming encoder escapes it: Python's json.dumps writes every non-ASCII character as
    \\uXXXX (3 bytes per byte of UTF-8 for 2-byte characters), and any character may be so
    written (6 bytes per byte for ASCII). websocket_protocol::config sizes max_message for it."""
    server_args = ("--max-line", "1000")

    async def test_escaped_text_of_max_line_bytes_is_delivered(self):
        alice = await WsJsonClient.open(self.server)
        bob = await WsLineClient.open(self.server)
        await register(alice, "alice")
        await register(bob, "bob")
        for text, encoded in (
                ("\u00e9" * 500, None),  # 1000 bytes of UTF-8, 3000 in JSON with ensure_ascii
                ("\U0001f600" * 250, None),  # 4-byte characters as surrogate pairs
                ("a" * 1000, '{"type":"msg","to":"bob","text":"' + "\\u0061" * 1000 + '"}')):
            self.assertEqual(len(text.encode()), 1000)
            await alice.send(encoded or json.dumps({"type": "msg", "to": "bob", "text": text}))
            await expect(bob, ev_msg(bob, "alice", text))
        await sync(alice, ["alice", "bob"])
        await alice.close()
        await bob.close()


class Quit(AsyncServerTest):
    """/quit and {"type":"quit"}: the reply, then a close frame 1000 (docs/websocket.md, "Closing")."""

    async def check_quit(self, client, command, reply):
        await register(client, "quitter")
        await client.send(command)
        await expect(client, reply)
        with self.assertRaises(websockets.exceptions.ConnectionClosedOK) as closed:
            await asyncio.wait_for(client.ws.recv(), harness.READ_TIMEOUT)
        self.assertEqual(closed.exception.rcvd.code, 1000)
        await client.ws.wait_closed()

    async def test_line_quit(self):
        await self.check_quit(await WsLineClient.open(self.server), "/quit", "ok quit")

    async def test_json_quit(self):
        await self.check_quit(await WsJsonClient.open(self.server), {"type": "quit"},
                              {"type": "ok", "command": "quit"})


class OfflineAcks(AsyncServerTest):
    """--offline over JSON: a `send` to a known offline user is queued; the user, with acks on,
    gets it as a `dm` with its sequence number and acknowledges it."""
    server_args = ("--offline",)

    async def test_queued_send_is_delivered_and_acknowledged(self):
        bob = await WsJsonClient.open(self.server)
        await register(bob, "bob")  # bob is known from now on
        await bob.close()
        alice = await WsJsonClient.open(self.server)
        await register(alice, "alice")
        deadline = time.monotonic() + harness.READ_TIMEOUT
        while True:  # until the server has released bob's session
            await alice.send({"type": "who"})
            who = await alice.recv()
            if who == {"type": "who", "users": ["alice"]}:
                break
            self.assertLess(time.monotonic(), deadline, f"bob still online: {who}")
            await asyncio.sleep(0.02)
        await alice.send({"type": "send", "id": "c1", "to": "bob", "text": "are you there?"})
        await expect(alice, {"type": "sent", "id": "c1", "outcome": "queued"})

        bob = await WsJsonClient.open(self.server)
        await bob.send({"type": "ack", "on": True})
        await expect(bob, {"type": "ok", "command": "ack", "on": True})
        await register(bob, "bob")
        await expect(bob, {"type": "dm", "seq": 1, "from": "alice", "text": "are you there?"})
        await bob.send({"type": "ack", "seq": 1})  # no reply when it succeeds
        await bob.send({"type": "ack", "seq": 2})  # above the highest given
        await expect(bob, {"type": "error", "error": "ack-invalid", "command": "ack", "argument": "2"})
        await bob.close()
        # Acknowledged: a new session of bob with acks on gets nothing replayed.
        bob = await WsJsonClient.open(self.server)
        await bob.send({"type": "ack", "on": True})
        await expect(bob, {"type": "ok", "command": "ack", "on": True})
        await register(bob, "bob")
        await sync(bob, ["alice", "bob"])
        await bob.close()
        await alice.close()


class Wss(AsyncServerTest):
    """--tls-cert/--tls-key: wss:// and https:// on the WebSocket port, TLS on the line port."""
    server_args = ("--tls-cert", harness.TLS_CERT, "--tls-key", harness.TLS_KEY)

    async def test_https_healthz(self):
        status, _, body = await asyncio.to_thread(harness.http_get, self.server, "/healthz")
        self.assertEqual((status, body), (200, b"ok\n"))

    async def test_plain_http_is_not_served(self):
        def plain():
            with socket.create_connection(("127.0.0.1", self.server.ws_port), timeout=harness.READ_TIMEOUT) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                try:
                    return s.recv(4096)
                except ConnectionResetError:
                    return b""
        self.assertFalse((await asyncio.to_thread(plain)).startswith(b"HTTP/1.1 200"))

    async def test_json_client_and_tls_netcat_client_exchange_messages(self):
        js = await WsJsonClient.open(self.server)  # wss://localhost:PORT/ws, certificate checked
        self.assertIsInstance(js.ws.transport.get_extra_info("ssl_object"), ssl.SSLObject)
        nc = await LineClient.open(self.server, tls=True)
        await register(js, "webuser")
        await register(nc, "ncuser")
        await exchange(js, "webuser", nc, "ncuser", "over TLS")
        await js.close()
        await nc.close()


class SlowConsumer(AsyncServerTest):
    """A WebSocket client that never reads is cut once --max-output is queued for it; the
    others keep working (docs/websocket.md, "Limits and timeouts")."""
    server_args = ("--max-output", "65536")

    async def test_non_reading_websocket_client_is_cut(self):
        before = await asyncio.to_thread(harness.scrape, self.server)
        # The victim: a raw WebSocket client with a small receive window that stops reading.
        victim = await asyncio.to_thread(harness.RawWebSocket.connect, self.server.ws_port, rcvbuf=4096)
        self.addCleanup(victim.close)
        await asyncio.to_thread(victim.send_text, "/register victim")
        self.assertEqual(await asyncio.to_thread(victim.recv_text), "ok register victim")
        js = await WsJsonClient.open(self.server)
        await register(js, "watcher")
        flood = await LineClient.open(self.server)
        await register(flood, "flooder")
        line = "/msg victim " + "x" * 4000 + "\n"
        cut = False
        deadline = time.monotonic() + 30
        while not cut:  # flood until the server says the victim is gone
            self.assertLess(time.monotonic(), deadline, "the victim was never cut")
            flood.writer.write(line.encode() * 32)
            await flood.writer.drain()
            try:
                reply = await asyncio.wait_for(flood.reader.readline(), 0.01)
            except asyncio.TimeoutError:
                continue
            self.assertTrue(reply.startswith(b"err user-not-found victim") or reply.startswith(b"* "), reply)
            cut = reply.startswith(b"err user-not-found victim")

        def drain_victim():  # its connection ends: EOF or reset after what was sent before the cut
            victim.sock.settimeout(harness.READ_TIMEOUT)
            while True:
                try:
                    if not victim.sock.recv(1 << 20):
                        return
                except ConnectionResetError:
                    return
        await asyncio.to_thread(drain_victim)
        after = await asyncio.to_thread(harness.scrape, self.server)
        key = 'switchboard_slow_consumers_total{transport="ws"}'
        self.assertEqual(after[key], before[key] + 1)
        # The others keep working, both ways (the flooder still has refusals of its flood to read).
        def after_flood(c, m):
            return m.startswith("err user-not-found victim") or m.startswith("* ")
        await sync(flood, ["flooder", "watcher"], skip=after_flood)
        await exchange(flood, "flooder", js, "watcher", "still here")
        await js.close()
        await flood.close()


if __name__ == "__main__":
    harness.main()
