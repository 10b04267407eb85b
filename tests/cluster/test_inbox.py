"""The inbox across nodes (issue #14, item 5; docs/cluster.md, "The inbox across nodes"): three
tcp_chat nodes with --offline on one redis-server with AOF (appendfsync always). A message queued
via one node is replayed when its recipient registers on another, acknowledged messages are not
replayed again, a message routed live to an ack-on session on another node stays stored until
acknowledged, a /send retried from another node is answered with its first outcome, and what was
answered "queued" survives a restart of Redis.

Run: python3 tests/cluster/test_inbox.py <path to tcp_chat> (CTest does, label cluster)."""
import time

import harness
from harness import ClusterCase


class InboxAcrossNodes(ClusterCase):
    NODE_ARGS = ("--offline",)
    REDIS_APPENDONLY = True

    def known_then_offline(self, node, user, watcher):
        """`user` registers on `node` (so the cluster knows it) and leaves; `watcher` sees it offline."""
        c = node.client(user)
        watcher.watch_until(user, "online")
        c.send("/quit")
        c.wait_closed()
        c.close()
        watcher.expect(rf"^presence {user} offline")

    def register_when_free(self, node, user):
        """A client registered as `user` on `node`, retrying while that node's replica of the
        directory still shows the user's session on another node that just left (cluster.md,
        Limits: name-taken until the release arrives; a client retries)."""
        c = node.client()
        deadline = time.monotonic() + harness.TIMEOUT
        while True:
            c.send(f"/register {user}")
            m = c.expect(rf"^(ok register|err name-taken) {user}$", skip=False)
            if m.group(1) == "ok register":
                return c
            self.assertLess(time.monotonic(), deadline, f"{user} stayed taken on {node.node_id}")
            time.sleep(0.02)

    def acked_client(self, node):
        """A client with acks on (before it registers, so the replay comes as dm)."""
        c = self.client(node)
        c.send("/ack on")
        c.expect(r"^ok ack on$")
        return c

    def test_queued_on_one_node_replayed_on_another_once(self):
        n1, n2, n3 = self.node("n1"), self.node("n2"), self.node("n3")
        alice = self.client(n1, "alice")
        self.known_then_offline(n2, "bob", alice)
        for i in range(200):
            alice.send(f"/send c{i} bob m{i}")
        for i in range(200):
            alice.expect(rf"^sent c{i} queued$", skip=False)
        bob = self.acked_client(n3)
        bob.send("/register bob")
        bob.expect(r"^ok register bob$", skip=False)
        for i in range(200):
            bob.expect(rf"^dm {i + 1} alice m{i}$", skip=False)
        bob.send("/ack 200")
        bob.send("/quit")
        self.assertEqual(bob.wait_closed(), ["ok quit"])
        alice.expect(r"^presence bob offline")
        # Back on a third node: nothing is replayed; the next message is number 201.
        again = self.acked_client(n2)
        again.send("/register bob")
        again.expect(r"^ok register bob$", skip=False)
        alice.send("/msg bob after")
        again.expect(r"^dm 201 alice after$", skip=False)

    def test_unacknowledged_live_message_from_another_node_is_replayed(self):
        n1, n2, n3 = self.node("n1"), self.node("n2"), self.node("n3")
        alice = self.client(n1, "alice")
        bob = self.acked_client(n2)
        bob.register("bob")
        alice.watch_until("bob", "online")
        alice.send("/send live bob hello")
        alice.expect(r"^sent live delivered$")
        bob.expect(r"^dm 1 alice hello$", skip=False)
        bob.close()  # gone without /ack: the message stays stored
        alice.expect(r"^presence bob offline")
        back = self.acked_client(n3)
        back.send("/register bob")
        back.expect(r"^ok register bob$", skip=False)
        back.expect(r"^dm 1 alice hello$", skip=False)

    def test_send_retried_from_another_node_is_answered_with_its_first_outcome(self):
        n1, n2 = self.node("n1"), self.node("n2")
        watcher = self.client(n2, "wendy")
        self.known_then_offline(n2, "bob", watcher)
        alice = self.client(n1, "alice")
        alice.send("/send c1 bob once")
        alice.expect(r"^sent c1 queued$")
        alice.close()
        watcher.watch_until("alice", "offline")
        retry = self.client(n2, "alice")  # the client reconnects elsewhere and retries
        retry.send("/send c1 bob once")
        retry.expect(r"^sent c1 queued$")
        bob = self.client(n1)
        bob.send("/register bob")
        bob.expect(r"^ok register bob$")
        bob.expect(r"^msg alice once$", skip=False)
        retry.watch_until("bob", "online")
        retry.send("/msg bob marker")  # the next line: nothing more was stored
        bob.expect(r"^msg alice marker$", skip=False)

    def test_send_retried_on_a_node_that_had_the_sender_before_is_not_stored_again(self):
        # n1 holds a de-duplication window of alice's from her first visit; c2 was sent on n2
        # meanwhile: back on n1, the retry of c2 must be found (found by a first-time user's
        # trial: stored and delivered twice).
        n1, n2 = self.node("n1"), self.node("n2")
        watcher = self.client(n2, "wendy")
        self.known_then_offline(n2, "bob", watcher)
        for node, cid, text in ((n1, "c1", "one"), (n2, "c2", "two"), (n1, "c2", "two")):
            alice = self.register_when_free(node, "alice")
            alice.send(f"/send {cid} bob {text}")
            alice.expect(rf"^sent {cid} queued$")
            alice.send("/quit")
            alice.wait_closed()
            alice.close()
            watcher.watch_until("alice", "offline")
            watcher.send("/unwatch alice")
            watcher.expect(r"^ok unwatch alice$")
        bob = self.client(n1)
        bob.send("/register bob")
        bob.expect(r"^ok register bob$", skip=False)
        bob.expect(r"^msg alice one$", skip=False)
        bob.expect(r"^msg alice two$", skip=False)
        watcher.expect(r"^presence bob online$")  # (watching bob since known_then_offline)
        watcher.send("/msg bob marker")  # the next line: "two" was stored once
        bob.expect(r"^msg wendy marker$", skip=False)

    def test_unknown_user_is_not_found_and_redis_restart_keeps_what_was_queued(self):
        n1, n2 = self.node("n1"), self.node("n2")
        alice = self.client(n1, "alice")
        alice.send("/msg nobody hi")
        alice.expect(r"^err user-not-found nobody$")
        self.known_then_offline(n2, "bob", alice)
        for i in range(50):
            alice.send(f"/msg bob before-{i}")
        for i in range(50):
            alice.expect(r"^ok queued bob$", skip=False)
        mark1, mark2 = n1.log_size(), n2.log_size()
        self.redis.kill9()
        alice.send("/msg bob during")  # never answered "queued" and then lost
        alice.expect(r"^err cluster-unavailable bob$")
        self.redis.start()
        for node, mark in ((n1, mark1), (n2, mark2)):
            node.wait_log(r"cluster: directory loaded", start=mark)
            node.wait_log(r"cluster inbox: connected to Redis", start=mark)  # (reconnects on its own)
        bob = self.client(n2)
        bob.send("/register bob")
        bob.expect(r"^ok register bob$", skip=False)
        for i in range(50):
            bob.expect(rf"^msg alice before-{i}$", skip=False)
        alice.send("/unwatch bob")
        alice.expect(r"^ok unwatch bob$")
        alice.watch_until("bob", "online")
        alice.send("/msg bob marker")  # the next line: "during" was not stored
        bob.expect(r"^msg alice marker$", skip=False)


