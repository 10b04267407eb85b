#!/usr/bin/env python3
"""Writes the hand-written seed inputs of the fuzz targets into tests/fuzz/corpus/<target>/.

The inputs are binary (a header, or opcodes); this script is their readable source. It only
(re)writes the files named here (prefix "seed-"): crash inputs added to the corpus as regression
tests are left alone. Usage: python3 tests/fuzz/make_seeds.py
Formats: the header comments of line_codec_fuzz.cpp, router_fuzz.cpp, delivery_fuzz.cpp and
websocket_frame_fuzz.cpp, websocket_upgrade_fuzz.cpp, cluster_format_fuzz.cpp and
websocket_session_fuzz.cpp.
"""
import pathlib

HERE = pathlib.Path(__file__).resolve().parent


# ---- line_codec_fuzz: [max_line][n][plan x n][stop mask][data] --------------------------------
def line_seed(max_line, chunks, stop=0):
    """chunks: (session, bytes) or (session, bytes, 'eof'); at most 15, each at most 63 bytes.
    An 'eof' chunk at index k must be for session k % 3 (plan value 3 means exactly that)."""
    assert len(chunks) <= 15
    plan, data = [], b""
    for k, c in enumerate(chunks):
        session, body = c[0], c[1]
        assert len(body) <= 63, body
        if len(c) > 2:
            assert session == k % 3, (k, session)
            session = 3
        plan.append(len(body) | (session << 6))
        data += body
    return bytes([max_line, len(plan)] + plan + [stop]) + data


def line_seed_uniform(max_line, size, data, session=0, stop=0):
    """One plan entry: every chunk `size` bytes, all to one session."""
    return bytes([max_line, 1, size | (session << 6), stop]) + data


LINE_SEEDS = {
    "seed-rooms-transcript": line_seed(64, [
        (0, b"/register alice\n"), (1, b"/register Bob\n"), (2, b"/register carol\n"),
        (0, b"/join lobby\n"), (1, b"/join LOBBY\n"), (2, b"/JOIN lobby\n"),
        (0, b"#lobby hello room\n"), (1, b"/say lobby hi all\n"), (2, b"/leave lobby\n"),
        (0, b"/who\n"), (1, b"@alice hi\n"), (2, b"/msg nobody hi\n"),
        (0, b"/quit\n"), (1, b"/who\n"), (2, b"/msg alice gone?\n"),
    ]),
    "seed-crlf-bytewise": line_seed_uniform(
        16, 1, b"/register a\r\n/who\r\n\r\n\n\r\r\n@a hi\r\n/msg a x\r\r\n/who\r"),
    "seed-overlong-lines": line_seed_uniform(
        8, 3, b"12345678\n123456789\n1234567\r\r\n12345678\r\n" + b"x" * 40 + b"\nok\n/who"),
    "seed-overlong-cr-at-the-limit": line_seed(4, [
        (0, b"abcd\r"), (0, b"\n"), (0, b"abcd\r"), (0, b"\r\n"), (0, b"abcde"), (0, b"\n\r\n"),
        (0, b"abc\r"), (0, b"x\n"),
    ]),
    "seed-shorthands": line_seed(64, [
        (0, b"/register eve\n"), (0, b"@eve hi\n#lobby hello\n"),
        (0, b"@\n#\n@ x\n# x\n#lobby \n@eve  two spaces\n"),
        (0, b"/join lobby\n#lobby x\n/msg eve\n/say\n/msg  eve hi\n"),
        (1, b"/register bob\n/join lobby\n"), (0, b"#LOBBY to bob\n@BOB direct\n"),
    ]),
    "seed-half-close": line_seed(64, [
        (0, b"/register dave\n/join r\n/who", "eof"), (1, b"/register dave\n/join r\n"),
        (2, b"/register x\n/who\n/quit\n/who\n"), (0, b"/register dave\n", "eof"),
        (1, b"@dave still there?\n#r anyone", "eof"),
    ]),
    "seed-utf8-texts": line_seed(64, [
        (0, b"/register u\n"), (0, "/msg u café € 5\n".encode()), (0, b"/msg u \xc0\xaf\n"),
        (0, b"/msg u \xed\xa0\x80\n"), (0, b"/msg u \xf4\x90\x80\x80\n"),
        (0, b"/msg u \xf0\x9f\x98\x80 ok\n"), (0, b"/msg u tab\there\x7f\n"),
        (0, b"/msg u 12345678\x1b[31mred\n"), (0, b"/msg u abcdefg\xe2\x82\n"),
        (0, b"/msg u bare\rCR\n"), (0, b"/msg u 1234567\t12345678\n"),
    ]),
    "seed-stop-mask": line_seed_uniform(
        64, 63, b"/who\n\n/who\r\n/x\n/\nhello?\n/NICK eve\n/QUIT now\n/who\n", stop=0xAA),
    "seed-max-line-zero": line_seed_uniform(0, 2, b"a\nab\n\r\n\n a\r\nb\r"),
    "seed-errors": line_seed(64, [
        (0, b"/register al ice\n"), (0, b"/register  eve\n"), (0, b"/register\n"),
        (0, b"/register Eve secret\n"), (0, b"/register eve2\n"), (0, b"/join a b\n"),
        (0, b"/join lobby \n"), (0, b"/leave lobby\n"), (0, b"/say lobby hi\n"),
        (0, b"/msg bad!name hi\n"), (0, b"/msg nobody \x1b[31mred\n"), (1, b"/who extra\n"),
        (1, b"/msg eve hi\n"), (1, b"/register EVE\n"),
    ]),
    "seed-lines-split-across-sessions": line_seed(64, [
        (0, b"/regis"), (1, b"ter bob\n/jo"), (2, b"in x\n"), (0, b"ter ann\n"), (1, b"/join x\n"),
        (2, b"/register cy\n/join x\n#x hi\n"),
    ]),
}


# ---- router_fuzz: opcodes -------------------------------------------------------------------------
USERS = ["alice", "Alice", "ALICE", "bob", "Bob", "carol", "dave", "eve", "x", "a.b-c_d",
         "Q2345678901234567890123456789012", "q2345678901234567890123456789012x", "", "bad name",
         "bad!", "café", "alice "]
ROOMS = ["lobby", "LOBBY", "Lobby", "dev", "DEV", "alice", "r1", "r2", "r3", "r4", "x", "",
         "no space", "#lobby", "r23456789012345678901234567890123"]


def u(n):
    return USERS.index(n)


def rm(n):
    return ROOMS.index(n)


