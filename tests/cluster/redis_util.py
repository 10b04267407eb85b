"""A redis-server of the test's own and a minimal RESP client, for tests/cluster (no Python Redis
package needed: only the standard library and the Debian redis-server binary).

RedisServer starts `redis-server` on a free loopback port in a temporary directory, with no
persistence, and can kill -9 it, restart it on the same port, SIGSTOP/SIGCONT it.
"""
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REDIS_SERVER = os.environ.get("SWITCHBOARD_REDIS_SERVER") or shutil.which("redis-server") or "/usr/bin/redis-server"
HEADER = Path(__file__).resolve().parent.parent.parent / "include/switchboard/redis/directory_scripts.hpp"


def die_with_parent():
    """preexec_fn of every child the tests start: SIGKILL when the test process dies (Linux
    PR_SET_PDEATHSIG), so a crashed or interrupted test leaves no redis-server or tcp_chat behind."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, port=None, appendonly=False):
        """`appendonly`: AOF with `appendfsync always` (what the cluster inbox's guarantee
        needs, docs/cluster.md): what Redis answered survives kill9() + start()."""
        self.appendonly = appendonly
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="sb-redis-")
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             *(["--appendonly", "yes", "--appendfsync", "always"] if self.appendonly else ["--appendonly", "no"]),
             "--dir", self.dir, "--logfile", os.path.join(self.dir, "log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                c = Client(self.port)
                try:
                    if c.call("PING") == "PONG":
                        return
                finally:
                    c.close()
            except OSError:
                time.sleep(0.02)
            except ReplyError as e:  # "LOADING ...": restarted, still reading its AOF
                if not str(e).startswith("LOADING"):
                    raise
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def restart(self):
        self.kill9()
        self.start()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def client(self):
        return Client(self.port)


class ReplyError(Exception):
    pass


class Client:
    """One connection; call() sends one command and returns its decoded reply (bytes become str)."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))

    def call(self, *args):
        self.send(*args)
        r = self.read()
        if isinstance(r, ReplyError):
            raise r
        return r

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self, raw=False):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return ReplyError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self._exact(n)
            return data if raw else data.decode(errors="surrogateescape")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read(raw) for _ in range(n)]
        raise ValueError(f"bad reply {line!r}")


def scripts():
    """The Lua scripts of directory_scripts.hpp, each prelude + body, by name (claim, release, ...)."""
    text = HEADER.read_text()
    raw = dict(re.findall(r'inline constexpr const char\* lua_(\w+) = R"lua\((.*?)\)lua";', text, re.S))
    prelude = raw.pop("prelude")
    return {name: prelude + body for name, body in raw.items()}