class MultiSessionsAcrossNodes(ClusterCase):
    """`--sessions multi` with one user's ack-on sessions on several nodes (docs/cluster.md, "One
    user on several nodes"): one number per message cluster-wide, the same `dm <seq>` on every
    session wherever it is, an acknowledgement from any of them removing it for all, and the
    replay at a registration on any node complete and in order."""
    NODE_ARGS = ("--offline", "--sessions", "multi")
    REDIS_APPENDONLY = True

    def acked(self, node, user):
        """A client with acks on, registered as `user` (the replay, if any, follows)."""
        c = self.client(node)
        c.send("/ack on")
        c.expect(r"^ok ack on$")
        c.register(user)
        return c

    def sees_all(self, sender, node, mark):
        """Waits until `sender`'s node has applied every directory change made so far: a user
        `mark` registered on `node` now is seen online there (the changes are applied in order)."""
        self.client(node, mark)
        sender.watch_until(mark, "online")

    def ten_queued_for_bob(self):
        """Three nodes; bob registers on n1 (known from then on) and leaves; alice on n3 queues
        10 messages for him. Returns the nodes, alice and the (seq, text) pairs queued."""
        n1, n2, n3 = self.node("n1"), self.node("n2"), self.node("n3")
        alice = self.client(n3, "alice")
        first = self.client(n1, "bob")
        alice.watch_until("bob", "online")
        first.send("/quit")
        first.wait_closed()
        alice.expect(r"^presence bob offline")
        for i in range(10):
            alice.send(f"/send q{i} bob q{i}")
        for i in range(10):
            alice.expect(rf"^sent q{i} queued$", skip=False)
        return n1, n2, n3, alice, [(i + 1, f"q{i}") for i in range(10)]

    @staticmethod
    def dms(client, count):
        """The next `count` lines, each `dm <seq> <from> <text>`, as (seq, text) pairs."""
        out = []
        for _ in range(count):
            m = client.expect(r"^dm (\d+) alice (\S+)$", skip=False)
            out.append((int(m.group(1)), m.group(2)))
        return out

    def test_one_number_per_message_on_every_node_and_acks_count_for_all(self):
        n1, n2, n3 = self.node("n1"), self.node("n2"), self.node("n3")
        bob1, bob2 = self.acked(n1, "bob"), self.acked(n2, "bob")
        alice = self.client(n3, "alice")
        self.sees_all(alice, n2, "mark1")
        for i in range(100):
            alice.send(f"/send c{i} bob m{i}")
        for i in range(100):
            alice.expect(rf"^sent c{i} delivered$", skip=False)
        got1, got2 = self.dms(bob1, 100), self.dms(bob2, 100)
        # each session: each message exactly once, numbered 1..100 without a gap, in order; both
        # sessions: the same number for the same text
        self.assertEqual(got1, [(i + 1, f"m{i}") for i in range(100)])
        self.assertEqual(got2, got1)
        alice.send("/msg bob m100")  # nothing more came before it: nothing was handed twice
        self.assertEqual(self.dms(bob1, 1), [(101, "m100")])
        self.assertEqual(self.dms(bob2, 1), [(101, "m100")])
        # bob acknowledges 60 on n1; both sessions leave; back on each node, each new session
        # gets exactly 61..101, in order, once
        bob1.send("/ack 60")
        bob1.send("/ack on")  # (answered after the /ack: it was handled)
        bob1.expect(r"^ok ack on$", skip=False)
        for b in (bob1, bob2):
            b.send("/quit")
            self.assertEqual(b.wait_closed(), ["ok quit"])
        alice.watch_until("bob", "offline")
        again1 = self.acked(n1, "bob")  # (n1 first: its load follows its trim on one connection)
        again2 = self.acked(n2, "bob")
        expected = [(i + 1, f"m{i}") for i in range(60, 101)]
        self.assertEqual(self.dms(again1, 41), expected)
        self.assertEqual(self.dms(again2, 41), expected)
        self.sees_all(alice, n1, "mark2")
        alice.send("/msg bob end")
        self.assertEqual(self.dms(again1, 1), [(102, "end")])
        self.assertEqual(self.dms(again2, 1), [(102, "end")])

    def test_queued_while_offline_then_held_on_two_nodes_an_ack_on_one_is_final_everywhere(self):
        n1, n2, _, alice, queued = self.ten_queued_for_bob()
        bob1 = self.acked(n1, "bob")
        self.assertEqual(self.dms(bob1, 10), queued)
        bob2 = self.acked(n2, "bob")
        self.assertEqual(self.dms(bob2, 10), queued)
        bob2.send("/ack 10")
        bob2.send("/ack on")
        bob2.expect(r"^ok ack on$", skip=False)
        # no replay anywhere after: a second session on n1 (whose node still holds bob, with the
        # 10 in its cache) and one on n2 get nothing; the next message is 11 for every session
        late1, late2 = self.acked(n1, "bob"), self.acked(n2, "bob")
        self.sees_all(alice, n2, "mark1")
        alice.send("/msg bob next")
        for b in (late1, late2, bob1, bob2):
            self.assertEqual(self.dms(b, 1), [(11, "next")])

    def test_an_ack_on_one_node_reaches_a_session_on_another_that_turns_acks_on_later(self):
        # bob2 on n2 registered with acks off while 10 messages were stored: n2's cache has them.
        # bob acknowledges them on n1; bob2 then turns acks on: nothing is replayed (found by
        # reasoning: n2's cache kept them until its next reply from Redis).
        n1, n2, _, alice, queued = self.ten_queued_for_bob()
        bob1 = self.acked(n1, "bob")
        self.assertEqual(self.dms(bob1, 10), queued)
        bob2 = self.client(n2, "bob")  # acks off: its node loads bob's inbox, nothing replayed
        dave = self.client(n2, "dave")
        carol = self.client(n1, "carol")
        carol.watch_until("dave", "online")
        bob1.send("/ack 10")
        # carol's message to dave leaves n1 after the acknowledgement's record (one connection,
        # in order): once dave has it, n2 has handled the acknowledgement.
        carol.send("/msg dave after the ack")
        dave.expect(r"^msg carol after the ack$")
        bob2.send("/ack on")
        bob2.expect(r"^ok ack on$", skip=False)
        self.sees_all(alice, n2, "mark1")
        alice.send("/msg bob next")
        self.assertEqual(self.dms(bob2, 1), [(11, "next")])  # the first dm: nothing replayed
        self.assertEqual(self.dms(bob1, 1), [(11, "next")])

    def bob_on_and_alice(self, bob_nodes, alice_node):
        """bob with acks on at each of `bob_nodes` (one session each), then alice on
        `alice_node`, once her node has applied every registration. Returns bob's clients and
        alice."""
        bobs = [self.acked(n, "bob") for n in bob_nodes]
        alice = self.client(alice_node, "alice")
        self.sees_all(alice, bob_nodes[-1], "mark1")
        return bobs, alice

    def sends_delivered(self, alice, bobs, count):
        """alice sends `count` messages to bob with /send: each answered delivered, and each
        of bob's sessions gets them all, numbered 1..count, in order, once."""
        for i in range(count):
            alice.send(f"/send c{i} bob m{i}")
        for i in range(count):
            alice.expect(rf"^sent c{i} delivered$", skip=False)
        for b in bobs:
            self.assertEqual(self.dms(b, count), [(i + 1, f"m{i}") for i in range(count)])

    def test_sender_on_a_node_holding_one_of_the_sessions(self):
        # alice on n1, where bob also has a session, bob's other session on n2: n1 stores each
        # message and sends it to n2, which must find it stored (one number cluster-wide), not
        # store it again or refuse it (a test saw n2's session get none of them live).
        n1, n2 = self.node("n1"), self.node("n2")
        bobs, alice = self.bob_on_and_alice([n1, n2], n1)
        self.sends_delivered(alice, bobs, 100)
        alice.send("/msg bob last")  # nothing more came before it: nothing was handed twice
        for b in bobs:
            self.assertEqual(self.dms(b, 1), [(101, "last")])

    def test_send_stored_under_a_key_retried_from_another_node_is_not_stored_again(self):
        # The sending node's append-once keeps no de-duplication record: send() records the
        # outcome apart (delivered: a remote session took it), which a retry on another node finds.
        n1, n2 = self.node("n1"), self.node("n2")
        bobs, alice = self.bob_on_and_alice([n1, n2], n1)
        self.sends_delivered(alice, bobs, 1)
        watcher = self.client(n2, "wendy")
        alice.send("/quit")
        alice.wait_closed()
        watcher.watch_until("alice", "offline")
        retry = self.client(n2, "alice")  # reconnects on the other node and retries c0
        retry.send("/send c0 bob m0")
        retry.expect(r"^sent c0 delivered$", skip=False)
        retry.send("/msg bob end")  # the next one on both: c0 was not stored or handed again
        for b in bobs:
            self.assertEqual(self.dms(b, 1), [(2, "end")])

    def test_two_sessions_on_one_other_node_are_not_keyed(self):
        # The message key is for a user held on several other nodes; two sessions of bob on one
        # other node get each message in one batch to that node, which stores it once itself: no
        # append-once record in Redis (sb:inboxonce:bob), the same numbers on both sessions.
        n1, n3 = self.node("n1"), self.node("n3")
        bobs, alice = self.bob_on_and_alice([n1, n1], n3)
        self.sends_delivered(alice, bobs, 20)
        r = self.redis.client()
        self.assertEqual(r.call("EXISTS", "sb:inboxonce:bob"), 0)
        r.close()