def a(op, slot=0, flag=False):
    return bytes([op | (slot << 4) | (0x80 if flag else 0)])


def open_(s, bound=None):  # bound: None = unbounded, else 16 + k (k < 48)
    return a(0, s) + bytes([1 if bound is None else ((bound - 16) << 2)])


def close(s, twice=False):
    return a(1, s, twice)


def register(s, n, by_name=False, credential=False):
    return a(2, s, by_name) + bytes([u(n) | (0x80 if credential else 0)])


def join(s, r, by_name=False):
    return a(3, s, by_name) + bytes([rm(r)])


def leave(s, r, by_name=False):
    return a(4, s, by_name) + bytes([rm(r)])


def route(s, n, text=b"", by_name=False):
    assert len(text) < 8, text  # the length byte is taken % 8
    return a(5, s, by_name) + bytes([u(n), len(text)]) + text


def publish(s, r, text=b"", all_members=False, by_name=False):
    assert len(text) < 8, text
    return a(6, s, all_members) + bytes([rm(r) | (0x80 if by_name else 0), len(text)]) + text


def send(s, data):
    assert 1 <= len(data) <= 15, data
    return a(7, s) + bytes([len(data) - 1]) + data


def disconnect(s, abort=False):
    return a(8, s, abort)


def reopen(s, bound=None):
    return a(9, s) + bytes([1 if bound is None else ((bound - 16) << 2)])


def stale(which, what, user="alice", room="lobby"):
    return a(10) + bytes([which, what, u(user), rm(room)])


def handler(how):  # 0 record, 1 bounce, 2 none
    return a(11) + bytes([how])


def prog(*ops, population=(0, 0, 0), max_rooms=None, max_members=None, authorizer=False):
    """population: sessions opened, registered mask, in-lobby mask; then the router's limits."""
    p3 = 0 if max_rooms is None else 0x80 | (max_rooms - 1)
    p4 = (0 if max_members is None else 0x80 | (max_members - 1)) | (0x40 if authorizer else 0)
    return bytes(population) + bytes([p3, p4]) + b"".join(ops)


ROUTER_SEEDS = {
    "seed-basics": prog(
        open_(0), open_(1), open_(2), register(0, "alice"), register(1, "Bob"), register(2, "carol"),
        join(0, "lobby"), join(1, "LOBBY"), join(2, "Lobby", True), publish(0, "lobby", b"hi"),
        publish(1, "lobby", b"yo", all_members=True), route(0, "Bob", b"hey"), route(1, "dave", b"?"),
        route(2, "carol", b"self", by_name=True), leave(2, "lobby"), close(1), publish(0, "lobby", b"x")),
    "seed-name-collisions": prog(
        open_(0), open_(1), open_(2), register(0, "Alice"), register(1, "ALICE"), register(0, "bob"),
        register(1, "bad name"), register(1, "q2345678901234567890123456789012x"), register(1, ""),
        register(1, "café"), register(1, "alice "), register(1, "Q2345678901234567890123456789012"),
        close(0), register(2, "alice", True), route(1, "ALICE", b"found")),
    "seed-stale-ids": prog(
        open_(0), register(0, "alice"), join(0, "lobby"), open_(1), register(1, "bob"), join(1, "lobby"),
        close(0), open_(0), register(0, "alice"), join(0, "lobby"),
        *[stale(0, what) for what in range(9)], stale(7, 0), stale(15, 4), stale(23, 6),
        close(0, True), reopen(1), stale(1, 7), stale(0, 1, "carol")),
    "seed-disconnect-then-fanout": prog(
        open_(0), open_(1), open_(2), register(0, "alice"), register(1, "bob"), register(2, "carol"),
        join(0, "dev"), join(1, "DEV"), join(2, "dev"), disconnect(1), publish(0, "dev", b"hello"),
        disconnect(2, abort=True), route(0, "bob", b"dropped"), join(0, "r1"), join(1, "r1"),
        close(1), disconnect(1), close(2)),
    "seed-slow-consumer": prog(
        open_(0, bound=16), open_(1), register(0, "x"), register(1, "bob"), join(0, "r2"),
        join(1, "r2"), publish(1, "r2", b"1234567"), route(1, "x", b"abc"), route(1, "x", b"abcdefg"),
        open_(2, bound=40), register(2, "eve"), join(2, "r2"), publish(1, "r2", b"z", all_members=True),
        close(1)),
    "seed-user-not-found-handler": prog(
        open_(0), register(0, "alice"), route(0, "dave", b"hi"),
        handler(1), route(0, "dave", b"bounce"), disconnect(0), route(0, "eve", b"closed"),
        handler(2), route(0, "carol", b"nohandl"), handler(0), route(0, "x", b"record"),
        route(0, "bad!", b"invalid")),
    "seed-eight-sessions-eight-rooms": prog(
        *[open_(s) for s in range(8)],
        *[register(s, n) for s, n in enumerate(["alice", "bob", "carol", "dave", "eve", "x",
                                                "a.b-c_d", "Q2345678901234567890123456789012"])],
        *[join(s, r) for s in range(8) for r in ["lobby", "dev", "alice", "r1", "r2", "r3", "r4", "x"]],
        join(0, "LOBBY"), publish(3, "x", b"to all"), leave(4, "r3"), reopen(5), close(6),
        publish(7, "lobby", b"last", all_members=True)),
    "seed-population-eight-in-lobby": prog(
        publish(0, "lobby", b"hi all"), publish(7, "LOBBY", b"", all_members=True), leave(3, "lobby"),
        close(4), reopen(5), register(5, "eve"), join(5, "lobby"), publish(5, "lobby", b"back"),
        population=(8, 0xFF, 0xFF)),
    "seed-population-mixed": prog(
        route(1, "alice", b"hi"), join(2, "dev"), publish(0, "lobby", b"?"), register(3, "bob"),
        register(3, "dave"), route(3, "carol", b"!"), population=(5, 0b10111, 0b00101)),
    "seed-limits-and-authorizer": prog(
        register(0, "ALICE"), register(0, "ALICE", credential=True), register(1, "eve", credential=True),
        register(1, "bob"), register(2, "Bob"), register(2, "a.b-c_d", by_name=True, credential=True),
        join(0, "lobby"), join(1, "lobby"), join(2, "lobby"), join(0, "dev"), join(0, "r1"),
        leave(0, "dev"), join(0, "r1"), join(2, "dev"), join(1, "r2"), join(1, "r3"),
        stale(0, 1), population=(3, 0, 0), max_rooms=2, max_members=2, authorizer=True),
    "seed-send-bytes": prog(
        open_(0), send(0, b"raw\x00bytes\n\r"), close(0), send(0, b"after close"), open_(0),
        send(0, b"x"), disconnect(0, abort=True), send(0, b"to closed")),
}


