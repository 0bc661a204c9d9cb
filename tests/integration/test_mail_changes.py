"""Mail changes published on any node reach every node's watchers once.

Covers `mailclusterctl mail-change publish` and `mail-change watch` on a
three-node cluster: relaying through the primary, no echo to the origin,
the secondary's persisted queue across a primary outage and its own
restart, the queue limit, and argument checks.
"""

import json
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Optional

import harness
from harness import PRIMARY

SECONDARIES = ["mx2", "mx3"]

# Limits for a change to travel publish -> primary -> watcher on loopback,
# and for the relays to find each other after a (re)join.
DELIVERY_LIMIT_S = 5.0
RELAY_READY_LIMIT_S = 10.0
# Time to wait for a change that must not come (an echo, a duplicate).
SETTLE_S = 1.5


class Watcher:
    """A running `mailclusterctl mail-change watch`, with its output lines
    collected by two reader threads."""

    def __init__(self, cluster: harness.Cluster, node: str, json_output: bool = True):
        self.node = node
        self.json_output = json_output
        args = ["mail-change", "watch"] + (["--json"] if json_output else [])
        # A longer request timeout than the default 3 s, because the watch
        # request shares two cores with three nodes and other tests.
        self.process = harness.start_command(cluster.ctl_command(node, *args, timeout_ms=10000))
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.stderr), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read(self, stream, lines: list[str]) -> None:
        for line in stream:
            with self._lock:
                lines.append(line.rstrip("\n"))

    def lines(self) -> list[str]:
        with self._lock:
            return list(self.stdout)

    def errors(self) -> str:
        with self._lock:
            return "\n".join(self.stderr)

    def changes(self) -> list[dict]:
        return [json.loads(line) for line in self.lines()]

    def describe(self) -> str:
        return f"watcher on {self.node}: stdout={self.lines()} stderr={self.errors()!r} exit={self.process.poll()}"

    def stop(self, signal_number: int = signal.SIGINT, timeout_s: float = 5.0) -> Optional[int]:
        """Send the signal and return the exit code, or None if it still runs."""
        if self.process.poll() is None:
            self.process.send_signal(signal_number)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