class ConfirmedSends(ClusterCase):
    """A /send to a user whose sessions are all on other nodes is answered `delivered` only when
    the receiving node confirms that it handed it (stored first for an ack-on session), else with
    that node's error, or `cluster-unavailable` when no confirmation came within the lease
    (docs/cluster.md, "Confirmed sends")."""
    LEASE_MS = 1000
    NODE_ARGS = ("--offline", "--lease-ms", str(LEASE_MS))
    REDIS_APPENDONLY = True

    def acked_bob(self, node):
        bob = self.client(node)
        bob.send("/ack on")
        bob.expect(r"^ok ack on$")
        bob.register("bob")
        return bob

    def confirmed_once(self, alice_node, bob_node, cid, text):
        """alice on `alice_node`, bob (acks on) on `bob_node`; one /send confirmed and handed."""
        alice = self.client(alice_node, "alice")
        bob = self.acked_bob(bob_node)
        alice.watch_until("bob", "online")
        alice.send(f"/send {cid} bob {text}")
        alice.expect(rf"^sent {cid} delivered$")
        bob.expect(rf"^dm 1 alice {text}$", skip=False)
        return alice, bob

    def test_send_to_a_frozen_node_is_not_answered_delivered(self):
        n1, n2, n3 = self.node("n1"), self.node("n2"), self.node("n3")
        alice, _ = self.confirmed_once(n1, n2, "c0", "before")
        n2.proc.send_signal(19)  # SIGSTOP: the record reaches Redis, not the frozen node
        try:
            t0 = time.monotonic()
            alice.send("/send c1 bob hi")
            # Not answered while nobody handed it (before the fix: `sent c1 delivered` at once,
            # and the message was lost with the node)
            alice.expect(r"^sent c1 cluster-unavailable$", timeout=self.LEASE_MS / 1000 * 2 + 5)
            self.assertGreater(time.monotonic() - t0, self.LEASE_MS / 1000 * 0.9)
        finally:
            n2.kill9()
            self.nodes.remove(n2)
        self.client(n1, "wendy").watch_until("bob", "offline")
        alice.send("/send c1 bob hi")  # the client retries: stored now, replayed on registration
        alice.expect(r"^sent c1 queued$")
        again = self.acked_bob(n3)
        again.expect(r"^dm 1 alice before$", skip=False)
        again.expect(r"^dm 2 alice hi$", skip=False)
        alice.expect(r"^presence bob online$")
        alice.send("/send c2 bob marker")
        alice.expect(r"^sent c2 delivered$")
        again.expect(r"^dm 3 alice marker$", skip=False)  # nothing else came in between

    def test_send_refused_by_the_receiving_node_is_answered_with_its_error(self):
        n1, n2 = self.node("n1", "--inbox-max", "1"), self.node("n2", "--inbox-max", "1")
        alice, bob = self.confirmed_once(n1, n2, "c1", "one")
        # bob does not acknowledge: his inbox (1 message) is full. On one node the sender gets
        # `inbox-full`; across nodes too (before the fix: `sent c2 delivered`, and n2 dropped it).
        alice.send("/send c2 bob two")
        alice.expect(r"^sent c2 inbox-full$")
        bob.send("/ack 1")
        alice.send("/send c2 bob two")  # nothing was recorded for c2: the retry is sent
        alice.expect(r"^sent c2 delivered$")
        bob.expect(r"^dm 2 alice two$", skip=False)

    def test_send_to_two_ack_on_sessions_on_one_node_waits_for_the_store(self):
        # bob holds two ack-on sessions on n2 (--sessions multi): n1 writes one record per
        # session, each asking for a confirmation. Only the record of bob's first ack-on session
        # stores the message; the other one was answered `ok` at once (nothing handed), so the
        # sender got `delivered` for a message that n2's store then refused (found by h16c).
        args = ("--sessions", "multi", "--inbox-max", "1")
        n1, n2 = self.node("n1", *args), self.node("n2", *args)
        alice, bob = self.confirmed_once(n1, n2, "c1", "one")
        bob2 = self.acked_bob(n2)
        bob2.expect(r"^dm 1 alice one$", skip=False)  # the replay at its registration
        self.client(n2, "mark")
        alice.watch_until("mark", "online")  # n1 holds both of bob's sessions now
        # bob's inbox (1 message, unacknowledged) is full: nobody can be handed c2
        alice.send("/send c2 bob two")
        alice.expect(r"^sent c2 inbox-full$")
        bob.send("/ack 1")
        alice.send("/send c2 bob two")
        alice.expect(r"^sent c2 delivered$")
        bob.expect(r"^dm 2 alice two$")
        bob2.expect(r"^dm 2 alice two$")


if __name__ == "__main__":
    harness.main()
