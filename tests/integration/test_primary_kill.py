"""Secondaries notice a primary killed with SIGKILL and rejoin its restart."""

import time

import harness
from harness import PRIMARY, peer_state

SECONDARIES = ["mx2", "mx3"]

# The secondaries see the TCP connection close within milliseconds.
OFFLINE_LIMIT_S = 2.0
REJOIN_LIMIT_S = 3.0


class PrimaryKillTest(harness.ClusterTestCase):
    def test_kill_and_restart_primary(self):
        cluster = self.make_cluster(nodes=3)
        cluster.start_all()
        cluster.wait_until_joined(timeout_s=10)
        incarnation_before = cluster.status(PRIMARY)["incarnation"]
        marks = {node: cluster.log_mark(node) for node in SECONDARIES}

        killed_at = time.monotonic()
        cluster.kill(PRIMARY)

        for node in SECONDARIES:
            line = cluster.wait_for_log(
                node,
                rf"Warning membership primary {PRIMARY} at 127\.0\.0\.1:\d+ offline: ",
                OFFLINE_LIMIT_S,
                after=marks[node],
                since=killed_at,
            )
            self.assertIn("connection lost", line, cluster.explain(f"{node} logged another reason", [node]))
        for node in SECONDARIES:
            status = cluster.wait_for_peer(node, PRIMARY, "offline", OFFLINE_LIMIT_S, since=killed_at)
            self.assertNotEqual(status["join_state"], "joined", cluster.explain(f"status of {node}: {status}", [node]))

        restarted_at = time.monotonic()
        cluster.start(PRIMARY)
        for node in SECONDARIES:
            cluster.wait_for_peer(node, PRIMARY, "online", REJOIN_LIMIT_S, since=restarted_at)
            cluster.wait_for_peer(PRIMARY, node, "online", REJOIN_LIMIT_S, since=restarted_at)

        status = cluster.status(PRIMARY)
        context = cluster.explain(f"primary status after the restart: {status}")
        self.assertGreater(status["incarnation"], incarnation_before, context)
        for node in SECONDARIES:
            self.assertEqual(peer_state(status, node), "online", context)
        for node in SECONDARIES:
            line = cluster.find_log(node, rf"primary {PRIMARY} at .* online: joined .*primary-incarnation={status['incarnation']}", marks[node])
            self.assertIsNotNone(line, cluster.explain(f"{node} logged no join of the new primary incarnation", [node]))


if __name__ == "__main__":
    harness.main()
