"""The session policies across nodes (issue #14, item 2) and presence with several sessions
(item 4: no offline while the user has a session on another node), on real tcp_chat nodes and a
real redis-server; and the checks of tcp_chat's cluster options.

Run: python3 tests/cluster/test_policies.py build/examples/tcp_chat   (CTest: cluster/policies)
"""
import subprocess
import unittest

import harness
from harness import ClusterCase


class Policies(ClusterCase):
    def cluster(self, *args):
        return [self.node(f"n{i}", *args) for i in (1, 2, 3)]

    def test_multi_presence_once_per_transition_and_a_cluster_wide_cap(self):
        n1, n2, n3 = self.cluster("--sessions", "multi", "--max-sessions", "2")
        watcher = self.client(n3, "watcher")
        watcher.send("/watch carol")
        watcher.expect(r"^ok watch carol$")
        watcher.expect(r"^presence carol offline$")
        first = self.client(n1, "carol")
        watcher.expect(r"^presence carol online$")
        second = self.client(n2, "carol")
        third = self.client(n3)
        third.send("/register carol")  # two sessions on two other nodes: the cap is cluster-wide
        third.expect(r"^err too-many-sessions carol$")
        # a message reaches both sessions
        watcher.send("/msg carol to both")
        first.expect(r"^msg watcher to both$")
        second.expect(r"^msg watcher to both$")
        first.send("/quit")
        first.expect(r"^ok quit$")
        # one session left: room for another, once n3 has heard of the quit (each node checks its
        # own replica of the directory first, which lags by a pub/sub hop)
        for _ in range(100):
            third.send("/register carol")
            if third.expect(r"^(ok register|err too-many-sessions) carol$").group(1) == "ok register":
                break
        else:
            self.fail("n3 never saw the quit on n1")
        third.send("/quit")
        third.expect(r"^ok quit$")
        # no offline while carol has a session on n2: the next presence line is the offline
        # after the last one quits, and nothing came before it
        second.send("/quit")
        second.expect(r"^ok quit$")
        self.assertEqual(watcher.lines_until(r"^presence carol offline \d+$"), [])

    def test_replace_across_nodes(self):
        n1, n2, n3 = self.cluster("--sessions", "replace")
        watcher = self.client(n3, "watcher")
        old = self.client(n1, "bob")
        watcher.watch_until("bob", "online")
        new = self.client(n2, "bob")
        self.assertEqual(old.wait_closed(), ["bye replaced"])
        watcher.send("/msg bob after the takeover")
        new.expect(r"^msg watcher after the takeover$")
        new.send("/quit")
        new.expect(r"^ok quit$")
        # watchers saw no change at the takeover: the next presence line is the final offline
        self.assertEqual([l for l in watcher.lines_until(r"^presence bob offline \d+$")
                          if l.startswith("presence")], [])


class Options(unittest.TestCase):
    def test_cluster_options_are_checked(self):
        for args, message in [
            (["--redis", "127.0.0.1:6379"], "--redis and --node-id go together"),
            (["--node-id", "n1"], "--redis and --node-id go together"),
            (["--redis", "127.0.0.1", "--node-id", "n1"], "bad value for --redis"),
            (["--redis", "127.0.0.1:0", "--node-id", "n1"], "bad value for --redis"),
            (["--redis", "127.0.0.1:6379", "--node-id", "bad/id"], "bad value for --node-id"),
            (["--lease-ms", "3000"], "--lease-ms needs --redis"),
            (["--redis", "127.0.0.1:6379", "--node-id", "n1", "--lease-ms", "10"], "bad value for --lease-ms"),
            (["--redis", "127.0.0.1:6379", "--node-id", "n1", "--offline", "sqlite:/tmp/x.db"],
             "--offline sqlite:PATH does not go with --redis"),
            (["--redis", "127.0.0.1:6379", "--node-id", "n1", "--offline", "--inbox-bytes", "1000"],
             "--inbox-bytes does not go with --redis"),
            (["--redis", "127.0.0.1:6379", "--node-id", "n1", "--offline", "--threads", "2"],
             "--offline with --redis needs --threads 1"),
        ]:
            r = subprocess.run([harness.TCP_CHAT, "--port", "0", *args], capture_output=True, text=True,
                               timeout=harness.TIMEOUT)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(message, r.stderr, args)


if __name__ == "__main__":
    harness.main()
