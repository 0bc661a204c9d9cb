"""mailclusterd rejects malformed role configs at startup with exit code 2.

Every case edits a copy of a node.ini written by init-local-cluster and
expects one line on stderr that names the config file and the option.
"""

import time
import unittest

import harness
from harness import edit_ini

EXIT_BAD_CONFIG = 2
EXIT_FAILED = 1
STARTUP_LIMIT_S = 5.0


class BadConfigTest(harness.ClusterTestCase):
    def setUp(self):
        self.cluster = self.make_cluster(nodes=3)

    def write_variant(self, node, name, text):
        path = self.cluster.node_dir(node) / f"{name}.ini"
        path.write_text(text)
        return path

    def cases(self):
        """Return (case name, node, config text, expected parts of the message)."""
        cluster = self.cluster
        secondary = cluster.config_text("mx2")
        primary = cluster.config_text("mx1")
        tls_dir = cluster.node_dir("mx2") / "tls"
        junk_certificate = cluster.node_dir("mx2") / "junk.pem"
        junk_certificate.write_text("this is not a certificate\n")
        missing_certificate = tls_dir / "missing.pem"
        mx3_key = cluster.node_dir("mx3") / "tls" / "node.key"
        # The comment goes right below the [cluster] header.
        comment_line = secondary.splitlines().index("[cluster]") + 2
        return [
            ("unknown_key", "mx2",
             secondary.replace("[cluster]\n", '[cluster]\ncolour = "blue"\n'),
             ["cluster.colour", "unknown option"]),
            ("hash_comment", "mx2",
             secondary.replace("[cluster]\n", "[cluster]\n# the node name follows\n"),
             [f":{comment_line}:", "'#'", "use ';'"]),
            ("hash_after_string", "mx2",
             edit_ini(secondary, "cluster", "node", '"mx2" # this node'),
             ["cluster.node", "';'"]),
            ("missing_node", "mx2",
             edit_ini(secondary, "cluster", "node", None),
             ["cluster.node", "missing required option"]),
            ("heartbeat_not_duration", "mx2",
             edit_ini(secondary, "cluster", "heartbeat-interval", '"abc"'),
             ["cluster.heartbeat-interval", "'abc'", "duration"]),
            ("failure_timeout_too_short", "mx2",
             edit_ini(secondary, "cluster", "failure-timeout", "5ms"),
             ["cluster.failure-timeout", "'5ms'", "100ms"]),
            ("admin_not_loopback", "mx2",
             edit_ini(secondary, "admin", "listen", f'"0.0.0.0:{cluster.admin_port("mx2")}"'),
             ["admin.listen", "0.0.0.0", "loopback"]),
            ("primary_port_out_of_range", "mx2",
             edit_ini(secondary, "cluster", "primary", '"127.0.0.1:99999"'),
             ["cluster.primary", "127.0.0.1:99999", "65535"]),
            ("listen_port_out_of_range", "mx1",
             edit_ini(primary, "cluster", "listen", '"127.0.0.1:99999"'),
             ["cluster.listen", "127.0.0.1:99999", "65535"]),
            ("missing_certificate", "mx2",
             edit_ini(secondary, "openssl", "certificate", f'"{missing_certificate}"'),
             ["openssl.certificate", str(missing_certificate), "not found"]),
            ("garbage_certificate", "mx2",
             edit_ini(secondary, "openssl", "certificate", f'"{junk_certificate}"'),
             ["[openssl] certificate file", str(junk_certificate), "not a PEM certificate"]),
            ("key_of_other_node", "mx2",
             edit_ini(secondary, "openssl", "key", f'"{mx3_key}"'),
             ["[openssl] key file", str(mx3_key), "does not match"]),
        ]

    def assert_rejected_config(self, path, expected_parts):
        started = time.monotonic()
        result = harness.run_daemon_once(path, timeout_s=STARTUP_LIMIT_S)
        elapsed = time.monotonic() - started
        message = result.stderr.strip()
        context = f"mailclusterd --config-file={path}: exit {result.returncode} after {elapsed:.1f} s, stderr:\n{result.stderr}"
        self.assertEqual(result.returncode, EXIT_BAD_CONFIG, context)
        self.assertEqual(len(message.splitlines()), 1, context)
        self.assertIn(str(path), message, context)
        for part in expected_parts:
            self.assertIn(part, message, context)

    def test_original_configs_valid(self):
        # The baseline for every case below: the unedited configs pass.
        for node in self.cluster.node_names():
            with self.subTest(node=node):
                result = harness.run_command(
                    [harness.binary("mailclusterd"), f"--config-file={self.cluster.config(node)}", "--check-config"],
                    timeout_s=STARTUP_LIMIT_S,
                )
                self.assertEqual(result.returncode, 0, f"--check-config of {node}: {result.stdout}{result.stderr}")

    def test_malformed_configs(self):
        for name, node, text, expected_parts in self.cases():
            with self.subTest(case=name):
                path = self.write_variant(node, name, text)
                self.assert_rejected_config(path, expected_parts)

    def test_hash_after_duration(self):
        text = edit_ini(self.cluster.config_text("mx2"), "cluster", "heartbeat-interval", "100ms # every 100 ms")
        path = self.write_variant("mx2", "hash_after_duration", text)
        self.assert_rejected_config(path, ["cluster.heartbeat-interval", "'#'"])

    def test_missing_config_file(self):
        path = self.cluster.root / "no-such-dir" / "node.ini"
        self.assert_rejected_config(path, ["cannot read config file", "No such file or directory"])

    def test_status_of_stopped_node(self):
        cluster = self.cluster
        address = f"127.0.0.1:{cluster.admin_port('mx2')}"
        started = time.monotonic()
        result = cluster.ctl("mx2", "status")
        elapsed = time.monotonic() - started
        context = f"status of the stopped mx2: exit {result.returncode} after {elapsed:.1f} s, stderr:\n{result.stderr}"
        self.assertEqual(result.returncode, EXIT_FAILED, context)
        self.assertLess(elapsed, STARTUP_LIMIT_S, context)
        self.assertIn(address, result.stderr, context)
        self.assertIn("cannot reach", result.stderr, context)
        self.assertEqual(result.stdout, "", context)


if __name__ == "__main__":
    harness.main()
