"""The end of one secondary's connection leaves the other connections alone."""

import json
import time

import harness
from harness import PRIMARY, peer_state

OFFLINE_LIMIT_S = 2.0

# Time to watch the survivors: longer than failure-timeout (1 s), so a
# dropped connection or missed heartbeats would show up.
WATCH_S = 3.0


class SecondaryKillTest(harness.ClusterTestCase):
    def setUp(self):
        self.cluster = self.make_cluster(nodes=3)
        self.cluster.start_all()
        self.cluster.wait_until_joined(timeout_s=10)
        self.marks = {node: self.cluster.log_mark(node) for node in self.cluster.node_names()}

    def assert_online_for(self, observer, nodes, seconds):
        """Poll observer's status for `seconds` and fail at the first sample
        that shows one of `nodes` not online."""
        cluster = self.cluster
        end = time.monotonic() + seconds
        samples = 0
        while time.monotonic() < end:
            status = cluster.status(observer)
            samples += 1
            for node in nodes:
                context = cluster.explain(f"sample {samples} of {observer}'s status: {status}")
                self.assertEqual(peer_state(status, node), "online", context)
            time.sleep(harness.POLL_INTERVAL_S)

    def test_kill_one_secondary(self):
        cluster = self.cluster
        killed_at = time.monotonic()
        cluster.kill("mx3")

        cluster.wait_for_log(PRIMARY, r"Warning membership secondary mx3 offline: ", OFFLINE_LIMIT_S,
                             after=self.marks[PRIMARY], since=killed_at)
        cluster.wait_for_peer(PRIMARY, "mx3", "offline", OFFLINE_LIMIT_S, since=killed_at)

        self.assert_online_for(PRIMARY, ["mx2"], WATCH_S)
        status = cluster.status("mx2")
        context = cluster.explain(f"status of mx2: {status}")
        self.assertEqual(status["join_state"], "joined", context)
        self.assertEqual(peer_state(status, PRIMARY), "online", context)
        line = cluster.find_log(PRIMARY, r"secondary mx2 offline", self.marks[PRIMARY])
        self.assertIsNone(line, cluster.explain(f"primary dropped mx2: {line}", [PRIMARY]))
        line = cluster.find_log("mx2", r"primary .* offline", self.marks["mx2"])
        self.assertIsNone(line, cluster.explain(f"mx2 lost the primary: {line}", ["mx2"]))

    def test_repeated_status_calls(self):
        # Each mailclusterctl run opens and closes a TLS connection to the
        # primary. An earlier build dropped the secondaries' connections
        # whenever such a connection closed.
        cluster = self.cluster
        for run in range(1, 6):
            result = cluster.ctl(PRIMARY, "status", "--json")
            context = cluster.explain(f"status run {run}: exit {result.returncode}\n{result.stdout}{result.stderr}")
            self.assertEqual(result.returncode, 0, context)
            status = json.loads(result.stdout)
            for node in ["mx2", "mx3"]:
                self.assertEqual(peer_state(status, node), "online", context)

        self.assert_online_for(PRIMARY, ["mx2", "mx3"], WATCH_S)
        for node in ["mx2", "mx3"]:
            line = cluster.find_log(PRIMARY, rf"secondary {node} offline", self.marks[PRIMARY])
            self.assertIsNone(line, cluster.explain(f"primary dropped {node}: {line}", [PRIMARY]))
            line = cluster.find_log(node, r"primary .* offline", self.marks[node])
            self.assertIsNone(line, cluster.explain(f"{node} lost the primary: {line}", [node]))


if __name__ == "__main__":
    harness.main()
