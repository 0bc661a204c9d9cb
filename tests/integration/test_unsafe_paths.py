"""A secondary refuses unsafe paths in a file list from its primary.

mx1 runs mc_rogue_primary (tests/tools/rogue_primary.cpp): the real node
runtime with a replication actor that lists "../escape.txt", an absolute
path, "a/../../up.txt", a name with a NUL byte, a 300-byte name, a file in
the shared folder Users, an entry with a malformed hash, and
"link/inside.txt", where mx2 has a symbolic link "link" to a folder outside
its configuration directory. Only good.txt may be written, and the link is
replaced by a real folder without anything written through it."""

import os
import unittest

import harness
from harness import PRIMARY

BAD_CONTENT = b"written by the rogue primary\n"
# Every entry of the rogue list except good.txt.
UNSAFE_ENTRIES = 8
WAIT_S = 30


class UnsafePathsTest(harness.ClusterTestCase):
    def start_rogue_primary(self, cluster):
        real_binary = harness.binary

        def rogue_binary(name):
            return real_binary("mc_rogue_primary" if name == "mailclusterd" else name)

        harness.binary = rogue_binary
        try:
            cluster.start(PRIMARY)
        finally:
            harness.binary = real_binary

    def test_unsafe_paths_are_refused(self):
        cluster = self.make_cluster(nodes=2)
        config_dir = cluster.node_dir("mx2") / "config"
        outside = cluster.root / "outside"
        outside.mkdir()
        config_dir.mkdir(exist_ok=True)
        os.symlink(outside, config_dir / "link")
        self.start_rogue_primary(cluster)
        cluster.start("mx2")

        good = config_dir / "good.txt"
        cluster.wait_for("good.txt on mx2", lambda: good.exists() and good.read_bytes() == b"good\n", WAIT_S)
        cluster.wait_for_log("mx2", r"refused unsafe path from the primary mx1: '\.\./escape\.txt'", WAIT_S)

        def refused_count():
            status = cluster.try_status("mx2")
            if not status or not status.get("replication"):
                return None
            count = status["replication"]["unsafe_paths_refused"]
            return count if count >= UNSAFE_ENTRIES else None

        count = cluster.wait_for("unsafe paths counted in mx2's status", refused_count, WAIT_S)
        self.assertGreaterEqual(count, UNSAFE_ENTRIES)

        # Nothing landed outside the configuration directory or in it.
        self.assertEqual(list(outside.iterdir()), [], cluster.explain("files written through the symbolic link"))
        for path in [cluster.node_dir("mx2") / "escape.txt", cluster.root / "up.txt",
                     cluster.node_dir("mx2") / "up.txt", config_dir / "Users" / "excluded.txt"]:
            self.assertFalse(path.exists(), cluster.explain(f"{path} was written"))
        absolute = "/tmp/absolute.txt"
        if os.path.exists(absolute):
            with open(absolute, "rb") as handle:
                self.assertNotEqual(handle.read(), BAD_CONTENT, cluster.explain(f"{absolute} was written"))
        names = sorted(entry.name for entry in config_dir.iterdir())
        self.assertEqual(names, ["good.txt", "link"], cluster.explain(f"mx2's configuration directory holds {names}"))
        self.assertFalse((config_dir / "link").is_symlink(), cluster.explain("the link is left in place"))
        self.assertTrue(cluster.is_running("mx2"), cluster.explain("mx2 stopped on peer input"))


if __name__ == "__main__":
    harness.main()