# ---- delivery_fuzz: a setup of 6 bytes, then opcodes ----------------------------------------------
D_USERS = ["alice", "Alice", "bob", "BOB", "carol", "dave", "eve", "b@d"]
D_TEXTS = ["hi", "hello there", "x", "café", "tab\there", "a b c", "", "bad\nline"]
D_CIDS = ["c1", "c2", "C1", "retry-1", "x"]
D_DELTAS = [0, 1, 10, 99, 100, 101, 250, 499, 500, 999, 1000, 2500, 4999, 5000, 10000, 600000]
D_POLICIES = ["exclusive", "replace", "multi"]
D_HANDLERS = ["none", "record", "welcome", "gone"]


def du(n):
    return D_USERS.index(n)


def dt(text):  # a table text, or None for a unique "m<step>" text
    return 0x80 if text is None else D_TEXTS.index(text)


def dd(ms):
    return D_DELTAS.index(ms)


def d_open(s):
    return a(0, s)


def d_close(s, twice=False):
    return a(1, s, twice)


def d_register(s, n, by_name=False):
    return a(2, s, by_name) + bytes([du(n)])


def d_acks(s):
    return a(3, s)


def d_route(s, n, text=None, by_name=False):
    return a(4, s, by_name) + bytes([du(n), dt(text)])


def d_send(s, n, text, cid):
    return a(5, s) + bytes([du(n), dt(text), D_CIDS.index(cid)])


def d_ack(s, pick, small=0):
    """pick: 0 zero, 1 the ledger's first seq, 2 its last, 3 highest_seq, 4 highest + 1, 5 huge,
    6 the ledger's middle, 7 `small` (0..31)."""
    return a(6, s) + bytes([pick | (small << 3)])


def d_watch(s, n):
    return a(7, s) + bytes([du(n)])


def d_unwatch(s, n):
    return a(8, s) + bytes([du(n)])


def d_typing(s, n, stop=False):
    return a(9, s, stop) + bytes([du(n)])


def d_touch(s, ms):
    return a(10, s) + bytes([dd(ms)])


def d_tick(ms):
    return a(11) + bytes([dd(ms)])


def d_reopen(s):
    return a(12, s)


def d_stale(which, what):
    return a(14) + bytes([which, what])


def d_retry(s):
    return a(15, s)