class MailChangeTest(harness.ClusterTestCase):
    # -- helpers --

    def start_watcher(self, cluster: harness.Cluster, node: str, json_output: bool = True) -> Watcher:
        watcher = Watcher(cluster, node, json_output)
        self.addCleanup(watcher.kill)
        cluster.wait_for(
            f"watch on {node} started",
            lambda: "watching mail changes" in watcher.errors() or watcher.process.poll() is not None,
            15.0,
            nodes=[node],
        )
        self.assertIsNone(watcher.process.poll(), cluster.explain(watcher.describe(), [node]))
        return watcher

    def publish(self, cluster: harness.Cluster, node: str, event: str, detail: str,
                mailbox: str = "frank@example.com", folder: str = "INBOX"):
        return cluster.ctl(node, "mail-change", "publish", "--mailbox", mailbox, "--folder", folder,
                           "--event", event, "--detail", detail)

    def publish_ok(self, cluster: harness.Cluster, node: str, event: str, detail: str, **fields) -> str:
        result = self.publish(cluster, node, event, detail, **fields)
        self.assertEqual(result.returncode, 0,
                         cluster.explain(f"publish on {node} failed: {result.stderr}", [node, PRIMARY]))
        return result.stdout

    def wait_for_relays(self, cluster: harness.Cluster, secondaries=SECONDARIES, after=None) -> None:
        """Wait until each secondary's relay got the primary relay's ready message."""
        for node in secondaries:
            cluster.wait_for_log(node, rf"mail change relay of the primary {PRIMARY} ready",
                                 RELAY_READY_LIMIT_S, after=(after or {}).get(node, 0))

    def wait_for_changes(self, cluster: harness.Cluster, watcher: Watcher, count: int) -> list[dict]:
        return cluster.wait_for(
            f"{count} mail changes at the watcher on {watcher.node}",
            lambda: watcher.changes() if len(watcher.changes()) >= count else None,
            DELIVERY_LIMIT_S,
            last_seen=watcher.describe,
        )

    def queue_file(self, cluster: harness.Cluster, node: str) -> Path:
        return cluster.node_dir(node) / "state" / "mail-changes.queue"

    def queued_details(self, cluster: harness.Cluster, node: str) -> list[str]:
        doc = json.loads(self.queue_file(cluster, node).read_text())
        return [entry["detail"] for entry in doc["pending"]]

    # -- tests --

    def test_publish_reaches_every_node(self):
        cluster = self.make_cluster(nodes=3)
        cluster.start_all()
        cluster.wait_until_joined(timeout_s=10)
        self.wait_for_relays(cluster)
        watchers = {node: self.start_watcher(cluster, node) for node in cluster.node_names()}
        text_watcher = self.start_watcher(cluster, "mx3", json_output=False)

        before_ms = time.time() * 1000
        output = self.publish_ok(cluster, "mx2", "flags", "\\Seen \\Flagged", folder="Sent Items")
        self.assertIn("mx2#1", output)
        for node, watcher in watchers.items():
            changes = self.wait_for_changes(cluster, watcher, 1)
            context = cluster.explain(watcher.describe(), [node])
            change = changes[0]
            self.assertEqual(change["origin"], "mx2", context)
            self.assertEqual(change["sequence"], 1, context)
            self.assertEqual(change["mailbox"], "frank@example.com", context)
            self.assertEqual(change["folder"], "Sent Items", context)
            self.assertEqual(change["event"], "flags", context)
            self.assertEqual(change["detail"], "\\Seen \\Flagged", context)
            self.assertEqual(change["node"], node, context)
            self.assertGreaterEqual(change["time_ms"], before_ms - 1000, context)
            self.assertRegex(change["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", context)
        text_lines = cluster.wait_for("a text line at the mx3 watcher", text_watcher.lines, DELIVERY_LIMIT_S,
                                      last_seen=text_watcher.describe)
        self.assertIn('origin=mx2 sequence=1 event=flags mailbox=frank@example.com folder="Sent Items"',
                      text_lines[0])

        output = self.publish_ok(cluster, PRIMARY, "move", "to Archive")
        self.assertIn("2 secondaries", output)
        for node, watcher in watchers.items():
            changes = self.wait_for_changes(cluster, watcher, 2)
            context = cluster.explain(watcher.describe(), [node])
            self.assertEqual(changes[1]["origin"], PRIMARY, context)
            self.assertEqual(changes[1]["event"], "move", context)
            self.assertEqual(changes[1]["detail"], "to Archive", context)

        # Neither origin gets its own change back from the primary.
        time.sleep(SETTLE_S)
        for node, watcher in watchers.items():
            self.assertEqual(len(watcher.changes()), 2, cluster.explain(watcher.describe(), [node]))

        for watcher in [watchers["mx2"], text_watcher]:
            code = watcher.stop(signal.SIGINT)
            self.assertEqual(code, 0, cluster.explain(f"after SIGINT: {watcher.describe()}"))
        code = watchers["mx3"].stop(signal.SIGTERM)
        self.assertEqual(code, 0, cluster.explain(f"after SIGTERM: {watchers['mx3'].describe()}"))

    def test_queue_survives_outage_and_restart(self):
        cluster = self.make_cluster(nodes=3)
        cluster.start_all()
        cluster.wait_until_joined(timeout_s=10)
        self.wait_for_relays(cluster)
        primary_watcher = self.start_watcher(cluster, PRIMARY)
        mx3_watcher = self.start_watcher(cluster, "mx3")
        mark = cluster.log_mark("mx2")

        cluster.kill(PRIMARY)
        code = cluster.wait_for("watch on the killed primary to exit", primary_watcher.process.poll, 5.0,
                                last_seen=primary_watcher.describe)
        self.assertEqual(code, 1, primary_watcher.describe())
        self.assertIn("went away", primary_watcher.errors())
        cluster.wait_for_log("mx2", r"lost the mail change relay of the primary", 5.0, after=mark)

        for index in range(1, 4):
            output = self.publish_ok(cluster, "mx2", "delete", f"outage {index}")
            self.assertIn("offline", output)
        self.assertEqual(self.queued_details(cluster, "mx2"), ["outage 1", "outage 2", "outage 3"])

        # The queue survives a restart of the secondary itself.
        self.assertEqual(cluster.terminate("mx2", timeout_s=10), 0, cluster.explain("mx2 did not stop", ["mx2"]))
        mark = cluster.log_mark("mx2")
        cluster.start("mx2")
        cluster.wait_for_admin("mx2")
        cluster.wait_for_log("mx2", r"mail change queue holds 3 changes from before the restart", 5.0, after=mark)
        for index in range(4, 6):
            self.publish_ok(cluster, "mx2", "delete", f"outage {index}")
        self.assertEqual(self.queued_details(cluster, "mx2"), [f"outage {index}" for index in range(1, 6)])
        time.sleep(SETTLE_S)
        self.assertEqual(mx3_watcher.changes(), [], mx3_watcher.describe())

        mark = cluster.log_mark("mx2")
        cluster.start(PRIMARY)
        cluster.wait_until_joined(timeout_s=15)
        cluster.wait_for_log("mx2", r"sent every queued mail change to the primary", RELAY_READY_LIMIT_S, after=mark)
        changes = self.wait_for_changes(cluster, mx3_watcher, 5)
        time.sleep(SETTLE_S)
        changes = mx3_watcher.changes()
        context = cluster.explain(mx3_watcher.describe(), ["mx2", "mx3", PRIMARY])
        self.assertEqual([change["detail"] for change in changes], [f"outage {index}" for index in range(1, 6)], context)
        self.assertEqual([change["sequence"] for change in changes], [1, 2, 3, 4, 5], context)
        self.assertEqual(len({change["epoch"] for change in changes}), 1, context)
        self.assertEqual(self.queued_details(cluster, "mx2"), [])

        # The primary relays again, and the sequence goes on after the outage.
        primary_watcher = self.start_watcher(cluster, PRIMARY)
        self.publish_ok(cluster, "mx2", "append", "after outage")
        for watcher in [primary_watcher, mx3_watcher]:
            changes = self.wait_for_changes(cluster, watcher, 1 if watcher is primary_watcher else 6)
            self.assertEqual(changes[-1]["detail"], "after outage", watcher.describe())
            self.assertEqual(changes[-1]["sequence"], 6, watcher.describe())

    def test_full_queue_rejects_publish(self):
        cluster = self.make_cluster(nodes=3)
        config = cluster.config("mx2")
        config.write_text(config.read_text() + "\n[mail-changes]\nqueue-limit = 2\n")
        cluster.start_all()
        cluster.wait_until_joined(timeout_s=10)
        self.wait_for_relays(cluster)
        mx3_watcher = self.start_watcher(cluster, "mx3")
        mark = cluster.log_mark("mx2")
        cluster.kill(PRIMARY)
        cluster.wait_for_log("mx2", r"lost the mail change relay of the primary", 5.0, after=mark)

        self.publish_ok(cluster, "mx2", "expunge", "kept 1")
        self.publish_ok(cluster, "mx2", "expunge", "kept 2")
        result = self.publish(cluster, "mx2", "expunge", "rejected")
        context = cluster.explain(f"third publish: exit {result.returncode}, stderr {result.stderr!r}", ["mx2"])
        self.assertEqual(result.returncode, 1, context)
        self.assertIn("queue of mx2 is full", result.stderr, context)
        self.assertIn("queue-limit", result.stderr, context)
        self.assertIn("not published", result.stderr, context)
        self.assertEqual(self.queued_details(cluster, "mx2"), ["kept 1", "kept 2"])

        cluster.start(PRIMARY)
        cluster.wait_until_joined(timeout_s=15)
        changes = self.wait_for_changes(cluster, mx3_watcher, 2)
        self.publish_ok(cluster, "mx2", "expunge", "after the outage")
        changes = self.wait_for_changes(cluster, mx3_watcher, 3)
        self.assertEqual([change["detail"] for change in changes], ["kept 1", "kept 2", "after the outage"],
                         mx3_watcher.describe())

    def test_invalid_arguments_exit_2(self):
        # The checks run before mailclusterctl connects, so no node runs.
        cluster = self.make_cluster(nodes=3)
        cases = [
            (["--mailbox", "frank@example.com", "--folder", "INBOX", "--event", "flagged"], ["'--event'", "'flagged'", "expunge"]),
            (["--mailbox", "frank", "--folder", "INBOX", "--event", "flags"], ["'--mailbox'", "'frank'"]),
            (["--mailbox", "frank@example.com", "--event", "flags"], ["'--folder'"]),
            (["--mailbox", "frank@example.com", "--folder", "INBOX", "--event", "flags", "--colour", "red"], ["'--colour'"]),
        ]
        for args, expected in cases:
            result = cluster.ctl("mx2", "mail-change", "publish", *args)
            self.assertEqual(result.returncode, 2, f"{args}: exit {result.returncode}, stderr {result.stderr!r}")
            for text in expected:
                self.assertIn(text, result.stderr, f"{args}: stderr {result.stderr!r}")
        result = cluster.ctl("mx2", "mail-change", "watch", "INBOX")
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("'INBOX'", result.stderr)


if __name__ == "__main__":
    harness.main()
