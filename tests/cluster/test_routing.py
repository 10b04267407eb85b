"""Three tcp_chat nodes on one redis-server, real sockets (issue #14, Tests): a cross-node
message, a room with members on all three nodes (each member gets each message once),
name-taken across nodes, 100 simultaneous registrations of one name over two nodes (exactly one
winner), presence seen from another node (online, offline with last seen).

Run: python3 tests/cluster/test_routing.py build/examples/tcp_chat   (CTest: cluster/routing)
"""
import socket
import threading
import time
import unittest

import harness
from harness import Node, RedisServer


class Routing(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer()
        cls.nodes = []
        # n2 runs the router on two threads: its backplane then has a one-thread io_context of
        # its own (hiredis is not thread-safe), the other nodes share theirs
        cls.nodes = [Node(cls.redis, "n1"), Node(cls.redis, "n2", "--threads", "2"), Node(cls.redis, "n3")]

    @classmethod
    def tearDownClass(cls):
        try:
            codes = [n.stop() for n in cls.nodes]
        finally:
            for n in cls.nodes:
                if n.proc.poll() is None:
                    n.kill9()
            cls.redis.stop()
        assert codes == [0, 0, 0], codes

    def setUp(self):
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()

    def client(self, node, user=None):
        c = self.nodes[node].client(user)
        self.clients.append(c)
        return c

    def test_cross_node_message(self):
        alice = self.client(0, "alice")
        bob = self.client(1, "bob")
        alice.watch_until("bob", "online")  # n1 knows bob's session on n2
        bob.watch_until("alice", "online")
        alice.send("/msg bob hello from n1")
        bob.expect(r"^msg alice hello from n1$", skip=False)
        bob.send("/msg alice and back from n2")
        alice.expect(r"^msg bob and back from n2$", skip=False)
        # order per sender and recipient
        for i in range(200):
            alice.send(f"/msg bob m{i}")
        for i in range(200):
            bob.expect(rf"^msg alice m{i}$", skip=False)
        carol = self.client(2, "carol")
        carol.watch_until("alice", "online")
        carol.watch_until("bob", "online")
        carol.send("/who")
        carol.expect(r"^who alice bob carol$")

    def test_room_with_members_on_three_nodes(self):
        members = {"r1": self.client(0, "r1"), "r1b": self.client(0, "r1b"),
                   "r2": self.client(1, "r2"), "r3": self.client(2, "r3")}
        for user, c in members.items():
            c.send("/join hall")
            c.expect(r"^ok join hall$")
        # Each node subscribes to the room's channel when its first member joins: wait until every
        # member hears a message from every node (then all subscriptions are in place).
        for sender in ("r1", "r2", "r3"):
            for attempt in range(100):
                members[sender].send(f"/say hall sync-{sender}-{attempt}")
                others = [c for u, c in members.items() if u != sender]
                try:
                    for c in others:
                        c.expect(rf"^room hall {sender} sync-{sender}-{attempt}$", timeout=0.3)
                    break
                except AssertionError:
                    continue
            else:
                self.fail(f"the room never reached every node from {sender}")
        for sender in ("r1", "r2", "r3"):  # drain the sync messages with a marker
            members[sender].send(f"/say hall marker-{sender}")
        for u, c in members.items():  # markers of different senders come in any order
            markers = {f"room hall {x} marker-{x}" for x in ("r1", "r2", "r3") if x != u}
            while markers:
                line = c.line()
                self.assertIsNotNone(line)
                markers.discard(line)
        # Each member gets each message exactly once, in the sender's order.
        for sender in ("r1", "r2", "r3"):
            for i in range(20):
                members[sender].send(f"/say hall {sender}-{i}")
            members[sender].send(f"/say hall end-{sender}")
        for u, c in members.items():
            ends = {f"room hall {x} end-{x}" for x in ("r1", "r2", "r3") if x != u}
            texts = []
            while ends:
                line = c.line()
                self.assertIsNotNone(line)
                if line in ends:
                    ends.remove(line)
                else:
                    texts.append(line)
            for sender in ("r1", "r2", "r3"):
                if sender == u:
                    continue
                mine = [l for l in texts if l.startswith(f"room hall {sender} ")]
                self.assertEqual(mine, [f"room hall {sender} {sender}-{i}" for i in range(20)], (u, sender))
            self.assertEqual(len(texts), 20 * (2 if u != "r1b" else 3), u)
        # a leave on one node is heard on the others
        members["r3"].send("/leave hall")
        members["r3"].expect(r"^ok leave hall$")
        members["r1"].expect(r"^leave hall r3$")
        members["r2"].expect(r"^leave hall r3$")

    def test_name_taken_across_nodes(self):
        self.client(0, "dora")
        watcher = self.client(1)
        watcher.register("dwatch")
        watcher.watch_until("dora", "online")
        other = self.client(1)
        other.send("/register dora")
        other.expect(r"^err name-taken dora$", skip=False)
        third = self.client(2)
        third.send("/register DORA")
        third.expect(r"^err name-taken dora$", skip=False)

    def test_hundred_simultaneous_registrations_one_winner(self):
        socks = []
        for i in range(100):
            s = socket.create_connection(("127.0.0.1", self.nodes[i % 2].port), timeout=20)
            socks.append(s)
        bufs = [b""] * 100

        def read_until(i, marker):
            while marker not in bufs[i]:
                chunk = socks[i].recv(4096)
                if not chunk:
                    break
                bufs[i] += chunk

        for i in range(100):
            read_until(i, b"* then:")
            bufs[i] = bufs[i][bufs[i].index(b"* then:"):]
        start = threading.Barrier(100)

        def register(i):
            start.wait()
            socks[i].sendall(b"/register racer\n")

        threads = [threading.Thread(target=register, args=(i,)) for i in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        answers = []
        for i in range(100):
            read_until(i, b"racer\n")
            line = [l for l in bufs[i].split(b"\n") if b"racer" in l][0].decode()
            answers.append(line)
            socks[i].close()
        self.assertEqual(answers.count("ok register racer"), 1, answers)
        self.assertEqual(answers.count("err name-taken racer"), 99, answers)

    def test_presence_seen_from_another_node(self):
        watcher = self.client(2, "pwatch")
        watcher.send("/watch erin")
        watcher.expect(r"^ok watch erin$")
        watcher.expect(r"^presence erin offline$")
        erin = self.client(0, "erin")
        watcher.expect(r"^presence erin online$")
        erin.send("/who")  # input: the last seen is now
        erin.expect(r"^who ")
        before = int(time.time() * 1000)
        erin.send("/quit")
        erin.expect(r"^ok quit$")
        seen = int(watcher.expect(r"^presence erin offline (\d+)$").group(1))
        self.assertLessEqual(abs(seen - before), 2000)
        # a watcher on the node where erin was sees the same
        late = self.client(1, "pwatch2")
        late.send("/watch erin")
        late.expect(r"^ok watch erin$")
        late.expect(r"^presence erin offline")


if __name__ == "__main__":
    harness.main()
