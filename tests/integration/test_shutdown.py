"""SIGTERM and SIGINT stop a node cleanly with exit code 0.

A secondary that stops sends a leave message, so the primary marks it
offline with the reason "node shut down" instead of "connection lost".
"""

import signal
import subprocess
import time

import harness
from harness import PRIMARY, peer_state

EXIT_LIMIT_S = 5.0
OFFLINE_LIMIT_S = 2.0


class ShutdownTest(harness.ClusterTestCase):
    def setUp(self):
        self.cluster = self.make_cluster(nodes=3)
        self.cluster.start_all()
        self.cluster.wait_until_joined(timeout_s=10)

    def stop_secondary(self, node, signal_number):
        cluster = self.cluster
        mark = cluster.log_mark(PRIMARY)
        stopped_at = time.monotonic()
        cluster.send_signal(node, signal_number)
        try:
            code = cluster.processes[node].wait(timeout=EXIT_LIMIT_S)
        except subprocess.TimeoutExpired:
            code = None
        context = cluster.explain(f"{node} after {signal.Signals(signal_number).name}: exit code {code}", [node])
        self.assertEqual(code, 0, context)
        line = cluster.find_log(node, r"Info node received signal .*: shutting down")
        self.assertIsNotNone(line, context)
        line = cluster.find_log(node, rf"Info node mailclusterd {node} stopped")
        self.assertIsNotNone(line, context)

        cluster.wait_for_log(PRIMARY, rf"Warning membership secondary {node} offline: node shut down", OFFLINE_LIMIT_S,
                             after=mark, since=stopped_at)
        status = cluster.status(PRIMARY)
        context = cluster.explain(f"primary status: {status}")
        self.assertEqual(peer_state(status, node), "offline", context)
        self.assertEqual(harness.find_peer(status, node)["detail"], "node shut down", context)
        other = "mx2" if node == "mx3" else "mx3"
        self.assertEqual(peer_state(status, other), "online", context)

    def test_sigterm_secondary(self):
        self.stop_secondary("mx3", signal.SIGTERM)

    def test_sigint_secondary(self):
        self.stop_secondary("mx2", signal.SIGINT)

    def test_sigterm_primary(self):
        cluster = self.cluster
        marks = {node: cluster.log_mark(node) for node in ["mx2", "mx3"]}
        stopped_at = time.monotonic()
        code = cluster.terminate(PRIMARY, EXIT_LIMIT_S)
        context = cluster.explain(f"primary after SIGTERM: exit code {code}", [PRIMARY])
        self.assertEqual(code, 0, context)
        line = cluster.find_log(PRIMARY, rf"Info node mailclusterd {PRIMARY} stopped")
        self.assertIsNotNone(line, context)
        for node in ["mx2", "mx3"]:
            cluster.wait_for_log(node, rf"Warning membership primary {PRIMARY} at .* offline: ", OFFLINE_LIMIT_S,
                                 after=marks[node], since=stopped_at)
            self.assertTrue(cluster.is_running(node), cluster.explain(f"{node} exited with the primary", [node]))


class SecondInstanceTest(harness.ClusterTestCase):
    def test_second_instance_is_rejected(self):
        cluster = self.make_cluster(nodes=2)
        cluster.start_all()
        cluster.wait_until_joined(timeout_s=10)
        mark = cluster.log_mark("mx2")
        incarnation = (cluster.config("mx2").parent / "state" / "incarnation").read_text()

        result = harness.run_command(
            [harness.binary("mailclusterd"), f"--config-file={cluster.config('mx2')}"],
            timeout_s=EXIT_LIMIT_S,
        )
        context = cluster.explain(f"second mx2: exit {result.returncode}\n{result.stderr}")
        self.assertEqual(result.returncode, 2, context)
        self.assertIn("already runs with state directory", result.stderr, context)
        self.assertIsNone(cluster.find_log("mx2", r"starting|stopping", mark), context)
        after = (cluster.config("mx2").parent / "state" / "incarnation").read_text()
        self.assertEqual(after, incarnation, context)
        self.assertTrue(cluster.is_running("mx2"), context)


if __name__ == "__main__":
    harness.main()
