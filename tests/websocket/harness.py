"""Shared parts of the WebSocket integration tests (tests/websocket/test_*.py).

Each test runs the real tcp_chat binary (its path is the first command-line argument, as CMake
and meson pass it) on ephemeral ports, talks to it over loopback with an independent client
(the `websockets` package, Debian python3-websockets) or with raw sockets that send exactly the
bytes a test builds, and stops it with SIGTERM, checking that it exits 0.

Every wait is bounded (READ_TIMEOUT for a reply, STARTUP_TIMEOUT for the server) and waits for a
condition, never for a fixed time, so the suite holds on a loaded machine.
"""
import asyncio
import base64
import json
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import unittest
import urllib.request
from pathlib import Path

import websockets

TCP_CHAT = None  # set by main() from the command line
READ_TIMEOUT = 10.0  # seconds to wait for one expected frame, line or response
STARTUP_TIMEOUT = 20.0  # seconds for tcp_chat to print its ports, and to exit after SIGTERM
DATA_DIR = Path(__file__).resolve().parent.parent / "data"
TLS_CERT = str(DATA_DIR / "tls-test-cert.pem")  # CN and subjectAltName: localhost, 127.0.0.1
TLS_KEY = str(DATA_DIR / "tls-test-key.pem")
GREETING_LINE = "* welcome to switchboard chat"
GREETING_JSON = {"type": "info", "text": "welcome to switchboard chat"}

# Opcodes and close codes of RFC 6455 (sections 5.2 and 7.4.1).
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def main():
    """Runs the tests of the calling module: `test_x.py <path to tcp_chat> [unittest args]`."""
    global TCP_CHAT
    if len(sys.argv) < 2 or not os.access(sys.argv[1], os.X_OK):
        sys.exit(f"usage: {sys.argv[0]} <path to tcp_chat> [unittest options]")
    TCP_CHAT = sys.argv.pop(1)
    unittest.main(module="__main__", verbosity=2)


# ---- the server ---------------------------------------------------------------------------------

class ChatServer:
    """tcp_chat in a process of its own: `--port 0 --ws-port 0` plus the test's options."""

    def __init__(self, *args):
        self.args = [TCP_CHAT, "--port", "0", "--ws-port", "0", *args]
        self.tls = "--tls-cert" in args
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, errors="replace")
        self.lines = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        line_port = self.wait_for_log(r"listening on 127\.0\.0\.1:(\d+)", STARTUP_TIMEOUT)
        ws_port = self.wait_for_log(r"browsers: open https?://127\.0\.0\.1:(\d+)/", STARTUP_TIMEOUT)
        self.port, self.ws_port = int(line_port.group(1)), int(ws_port.group(1))

    def _read_log(self):  # drains stderr, so the server never blocks on a full pipe
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append(None)  # end of the log
            self._changed.notify_all()

    def log(self):
        with self._changed:
            return "\n".join(l for l in self.lines if l is not None)

    def wait_for_log(self, pattern, timeout=READ_TIMEOUT):
        """The first match of `pattern` in a log line, waiting for it up to `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    m = line is not None and re.search(pattern, line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if (self.lines and self.lines[-1] is None) or left <= 0:
                    raise AssertionError(f"tcp_chat never logged /{pattern}/; log:\n{self.log()}")
                self._changed.wait(left)

    def stop(self):
        """SIGTERM, then the exit status (the process is killed if it does not exit in time)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=STARTUP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = "killed: no exit within %s s of SIGTERM" % STARTUP_TIMEOUT
        self._reader.join(READ_TIMEOUT)  # the whole log, for the report
        self.proc.stderr.close()
        return code

    # URLs and contexts for clients
    def ws_url(self, path="/ws"):
        return f"{'wss' if self.tls else 'ws'}://{'localhost' if self.tls else '127.0.0.1'}:{self.ws_port}{path}"

    def http_url(self, path):
        return f"{'https' if self.tls else 'http'}://{'localhost' if self.tls else '127.0.0.1'}:{self.ws_port}{path}"


def client_tls_context():
    """A client context that trusts only the test certificate and checks the name `localhost`."""
    return ssl.create_default_context(cafile=TLS_CERT)


def start_server(test, *args):
    """Starts tcp_chat for `test`; a cleanup stops it and fails the test unless it exits 0."""
    server = ChatServer(*args)

    def stop_and_check():
        code = server.stop()
        test.assertEqual(code, 0, f"tcp_chat {' '.join(server.args[1:])} did not exit 0 after SIGTERM;"
                                  f" log:\n{server.log()}")
    test.addCleanup(stop_and_check)
    return server


