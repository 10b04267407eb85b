"""Shared parts of the cluster tests (tests/cluster/test_*.py): tcp_chat nodes in processes of
their own on one redis-server (redis_util.RedisServer), and line clients over real sockets.

Every wait is bounded and waits for a condition (a line, a log message, a process exit), never
for a fixed time. The path of tcp_chat is the first command-line argument, as CMake passes it.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

from redis_util import RedisServer, die_with_parent  # noqa: F401 (RedisServer re-exported)

TCP_CHAT = None
TIMEOUT = 10.0  # seconds for one expected line or log message


def main():
    global TCP_CHAT
    if len(sys.argv) < 2 or not os.access(sys.argv[1], os.X_OK):
        sys.exit(f"usage: {sys.argv[0]} <path to tcp_chat> [unittest options]")
    TCP_CHAT = sys.argv.pop(1)
    unittest.main(module="__main__", verbosity=2)


class Node:
    """One tcp_chat process: `--port 0 --redis 127.0.0.1:<port> --node-id <id>` + options."""

    def __init__(self, redis, node_id, *args, joined=True):
        self.redis, self.node_id, self.extra = redis, node_id, list(args)
        self.start(joined)

    def start(self, joined=True):
        """Starts tcp_chat and waits until it listens and, with `joined`, has loaded the
        directory."""
        self.args = [TCP_CHAT, "--port", "0", "--redis", f"127.0.0.1:{self.redis.port}",
                     "--node-id", self.node_id, *self.extra]
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, errors="replace",
                                     preexec_fn=die_with_parent)
        self.lines = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read_log, args=(self.proc, self.lines), daemon=True).start()
        try:
            self.port = int(self.wait_log(r"listening on 127\.0\.0\.1:(\d+)").group(1))
            if joined:
                self.wait_log(r"cluster: directory loaded")
                if "--offline" in self.extra:  # the cluster inbox's own connection
                    self.wait_log(r"cluster inbox: connected to Redis")
        except BaseException:
            self.kill9()
            raise

    def _read_log(self, proc, lines):
        for line in proc.stderr:
            with self._changed:
                lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        proc.stderr.close()
        with self._changed:
            lines.append(None)
            self._changed.notify_all()

    def wait_log(self, pattern, timeout=TIMEOUT, start=0):
        """The first log line from index `start` on that matches `pattern` (re.search)."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        with self._changed:
            i = start
            while True:
                while i < len(self.lines):
                    line = self.lines[i]
                    if line is None:
                        raise AssertionError(f"node {self.node_id} exited waiting for {pattern!r}:\n" +
                                             "\n".join(l for l in self.lines if l))
                    m = rx.search(line)
                    if m:
                        return m
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"node {self.node_id}: no log line {pattern!r} in {timeout} s:\n" +
                                         "\n".join(l for l in self.lines if l))
                self._changed.wait(left)

    def log_size(self):
        with self._changed:
            return len(self.lines)

    def client(self, user=None):
        c = Client(self.port)
        if user:
            c.register(user)
        return c

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        """SIGTERM; the exit code must be 0."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"node {self.node_id} did not stop on SIGTERM")
        return self.proc.returncode


class ClusterCase(unittest.TestCase):
    """A test case with a redis-server of its own and nodes made by node(): stopped after each
    test (SIGTERM, exit code 0 checked), with the clients made by client()."""

    NODE_ARGS = ()  # options of every node of the class
    REDIS_APPENDONLY = False  # RedisServer(appendonly=...)

    def setUp(self):
        self.redis = RedisServer(appendonly=self.REDIS_APPENDONLY)
        self.nodes = []
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        codes = {}
        try:
            for n in self.nodes:
                codes[n.node_id] = n.stop()
        finally:
            for n in self.nodes:
                if n.proc.poll() is None:
                    n.kill9()
            self.redis.stop()
        self.assertEqual(set(codes.values()), {0} if codes else set(), codes)

    def node(self, node_id, *args, joined=True):
        n = Node(self.redis, node_id, *self.NODE_ARGS, *args, joined=joined)
        self.nodes.append(n)
        return n

    def client(self, node, user=None):
        c = node.client(user)
        self.clients.append(c)
        return c


class Client:
    """A line-protocol client: send() a line, expect() a line matching a pattern."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""
        self.expect(r"^\* then:")  # the end of the greeting

    def close(self):
        self.sock.close()

    def send(self, line):
        self.sock.sendall(line.encode() + b"\n")

    def line(self, timeout=TIMEOUT):
        """The next line; None at EOF. Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no line")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("no line") from None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace")

    def _next(self, deadline, waiting_for, got):
        """The next line before `deadline` (None at EOF); fails the test when none comes."""
        try:
            return self.line(max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {waiting_for}; got {got}") from None

    def expect(self, pattern, timeout=TIMEOUT, skip=True):
        """The first line matching `pattern`; `skip`: other lines before it are dropped (else
        they fail). Returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            line = self._next(deadline, repr(pattern), seen)
            if line is None:
                raise AssertionError(f"EOF waiting for {pattern!r}; got {seen}")
            m = rx.search(line)
            if m:
                return m
            if not skip:
                raise AssertionError(f"unexpected line {line!r} waiting for {pattern!r}")
            seen.append(line)

    def lines_until(self, pattern, timeout=TIMEOUT):
        """Every line before the first one matching `pattern` (which is consumed too)."""
        rx = re.compile(pattern)
        out = []
        deadline = time.monotonic() + timeout
        while True:
            line = self._next(deadline, repr(pattern), out)
            if line is None:
                raise AssertionError(f"EOF waiting for {pattern!r}; got {out}")
            if rx.search(line):
                return out
            out.append(line)

    def wait_closed(self, timeout=TIMEOUT):
        """Reads until the server closes the connection; returns the lines read."""
        out = []
        deadline = time.monotonic() + timeout
        while (line := self._next(deadline, "the server to close the connection", out)) is not None:
            out.append(line)
        return out

    def register(self, user):
        self.send(f"/register {user}")
        self.expect(rf"^ok register {user.lower()}$", skip=False)

    def watch_until(self, user, state, timeout=TIMEOUT):
        """/watch user, then wait for `presence user <state>`; returns the rest of that line."""
        self.send(f"/watch {user}")
        self.expect(rf"^ok watch {user}$")
        return self.expect(rf"^presence {user} {state}( (.*))?$", timeout).group(2)
