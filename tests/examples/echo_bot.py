#!/usr/bin/env python3
"""Runs examples/echo_bot as a user would: starts it on a free port, talks to it over a real
socket, stops it with SIGINT. Usage: echo_bot.py <path to echo_bot>. Exits non-zero on failure.
Every wait is bounded (5 s reads, 10 s for the exit)."""
import re
import signal
import socket
import subprocess
import sys


def main(binary):
    proc = subprocess.Popen([binary, "0"], stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", first)
        assert m, f"unexpected first line: {first!r}"
        with socket.create_connection(("127.0.0.1", int(m.group(1))), timeout=5) as s:
            f = s.makefile("rw", newline="\n")

            def exchange(line, want):
                f.write(line + "\n")
                f.flush()
                got = f.readline().rstrip("\n")
                assert got == want, f"sent {line!r}: expected {want!r}, got {got!r}"

            exchange("/register me", "ok register me")
            exchange("/msg echo hello", "msg echo hello")
            exchange("@ECHO tabs\tand UTF-8 \u00e9", "msg echo tabs\tand UTF-8 \u00e9")
            exchange("/msg nobody hi", "err user-not-found nobody")
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=10)
        assert code == 0, f"echo_bot exited with {code} after SIGINT"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print("echo_bot: 1 passed, 0 failed")


if __name__ == "__main__":
    main(sys.argv[1])