class ServerTest(unittest.TestCase):
    """A test with its own tcp_chat, started with `server_args`."""
    server_args = ()

    def setUp(self):
        self.server = start_server(self, *self.server_args)


class AsyncServerTest(unittest.IsolatedAsyncioTestCase):
    """The same for tests written with asyncio (the `websockets` client)."""
    server_args = ()

    def setUp(self):
        self.server = start_server(self, *self.server_args)


def wait_until(condition, what, timeout=READ_TIMEOUT, interval=0.02):
    """Polls `condition()` until it is true; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# ---- HTTP ---------------------------------------------------------------------------------------

def http_get(server, path):
    """GET `path` with urllib: (status, headers, body bytes); an HTTP error status is returned too."""
    context = client_tls_context() if server.tls else None
    try:
        with urllib.request.urlopen(server.http_url(path), timeout=READ_TIMEOUT, context=context) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def read_http_response(sock):
    """Reads one response to the end of the connection: (status, {lowercase name: value}, body).
    The server closes the connection after every answer but a 101, so EOF ends the body."""
    sock.settimeout(READ_TIMEOUT)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break  # the server may reset a connection it stopped reading; keep what arrived
        if not chunk:
            break
        data += chunk
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, f"no complete response head in {data[:300]!r}"
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.1 (\d{3}) ", lines[0])
    assert m, f"bad status line {lines[0]!r}"
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(m.group(1)), headers, body


def http_exchange(port, request):
    """Sends the raw request bytes on a new connection and reads the response to EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT) as s:
        try:
            s.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the whole request was read: the answer is still to be read
        return read_http_response(s)


def new_key():
    return base64.b64encode(os.urandom(16)).decode()


def upgrade_request(path="/ws", key=None, version="13", protocols=("switchboard.line",), origin=None,
                    method="GET", extra=()):
    """An upgrade request head (RFC 6455 section 4.1); None drops a header."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket", "Connection: Upgrade"]
    if version is not None:
        lines.append(f"Sec-WebSocket-Version: {version}")
    key = new_key() if key is None else key
    if key != "":
        lines.append(f"Sec-WebSocket-Key: {key}")
    if protocols:
        lines.append("Sec-WebSocket-Protocol: " + ", ".join(protocols))
    if origin is not None:
        lines.append(f"Origin: {origin}")
    lines.extend(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parse_metrics(text):
    """Checks the Prometheus text format (version 0.0.4) and returns {sample name with labels: value}.
    Each family has its HELP and TYPE lines before its samples."""
    samples, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        m = re.fullmatch(r"# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)", line)
        if m:
            typed.add(m.group(1))
            continue
        m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_]+="[^"\\]*"\})? ([0-9]+)', line)
        assert m, f"not a Prometheus sample line: {line!r}"
        assert m.group(1) in typed, f"sample {m.group(1)} before its # TYPE line"
        samples[m.group(1) + (m.group(2) or "")] = int(m.group(3))
    return samples


def scrape(server):
    status, headers, body = http_get(server, "/metrics")
    assert status == 200, f"/metrics answered {status}"
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers["Content-Type"]
    return parse_metrics(body.decode())


# ---- raw WebSocket frames -----------------------------------------------------------------------

def frame(opcode, payload=b"", fin=True, rsv=0, masked=True, length=None, length_bytes=None):
    """One client frame (RFC 6455 section 5.2), masked with a random key unless `masked` is false.
    `length` claims another payload length than len(payload); `length_bytes` (2 or 8) forces a
    longer length form than the minimal one."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if masked else 0
    if length_bytes is None:
        length_bytes = 0 if n <= 125 else 2 if n <= 0xFFFF else 8
    if length_bytes == 0:
        head += bytes([mask_bit | n])
    elif length_bytes == 2:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


