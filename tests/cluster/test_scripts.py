"""The directory's Lua scripts (include/switchboard/redis/directory_scripts.hpp) against a real
redis-server: claim under each policy with the lease check and the stale-entry cleanup, release,
heartbeat (lost / reset / sweep of lapsed nodes in slices), start of a new incarnation, snapshot
with the dirseq, re-assert after Redis lost its data, and a TTL on every key.

Run: python3 tests/cluster/test_scripts.py   (CTest: cluster/scripts)
"""
import sys
import unittest

from redis_util import RedisServer, scripts

P = "sb:"
LEASE = 3000
TTL = 86400000
S = scripts()


class Scripts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = RedisServer()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def setUp(self):
        self.r = self.server.client()
        self.r.call("FLUSHALL")
        self.sub = self.server.client()
        self.sub.call("SUBSCRIBE", P + "dir")

    def tearDown(self):
        self.r.close()
        self.sub.close()

    def ev(self, name, *args):
        return self.r.call("EVAL", S[name], 0, P, *args)

    def published(self):
        """The dir messages published so far (read after a PING round trip on the other link)."""
        out = []
        self.sub.sock.settimeout(0.2)
        try:
            while True:
                m = self.sub.read()
                out.append(m[2])
        except (TimeoutError, OSError):
            pass
        self.sub.sock.settimeout(10)
        return out

    def start(self, node, inc, epoch="e1"):
        return self.ev("start", node, inc, LEASE, TTL, epoch, 1000, 100)

    def claim(self, node, inc, name, sid, policy="exclusive", max_sessions=8):
        return self.ev("claim", node, inc, name, sid, policy, max_sessions, TTL)

    def beat(self, node, inc, epoch="e1", now=2000, cursor=0, slice_=100):
        return self.ev("heartbeat", node, inc, LEASE, TTL, epoch, now, cursor, slice_)

    def test_exclusive_claim_one_winner_and_lease_check(self):
        self.assertEqual(self.start("a", "1")[:2], ["ok", "e1"])
        self.start("b", "2")
        self.assertEqual(self.claim("a", "1", "bob", 7), ["ok", 1])
        self.assertEqual(self.claim("b", "2", "bob", 9), ["name_taken", 0])
        self.assertEqual(self.claim("a", "1", "bob", 7), ["ok", 0])  # idempotent
        self.assertEqual(self.claim("a", "999", "carol", 1), ["lease", 0])  # not a's incarnation
        self.assertEqual(self.r.call("HGETALL", P + "user:bob"), ["a/7", "1"])
        self.assertEqual(self.r.call("SMEMBERS", P + "nodeusers:a"), ["bob"])
        self.assertEqual(self.published(), ["claim 1 bob a 7 1"])

    def test_stale_entry_of_lapsed_node_is_cleaned_by_claim(self):
        self.start("a", "1")
        self.start("b", "2")
        self.claim("a", "1", "bob", 7)
        self.r.call("DEL", P + "node:a")  # a's lease lapsed (frozen or dead), not swept yet
        self.assertEqual(self.claim("b", "2", "bob", 9), ["ok", 3])
        self.assertEqual(self.r.call("HGETALL", P + "user:bob"), ["b/9", "2"])
        self.assertEqual(self.r.call("SMEMBERS", P + "nodeusers:a"), [])
        self.assertEqual(self.published(), ["claim 1 bob a 7 1", "release 2 bob a 7 -1", "claim 3 bob b 9 2"])
        # the frozen node wakes up: its claims and releases change nothing
        self.assertEqual(self.claim("a", "1", "bob", 8, "replace"), ["lease", 0])
        self.assertEqual(self.ev("release", "a", "1", "bob", 7, 5), 0)
        self.assertEqual(self.r.call("HGETALL", P + "user:bob"), ["b/9", "2"])

    def test_replace_lists_replaced_entries(self):
        self.start("a", "1")
        self.start("b", "2")
        self.claim("a", "1", "bob", 7, "replace")
        self.assertEqual(self.claim("b", "2", "bob", 9, "replace"), ["ok", 2])
        self.assertEqual(self.r.call("HGETALL", P + "user:bob"), ["b/9", "2"])
        self.assertEqual(self.r.call("SMEMBERS", P + "nodeusers:a"), [])
        self.assertEqual(self.published(), ["claim 1 bob a 7 1", "claim 2 bob b 9 2 a/7"])
        self.assertEqual(self.ev("release", "a", "1", "bob", 7, 5), 0)  # a's late release: no-op

    def test_multi_cap_across_nodes(self):
        self.start("a", "1")
        self.start("b", "2")
        self.assertEqual(self.claim("a", "1", "bob", 1, "multi", 2)[0], "ok")
        self.assertEqual(self.claim("b", "2", "bob", 2, "multi", 2)[0], "ok")
        self.assertEqual(self.claim("b", "2", "bob", 3, "multi", 2), ["too_many_sessions", 0])
        self.assertEqual(self.ev("release", "b", "2", "bob", 2, 1234), 1)
        self.assertEqual(self.claim("b", "2", "bob", 3, "multi", 2)[0], "ok")
        self.assertIn("release 3 bob b 2 1234", self.published())
        # a node with two sessions of one name stays in nodeusers until its last one goes
        self.assertEqual(self.claim("a", "1", "carol", 1, "multi", 8)[0], "ok")
        self.assertEqual(self.claim("a", "1", "carol", 2, "multi", 8)[0], "ok")
        self.ev("release", "a", "1", "carol", 1, 5)
        self.assertIn("carol", self.r.call("SMEMBERS", P + "nodeusers:a"))
        self.ev("release", "a", "1", "carol", 2, 5)
        self.assertNotIn("carol", self.r.call("SMEMBERS", P + "nodeusers:a"))

    def test_heartbeat_renews_detects_loss_and_reset(self):
        self.start("a", "1")
        self.r.call("PEXPIRE", P + "node:a", 100)
        self.assertEqual(self.beat("a", "1")[0], "ok")
        self.assertGreater(self.r.call("PTTL", P + "node:a"), 2000)
        self.r.call("SET", P + "node:a", "other")
        self.assertEqual(self.beat("a", "1"), ["lost", "taken"])
        self.assertEqual(self.r.call("GET", P + "node:a"), "other")  # not overwritten
        self.r.call("DEL", P + "node:a")
        self.assertEqual(self.beat("a", "1"), ["lost", "lapsed"])
        self.assertIsNone(self.r.call("GET", P + "node:a"))  # not re-created
        self.r.call("FLUSHALL")
        self.assertEqual(self.beat("a", "1"), ["reset", ""])

    def test_sweep_buries_a_lapsed_node_once_then_deletes_in_slices(self):
        self.start("a", "1")
        self.start("b", "2")
        for i in range(5):
            self.claim("a", "1", f"u{i}", i)
        self.claim("b", "2", "zed", 1)
        self.published()
        self.r.call("DEL", P + "node:a")  # a died
        self.assertEqual(self.beat("b", "2", now=4242, slice_=2)[0], "ok")
        self.assertEqual(self.published(), ["down 7 a 1 1000"])  # a's last renewal: its users' last seen
        self.assertEqual(self.r.call("HGETALL", P + "nodes"), ["b", "2"])
        self.assertEqual(self.ev("snapshot"), [7, "e1", "zed", "b", "1", "2"])  # a's entries no longer count
        self.beat("b", "2", slice_=2)  # a second sweeper finds nothing to bury
        self.assertEqual(self.published(), [])
        for _ in range(3):
            self.beat("b", "2", slice_=2)
        keys = sorted(self.r.call("KEYS", P + "*"))
        self.assertEqual(keys, sorted([P + k for k in ["nodes", "nodeseen", "node:b", "epoch", "dirseq", "user:zed",
                                                        "nodeusers:b"]]))
        self.assertEqual(self.r.call("HGETALL", P + "nodeseen"), ["b", "2000"])  # b's last beat
        self.assertEqual(self.claim("b", "2", "u3", 5)[0], "ok")  # the names are free

    def test_start_of_a_new_incarnation_buries_the_previous_one(self):
        self.start("a", "1")
        self.start("b", "2")
        self.claim("a", "1", "bob", 7)
        self.published()
        self.assertEqual(self.start("a", "3")[0], "ok")  # a restarted (kill -9), within the lease
        self.assertEqual(self.published(), ["down 2 a 1 1000"])
        self.assertEqual(self.ev("snapshot"), [2, "e1"])
        self.assertEqual(self.r.call("EXISTS", P + "user:bob"), 0)  # deleted at once
        self.assertEqual(self.r.call("KEYS", P + "gone*"), [])
        self.assertEqual(self.claim("b", "2", "bob", 9)[0], "ok")
        self.assertEqual(self.beat("a", "1"), ["lost", "taken"])  # the old one, if still alive
        self.assertEqual(self.claim("a", "3", "bob", 1), ["name_taken", 0])

    def test_snapshot_has_every_live_entry_and_the_seq(self):
        self.start("a", "1")
        self.start("b", "2")
        self.claim("a", "1", "bob", 7)
        self.claim("b", "2", "bob", 1, "multi")
        self.claim("b", "2", "carol", 2)
        snap = self.ev("snapshot")
        self.assertEqual(snap[:2], [3, "e1"])
        entries = sorted(tuple(snap[i:i + 4]) for i in range(2, len(snap), 4))
        self.assertEqual(entries, [("bob", "a", "7", "1"), ("bob", "b", "1", "2"), ("carol", "b", "2", "2")])

    def test_reassert_after_redis_lost_its_data(self):
        self.start("a", "1")
        self.start("b", "2")
        self.claim("a", "1", "bob", 7)
        self.claim("a", "1", "carol", 8)
        self.r.call("FLUSHALL")  # a Redis restart without persistence
        self.assertEqual(self.start("b", "2", epoch="e2")[1], "e2")  # b got back first ...
        self.assertEqual(self.claim("b", "2", "carol", 3)[0], "ok")  # ... and carol registered there
        self.assertEqual(self.beat("a", "1"), ["reset", "e2"])
        self.published()
        r = self.ev("reassert", "a", "1", LEASE, TTL, "e3", "exclusive", 8, 5000, "bob", 7, "carol", 8)
        self.assertEqual(r, ["ok", "e2", "carol", "8"])  # carol is lost: close that session
        self.assertEqual(self.beat("a", "1", epoch="e2")[0], "ok")
        self.assertEqual(self.r.call("HGETALL", P + "user:bob"), ["a/7", "1"])
        self.assertEqual(self.published(), ["claim 2 bob a 7 1"])

    def test_reassert_releases_entries_the_node_does_not_hold(self):
        self.start("a", "1")
        self.claim("a", "1", "bob", 7)  # its answer was lost: the session was refused locally
        self.claim("a", "1", "carol", 8)
        self.published()
        r = self.ev("reassert", "a", "1", LEASE, TTL, "x", "exclusive", 8, 5000, "carol", 8)
        self.assertEqual(r, ["ok", "e1"])
        self.assertEqual(self.published(), ["release 3 bob a 7 5000"])
        self.assertEqual(self.r.call("EXISTS", P + "user:bob"), 0)
        self.assertEqual(self.r.call("SMEMBERS", P + "nodeusers:a"), ["carol"])
        # another incarnation holds the id: nothing is done
        self.start("a", "2")
        self.assertEqual(self.ev("reassert", "a", "1", LEASE, TTL, "x", "exclusive", 8, 5000, "carol", 8)[0], "lost")

    def test_leave_buries_the_node_at_once(self):
        self.start("a", "1")
        self.start("b", "2")
        self.claim("a", "1", "bob", 7)
        self.published()
        self.assertEqual(self.ev("leave", "a", "1", 777, TTL), 1)
        self.assertEqual(self.published(), ["down 2 a 1 777"])
        self.assertEqual(self.claim("b", "2", "bob", 1)[0], "ok")
        self.assertEqual(self.ev("leave", "a", "1", 777, TTL), 0)

    def test_every_key_has_a_ttl(self):
        self.start("a", "1")
        self.start("b", "2")
        self.claim("a", "1", "bob", 7)
        self.claim("b", "2", "carol", 7)
        self.r.call("DEL", P + "node:a")
        self.beat("b", "2", slice_=0)  # buries a; its entries wait for a slice
        keys = self.r.call("KEYS", "*")
        self.assertIn(P + "gone:a/1", keys)
        for k in keys:
            self.assertGreater(self.r.call("PTTL", k), 0, k)

    def test_hundred_simultaneous_claims_one_winner(self):
        self.start("a", "1")
        self.start("b", "2")
        clients = [self.server.client() for _ in range(100)]
        for i, c in enumerate(clients):
            node, inc = ("a", "1") if i % 2 else ("b", "2")
            c.send("EVAL", S["claim"], 0, P, node, inc, "bob", i, "exclusive", 8, TTL)
        results = [c.read()[0] for c in clients]
        for c in clients:
            c.close()
        self.assertEqual(results.count("ok"), 1)
        self.assertEqual(results.count("name_taken"), 99)


if __name__ == "__main__":
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        sys.argv.pop(1)  # the tcp_chat path CTest passes to every cluster test; not needed here
    unittest.main(verbosity=2)
