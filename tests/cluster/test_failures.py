"""Failure modes of the Redis backplane with real processes (issue #14, Tests): kill -9 of a node
(its users offline on the other nodes within the lease and one heartbeat, names free); a node
restarted with the same id (no stale entries, at once); a claim that timed out on a frozen
Redis and ran late is undone; Redis down when a node starts; a node stopped with SIGTERM
leaves at once; Redis killed and restarted (a clear
error during the outage, then cross-node deliveries resume and names are re-asserted); the
subscriber's connection killed (resubscribed, resynchronised); a node frozen (SIGSTOP) past its
lease closes, on SIGCONT, the sessions whose names it lost, and joins again.

Run: python3 tests/cluster/test_failures.py build/examples/tcp_chat   (CTest: cluster/failures)
"""
import time

import harness
from harness import ClusterCase

LEASE_MS = 1000
# A node's lease lapses at most one lease after its last renewal, and the next heartbeat of
# another node (every lease/3) sweeps it; plus scheduling slack on a loaded machine.
OFFLINE_BOUND = (LEASE_MS + LEASE_MS / 3) / 1000 + 1.0


class Failures(ClusterCase):
    NODE_ARGS = ("--lease-ms", str(LEASE_MS))

    def until_room_reaches(self, sender, name, member, room="hall"):
        """`sender` (user `name`) says something in `room` until `member`, on another node, hears
        it (a node subscribes to a room's channel some time after its first member joined)."""
        for i in range(100):
            sender.send(f"/say {room} sync-{i}")
            try:
                member.expect(rf"^room {room} {name} sync-{i}$", timeout=0.3)
                return
            except AssertionError:
                continue
        self.fail(f"room events from {name} never reached the other node")

    def test_kill9_of_a_node_users_offline_within_the_lease(self):
        n1, n2 = self.node("n1"), self.node("n2")
        self.client(n1, "dave")
        watcher = self.client(n2, "dwatch")
        watcher.watch_until("dave", "online")
        t0 = time.monotonic()
        killed_ms = time.time() * 1000
        n1.kill9()
        seen = int(watcher.expect(r"^presence dave offline (\d+)$", timeout=OFFLINE_BOUND + 5).group(1))
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, OFFLINE_BOUND, "offline later than the lease and one heartbeat")
        # Last seen: the node's last lease renewal, at most a heartbeat (lease / 3) before the
        # kill, not the time the others noticed (up to a lease and a heartbeat after it).
        self.assertLessEqual(seen, killed_ms + 50)
        self.assertGreater(seen, killed_ms - LEASE_MS / 3 - 500)
        self.client(n2, "dave")  # the name is free
        self.nodes.remove(n1)

    def test_kill9_of_a_node_its_room_members_leave_on_the_others(self):
        # As when a session closes on one node: the rooms hear `leave` for each member the killed
        # node had, then watchers hear `offline` (before the fix: no leave, ever)
        n1, n2 = self.node("n1"), self.node("n2")
        bob = self.client(n2, "bob")
        bob.send("/join hall")
        bob.expect(r"^ok join hall$")
        carol = self.client(n1, "carol")
        carol.send("/join hall")
        carol.expect(r"^ok join hall$")
        self.until_room_reaches(carol, "carol", bob)  # n2's subscription to the room is in place
        alice = self.client(n1, "alice")
        alice.send("/join hall")
        alice.expect(r"^ok join hall$")
        bob.expect(r"^join hall alice$")
        bob.watch_until("alice", "online")
        n1.kill9()
        self.nodes.remove(n1)
        lines = []
        while len([l for l in lines if l.startswith("leave hall ")]) < 2 or "presence alice offline" not in \
                " ".join(lines):
            line = bob.line(timeout=OFFLINE_BOUND + 5)
            self.assertIsNotNone(line)
            lines.append(line)
        leaves = [l for l in lines if l.startswith("leave hall ")]
        self.assertEqual(sorted(leaves), ["leave hall alice", "leave hall carol"])
        offline = next(i for i, l in enumerate(lines) if l.startswith("presence alice offline"))
        self.assertLess(lines.index("leave hall alice"), offline)

    def test_stopped_node_leaves_at_once(self):
        # SIGTERM: the leave script buries the node, so its users are offline on the other nodes
        # at once, not a (here 10 s) lease later
        n1 = self.node("n1", "--lease-ms", "10000")
        n2 = self.node("n2", "--lease-ms", "10000")
        self.client(n1, "hal")
        watcher = self.client(n2, "hwatch")
        watcher.watch_until("hal", "online")
        t0 = time.monotonic()
        self.assertEqual(n1.stop(), 0)
        watcher.expect(r"^presence hal offline \d+$", timeout=5)
        self.assertLess(time.monotonic() - t0, 3)
        self.client(n2, "hal")

    def test_restarted_node_with_the_same_id_leaves_no_stale_entry(self):
        n1, n2 = self.node("n1"), self.node("n2")
        self.client(n1, "erin")
        watcher = self.client(n2, "ewatch")
        watcher.watch_until("erin", "online")
        n1.kill9()
        t0 = time.monotonic()
        n1.start()  # at once, well within the old incarnation's lease
        watcher.expect(r"^presence erin offline \d+$", timeout=5)
        # the new incarnation buried the old one on start, without waiting for its lease
        self.assertLess(time.monotonic() - t0, LEASE_MS / 1000)
        r = self.redis.client()
        self.assertEqual(r.call("HGETALL", "sb:user:erin"), [])
        r.close()
        self.client(n1, "erin")  # free, on the restarted node itself
        watcher.expect(r"^presence erin online$")

    def test_second_process_with_the_same_id_takes_it_and_the_first_stays_out(self):
        # A second process started by mistake with a running node's id: the later one buries the
        # earlier, which finds its node key held by another incarnation and stays out (it must
        # not join again, which would bury the later one in turn: a flapping pair).
        first, other = self.node("n1"), self.node("n2")
        ivy = self.client(first, "ivy")
        watcher = self.client(other, "iwatch")
        watcher.watch_until("ivy", "online")
        mark = first.log_size()
        second = self.node("n1")
        watcher.expect(r"^presence ivy offline \d+$", timeout=5)
        first.wait_log(r"lease lost \(another process runs as this node id\)", start=mark)
        ivy.expect(r"^bye cluster-unavailable$")  # told why before the connection closes
        ivy.wait_closed(timeout=5)
        self.client(second, "ivy")  # the name is free, and held on the later process
        watcher.expect(r"^presence ivy online$")
        r = self.redis.client()
        seq = r.call("GET", "sb:dirseq")
        # Three leases: no flapping (each takeover would publish a change and close ivy).
        time.sleep(3 * LEASE_MS / 1000)
        self.assertEqual(r.call("GET", "sb:dirseq"), seq)
        r.close()
        rejoined = [l for l in first.lines[mark:] if l and "joined the cluster" in l]
        self.assertEqual(rejoined, [], "the earlier process joined again")
        late = self.client(first)
        late.send("/register ivy2")
        late.expect(r"^err cluster-unavailable ivy2$")

    def test_redis_restart_deliveries_resume(self):
        n1, n2, n3 = self.node("n1"), self.node("n2", "--threads", "2"), self.node("n3")
        alice = self.client(n1, "alice")
        amy = self.client(n1, "amy")
        bob = self.client(n2, "bob")
        alice.watch_until("bob", "online")
        alice.send("/msg bob before")
        bob.expect(r"^msg alice before$")
        mark1, mark2 = n1.log_size(), n2.log_size()
        self.redis.kill9()
        # during the outage: a clear error, never a silent loss
        alice.send("/msg bob during")
        alice.expect(r"^err cluster-unavailable bob$")
        newcomer = self.client(n1)
        newcomer.send("/register nora")
        newcomer.expect(r"^err cluster-unavailable nora$")
        # local routing keeps working
        amy.send("/msg alice local")
        alice.expect(r"^msg amy local$")
        self.redis.start()
        n1.wait_log(r"cluster: directory loaded", start=mark1)
        n2.wait_log(r"cluster: directory loaded", start=mark2)
        deadline = time.monotonic() + 10
        i = 0
        while True:  # until n1 holds bob's proxy again (n2 re-asserted it)
            alice.send(f"/msg bob after-{i}")
            try:
                bob.expect(rf"^msg alice after-{i}$", timeout=0.3)
                break
            except AssertionError:
                self.assertLess(time.monotonic(), deadline, "deliveries did not resume")
                i += 1
        for j in range(50):
            alice.send(f"/msg bob resumed-{j}")
        for j in range(50):
            bob.expect(rf"^msg alice resumed-{j}$")
        bob.send("/msg alice back")
        alice.expect(r"^msg bob back$")
        # names were re-asserted: nobody else may take them
        other = self.client(n3)
        other.send("/register bob")
        other.expect(r"^err name-taken bob$")
        r = self.redis.client()
        self.assertEqual(len(r.call("HGETALL", "sb:user:alice")), 2)
        r.close()

    def test_redis_restart_shows_no_one_offline_who_stayed(self):
        # n1 loads the snapshot of the restarted (empty) Redis before n2 re-asserted bob (n2 is
        # frozen meanwhile): bob must not be announced offline on n1, only confirmed later.
        n1, n2 = self.node("n1"), self.node("n2")
        alice = self.client(n1, "alice")
        bob = self.client(n2, "bob")
        alice.watch_until("bob", "online")
        mark = n1.log_size()
        self.redis.kill9()
        n2.proc.send_signal(19)  # SIGSTOP
        try:
            self.redis.start()
            n1.wait_log(r"cluster: directory loaded", start=mark)
        finally:
            n2.proc.send_signal(18)  # SIGCONT
        deadline = time.monotonic() + 10
        i = 0
        while True:  # until n2 re-asserted bob and n1 routes to him again
            alice.send(f"/msg bob again-{i}")
            try:
                bob.expect(rf"^msg alice again-{i}$", timeout=0.3)
                break
            except AssertionError:
                self.assertLess(time.monotonic() - deadline, 0, "deliveries did not resume")
                i += 1
        alice.send("/who")
        seen = alice.lines_until(r"^who ")
        self.assertNotIn("presence bob offline", " ".join(seen))

    def test_claim_answered_unavailable_is_undone_when_it_ran_late(self):
        # A frozen Redis: the registration's claim times out (the client's 2 s command timeout)
        # and is answered cluster-unavailable, but the script may run when Redis wakes up. The
        # re-assert after the reconnect must release that entry, or the name stays taken by a
        # session that never got it. The lease (5 s) outlives the freeze: nobody loses it.
        n1 = self.node("n1", "--lease-ms", "5000")
        n2 = self.node("n2", "--lease-ms", "5000")
        alice = self.client(n1, "alice")
        self.client(n2, "awatch").watch_until("alice", "online")
        mark = n1.log_size()
        self.redis.proc.send_signal(19)  # SIGSTOP
        try:
            late = self.client(n1)
            late.send("/register zoe")
            late.expect(r"^err cluster-unavailable zoe$", timeout=6)
        finally:
            self.redis.proc.send_signal(18)  # SIGCONT
        n1.wait_log(r"re-asserted", start=mark)
        r = self.redis.client()
        self.assertEqual(r.call("HGETALL", "sb:user:zoe"), [])
        r.close()
        self.client(n2, "zoe")
        self.client(n2, "bwatch").watch_until("alice", "online")
        alice.send("/who")
        alice.expect(r"^who ")

    def test_redis_down_at_start_then_up(self):
        self.redis.kill9()
        n1 = self.node("n1", joined=False)  # it listens, and keeps trying to reach Redis
        early = self.client(n1)
        early.send("/register ivy")
        early.expect(r"^err cluster-unavailable ivy$")
        mark = n1.log_size()
        self.redis.start()
        n1.wait_log(r"cluster: directory loaded", start=mark)
        early.register("ivy")
        n2 = self.node("n2")
        self.client(n2, "iwatch").watch_until("ivy", "online")

    def test_killed_pubsub_connection_resubscribes(self):
        n1, n2 = self.node("n1"), self.node("n2")
        alice = self.client(n1, "alice")
        bob = self.client(n2, "bob")
        alice.watch_until("bob", "online")
        alice.send("/join hall")
        bob.send("/join hall")
        mark1, mark2 = n1.log_size(), n2.log_size()
        r = self.redis.client()
        self.assertGreaterEqual(r.call("CLIENT", "KILL", "TYPE", "pubsub"), 2)
        r.close()
        n1.wait_log(r"cluster: directory loaded", start=mark1)
        n2.wait_log(r"cluster: directory loaded", start=mark2)
        carol = self.client(n2, "carol")  # a change made after the kill reaches n1
        alice.watch_until("carol", "online")
        alice.send("/msg bob direct")
        bob.expect(r"^msg alice direct$")
        self.until_room_reaches(alice, "alice", bob)  # the room channel was subscribed again too
        carol.close()

    def test_frozen_node_gives_up_lost_names_on_sigcont(self):
        n1, n2 = self.node("n1", "--threads", "2"), self.node("n2")
        frank = self.client(n1, "frank")
        gina = self.client(n1, "gina")  # her name is swept but not taken by anyone
        watcher = self.client(n2, "fwatch")
        watcher.watch_until("frank", "online")
        watcher.watch_until("gina", "online")
        n1.proc.send_signal(19)  # SIGSTOP
        try:
            watcher.expect(r"^presence frank offline \d+$", timeout=OFFLINE_BOUND + 5)
            self.client(n2, "frank")  # the directory gave the name to a session on n2
            watcher.expect(r"^presence frank online$")
            mark = n1.log_size()
        finally:
            n1.proc.send_signal(18)  # SIGCONT
        # n1 checks its lease before acting: its sessions are closed, not left holding names the
        # directory no longer gives them (frank's would also go as the directory gave his name to
        # n2; gina's only through the lease check)
        frank.wait_closed(timeout=5)
        gina.expect(r"^bye cluster-unavailable$")  # told why (her name was only swept)
        gina.wait_closed(timeout=5)
        n1.wait_log(r"lease lost", start=mark)
        n1.wait_log(r"joined the cluster", start=mark)
        n1.wait_log(r"directory loaded", start=mark)
        again = self.client(n1)
        again.send("/register frank")
        again.expect(r"^err name-taken frank$")
        self.client(n1, "gina")  # n1 serves again, as a new incarnation
        self.client(n2, "fwatch2").watch_until("gina", "online")


if __name__ == "__main__":
    harness.main()
