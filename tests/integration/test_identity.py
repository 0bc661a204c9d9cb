"""Nodes with a certificate that does not prove their identity never join."""

import subprocess
import time

import harness
from harness import PRIMARY, peer_state

# How long a node that must not join is watched. A secondary retries the
# join every 0.5 s after a failed connection and every 2 s after a
# rejection, so this covers several attempts.
WATCH_S = 5.0


class IdentityTest(harness.ClusterTestCase):
    def setUp(self):
        self.cluster = self.make_cluster(nodes=3)
        # A second cluster with its own CA, whose files serve as a foreign
        # identity. Its nodes are never started.
        self.foreign = self.make_cluster(nodes=3)

    def foreign_tls(self, node):
        return self.foreign.node_dir(node) / "tls"

    def assert_never_online(self, node, seconds):
        """Poll the primary's status for `seconds` and fail at the first sample
        that does not list `node` offline."""
        cluster = self.cluster
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            status = cluster.status(PRIMARY)
            context = cluster.explain(f"primary status: {status}")
            self.assertEqual(peer_state(status, node), "offline", context)
            time.sleep(harness.POLL_INTERVAL_S)

    def test_foreign_certificate_rejected_at_startup(self):
        # mx2 uses a certificate and key of another cluster's CA but keeps this
        # cluster's CA file. mailclusterd checks the chain before it starts.
        cluster = self.cluster
        cluster.set_option("mx2", "openssl", "certificate", f'"{self.foreign_tls("mx2") / "node.pem"}"')
        cluster.set_option("mx2", "openssl", "key", f'"{self.foreign_tls("mx2") / "node.key"}"')
        cluster.start(PRIMARY)
        cluster.start("mx3")
        cluster.start("mx2")
        cluster.wait_until_joined(nodes=["mx3"])

        process = cluster.processes["mx2"]
        try:
            code = process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        context = cluster.explain(f"mx2 with a foreign certificate: exit code {code}", ["mx2"])
        self.assertEqual(code, 2, context)
        stderr = cluster.stderr_file("mx2").read_text()
        self.assertIn("does not chain to the CA", stderr, context)
        self.assertIn(str(cluster.config("mx2")), stderr, context)
        self.assertIn("openssl", stderr, context)
        # mailclusterctl runs the same credential check on mx2's config.
        result = cluster.ctl("mx2", "status")
        context = cluster.explain(f"status of mx2: exit {result.returncode}\n{result.stdout}{result.stderr}", ["mx2"])
        self.assertEqual(result.returncode, 2, context)
        self.assertIn("does not chain to the CA", result.stderr, context)

        self.assert_never_online("mx2", WATCH_S)
        status = cluster.status(PRIMARY)
        self.assertEqual(peer_state(status, "mx3"), "online", cluster.explain(f"primary status: {status}"))

    def test_foreign_cluster_identity(self):
        # mx2 uses certificate, key and CA file of another cluster, so it starts
        # but the TLS handshake with the primary fails in both directions.
        cluster = self.cluster
        cluster.set_option("mx2", "openssl", "certificate", f'"{self.foreign_tls("mx2") / "node.pem"}"')
        cluster.set_option("mx2", "openssl", "key", f'"{self.foreign_tls("mx2") / "node.key"}"')
        cluster.set_option("mx2", "openssl", "cafile", f'"{self.foreign.root / "ca" / "ca.pem"}"')
        mark = cluster.log_mark(PRIMARY)
        cluster.start_all()
        cluster.wait_until_joined(nodes=["mx3"])

        self.assert_never_online("mx2", WATCH_S)
        self.assertTrue(cluster.is_running("mx2"), cluster.explain("mx2 exited", ["mx2"]))
        status = cluster.status("mx2")
        context = cluster.explain(f"status of mx2: {status}", ["mx2"])
        self.assertNotEqual(status["join_state"], "joined", context)
        self.assertEqual(peer_state(status, status["primary"]["address"]), "offline", context)
        self.assertNotEqual(status["join_error"], "", context)
        line = cluster.find_log(PRIMARY, r"secondary mx2 online", mark)
        self.assertIsNone(line, cluster.explain(f"primary accepted mx2: {line}", [PRIMARY]))
        status = cluster.status(PRIMARY)
        self.assertEqual(peer_state(status, "mx3"), "online", cluster.explain(f"primary status: {status}"))

    def test_certificate_of_other_node(self):
        # mx3 presents mx2's valid cluster certificate and signs with mx2's key,
        # so TLS succeeds and only the primary's name check can catch it.
        cluster = self.cluster
        cluster.set_option("mx3", "openssl", "certificate", f'"{cluster.node_dir("mx2") / "tls" / "node.pem"}"')
        cluster.set_option("mx3", "openssl", "key", f'"{cluster.node_dir("mx2") / "tls" / "node.key"}"')
        started_at = time.monotonic()
        cluster.start(PRIMARY)
        cluster.start("mx2")
        cluster.start("mx3", env={"MAILCLUSTER_TEST_ALLOW_NAME_MISMATCH": "1"})

        line = cluster.wait_for_log(PRIMARY, r"rejected join of mx3: .* verdict=bad_identity ", 5.0, since=started_at)
        self.assertIn("common name 'mx2'", line, cluster.explain(f"primary log line: {line}", [PRIMARY]))
        cluster.wait_until_joined(nodes=["mx2"])
        status = cluster.wait_for_join_state("mx3", "rejected", 5.0, since=started_at)
        self.assertIn("bad_identity", status["join_error"], cluster.explain(f"status of mx3: {status}", ["mx3"]))
        self.assert_never_online("mx3", WATCH_S)
        line = cluster.find_log(PRIMARY, r"secondary mx3 online")
        self.assertIsNone(line, cluster.explain(f"primary accepted mx3: {line}", [PRIMARY]))

    def test_certificate_of_other_node_at_startup(self):
        # Without the test hook mailclusterd compares the certificate's common
        # name with cluster.node before it starts.
        cluster = self.cluster
        cluster.set_option("mx3", "openssl", "certificate", f'"{cluster.node_dir("mx2") / "tls" / "node.pem"}"')
        cluster.set_option("mx3", "openssl", "key", f'"{cluster.node_dir("mx2") / "tls" / "node.key"}"')
        env = {"MAILCLUSTER_TEST_ALLOW_NAME_MISMATCH": None}
        result = harness.run_daemon_once(cluster.config("mx3"), timeout_s=5, env=env)
        context = cluster.explain(f"exit code {result.returncode}, stderr: {result.stderr}", [])
        self.assertEqual(result.returncode, 2, context)
        self.assertIn("common name", result.stderr, context)
        self.assertIn("'mx2'", result.stderr, context)
        self.assertIn(str(cluster.config("mx3")), result.stderr, context)
        self.assertIn("openssl.certificate", result.stderr, context)


if __name__ == "__main__":
    harness.main()
