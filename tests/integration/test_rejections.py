"""The primary rejects joins that fail a check of the join handshake.

Each case runs its own cluster. A rejected secondary retries the join every
2 s.
"""

import time

import harness
from harness import PRIMARY, peer_state

REJECT_LIMIT_S = 5.0

# add-server takes effect at the rejected node's next attempt, at most 2 s
# later.
ADD_LIMIT_S = 5.0


class RejectionTest(harness.ClusterTestCase):
    def assert_rejected(self, cluster, node, verdict, since, message_part=None):
        """Wait until the primary logs the rejection of `node` with `verdict`
        and `node` reports join_state "rejected", and return its status."""
        primary_line = cluster.wait_for_log(
            PRIMARY, rf"Warning membership rejected join of {node}: .* verdict={verdict} ", REJECT_LIMIT_S, since=since
        )
        node_line = cluster.wait_for_log(
            node, rf"Error membership primary {PRIMARY} at .* rejected this node: {verdict}: .* -> retrying every \d+ ms",
            REJECT_LIMIT_S, since=since,
        )
        status = cluster.wait_for_join_state(node, "rejected", REJECT_LIMIT_S, since=since)
        context = cluster.explain(f"status of {node}: {status}")
        self.assertIn(verdict, status["join_error"], context)
        if message_part:
            self.assertIn(message_part, status["join_error"], context)
            self.assertIn(message_part, primary_line, cluster.explain(f"primary log line: {primary_line}", [PRIMARY]))
            self.assertIn(message_part, node_line, cluster.explain(f"{node} log line: {node_line}", [node]))
        primary_status = cluster.status(PRIMARY)
        self.assertNotEqual(peer_state(primary_status, node), "online", cluster.explain(f"primary status: {primary_status}"))
        return status

    def test_version_mismatch(self):
        cluster = self.make_cluster(nodes=2)
        started_at = time.monotonic()
        cluster.start(PRIMARY)
        cluster.start("mx2", env={"MAILCLUSTER_TEST_ADVERTISE_VERSION": "0.0.1"})
        status = self.assert_rejected(cluster, "mx2", "version_mismatch", started_at, message_part="version 0.0.1")
        self.assertEqual(status["version"], "0.0.1", cluster.explain(f"status of mx2: {status}"))

    def test_duplicate_key(self):
        cluster = self.make_cluster(nodes=3)
        cluster.set_option("mx3", "cluster", "registration-key", f'"{cluster.option("mx2", "cluster", "registration-key")}"')
        cluster.start(PRIMARY)
        cluster.start("mx2")
        cluster.wait_until_joined(nodes=["mx2"])

        started_at = time.monotonic()
        cluster.start("mx3")
        self.assert_rejected(cluster, "mx3", "duplicate_key", started_at, message_part="already used by node 'mx2'")
        status = cluster.status(PRIMARY)
        self.assertEqual(peer_state(status, "mx2"), "online", cluster.explain(f"primary status: {status}"))

    def test_key_changed_after_join(self):
        cluster = self.make_cluster(nodes=2)
        cluster.start_all()
        cluster.wait_until_joined()
        cluster.kill("mx2")
        cluster.set_option("mx2", "cluster", "registration-key", '"0123456789abcdef0123456789abcdef"')

        started_at = time.monotonic()
        cluster.start("mx2")
        self.assert_rejected(cluster, "mx2", "key_mismatch", started_at,
                             message_part="differs from the key it first joined with")

    def test_not_registered_then_added(self):
        cluster = self.make_cluster(nodes=4)
        cluster.start(PRIMARY)
        cluster.wait_for_admin(PRIMARY)
        result = cluster.ctl(PRIMARY, "remove-server", "mx4")
        context = cluster.explain(f"remove-server mx4: exit {result.returncode}\n{result.stdout}{result.stderr}")
        self.assertEqual(result.returncode, 0, context)
        self.assertNotIn("mx4", cluster.status(PRIMARY)["registered"], context)

        started_at = time.monotonic()
        for node in ["mx2", "mx3", "mx4"]:
            cluster.start(node)
        self.assert_rejected(cluster, "mx4", "not_registered", started_at, message_part="add-server mx4")
        cluster.wait_until_joined(nodes=["mx2", "mx3"])

        mark = cluster.log_mark(PRIMARY)
        added_at = time.monotonic()
        result = cluster.ctl(PRIMARY, "add-server", "mx4")
        context = cluster.explain(f"add-server mx4: exit {result.returncode}\n{result.stdout}{result.stderr}")
        self.assertEqual(result.returncode, 0, context)
        cluster.wait_for_log(
            PRIMARY,
            r"Info membership Secondary cluster node added: Cluster Service on mx4 will now restart",
            ADD_LIMIT_S,
            after=mark,
            since=added_at,
        )
        cluster.wait_for_peer(PRIMARY, "mx4", "online", ADD_LIMIT_S, since=added_at)
        status = cluster.wait_for_join_state("mx4", "joined", ADD_LIMIT_S, since=added_at)
        self.assertEqual(status["join_error"], "", cluster.explain(f"status of mx4: {status}"))

    def test_wrong_cluster(self):
        cluster = self.make_cluster(nodes=2)
        cluster.set_option("mx2", "cluster", "name", '"othercluster"')
        started_at = time.monotonic()
        cluster.start_all()
        self.assert_rejected(cluster, "mx2", "wrong_cluster", started_at, message_part="othercluster")

    def test_second_process_same_name(self):
        # A second mx2 process with its own state directory (the first one
        # holds a lock on its own) starts while the first one is online.
        cluster = self.make_cluster(nodes=2)
        cluster.start_all()
        cluster.wait_until_joined()
        duplicate_config = cluster.node_dir("mx2") / "duplicate.ini"
        text = cluster.config_text("mx2")
        admin_port = harness.find_free_base_port(1)
        text = harness.edit_ini(text, "admin", "listen", f'"127.0.0.1:{admin_port}"')
        text = harness.edit_ini(text, "log", "file", f'"{cluster.node_dir("mx2") / "duplicate.log"}"')
        text = harness.edit_ini(text, "storage", "state-dir", f'"{cluster.node_dir("mx2") / "duplicate-state"}"')
        duplicate_config.write_text(text)
        mark = cluster.log_mark(PRIMARY)

        started_at = time.monotonic()
        cluster.start("mx2", config=duplicate_config, instance="mx2-duplicate")
        line = cluster.wait_for_log(PRIMARY, r"rejected join of mx2: .* verdict=already_online ", REJECT_LIMIT_S,
                                    after=mark, since=started_at)
        self.assertIn("stop the other process", line, cluster.explain(f"primary log line: {line}", [PRIMARY]))
        status = cluster.wait_for_join_state("mx2", "rejected", REJECT_LIMIT_S, since=started_at, config=duplicate_config)
        self.assertIn("already_online", status["join_error"], cluster.explain(f"status of the second mx2: {status}"))
        status = cluster.status("mx2")
        self.assertEqual(status["join_state"], "joined", cluster.explain(f"status of the first mx2: {status}"))


if __name__ == "__main__":
    harness.main()
