"""add-server and remove-server change the registered servers on the primary
only, and the list survives a restart of the primary."""

import json
import time
import unittest

import harness
from harness import PRIMARY, find_peer, peer_state

# A removed secondary gets a rejoin request at once; an added one joins at
# its next attempt, at most 2 s after a rejection.
CHANGE_LIMIT_S = 5.0

SLOW_NODE_PAUSE_S = 0.5


class AdminTest(harness.ClusterTestCase):
    def setUp(self):
        self.cluster = self.make_cluster(nodes=3)
        self.cluster.start_all()
        self.cluster.wait_until_joined(timeout_s=10)

    def assert_ctl_succeeds(self, node, *args):
        result = self.cluster.ctl(node, *args)
        context = self.cluster.explain(f"{' '.join(args)} on {node}: exit {result.returncode}\n{result.stdout}{result.stderr}")
        self.assertEqual(result.returncode, 0, context)
        return result

    def registered(self):
        return sorted(self.cluster.status(PRIMARY)["registered"])

    def test_commands_on_secondary(self):
        cluster = self.cluster
        for command in ["add-server", "remove-server"]:
            with self.subTest(command=command):
                result = cluster.ctl("mx2", command, "mx3")
                context = cluster.explain(f"{command} on mx2: exit {result.returncode}\n{result.stdout}{result.stderr}")
                self.assertEqual(result.returncode, 1, context)
                self.assertIn("is a secondary", result.stderr, context)
                self.assertIn(f"primary {PRIMARY}", result.stderr, context)
        registered = self.registered()
        self.assertEqual(registered, ["mx2", "mx3"], cluster.explain(f"registered after the rejected commands: {registered}"))

    def test_add_local_node_joins(self):
        cluster = self.cluster
        result = harness.run_command(
            [harness.binary("mailclusterctl"), "add-local-node", str(cluster.root), "mail-b"], timeout_s=10)
        context = cluster.explain(f"add-local-node: exit {result.returncode}\n{result.stdout}{result.stderr}")
        self.assertEqual(result.returncode, 0, context)
        self.assertIn("add-server mail-b", result.stdout, context)
        again = harness.run_command(
            [harness.binary("mailclusterctl"), "add-local-node", str(cluster.root), "mail-b"], timeout_s=10)
        self.assertEqual(again.returncode, 1, cluster.explain(f"second add-local-node: {again.stderr}"))
        self.assert_ctl_succeeds(PRIMARY, "add-server", "mail-b")
        started_at = time.monotonic()
        cluster.start("mail-b", config=cluster.root / "mail-b" / "node.ini")
        cluster.wait_for_peer(PRIMARY, "mail-b", "online", 10, since=started_at)

    def test_remove_and_add_server(self):
        cluster = self.cluster
        mark = cluster.log_mark(PRIMARY)
        removed_at = time.monotonic()
        self.assert_ctl_succeeds(PRIMARY, "remove-server", "mx3")

        status = cluster.status(PRIMARY)
        context = cluster.explain(f"primary status after remove-server mx3: {status}")
        self.assertEqual(sorted(status["registered"]), ["mx2"], context)
        self.assertIsNone(find_peer(status, "mx3"), context)
        self.assertEqual(peer_state(status, "mx2"), "online", context)
        cluster.wait_for_log(PRIMARY, r"Warning membership secondary mx3 offline: removed from the registered servers",
                             CHANGE_LIMIT_S, after=mark, since=removed_at)
        status = cluster.wait_for_join_state("mx3", "rejected", CHANGE_LIMIT_S, since=removed_at)
        context = cluster.explain(f"status of mx3: {status}", ["mx3"])
        self.assertIn("not_registered", status["join_error"], context)
        self.assertIn("add-server mx3", status["join_error"], context)
        cluster.wait_for_log(PRIMARY, r"rejected join of mx3: .* verdict=not_registered ", CHANGE_LIMIT_S,
                             after=mark, since=removed_at)

        added_at = time.monotonic()
        self.assert_ctl_succeeds(PRIMARY, "add-server", "mx3")
        cluster.wait_for_log(PRIMARY, r"Secondary cluster node added: Cluster Service on mx3 will now restart",
                             CHANGE_LIMIT_S, after=mark, since=added_at)
        cluster.wait_for_peer(PRIMARY, "mx3", "online", CHANGE_LIMIT_S, since=added_at)
        cluster.wait_for_join_state("mx3", "joined", CHANGE_LIMIT_S, since=added_at)
        status = cluster.status(PRIMARY)
        context = cluster.explain(f"primary status after add-server mx3: {status}")
        self.assertEqual(peer_state(status, "mx2"), "online", context)

    def test_invalid_commands_on_primary(self):
        cluster = self.cluster
        cases = [
            ("add-server", "mx2", "already registered"),
            ("add-server", PRIMARY, "the primary itself"),
            ("add-server", "bad/name", "may contain only"),
            ("remove-server", "mx9", "not registered"),
        ]
        for command, name, message in cases:
            with self.subTest(command=command, name=name):
                result = cluster.ctl(PRIMARY, command, name)
                context = cluster.explain(f"{command} {name}: exit {result.returncode}\n{result.stdout}{result.stderr}")
                self.assertEqual(result.returncode, 1, context)
                self.assertIn(message, result.stderr, context)
        registered = self.registered()
        self.assertEqual(registered, ["mx2", "mx3"], cluster.explain(f"registered after the rejected commands: {registered}"))

    def test_registry_survives_restart(self):
        cluster = self.cluster
        self.assert_ctl_succeeds(PRIMARY, "remove-server", "mx2")
        self.assert_ctl_succeeds(PRIMARY, "add-server", "mx9")
        registered = self.registered()
        self.assertEqual(registered, ["mx3", "mx9"], cluster.explain(f"registered before the restart: {registered}"))
        incarnation = cluster.status(PRIMARY)["incarnation"]

        cluster.kill(PRIMARY)
        cluster.start(PRIMARY)
        status = cluster.wait_for_admin(PRIMARY)
        context = cluster.explain(f"primary status after the restart: {status}")
        self.assertGreater(status["incarnation"], incarnation, context)
        self.assertEqual(sorted(status["registered"]), ["mx3", "mx9"], context)
        cluster.wait_for_peer(PRIMARY, "mx3", "online", CHANGE_LIMIT_S)
        status = cluster.wait_for_join_state("mx2", "rejected", CHANGE_LIMIT_S)
        self.assertIn("not_registered", status["join_error"], cluster.explain(f"status of mx2: {status}", ["mx2"]))
        status = cluster.status(PRIMARY)
        context = cluster.explain(f"primary status: {status}")
        self.assertEqual(peer_state(status, "mx9"), "offline", context)
        self.assertEqual(find_peer(status, "mx9")["detail"], "never joined", context)

    def test_status_waits_for_slow_node(self):
        cluster = self.cluster
        cluster.pause("mx2")
        started = time.monotonic()
        process = harness.start_command(cluster.ctl_command("mx2", "status", "--json", timeout_ms=3000))
        # The node stays stopped for a fraction of --timeout and of its
        # failure-timeout (1 s), so the command has time to succeed.
        time.sleep(SLOW_NODE_PAUSE_S)
        cluster.resume("mx2")
        stdout, stderr = process.communicate(timeout=15)
        elapsed = time.monotonic() - started
        context = cluster.explain(
            f"status of mx2 stopped for {SLOW_NODE_PAUSE_S} s: exit {process.returncode} after {elapsed:.2f} s\n{stdout}{stderr}",
            ["mx2"],
        )
        self.assertEqual(process.returncode, 0, context)
        self.assertEqual(json.loads(stdout)["node"], "mx2", context)


if __name__ == "__main__":
    harness.main()