class RawWebSocket:
    """A WebSocket client on a plain socket: sends the bytes a test builds, reads server frames."""

    def __init__(self, sock, buffered=b""):
        self.sock = sock
        self.buffer = buffered

    @classmethod
    def connect(cls, port, protocols=("switchboard.line",), rcvbuf=None, greeting=True):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connect, so that the window is small from the start
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(READ_TIMEOUT)
        sock.connect(("127.0.0.1", port))
        sock.sendall(upgrade_request(protocols=protocols))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            assert chunk, f"connection closed during the upgrade: {data!r}"
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 "), f"upgrade refused: {head!r}"
        ws = cls(sock, rest)
        if greeting:  # the session is open once the greeting arrives
            ws.expect_text(GREETING_LINE if protocols[0] == "switchboard.line" else json.dumps(
                GREETING_JSON, separators=(",", ":")))
        return ws

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", **kw):
        self.sock.sendall(frame(opcode, payload, **kw))

    def send_text(self, text):
        self.send_frame(TEXT, text.encode())

    def _fill(self, n):
        """Reads until `n` bytes are buffered; False at EOF (or a reset) before that."""
        while len(self.buffer) < n:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return False
            except socket.timeout:
                raise AssertionError(f"no frame from the server within {READ_TIMEOUT} s") from None
            if not chunk:
                return False
            self.buffer += chunk
        return True

    def recv_frame(self):
        """The next server frame as (fin, opcode, payload), checking it is a valid server frame
        (unmasked, RSV 0, minimal length); None when the connection ends first."""
        self.sock.settimeout(READ_TIMEOUT)
        if not self._fill(2):
            assert not self.buffer, f"connection ended inside a frame header: {self.buffer!r}"
            return None
        b0, b1 = self.buffer[0], self.buffer[1]
        assert b0 & 0x70 == 0, f"server frame with RSV bits: {b0:#x}"
        assert b1 & 0x80 == 0, "server frame is masked"
        n, pos = b1 & 0x7F, 2
        if n == 126:
            assert self._fill(4), "connection ended inside a frame header"
            n, pos = struct.unpack("!H", self.buffer[2:4])[0], 4
            assert n >= 126, "non-minimal 16-bit length"
        elif n == 127:
            assert self._fill(10), "connection ended inside a frame header"
            n, pos = struct.unpack("!Q", self.buffer[2:10])[0], 10
            assert n > 0xFFFF, "non-minimal 64-bit length"
        assert self._fill(pos + n), "connection ended inside a frame payload"
        payload = self.buffer[pos:pos + n]
        self.buffer = self.buffer[pos + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def recv_text(self):
        f = self.recv_frame()
        assert f is not None, "connection ended; expected a text frame"
        fin, opcode, payload = f
        assert fin and opcode == TEXT, f"expected a whole text frame, got opcode {opcode} fin {fin}: {payload!r}"
        return payload.decode()

    def expect_text(self, want):
        got = self.recv_text()
        assert got == want, f"expected text {want!r}, got {got!r}"

    def expect_close(self, code, reason=None):
        """The next frame is a close with `code` (and `reason`), and then the TCP connection ends
        with nothing more (RFC 6455 section 7.1.1: the server closes the TCP connection first)."""
        f = self.recv_frame()
        assert f is not None, f"connection ended without a close frame (expected {code})"
        fin, opcode, payload = f
        assert fin and opcode == CLOSE, f"expected a close frame {code}, got opcode {opcode}: {payload!r}"
        got = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        text = payload[2:].decode()
        assert got == code, f"expected close code {code}, got {got} ({text!r})"
        if reason is not None:
            assert text == reason, f"expected close reason {reason!r}, got {text!r}"
        self.expect_end()
        return text

    def expect_end(self):
        """The server closes the TCP connection (EOF or reset) without sending anything more."""
        self.sock.settimeout(READ_TIMEOUT)
        if self.buffer:
            raise AssertionError(f"bytes after the close frame: {self.buffer!r}")
        try:
            rest = self.sock.recv(65536)
        except ConnectionResetError:
            return
        except socket.timeout:
            raise AssertionError(f"the server did not close the connection within {READ_TIMEOUT} s") from None
        assert rest == b"", f"bytes after the close frame: {rest!r}"


# ---- chat clients in three formats --------------------------------------------------------------

class LineClient:
    """A netcat-style client: one line protocol line per command, over TCP (or TLS) with asyncio."""
    fmt = "tcp"

    @classmethod
    async def open(cls, server, tls=False):
        self = cls()
        context = client_tls_context() if tls else None
        self.reader, self.writer = await asyncio.wait_for(asyncio.open_connection(
            "127.0.0.1", server.port, ssl=context, server_hostname="localhost" if tls else None), READ_TIMEOUT)
        return self

    async def send(self, line):
        self.writer.write(line.encode() + b"\n")
        await self.writer.drain()

    async def recv(self):
        line = await asyncio.wait_for(self.reader.readline(), READ_TIMEOUT)
        assert line.endswith(b"\n"), f"connection ended (read {line!r})"
        return line[:-1].decode()

    async def close(self):
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass


class WsLineClient:
    """A `switchboard.line` WebSocket client (the `websockets` package): a line per text message."""
    fmt = "line"
    protocol = "switchboard.line"

    @classmethod
    async def open(cls, server, **kw):
        self = cls()
        if server.tls:
            kw.setdefault("ssl", client_tls_context())
        self.ws = await websockets.connect(server.ws_url(), subprotocols=[cls.protocol], ping_interval=None,
                                           open_timeout=READ_TIMEOUT, close_timeout=READ_TIMEOUT, **kw)
        assert self.ws.subprotocol == cls.protocol, f"negotiated {self.ws.subprotocol!r}"
        return self

    async def send(self, line):
        await self.ws.send(line)

    async def recv(self):
        message = await asyncio.wait_for(self.ws.recv(), READ_TIMEOUT)
        assert isinstance(message, str), f"binary message {message!r}"
        return message

    async def close(self):
        await self.ws.close()


class WsJsonClient(WsLineClient):
    """A `switchboard.json` WebSocket client: one JSON object per text message."""
    fmt = "json"
    protocol = "switchboard.json"

    async def send(self, obj):
        await self.ws.send(obj if isinstance(obj, str) else json.dumps(obj))

    async def recv(self):
        return json.loads(await WsLineClient.recv(self))


def is_noise(client, message):
    """Greetings and notices, which a client matching replies skips (docs/protocol.md)."""
    if client.fmt == "json":
        return message.get("type") == "info"
    return message.startswith("* ")


async def expect(client, want, skip=is_noise):
    """Reads until `want` arrives, skipping only what `skip` allows; anything else fails."""
    while True:
        got = await client.recv()
        if got == want:
            return
        assert skip(client, got), f"{client.fmt} client expected {want!r}, got {got!r}"


# The same command and event in each format (docs/protocol.md, "JSON wire format").
def cmd_register(c, user):
    return {"type": "register", "user": user} if c.fmt == "json" else f"/register {user}"


def ok_register(c, user):
    return {"type": "ok", "command": "register", "user": user} if c.fmt == "json" else f"ok register {user}"


def cmd_join(c, room):
    return {"type": "join", "room": room} if c.fmt == "json" else f"/join {room}"


def ok_join(c, room):
    return {"type": "ok", "command": "join", "room": room} if c.fmt == "json" else f"ok join {room}"


def ev_join(c, room, user):
    return {"type": "join", "room": room, "user": user} if c.fmt == "json" else f"join {room} {user}"


def cmd_say(c, room, text):
    return {"type": "say", "room": room, "text": text} if c.fmt == "json" else f"/say {room} {text}"


def ev_room(c, room, sender, text):
    return ({"type": "room", "room": room, "from": sender, "text": text} if c.fmt == "json"
            else f"room {room} {sender} {text}")


def cmd_msg(c, to, text):
    return {"type": "msg", "to": to, "text": text} if c.fmt == "json" else f"/msg {to} {text}"


def ev_msg(c, sender, text):
    return {"type": "msg", "from": sender, "text": text} if c.fmt == "json" else f"msg {sender} {text}"


def cmd_who(c):
    return {"type": "who"} if c.fmt == "json" else "/who"


def who_reply(c, users):
    return {"type": "who", "users": sorted(users)} if c.fmt == "json" else "who " + " ".join(sorted(users))


async def register(c, user):
    await c.send(cmd_register(c, user))
    await expect(c, ok_register(c, user))


async def exchange(a, a_user, b, b_user, text="hello"):
    """A direct message each way between two registered clients, each seen in its own format."""
    for src, src_user, dst, dst_user in ((a, a_user, b, b_user), (b, b_user, a, a_user)):
        await src.send(cmd_msg(src, dst_user, f"{text} from {src_user}"))
        await expect(dst, ev_msg(dst, src_user, f"{text} from {src_user}"))


async def sync(c, users, skip=is_noise):
    """A round trip: the `who` reply must be the next message `skip` does not allow (by default
    the next one that is not a notice), so nothing unexpected (a duplicate, an echo to the
    sender) is left before it."""
    await c.send(cmd_who(c))
    await expect(c, who_reply(c, users), skip)