def dprog(*ops, max_per_user=8, ttl=10, max_known=6, max_watches=0, policy="exclusive", max_sessions=1,
          grace=0, handler="none", population=0, acks_mask=0, max_offline=None, max_bytes=None):
    """The setup bytes (see delivery_fuzz.cpp), then the operations."""
    s0 = (max_per_user - 1) | (0 if max_offline is None else (max_offline - 1) << 3)
    s1 = ttl - 1
    s2 = (max_known - 1) | (max_watches << 3) | (0 if max_bytes is None else 0x20 | ((max_bytes - 300) // 100) << 6)
    s3 = D_POLICIES.index(policy) | ((max_sessions - 1) << 2)
    s4 = (0 if grace == 0 else 1 | ((grace // 100 - 1) << 1)) | (D_HANDLERS.index(handler) << 5)
    s4 |= 0 if max_offline is None else 0x80
    s5 = population | (acks_mask << 4)
    return bytes([s0, s1, s2, s3, s4, s5]) + b"".join(ops)


DELIVERY_SEEDS = {
    "seed-offline-replay-at-most-once": dprog(
        d_open(0), d_register(0, "alice"), d_route(0, "bob", "hi"), d_open(1), d_register(1, "BOB"),
        d_close(1), d_touch(0, 100), d_route(0, "bob", "hi"), d_route(0, "BOB", None),
        d_route(0, "bob", "x"), d_route(0, "bob", "a b c"), d_route(0, "bob", ""),
        d_open(1), d_register(1, "bob"), d_route(0, "bob", "hello there", by_name=True), d_close(1, True),
        d_open(1), d_register(1, "bob"), max_per_user=3),
    "seed-acks-cumulative-and-redelivery": dprog(
        d_open(0), d_register(0, "alice"), d_open(1), d_acks(1), d_register(1, "bob"),
        d_route(0, "bob", None), d_route(0, "bob", None), d_route(0, "bob", None),
        d_ack(1, 1), d_ack(1, 1), d_ack(1, 0), d_ack(1, 4), d_ack(1, 5), d_close(1),
        d_route(0, "bob", None), d_open(2), d_acks(2), d_register(2, "bob"), d_route(0, "bob", None),
        d_ack(2, 6), d_ack(2, 3), d_open(3), d_register(3, "carol"), d_close(3), d_route(0, "carol", None),
        d_open(3), d_register(3, "carol"), d_route(0, "carol", None), d_acks(3), d_ack(3, 7, 1)),
    "seed-presence-grace": dprog(
        d_open(0), d_register(0, "eve"), d_watch(0, "bob"), d_watch(0, "dave"), d_open(1),
        d_touch(1, 100), d_register(1, "bob"), d_touch(1, 250), d_close(1), d_tick(100), d_open(2),
        d_register(2, "carol"), d_watch(2, "bob"), d_open(1), d_register(1, "bob"), d_tick(1000),
        d_touch(1, 10), d_close(1), d_tick(250), d_tick(250), d_unwatch(0, "bob"), d_unwatch(0, "bob"),
        d_watch(0, "BOB"), d_watch(0, "b@d"), d_watch(0, "eve"), d_close(0), d_tick(500),
        grace=300, max_watches=2),
    "seed-replace-late-close": dprog(
        d_open(0), d_register(0, "alice"), d_open(1), d_register(1, "bob"), d_watch(1, "alice"),
        d_typing(0, "bob"), d_watch(0, "bob"), d_open(2), d_register(2, "Alice"), d_route(1, "alice", "hi"),
        d_close(0), d_route(1, "alice", None), d_register(0, "alice"), d_open(0), d_acks(0),
        d_register(0, "alice", by_name=True), d_route(1, "alice", None), d_close(2), d_ack(0, 3),
        policy="replace"),
    "seed-multi-acks-mixed": dprog(
        d_open(0), d_register(0, "alice"), d_open(1), d_acks(1), d_register(1, "bob"), d_open(2),
        d_register(2, "bob"), d_open(3), d_register(3, "bob"), d_route(0, "bob", None),
        d_route(1, "bob", None), d_acks(2), d_ack(2, 2), d_close(1), d_route(0, "bob", None),
        d_close(2), d_route(0, "bob", None), d_typing(0, "bob"), d_typing(0, "bob", True),
        d_close(3), d_route(0, "bob", None), d_open(1), d_register(1, "bob"),
        policy="multi", max_sessions=2),
    "seed-ttl-expiry": dprog(
        d_open(0), d_register(0, "alice"), d_open(1), d_register(1, "bob"), d_close(1),
        d_route(0, "bob", None), d_tick(1000), d_route(0, "bob", None), d_tick(1000),
        d_route(0, "bob", None), d_tick(999), d_tick(1), d_tick(2500), d_open(1), d_acks(1),
        d_register(1, "bob"), d_tick(5000), d_route(0, "bob", None), d_tick(600000), ttl=2),
    "seed-send-dedup": dprog(
        d_open(0), d_send(0, "bob", "hi", "c1"), d_register(0, "alice"), d_send(0, "bob", "hi", "c1"),
        d_open(1), d_register(1, "bob"), d_send(0, "bob", None, "c1"), d_retry(0), d_send(0, "bob", None, "C1"),
        d_close(1), d_send(0, "bob", None, "c2"), d_retry(0), d_send(0, "bob", "", "c2"), d_tick(600000),
        d_retry(0), d_send(0, "alice", None, "x"), d_open(2), d_register(2, "alice"), d_retry(2),
        policy="multi", max_sessions=2),
    "seed-known-users-bound": dprog(
        d_open(0), d_register(0, "alice"), d_open(1), d_register(1, "bob"), d_close(1),
        d_route(0, "bob", None), d_open(2), d_register(2, "carol"), d_close(2), d_route(0, "carol", None),
        d_open(3), d_register(3, "dave"), d_close(3), d_route(0, "dave", None), d_open(1),
        d_register(1, "bob"), d_close(1), d_route(0, "bob", None), max_known=2),
    "seed-handler-gone": dprog(
        d_open(0), d_register(0, "alice"), d_open(1), d_register(1, "bob"), d_watch(0, "bob"),
        d_close(1), d_tick(500), d_open(1), d_register(1, "bob"), d_close(0), d_close(1),
        d_tick(10000), handler="gone", grace=200),
    "seed-typing-stop-on-close": dprog(
        d_open(0), d_register(0, "alice"), d_open(1), d_register(1, "bob"), d_typing(0, "bob"),
        d_tick(4999), d_close(0), d_open(0), d_register(0, "alice"), d_typing(0, "bob"),
        d_route(0, "bob", "hi"), d_close(0), d_open(0), d_register(0, "alice"), d_typing(0, "bob"),
        d_tick(5000), d_close(0), d_open(0), d_register(0, "alice"), d_typing(0, "b@d"),
        d_typing(0, "carol"), d_typing(0, "alice"), d_typing(2, "bob")),
    "seed-stale-ids": dprog(
        d_open(0), d_register(0, "alice"), d_close(0), d_reopen(1), d_reopen(1),
        *[d_stale(1 + 4 * k, what) for k in range(2) for what in range(10)], d_stale(4, 2), d_stale(0, 8),
        d_touch(0, 10), d_route(0, "alice", "hi")),
    "seed-forget-offline-users": dprog(
        d_open(0), d_register(0, "alice"), d_open(1), d_register(1, "bob"), d_touch(1, 100), d_close(1),
        d_send(0, "carol", "hi", "c1"), d_watch(0, "bob"), d_open(2), d_register(2, "carol"), d_close(2),
        d_unwatch(0, "bob"), d_open(3), d_register(3, "dave"), d_close(3), d_watch(0, "bob"),
        d_watch(0, "carol"), d_open(2), d_register(2, "carol"), d_retry(0), max_offline=1),
    "seed-inbox-byte-bound": dprog(
        d_open(0), d_register(0, "alice"), d_open(1), d_register(1, "bob"), d_close(1), d_open(2),
        d_register(2, "carol"), d_close(2), d_route(0, "bob", "hello there"), d_route(0, "carol", "hello there"),
        d_route(0, "bob", "hi"), d_route(0, "carol", "x"), d_open(1), d_register(1, "bob"),
        d_route(0, "carol", "x"), max_bytes=300),
    "seed-population-eight": dprog(
        d_route(0, "bob", None), d_route(1, "alice", None), d_close(1), d_route(0, "bob", None),
        d_reopen(6), d_register(6, "bob"), d_ack(0, 3), d_watch(2, "alice"), d_close(0), d_close(5),
        population=8, acks_mask=0b1011, policy="multi", max_sessions=2),
}

# ---- websocket_frame_fuzz: [max][flags][n][plan x n][stop mask][key x 4][data] -------------------
WS_KEY = b"\x37\xfa\x21\x3d"


def ws_frame(op, body=b"", fin=True, rsv=0, masked=True, length_bytes=0, declared=None, key=WS_KEY):
    """One frame as a client sends it (masked) or a server (masked=False). length_bytes 2 or 8
    forces the 16- or 64-bit length form; `declared` claims another length than len(body)."""
    n = len(body) if declared is None else declared
    out = bytes([(0x80 if fin else 0) | (rsv << 4) | op])
    mask_bit = 0x80 if masked else 0
    form = length_bytes or (0 if n <= 125 else 2 if n <= 0xFFFF else 8)
    if form == 0:
        out += bytes([mask_bit | n])
    else:
        out += bytes([mask_bit | (126 if form == 2 else 127)]) + n.to_bytes(form, "big")
    if masked:
        out += key
        body = bytes(b ^ key[i % 4] for i, b in enumerate(body))
    return out + body


def ws_close(code=None, reason=b"", **kw):
    body = b"" if code is None else code.to_bytes(2, "big") + reason
    return ws_frame(0x8, body, **kw)


def ws_seed(data, max_message=0x88, flags=0, plan=(), stop=0, key=WS_KEY):
    """max_message 0x88 = 8 << 9 = 4096; flags: 1 client role, 2 structured records."""
    assert len(plan) < 16
    return bytes([max_message, flags, len(plan)] + list(plan) + [stop]) + key + data


def ws_record(b0, body=b"", long_form=False):
    """A record of the structured stream: first byte, then the length byte, then the payload."""
    assert len(body) <= 127
    return bytes([b0, len(body) | (0x80 if long_form else 0)]) + body


WS_SEEDS = {
    "seed-rfc-hello-and-controls": ws_seed(
        b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58" + ws_frame(0x9, b"ping") + ws_frame(0xA, b"") +
        ws_frame(0x2, bytes(range(40))) + ws_frame(0x1, b"") + ws_close(1000, b"bye"),
        plan=(1, 5, 63), stop=0b1010),
    "seed-fragments-and-controls": ws_seed(
        ws_frame(0x1, b"caf\xc3", fin=False) + ws_frame(0x9, b"p") + ws_frame(0x0, b"\xa9 \xf0", fin=False) +
        ws_frame(0xA, b"q") + ws_frame(0x0, b"\x9f\x98", fin=False) + ws_frame(0x0, b"", fin=False) +
        ws_frame(0x0, b"\x80!") + ws_frame(0x2, b"\xff\x00", fin=False) + ws_frame(0x0, b"\xc0"),
        plan=(3, 0, 17), stop=0b0110),
    "seed-length-forms": ws_seed(
        ws_frame(0x2, b"x" * 125) + ws_frame(0x2, b"y" * 126) + ws_frame(0x1, "é".encode() * 600) +
        ws_frame(0x2, b"", declared=0x7FFFFFFFFFFFFFFF, key=b""),
        max_message=0xFF, plan=(0x7F, 0x41, 0xC1)),
    "seed-bytewise-pauses": ws_seed(
        ws_frame(0x1, b"one") + ws_frame(0x9, b"two") + ws_frame(0x2, b"three", fin=False) + ws_frame(0x0, b"!") +
        ws_close(), plan=(1,), stop=0xFF),
    "seed-client-role": ws_seed(
        ws_frame(0x1, b"server says hi", masked=False) + ws_frame(0xA, b"pong", masked=False) +
        ws_frame(0x2, b"z" * 300, masked=False) + ws_close(1001, b"going", masked=False) +
        ws_frame(0x1, b"masked: refused"), flags=1, plan=(2, 7)),
    "seed-structured-records": ws_seed(
        ws_record(0x81, b"hello") + ws_record(0x89, b"p") + ws_record(0x02, b"frag") + ws_record(0x80, b"ment") +
        ws_record(0x81, b"x" * 126) + ws_record(0x82, b"short", long_form=True),
        flags=2, plan=(4,), stop=0x01),
    "seed-too-big-across-fragments": ws_seed(
        ws_frame(0x1, b"123456", fin=False) + ws_frame(0x9) + ws_frame(0x0, b"7890", fin=False) +
        ws_frame(0x0, b"X"), max_message=10),
    "seed-utf8-bad-in-second-fragment": ws_seed(
        ws_frame(0x1, b"good ", fin=False) + ws_frame(0x0, b"bad \xc3(", fin=False)),  # no last fragment
    "seed-utf8-truncated-at-fin": ws_seed(ws_frame(0x1, b"cut \xe2\x82")),
    "seed-close-codes": ws_seed(ws_close(4999, "fin €".encode()) + ws_frame(0x1, b"after close")),
}

# Each ends with one protocol error (after a valid message, so the error follows a delivery).
_WS_OK = ws_frame(0x1, b"ok")
for _name, _bad in {
    "rsv1": ws_frame(0x1, b"x", rsv=4),
    "reserved-opcode": ws_frame(0x3, b"x"),
    "reserved-control-opcode": ws_frame(0xB),
    "unmasked": ws_frame(0x1, b"x", masked=False),
    "fragmented-ping": ws_frame(0x9, b"x", fin=False),
    "ping-126": ws_frame(0x9, b"p" * 126),
    "lone-continuation": ws_frame(0x0, b"x"),
    "text-inside-fragments": ws_frame(0x2, b"a", fin=False) + ws_frame(0x1, b"b"),
    "non-minimal-16": ws_frame(0x1, b"short", length_bytes=2),
    "non-minimal-64": ws_frame(0x2, b"z" * 200, length_bytes=8),
    "length-high-bit": ws_frame(0x2, b"", declared=1 << 63, key=b""),
    "close-1-byte": ws_frame(0x8, b"\x03"),
    "close-code-1005": ws_close(1005),
    "close-code-2999": ws_close(2999),
    "close-reason-not-utf8": ws_close(1000, b"\xff"),
}.items():
    WS_SEEDS["seed-error-" + _name] = ws_seed(_WS_OK + _bad, plan=(1,) if "64" in _name else ())


# ---- websocket_upgrade_fuzz: [max_head][max_headers][max_target][flags][n][plan x n][data] ----
WS_REQUIRE_HOST, WS_ALLOW_NO_ORIGIN, WS_ORIGIN_LIST, WS_DEFAULT_LINE, WS_ANY_PATH, WS_NO_PROTOCOLS = (
    1, 2, 4, 8, 16, 32)
WS_DEFAULT_FLAGS = WS_REQUIRE_HOST | WS_ALLOW_NO_ORIGIN


def upgrade_seed(data, plan=(), max_head=None, max_headers=64, max_target=None, flags=WS_DEFAULT_FLAGS):
    """max_head None: 8192, else 1 + 8k (k < 128); max_headers < 70 or 'cap'; max_target None:
    2048, else a multiple of 4 below 800. plan: chunk sizes (at most 15, each < 256)."""
    assert len(plan) <= 15
    b0 = 0x80 if max_head is None else (max_head - 1) // 8
    assert max_head is None or (max_head - 1) % 8 == 0 and b0 < 128
    b1 = 250 if max_headers == "cap" else max_headers
    b2 = 200 if max_target is None else max_target // 4
    assert max_target is None or max_target % 4 == 0 and b2 < 200
    return bytes([b0, b1, b2, flags, len(plan)] + list(plan)) + data


def ws_request(target=b"/ws", lines=(), method=b"GET", version=b"HTTP/1.1"):
    return method + b" " + target + b" " + version + b"\r\n" + b"".join(l + b"\r\n" for l in lines) + b"\r\n"


WS_CURL = [b"Host: 127.0.0.1:8080", b"User-Agent: curl/8.5.0", b"Accept: */*", b"Upgrade: websocket",
           b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==", b"Connection: Upgrade"]
WS_CHROMIUM = [b"Host: localhost:8080", b"Connection: Upgrade", b"Pragma: no-cache", b"Cache-Control: no-cache",
               b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.0.0", b"Upgrade: websocket",
               b"Origin: http://localhost:8080", b"Sec-WebSocket-Version: 13",
               b"Accept-Encoding: gzip, deflate, br", b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
               b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
               b"Sec-WebSocket-Protocol: switchboard.json, switchboard.line"]


def ws_curl_with(*lines, drop=()):
    return ws_request(lines=[l for l in WS_CURL if l.split(b":")[0] not in drop] + list(lines))


UPGRADE_SEEDS = {
    "seed-chromium-bytewise": upgrade_seed(ws_request(lines=WS_CHROMIUM), plan=[1]),
    "seed-chromium-origin-list": upgrade_seed(ws_request(lines=WS_CHROMIUM), plan=[7, 0, 13],
                                         flags=WS_DEFAULT_FLAGS | WS_ORIGIN_LIST),
    "seed-curl-then-frame": upgrade_seed(ws_curl_with() + b"\x81\x84\x01\x02\x03\x04\r\n\r\n", plan=[40, 3]),
    "seed-curl-no-origin-refused": upgrade_seed(ws_curl_with(), flags=WS_REQUIRE_HOST | WS_DEFAULT_LINE),
    "seed-version-8": upgrade_seed(ws_curl_with(b"Sec-WebSocket-Version: 8", drop=[b"Sec-WebSocket-Version"])),
    "seed-bad-key": upgrade_seed(ws_curl_with(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==",
                                         drop=[b"Sec-WebSocket-Key"])),
    "seed-no-common-subprotocol": upgrade_seed(ws_curl_with(b"Sec-WebSocket-Protocol: chat, Switchboard.JSON",
                                                       b"Sec-WebSocket-Protocol: , ")),
    "seed-subprotocol-line": upgrade_seed(ws_curl_with(b"Sec-WebSocket-Protocol: switchboard.line"),
                                     flags=WS_DEFAULT_FLAGS | WS_DEFAULT_LINE),
    "seed-post-other-path": upgrade_seed(ws_request(b"/other?x=1", WS_CURL, method=b"POST"), flags=WS_ANY_PATH),
    "seed-http10-no-host": upgrade_seed(ws_request(b"/", [], version=b"HTTP/1.0") + b"GET / HTTP/1.1\r\n"),
    "seed-body-headers": upgrade_seed(ws_curl_with(b"Content-Length: 0", b"Transfer-Encoding: chunked")),
    "seed-forms": upgrade_seed(ws_request(b"http://chat.example:80/ws?q", [b"Host: chat.example"]) +
                          ws_request(b"*", [b"Host: h"], method=b"OPTIONS"), plan=[5, 0]),
    "seed-connect": upgrade_seed(ws_request(b"[::1]:443", [b"Host: [::1]:443"], method=b"CONNECT")),
    "seed-leading-crlf-lists": upgrade_seed(b"\r\n\r\n" + ws_curl_with(b"Connection: keep-alive, ,Upgrade ",
                                                                     b"Upgrade: h2c,  WebSocket\t"), plan=[2, 9]),
    "seed-ows-values": upgrade_seed(ws_request(b"/", [b"Host: h", b"A: \t v \t a \t ", b"B:", b"C: caf\xc3\xa9"])),
    "seed-bare-lf": upgrade_seed(b"GET / HTTP/1.1\nHost: h\n\n"),
    "seed-bare-cr": upgrade_seed(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", plan=[18, 1]),
    "seed-obs-fold": upgrade_seed(ws_request(b"/", [b"Host: h", b"X: a", b" b"])),
    "seed-space-before-colon": upgrade_seed(ws_request(b"/", [b"Host : h"])),
    "seed-nul-in-value": upgrade_seed(ws_request(b"/", [b"Host: h", b"X: a\x00b"])),
    "seed-duplicate-host": upgrade_seed(ws_request(b"/", [b"Host: a", b"host: b"])),
    "seed-tls-client-hello": upgrade_seed(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
    "seed-head-at-the-bound": upgrade_seed(ws_request(b"/", [b"Host: h", b"X: " + b"p" * 73]), max_head=105),
    "seed-head-one-past": upgrade_seed(ws_request(b"/", [b"Host: h", b"X: " + b"p" * 74]), max_head=105, plan=[50]),
    "seed-headers-at-the-bound": upgrade_seed(ws_request(b"/", [b"Host: h"] + [b"X: v"] * 3), max_headers=4),
    "seed-headers-one-past": upgrade_seed(ws_request(b"/", [b"Host: h"] + [b"X: v"] * 4), max_headers=4),
    "seed-headers-capacity": upgrade_seed(ws_request(b"/", [b"Host: h"] + [b"X: v"] * 130), max_headers="cap",
                                     plan=[255]),
    "seed-target-at-the-bound": upgrade_seed(ws_request(b"/" + b"a" * 15, [b"Host: h"]), max_target=16),
    "seed-target-one-past": upgrade_seed(ws_request(b"/" + b"a" * 16, [b"Host: h"]), max_target=16),
    "seed-version-2": upgrade_seed(b"GET / HTTP/2.0\r\n\r\n"),
}


# ---- cluster_format_fuzz: one cluster-format event (kind, code, queued, seq, last_seen, room,
# user, text; little-endian, u32 lengths), or bytes around it -----------------------------------
def cluster_event(kind, room=b"", user=b"", text=b"", code=0, queued=0, seq=0, last_seen=-1):
    out = bytes([kind, code, queued]) + seq.to_bytes(8, "little") + (last_seen & (2**64 - 1)).to_bytes(8, "little")
    for part in (room, user, text):
        out += len(part).to_bytes(4, "little") + part
    return out


CLUSTER_SEEDS = {
    "seed-direct-message": cluster_event(0, user=b"bob", text=b"hi there"),
    "seed-room-message": cluster_event(1, room=b"lobby", user=b"alice", text=b"hello all"),
    "seed-member-joined": cluster_event(2, room=b"lobby", user=b"carol"),
    "seed-member-left": cluster_event(3, room=b"lobby", user=b"Carol"),
    "seed-acked-message": cluster_event(4, user=b"bob", text=b"caf\xc3\xa9", seq=42),
    "seed-presence-offline": cluster_event(6, user=b"alice", last_seen=1700000000123),
    "seed-send-outcome": cluster_event(10, user=b"bob", text=b"c1", code=23, queued=1, seq=7),
    "seed-register-outcome": cluster_event(11, user=b"alice", code=2),
    "seed-forged-line": cluster_event(1, room=b"lobby", user=b"alice", text=b"x\nroom lobby eve forged"),
    "seed-bad-names": cluster_event(2, room=b"lob by", user=b"a\nb"),
    "seed-truncated": cluster_event(1, room=b"lobby", user=b"alice", text=b"cut")[:-2],
    "seed-trailing-byte": cluster_event(0, user=b"bob", text=b"hi") + b"\x00",
    "seed-length-past-end": cluster_event(0, user=b"bob")[:19] + (0xFFFFFFFF).to_bytes(4, "little") + b"x" * 12,
    "seed-bad-kind": cluster_event(200, user=b"bob"),
    "seed-bad-code": cluster_event(11, user=b"bob", code=99),
    "seed-bad-queued": cluster_event(10, user=b"bob", queued=2),
    "seed-empty": b"",
}

# ---- websocket_session_fuzz: [S0][S1][S2] then operations (websocket_session_fuzz.cpp) ---------
# S0: max_line 16 * (1 + S0 % 8); (S0 >> 3) & 3: alice offers json, line, both, nothing; 0x20: bob
# speaks line; 0x40: rate limit; 0x80: max_head_bytes = bob's request's size. S1: output bounds. S2: the request.
WSS_JSON, WSS_LINE, WSS_BOTH, WSS_NONE = 0 << 3, 1 << 3, 2 << 3, 3 << 3
WSS_BOB_LINE, WSS_RATE, WSS_SMALL_HEAD = 0x20, 0x40, 0x80
# Indices into json_commands / line_commands (the same command at the same index up to 16).
REG_ALICE, REG_BOB, REG_ALICE_CASE, JOIN, LEAVE, MSG_BOB, SAY, WHO, QUIT, ACK_ON, ACK_1, WATCH, TYPING, \
    SEND, MSG_NOBODY, MSG_SELF, SHORTHAND = range(17)
OP_TEXT, OP_BINARY, OP_PING, OP_CLOSE, OP_CONT, OP_PONG = 0, 3, 4, 5, 6, 7
NOT_FIN, UNMASKED, RSV1 = 8, 16, 32
OWN, OTHER, RAW, LONG = 0 << 6, 1 << 6, 2 << 6, 3 << 6


def wss(s0, s1, s2, *ops):
    return bytes([s0, s1, s2]) + b"".join(ops)


def wss_cmd(index, opcode=OP_TEXT, flags=0, cut=0):
    """A frame whose body is command `index` of alice's format (OTHER in flags: the other one)."""
    return bytes([1, opcode | flags, index, cut])


def wss_raw_frame(body, opcode=OP_TEXT, flags=0, cut=0):
    assert len(body) <= 255
    return bytes([1, opcode | flags | RAW, len(body)]) + body + bytes([cut])


def wss_long(which, cut=0x53):
    """which: 0 a text of max_line, 1 one past it, 2 a message past max_message; + 4: of '"'."""
    return bytes([1, OP_TEXT | LONG, which, cut])


def wss_raw(data):
    assert len(data) <= 255
    return bytes([0, len(data)]) + data


def wss_bob(sel):
    return bytes([2, sel])


WSS_WRITE_ALICE, WSS_WRITE_BOB, WSS_END = b"\x03", b"\x04", b"\x05"


def wss_time(steps):
    return bytes([6, steps])


def wss_while_paused(data):
    assert len(data) <= 63
    return bytes([0x0F, len(data)]) + data


def wss_fragments(index):
    return bytes([7, index])


def wss_chat(*more):
    return (wss_cmd(REG_ALICE), wss_cmd(JOIN), wss_cmd(SAY), wss_cmd(MSG_BOB), wss_cmd(WHO)) + more


# A line-mode upgrade and, in the same read, its first frame (unmasked key 0: the text as it is).
WSS_HEAD_AND_FRAME = (b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      b"Sec-WebSocket-Protocol: switchboard.line\r\n\r\n\x81\x8f\x00\x00\x00\x00/register alice")
assert len(WSS_HEAD_AND_FRAME) <= 255

WSS_SEEDS = {
    "seed-json-chat": wss(WSS_JSON, 0x33, 0, *wss_chat(wss_bob(0), wss_bob(1), WSS_WRITE_ALICE, WSS_WRITE_BOB,
                                                     wss_cmd(ACK_ON), wss_cmd(SEND), wss_cmd(MSG_SELF),
                                                     WSS_WRITE_ALICE, wss_cmd(QUIT), wss_cmd(SAY), WSS_WRITE_BOB)),
    "seed-line-chat": wss(WSS_LINE | WSS_BOB_LINE | 2, 0x33, 0,
                          *wss_chat(wss_cmd(SHORTHAND), wss_bob(0), wss_bob(2), wss_cmd(18), wss_cmd(22),
                                    WSS_WRITE_ALICE, WSS_WRITE_BOB, wss_cmd(23), wss_cmd(SAY), WSS_WRITE_ALICE)),
    "seed-json-alice-line-bob": wss(WSS_BOTH | WSS_BOB_LINE, 0x55, 0,
                                    *wss_chat(wss_bob(1), wss_cmd(LEAVE), wss_cmd(WATCH), wss_cmd(TYPING),
                                              WSS_WRITE_ALICE, WSS_WRITE_BOB, WSS_END, wss_cmd(SAY))),
    "seed-default-format": wss(WSS_NONE, 0x11, 0, *wss_chat(WSS_WRITE_ALICE)),
    "seed-head-in-reads": wss(WSS_LINE, 0x22, 1, wss_cmd(REG_ALICE, cut=0x21), WSS_WRITE_ALICE),
    "seed-head-and-frame-in-one-read": wss(WSS_JSON, 0x22, 9, bytes([len(WSS_HEAD_AND_FRAME)]) + WSS_HEAD_AND_FRAME,
                                           wss_cmd(WHO), WSS_WRITE_ALICE),
    "seed-control-frames": wss(WSS_JSON, 0x33, 0, wss_cmd(REG_ALICE),
                               wss_raw_frame(b"are you there", OP_PING), wss_raw_frame(b"", OP_PONG),
                               wss_raw_frame(b"x" * 126, OP_PING), WSS_WRITE_ALICE,
                               wss_cmd(1, OP_CLOSE), wss_cmd(SAY), WSS_WRITE_ALICE),
    "seed-close-codes": wss(WSS_LINE, 0x33, 0, wss_cmd(REG_ALICE), wss_raw_frame(b"\x03\xed", OP_CLOSE),
                            WSS_WRITE_ALICE),
    "seed-close-bad-utf8": wss(WSS_LINE, 0x33, 0, wss_raw_frame(b"\x03\xe8\xff", OP_CLOSE), WSS_WRITE_ALICE),
    "seed-unmasked": wss(WSS_JSON, 0x33, 0, wss_cmd(REG_ALICE), wss_cmd(SAY, flags=UNMASKED), WSS_WRITE_ALICE),
    "seed-rsv1": wss(WSS_LINE, 0x33, 0, wss_cmd(REG_ALICE, flags=RSV1), WSS_WRITE_ALICE),
    "seed-binary": wss(WSS_JSON, 0x33, 0, wss_cmd(REG_ALICE, OP_BINARY), WSS_WRITE_ALICE),
    "seed-continuation-first": wss(WSS_LINE, 0x33, 0, wss_cmd(REG_ALICE, OP_CONT), WSS_WRITE_ALICE),
    "seed-fragments-with-ping": wss(WSS_JSON, 0x33, 0, wss_fragments(REG_ALICE), wss_fragments(JOIN),
                                    wss_fragments(SAY), WSS_WRITE_ALICE, WSS_WRITE_BOB),
    "seed-fragment-then-text": wss(WSS_LINE, 0x33, 0, wss_cmd(REG_ALICE, flags=NOT_FIN), wss_cmd(JOIN),
                                   WSS_WRITE_ALICE),
    "seed-invalid-utf8-json": wss(WSS_JSON, 0x33, 0, wss_cmd(REG_ALICE), wss_cmd(23), wss_cmd(SAY), WSS_WRITE_ALICE),
    "seed-invalid-utf8-line": wss(WSS_LINE, 0x33, 0, wss_raw_frame(b"/register \xc3\x28"), WSS_WRITE_ALICE),
    "seed-bad-json": wss(WSS_JSON, 0x33, 0, wss_cmd(19), wss_cmd(20), wss_cmd(21), wss_cmd(22), wss_cmd(24),
                         wss_cmd(17), wss_cmd(18), wss_cmd(REG_ALICE, flags=OTHER), WSS_WRITE_ALICE),
    "seed-line-in-json-out": wss(WSS_LINE, 0x33, 0, wss_cmd(REG_ALICE, flags=OTHER), wss_cmd(19), wss_cmd(20),
                                 wss_cmd(24), WSS_WRITE_ALICE),
    "seed-long-texts-json": wss(WSS_JSON | 1, 0x77, 0, wss_cmd(REG_ALICE), wss_cmd(JOIN), wss_long(0), wss_long(1),
                                wss_long(4), wss_long(5), WSS_WRITE_ALICE, WSS_WRITE_BOB, wss_long(2),
                                WSS_WRITE_ALICE),
    "seed-long-texts-line": wss(WSS_LINE | WSS_BOB_LINE, 0x77, 0, wss_cmd(REG_ALICE), wss_cmd(JOIN), wss_long(0),
                                wss_long(1), WSS_WRITE_ALICE, WSS_WRITE_BOB, wss_long(2), WSS_WRITE_ALICE),
    "seed-bob-slow-consumer": wss(WSS_JSON | 7, 0x00, 0, wss_cmd(REG_ALICE), wss_cmd(JOIN),
                                  *([wss_long(0)] * 12), WSS_WRITE_BOB, wss_cmd(SAY), WSS_WRITE_ALICE),
    "seed-alice-slow-consumer": wss(WSS_LINE | 7, 0xf0, 0, wss_cmd(REG_ALICE), wss_cmd(JOIN),
                                    *([wss_bob(0xf0)] * 12), wss_cmd(WHO), WSS_WRITE_ALICE),
    "seed-pause-and-resume": wss(WSS_LINE | 3, 0x20, 0, wss_cmd(REG_ALICE),
                                 wss_raw(b"".join(bytes([0x81, 0x80 | 11, 0, 0, 0, 0]) + b"@alice hi!" + bytes([c])
                                                  for c in b"0123456789ab")),
                                 wss_while_paused(bytes([0x81, 0x85, 0, 0, 0, 0]) + b"/who\n"), WSS_WRITE_ALICE,
                                 WSS_WRITE_ALICE, WSS_WRITE_ALICE, wss_cmd(QUIT), WSS_WRITE_ALICE),
    "seed-pause-json": wss(WSS_JSON | 3, 0x10, 0, wss_cmd(REG_ALICE), *([wss_cmd(MSG_SELF)] * 10),
                           wss_while_paused(b"\x89\x80\x00\x00\x00\x00"), WSS_WRITE_ALICE, WSS_WRITE_ALICE),
    "seed-rate-limit": wss(WSS_JSON | WSS_RATE, 0x33, 0, *([wss_cmd(WHO)] * 6), wss_time(20), wss_cmd(WHO),
                           wss_cmd(QUIT), WSS_WRITE_ALICE),
    "seed-end-mid-frame": wss(WSS_LINE, 0x33, 0, wss_cmd(REG_ALICE), wss_cmd(JOIN), wss_raw(b"\x81\x8a\x01\x02"),
                              WSS_END, wss_cmd(SAY), WSS_WRITE_BOB),
    "seed-refused-subprotocol": wss(WSS_JSON, 0x33, 3, wss_cmd(REG_ALICE)),
    "seed-refused-version": wss(WSS_JSON, 0x33, 4, wss_cmd(REG_ALICE)),
    "seed-not-found": wss(WSS_JSON, 0x33, 5),
    "seed-healthz": wss(WSS_JSON, 0x33, 6, wss_raw(b"GET / HTTP/1.1\r\n\r\n")),
    "seed-no-key": wss(WSS_JSON, 0x33, 7),
    "seed-post": wss(WSS_JSON, 0x33, 8),
    "seed-head-at-bound": wss(WSS_JSON | WSS_SMALL_HEAD, 0x33, 0, wss_cmd(REG_ALICE), WSS_WRITE_ALICE),
    "seed-head-over-bound": wss(WSS_BOTH | WSS_SMALL_HEAD, 0x33, 0, wss_cmd(REG_ALICE)),
    "seed-head-partial": wss(WSS_JSON, 0x33, 9, bytes([20]) + b"GET /ws HTTP/1.1\r\nHo",
                             wss_raw(b"st: x\r\n\r\n"), WSS_END),
}


def main():
    for target, seeds in (("line_codec_fuzz", LINE_SEEDS), ("router_fuzz", ROUTER_SEEDS),
                          ("delivery_fuzz", DELIVERY_SEEDS), ("websocket_frame_fuzz", WS_SEEDS),
                          ("websocket_upgrade_fuzz", UPGRADE_SEEDS), ("cluster_format_fuzz", CLUSTER_SEEDS),
                          ("websocket_session_fuzz", WSS_SEEDS)):
        out = HERE / "corpus" / target
        out.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (out / name).write_bytes(data)
        print(f"{out}: {len(seeds)} seed(s)")


if __name__ == "__main__":
    main()
