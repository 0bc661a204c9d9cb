"""Secondaries notice a primary stopped with SIGSTOP and rejoin after SIGCONT."""

import os
import time

import harness
from harness import PRIMARY

SECONDARIES = ["mx2", "mx3"]

# A stopped process keeps its TCP connections open, so the secondaries only
# notice the missing heartbeats. init-local-cluster sets failure-timeout to
# 1 s.
OFFLINE_LIMIT_S = 3.0
REJOIN_LIMIT_S = 5.0

# CPU a secondary may use while the primary is stopped: a tenth of a core
# over the sample. The spinning bug used 30-90 %, an idle node under 1 %.
CPU_SAMPLE_S = 3.0
CPU_LIMIT_S = 0.3


def cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU time of a process in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class PrimaryStopTest(harness.ClusterTestCase):
    def test_stop_and_continue_primary(self):
        cluster = self.make_cluster(nodes=3)
        cluster.start_all()
        cluster.wait_until_joined(timeout_s=10)
        marks = {node: cluster.log_mark(node) for node in cluster.node_names()}

        stopped_at = time.monotonic()
        cluster.pause(PRIMARY)
        for node in SECONDARIES:
            cluster.wait_for_log(
                node,
                rf"Warning membership primary {PRIMARY} at 127\.0\.0\.1:\d+ offline: ",
                OFFLINE_LIMIT_S,
                after=marks[node],
                since=stopped_at,
            )
        for node in SECONDARIES:
            cluster.wait_for_peer(node, PRIMARY, "offline", OFFLINE_LIMIT_S, since=stopped_at)

        # While the primary hangs, the secondaries retry their join. A CAF
        # connect to a hung peer spun a whole core per secondary; the TLS
        # probe before each attempt keeps them idle.
        before = {node: cpu_seconds(cluster.processes[node].pid) for node in SECONDARIES}
        time.sleep(CPU_SAMPLE_S)
        for node in SECONDARIES:
            used = cpu_seconds(cluster.processes[node].pid) - before[node]
            context = cluster.explain(
                f"{node} used {used:.2f} s of CPU in {CPU_SAMPLE_S} s while the primary was stopped"
            )
            self.assertLess(used, CPU_LIMIT_S, context)

        continued_at = time.monotonic()
        cluster.resume(PRIMARY)
        for node in SECONDARIES:
            cluster.wait_for_peer(node, PRIMARY, "online", REJOIN_LIMIT_S, since=continued_at)
            cluster.wait_for_peer(PRIMARY, node, "online", REJOIN_LIMIT_S, since=continued_at)
            cluster.wait_for_join_state(node, "joined", REJOIN_LIMIT_S, since=continued_at)

        for node in cluster.node_names():
            context = cluster.explain(f"{node} is not running after SIGSTOP and SIGCONT of the primary")
            self.assertTrue(cluster.is_running(node), context)
        for node in cluster.node_names():
            line = cluster.find_log(node, r"stopping after a failure|child \S+ failed", marks[node])
            self.assertIsNone(line, cluster.explain(f"{node} logged a failure: {line}", [node]))


if __name__ == "__main__":
    harness.main()
