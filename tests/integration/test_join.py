"""A three-node cluster joins, and both status formats describe it."""

import unittest

import harness
from harness import PRIMARY, find_peer

STATUS_KEYS = [
    "cluster",
    "node",
    "role",
    "version",
    "incarnation",
    "join_state",
    "join_error",
    "primary",
    "peers",
]
PEER_KEYS = ["node", "role", "state", "since", "last_heartbeat_ms", "observed_by", "detail"]


class JoinTest(harness.ClusterTestCase):
    def setUp(self):
        self.cluster = self.make_cluster(nodes=3)
        self.cluster.start_all()
        self.cluster.wait_until_joined(timeout_s=10)

    def test_primary_status(self):
        cluster = self.cluster
        status = cluster.status(PRIMARY)
        context = cluster.explain(f"primary status: {status}")
        for key in STATUS_KEYS + ["registered"]:
            with self.subTest(key=key):
                self.assertIn(key, status, context)
        self.assertEqual(status["node"], PRIMARY, context)
        self.assertEqual(status["role"], "primary", context)
        self.assertEqual(status["join_state"], "serving", context)
        self.assertEqual(status["primary"]["node"], PRIMARY, context)
        self.assertEqual(status["primary"]["address"], f"127.0.0.1:{cluster.base_port}", context)
        self.assertEqual(sorted(status["registered"]), ["mx2", "mx3"], context)
        self.assertIsInstance(status["incarnation"], int, context)
        for node in ["mx2", "mx3"]:
            with self.subTest(peer=node):
                peer = find_peer(status, node)
                self.assertIsNotNone(peer, context)
                for key in PEER_KEYS:
                    self.assertIn(key, peer, context)
                self.assertEqual(peer["state"], "online", context)
                self.assertEqual(peer["role"], "secondary", context)
                self.assertEqual(peer["observed_by"], PRIMARY, context)
                self.assertIsInstance(peer["since"], str, context)
                self.assertRegex(peer["since"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", context)
                self.assertIsInstance(peer["last_heartbeat_ms"], int, context)
                # Secondaries send a heartbeat every 100 ms; 1000 ms is the
                # failure timeout.
                self.assertLess(peer["last_heartbeat_ms"], 1000, context)

    def test_secondary_status(self):
        cluster = self.cluster
        for node in ["mx2", "mx3"]:
            with self.subTest(node=node):
                status = cluster.status(node)
                context = cluster.explain(f"status of {node}: {status}")
                for key in STATUS_KEYS:
                    self.assertIn(key, status, context)
                self.assertNotIn("registered", status, context)
                self.assertEqual(status["node"], node, context)
                self.assertEqual(status["role"], "secondary", context)
                self.assertEqual(status["join_state"], "joined", context)
                self.assertEqual(status["join_error"], "", context)
                self.assertEqual(status["primary"]["node"], PRIMARY, context)
                primary = find_peer(status, PRIMARY)
                self.assertIsNotNone(primary, context)
                self.assertEqual(primary["state"], "online", context)
                self.assertEqual(primary["role"], "primary", context)
                self.assertEqual(primary["observed_by"], node, context)
                self.assertIsInstance(primary["since"], str, context)
                self.assertIsInstance(primary["last_heartbeat_ms"], int, context)

    def test_secondary_sees_other_secondary(self):
        cluster = self.cluster
        for node, other in [("mx2", "mx3"), ("mx3", "mx2")]:
            with self.subTest(node=node):
                status = cluster.wait_for_peer(node, other, "online", timeout_s=5)
                peer = find_peer(status, other)
                self.assertEqual(peer["observed_by"], PRIMARY, cluster.explain(f"status of {node}: {status}"))
                result = cluster.ctl(node, "status")
                self.assertIn(other, result.stdout, cluster.explain(f"status table of {node}:\n{result.stdout}"))

    def test_join_log_lines(self):
        cluster = self.cluster
        for node in ["mx2", "mx3"]:
            with self.subTest(node=node):
                line = cluster.find_log(PRIMARY, rf"Info membership secondary {node} online: joined")
                self.assertIsNotNone(line, cluster.explain(f"primary logged no join of {node}", [PRIMARY]))
                line = cluster.find_log(node, rf"Info membership primary {PRIMARY} at 127\.0\.0\.1:\d+ online: joined")
                self.assertIsNotNone(line, cluster.explain(f"{node} logged no join", [node]))

    def test_human_status_table(self):
        cluster = self.cluster
        for node in cluster.node_names():
            with self.subTest(node=node):
                result = cluster.ctl(node, "status")
                context = cluster.explain(f"status of {node}: exit {result.returncode}\n{result.stdout}{result.stderr}")
                self.assertEqual(result.returncode, 0, context)
                self.assertIn("NODE", result.stdout, context)
                self.assertIn("STATE", result.stdout, context)
                rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:] if line.strip()}
                # A secondary lists the other secondaries only from the
                # roster, see test_secondary_sees_other_secondary.
                expected = cluster.node_names() if node == PRIMARY else [PRIMARY, node]
                for name in expected:
                    self.assertIn(name, rows, context)
                    self.assertIn("online", rows[name], context)


if __name__ == "__main__":
    harness.main()
