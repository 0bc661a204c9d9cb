"""Configuration replication on real processes: the first synchronisation of
real and generated trees, changes on the primary, local edits on a
secondary, the config commands, restarts, an unreadable file and a node
added later."""

import os
import random
import shutil
import subprocess
import time
import unittest
from pathlib import Path

import harness
from harness import PRIMARY, describe_tree_difference, tree_snapshot

SECONDARIES = ["mx2", "mx3"]
REPOSITORY = Path(__file__).resolve().parents[2]

# Limits for a loaded 2-core machine. On a 2-core VM while a compiler ran,
# 60 MB took 2.5 s to replicate (test_replication_faults.py), and the few MB
# of these tests much less.
JOIN_LIMIT_S = 30.0
SYNC_LIMIT_S = 60.0
CHANGE_LIMIT_S = 30.0
# Changes found by the inotify watcher replicated within 1 s on the 2-core
# VM above, and the periodic rescan, which finds any other change, runs only
# every 60 s.
WATCH_LIMIT_S = 10.0
# A secondary that cleans up leftover temporary files does it at startup,
# before its first job, so convergence plus this is plenty.
LEFTOVER_LIMIT_S = 5.0

# Files that must never leave the primary: the shared folders and lock files
# that replication excludes by default.
EXCLUDED_FILES = [
    "Users/alice@example.com/INBOX/1.msg",
    "Public Folders/Announcements/1.msg",
    "LockFiles/queue.lck",
    "PEM/example.com/key.pem",
    "Archives/2026/12.mbx",
    "Digests/list/1.txt",
    "Gateways/gw/1.msg",
    "Queues/Remote/1.msg",
    "dovecot/conf.d/editing.lock",
    "generated/deep/x.lck",
]


def write_file(path: Path, content: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.chmod(path, mode)


def write_generated_tree(root: Path, seed: int) -> None:
    """Write a tree with awkward names, binary, empty and multi-chunk files,
    several modes and deep folders (about 8 MB), the same for every seed."""
    generator = random.Random(seed)
    names = [
        "plain.conf",
        "name with spaces.conf",
        "  leading and trailing spaces  ",
        "Überweisungen – Regeln.txt",
        "日本語のメール設定.cfg",
        "emoji 📬 inbox.rules",
        "-starts-with-dash",
        "#hash and 'quotes' \"double\".ini",
        ".hidden",
        "semi;colon&ampersand$dollar",
        "line\nbreak.conf",
        "tab\tand\x7fdelete",
    ]
    for index, name in enumerate(names):
        write_file(root / "names" / name, generator.randbytes(generator.randint(1, 3000)),
                   [0o644, 0o600, 0o640, 0o755][index % 4])

    # A name that is not valid UTF-8 (Latin-1 "café"), as a byte path.
    latin1 = os.path.join(os.fsencode(root / "names"), b"caf\xe9.txt")
    with open(latin1, "wb") as handle:
        handle.write(b"latin-1 name\n")

    for index in range(5):
        write_file(root / "empty" / f"empty-{index}", b"", 0o644 if index % 2 else 0o600)

    # Sizes around the secondary's 1 MiB fetch size and the primary's 4 MiB
    # limit per range.
    for size in [1, 255, 256, 257, 65536, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, (4 << 20) + 3]:
        write_file(root / "binary" / f"blob-{size}.bin", generator.randbytes(size))

    deep = root / "deep"
    for level in range(30):
        deep = deep / f"level {level:02d}"
    write_file(deep / "bottom.conf", b"deep = yes\n", 0o640)

    for index in range(200):
        folder = root / "many" / f"folder-{index % 10}"
        write_file(folder / f"rule-{index:03d}.cf", generator.randbytes(generator.randint(0, 8000)),
                   0o755 if index % 7 == 0 else 0o644)

    write_file(root / "setuid-like.sh", b"#!/bin/sh\n", 0o4755)
    # A folder named like an excluded top-level folder, but below the top:
    # only top-level names are excluded.
    write_file(root / "Users" / "kept.txt", b"replicated, because it is not at the top level\n")


def fetch_real_trees(test: unittest.TestCase) -> Path:
    """Return the cache of scripts/fetch-real-trees, or skip the test when the
    script cannot fetch the Debian packages."""
    script = REPOSITORY / "scripts" / "fetch-real-trees"
    result = subprocess.run([str(script)], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        test.skipTest(f"scripts/fetch-real-trees failed with exit code {result.returncode}: "
                      f"{result.stderr.strip()[-500:]}")
    cache = Path(result.stdout.strip().splitlines()[-1])
    for name in ["dovecot", "spamassassin"]:
        if not (cache / name).is_dir():
            raise AssertionError(f"scripts/fetch-real-trees printed {cache}, which has no {name}/ folder")
    return cache


def is_excluded_by_default(path: str) -> bool:
    top = path.split("/", 1)[0]
    excluded_top = {"Users", "Public Folders", "LockFiles", "PEM", "Archives", "Digests", "Gateways", "Queues"}
    return top in excluded_top or path.endswith(".lock") or path.endswith(".lck")


def is_excluded_or_temporary(path: str) -> bool:
    return is_excluded_by_default(path) or os.path.basename(path).startswith(harness.TEMPORARY_PREFIX)


class ReplicationTestCase(harness.ClusterTestCase):
    def start_cluster(self, nodes: int = 3, prepare=None) -> harness.Cluster:
        """Make a cluster, call prepare(cluster) to fill the configuration
        directories, start every node and wait until all have joined."""
        cluster = self.make_cluster(nodes=nodes)
        for node in cluster.node_names():
            cluster.config_dir(node).mkdir(parents=True, exist_ok=True)
        if prepare:
            prepare(cluster)
        cluster.start_all()
        cluster.wait_until_joined(timeout_s=JOIN_LIMIT_S)
        return cluster

    def primary_tree(self, cluster: harness.Cluster) -> dict:
        """Return the snapshot of the primary's tree without excluded files,
        which is what every secondary must hold."""
        snapshot = tree_snapshot(cluster.config_dir(PRIMARY))
        return {path: value for path, value in snapshot.items() if not is_excluded_by_default(path)}

    def wait_for_convergence(self, cluster: harness.Cluster, nodes=SECONDARIES, limit_s: float = CHANGE_LIMIT_S,
                             since=None) -> dict:
        """Wait until every node in `nodes` has the primary's tree (temporary
        files aside) and has applied the primary's generation, and return the
        primary's replication status."""
        start = time.monotonic() if since is None else since
        expected = self.primary_tree(cluster)
        for node in nodes:
            cluster.wait_for_tree(node, expected, limit_s, since=start, ignore=is_excluded_or_temporary)
        primary = cluster.wait_for_admin(PRIMARY, CHANGE_LIMIT_S)["replication"]
        cluster.wait_for_generation(nodes, primary["applied_generation"], limit_s, since=start)
        return primary

    def generation(self, cluster: harness.Cluster) -> int:
        return cluster.wait_for_admin(PRIMARY, CHANGE_LIMIT_S)["replication"]["applied_generation"]


class InitialSyncTest(ReplicationTestCase):
    def test_real_and_generated_trees(self):
        cache = fetch_real_trees(self)
        leftovers = {"mx2": "stale/only-on-mx2.conf", "mx3": "stale.conf"}
        local_excluded = {"mx2": "Users/mx2-local/INBOX/1.msg", "mx3": "dovecot/conf.d/local-edit.lock"}

        def prepare(cluster):
            primary_dir = cluster.config_dir(PRIMARY)
            for name in ["dovecot", "spamassassin"]:
                shutil.copytree(cache / name, primary_dir / name, symlinks=True)
            write_generated_tree(primary_dir / "generated", seed=20261204)
            for path in EXCLUDED_FILES:
                write_file(primary_dir / path, b"must stay on the primary\n")
            # A secondary's own files outside the replicated set: a stale
            # file is removed, a file in an excluded folder is left alone.
            for node in SECONDARIES:
                write_file(cluster.config_dir(node) / leftovers[node], b"stale\n")
                write_file(cluster.config_dir(node) / local_excluded[node], b"local mail\n")

        started = time.monotonic()
        cluster = self.start_cluster(prepare=prepare)
        expected = self.primary_tree(cluster)
        dovecot_files = [path for path in expected if path.startswith("dovecot/")]
        spamassassin_files = [path for path in expected if path.startswith("spamassassin/")]
        self.assertGreater(len(dovecot_files), 20, f"the dovecot tree in {cache} looks empty")
        self.assertGreater(len(spamassassin_files), 20, f"the spamassassin tree in {cache} looks empty")

        for node in SECONDARIES:
            cluster.wait_for_tree(node, expected, SYNC_LIMIT_S, since=started, ignore=is_excluded_by_default)
        primary = cluster.wait_for_admin(PRIMARY, CHANGE_LIMIT_S)["replication"]
        statuses = cluster.wait_for_generation(SECONDARIES, primary["applied_generation"], SYNC_LIMIT_S,
                                               since=started)

        total_bytes = sum(os.path.getsize(cluster.config_dir(PRIMARY) / path) for path in expected)
        context = cluster.explain(f"primary replication status: {primary}")
        self.assertEqual(primary["files"], len(expected), context)
        self.assertEqual(primary["bytes"], total_bytes, context)
        for node in SECONDARIES:
            snapshot = tree_snapshot(cluster.config_dir(node))
            context = cluster.explain(f"tree of {node}: {describe_tree_difference(expected, snapshot)}", [node])
            for path in EXCLUDED_FILES:
                self.assertNotIn(path, snapshot, context)
            self.assertNotIn(leftovers[node], snapshot, context)
            self.assertIn(local_excluded[node], snapshot, context)
            self.assertIn("generated/Users/kept.txt", snapshot, context)
            self.assertEqual(snapshot["generated/setuid-like.sh"][1], 0o4755, context)
            self.assertEqual(harness.temporary_files(cluster.config_dir(node)), [], context)
            replication = statuses[node]
            context = cluster.explain(f"replication status of {node}: {replication}", [node])
            self.assertEqual(replication["files"], len(expected), context)
            self.assertEqual(replication["bytes"], total_bytes, context)
            self.assertEqual(replication["lag_generations"], 0, context)
            self.assertEqual(replication["pending_files"], 0, context)
            self.assertEqual(replication["error"], "", context)

        generation = primary["applied_generation"]
        for node in SECONDARIES:
            seen = {}

            def reported(node=node):
                seen[node] = cluster.peer_replication(PRIMARY, node)
                replication = seen[node]
                return replication and replication["applied_generation"] == generation and \
                    replication["state"] == "idle" and replication["lag_generations"] == 0

            cluster.wait_for(f"the primary reports {node} idle at generation {generation}", reported, CHANGE_LIMIT_S,
                             last_seen=lambda node=node: seen.get(node))

        line = cluster.find_log(
            PRIMARY, rf"Completed rebuilding current replication file list: generation={generation} "
                     rf"files={len(expected)} bytes={total_bytes} ")
        self.assertIsNotNone(line, cluster.explain(f"no rebuild of generation {generation} with {len(expected)} files",
                                                   [PRIMARY]))
        for node in SECONDARIES:
            line = cluster.find_log(node, rf"Replication Signal from: {PRIMARY} generation={generation} "
                                          rf"files={len(expected)}")
            self.assertIsNotNone(line, cluster.explain(f"{node} logged no signal of generation {generation}", [node]))
            line = cluster.find_log(node, rf"Replication Job Completed: generation={generation} "
                                          rf"files={len(expected)} bytes={total_bytes} deleted=1 ")
            self.assertIsNotNone(line, cluster.explain(f"{node} logged no completed job with every file and one "
                                                       f"deletion", [node]))


class PrimaryChangesTest(ReplicationTestCase):
    def test_each_change_converges(self):
        def prepare(cluster):
            root = cluster.config_dir(PRIMARY)
            write_file(root / "dovecot.conf", b"protocols = imap pop3\n")
            write_file(root / "conf.d/10-auth.conf", b"auth_mechanisms = plain\n", 0o640)
            write_file(root / "conf.d/10-mail.conf", b"mail_location = maildir:~/Maildir\n")
            write_file(root / "rules/local.cf", b"score SPAM 5\n")
            # A new file is an IN_CREATE and, later, an IN_CLOSE_WRITE. The
            # debounce is raised from 20 ms so that a writer descheduled
            # between the two on a loaded machine still makes one change.
            cluster.set_option(PRIMARY, "replication", "debounce", "300ms")

        cluster = self.start_cluster(prepare=prepare)
        self.wait_for_convergence(cluster, limit_s=SYNC_LIMIT_S)
        root = cluster.config_dir(PRIMARY)

        def modify():
            (root / "dovecot.conf").write_bytes(b"protocols = imap pop3 lmtp\n")

        def add():
            write_file(root / "conf.d/new folder/20-imap.conf", b"imap_idle_notify_interval = 2 mins\n", 0o600)

        def delete():
            (root / "conf.d/10-mail.conf").unlink()

        def rename():
            os.rename(root / "rules/local.cf", root / "rules/renamed local.cf")

        def change_mode():
            os.chmod(root / "conf.d/10-auth.conf", 0o600)

        def grow():
            (root / "rules/renamed local.cf").write_bytes(os.urandom(3 << 20))

        # Each step with the counts that the secondaries' job line reports.
        steps = [
            ("modify", modify, "files=1 bytes=27 deleted=0 modes=0"),
            ("add", add, "files=1 bytes=35 deleted=0 modes=0"),
            ("delete", delete, "files=0 bytes=0 deleted=1 modes=0"),
            ("rename", rename, "files=1 bytes=13 deleted=1 modes=0"),
            ("mode change", change_mode, "files=0 bytes=0 deleted=0 modes=1"),
            ("grow to 3 MB", grow, f"files=1 bytes={3 << 20} deleted=0 modes=0"),
        ]
        for name, step, counts in steps:
            with self.subTest(change=name):
                before = self.generation(cluster)
                marks = {node: cluster.log_mark(node) for node in SECONDARIES}
                changed_at = time.monotonic()
                step()
                primary = self.wait_for_convergence(cluster, since=changed_at)
                context = cluster.explain(f"generation before the {name}: {before}; primary status now: {primary}")
                self.assertEqual(primary["applied_generation"], before + 1, context)
                for node in SECONDARIES:
                    jobs = cluster.find_logs(node, r"Replication Job Completed: ", marks[node])
                    self.assertEqual(len(jobs), 1, cluster.explain(f"{node} jobs after the {name}: {jobs}", [node]))
                    self.assertIn(f"generation={before + 1} {counts} ", jobs[0],
                                  cluster.explain(f"{node} job after the {name}: {jobs[0]}", [node]))

        context = cluster.explain("trees after every change")
        for node in SECONDARIES:
            snapshot = tree_snapshot(cluster.config_dir(node))
            self.assertNotIn("conf.d/10-mail.conf", snapshot, context)
            self.assertNotIn("rules/local.cf", snapshot, context)
            self.assertEqual(snapshot["conf.d/10-auth.conf"][1], 0o600, context)
            self.assertEqual(snapshot["conf.d/new folder/20-imap.conf"][1], 0o600, context)
            self.assertEqual((cluster.config_dir(node) / "dovecot.conf").read_bytes(),
                             b"protocols = imap pop3 lmtp\n", context)

    def test_file_becomes_folder(self):
        def prepare(cluster):
            write_file(cluster.config_dir(PRIMARY) / "spam.cf", b"score A 1\n")

        cluster = self.start_cluster(prepare=prepare)
        self.wait_for_convergence(cluster, limit_s=SYNC_LIMIT_S)
        root = cluster.config_dir(PRIMARY)
        changed_at = time.monotonic()
        (root / "spam.cf").unlink()
        write_file(root / "spam.cf/10-local.cf", b"score A 2\n")
        self.wait_for_convergence(cluster, since=changed_at)

    # A folder on the primary replaced by a file of the same name: the
    # secondary must delete the folder's files before it renames the file
    # into place (it once failed with "Is a directory" on every retry).
    def test_folder_becomes_file(self):
        def prepare(cluster):
            write_file(cluster.config_dir(PRIMARY) / "spam.cf/10-local.cf", b"score A 1\n")

        cluster = self.start_cluster(prepare=prepare)
        self.wait_for_convergence(cluster, limit_s=SYNC_LIMIT_S)
        root = cluster.config_dir(PRIMARY)
        changed_at = time.monotonic()
        shutil.rmtree(root / "spam.cf")
        write_file(root / "spam.cf", b"score A 2\n")
        self.wait_for_convergence(cluster, limit_s=WATCH_LIMIT_S, since=changed_at)

    def test_renamed_folder_still_watched(self):
        def prepare(cluster):
            write_file(cluster.config_dir(PRIMARY) / "old name/sub/rule.cf", b"score A 1\n")

        cluster = self.start_cluster(prepare=prepare)
        self.wait_for_convergence(cluster, limit_s=SYNC_LIMIT_S)
        root = cluster.config_dir(PRIMARY)
        renamed_at = time.monotonic()
        os.rename(root / "old name", root / "new name")
        self.wait_for_convergence(cluster, since=renamed_at)
        # The primary's rescan runs every 60 s, so within the limit only the
        # watch on the moved folder can find this change.
        changed_at = time.monotonic()
        (root / "new name/sub/rule.cf").write_bytes(b"score A 2\n")
        write_file(root / "new name/sub/added.cf", b"score B 1\n")
        self.wait_for_convergence(cluster, since=changed_at)

    # The configuration directory itself is replaced (the old one renamed
    # away, a restored copy renamed into its place): the primary's watcher
    # must follow to the new folder instead of waiting for the rescan.
    def test_replaced_directory_still_watched(self):
        def prepare(cluster):
            write_file(cluster.config_dir(PRIMARY) / "dovecot.conf", b"protocols = imap\n")

        cluster = self.start_cluster(prepare=prepare)
        self.wait_for_convergence(cluster, limit_s=SYNC_LIMIT_S)
        root = cluster.config_dir(PRIMARY)
        restored = cluster.root / "restored-config"
        write_file(restored / "dovecot.conf", b"protocols = imap pop3\n")
        replaced_at = time.monotonic()
        os.rename(root, cluster.root / "config.old")
        os.rename(restored, root)
        self.wait_for_convergence(cluster, since=replaced_at)
        # Well inside the first rescan, 60 s after the start: only the
        # watcher can find this change in time.
        edited_at = time.monotonic()
        (root / "dovecot.conf").write_bytes(b"protocols = imap pop3 lmtp\n")
        self.wait_for_convergence(cluster, limit_s=WATCH_LIMIT_S, since=edited_at)

    def test_delete_removes_empty_folders(self):
        def prepare(cluster):
            write_file(cluster.config_dir(PRIMARY) / "a/b/c/only.conf", b"x\n")
            write_file(cluster.config_dir(PRIMARY) / "a/keep.conf", b"y\n")

        cluster = self.start_cluster(prepare=prepare)
        self.wait_for_convergence(cluster, limit_s=SYNC_LIMIT_S)
        deleted_at = time.monotonic()
        shutil.rmtree(cluster.config_dir(PRIMARY) / "a/b")
        self.wait_for_convergence(cluster, since=deleted_at)
        for node in SECONDARIES:
            folder = cluster.config_dir(node) / "a/b"
            self.assertFalse(folder.exists(), cluster.explain(f"{folder} is left after its only file was deleted",
                                                              [node]))


class SecondaryEditsTest(ReplicationTestCase):
    def test_local_edits_are_overwritten(self):
        def prepare(cluster):
            root = cluster.config_dir(PRIMARY)
            write_file(root / "dovecot.conf", b"protocols = imap\n")
            write_file(root / "conf.d/10-ssl.conf", b"ssl = required\n", 0o640)
            write_file(root / "conf.d/90-quota.conf", b"quota = maildir\n")

        cluster = self.start_cluster(prepare=prepare)
        primary = self.wait_for_convergence(cluster, limit_s=SYNC_LIMIT_S)
        generation = primary["applied_generation"]
        marks = {node: cluster.log_mark(node) for node in SECONDARIES}
        edited_at = time.monotonic()
        mx2 = cluster.config_dir("mx2")
        mx3 = cluster.config_dir("mx3")
        (mx2 / "dovecot.conf").write_bytes(b"protocols = none # rogue edit\n")
        write_file(mx2 / "conf.d/99-rogue.conf", b"ssl = no\n")
        (mx3 / "conf.d/90-quota.conf").unlink()
        os.chmod(mx3 / "conf.d/10-ssl.conf", 0o666)

        self.wait_for_convergence(cluster, since=edited_at)
        warnings = [
            ("mx2", r"Warning replication local change to 'dovecot\.conf' on this secondary is overwritten "
                    r"with the primary's copy"),
            ("mx2", r"Warning replication 'conf\.d/99-rogue\.conf' was added on this secondary and is removed"),
            ("mx3", r"Warning replication 'conf\.d/90-quota\.conf' was deleted on this secondary and is restored"),
        ]
        for node, pattern in warnings:
            cluster.wait_for_log(node, pattern, CHANGE_LIMIT_S, after=marks[node], since=edited_at)
        self.assertEqual(self.generation(cluster), generation,
                         cluster.explain("an edit on a secondary changed the primary's generation"))
        self.assertFalse((mx2 / "conf.d/99-rogue.conf").exists(), cluster.explain("rogue file is left", ["mx2"]))
        mode = os.stat(mx3 / "conf.d/10-ssl.conf").st_mode & 0o7777
        self.assertEqual(mode, 0o640, cluster.explain(f"mode on mx3 is {mode:04o}", ["mx3"]))


    def test_edit_while_primary_down(self):
        def prepare(cluster):
            write_file(cluster.config_dir(PRIMARY) / "dovecot.conf", b"protocols = imap\n")

        cluster = self.start_cluster(prepare=prepare)
        self.wait_for_convergence(cluster, limit_s=SYNC_LIMIT_S)
        mark = cluster.log_mark("mx2")
        cluster.kill(PRIMARY)
        edited = cluster.config_dir("mx2") / "dovecot.conf"
        edited.write_bytes(b"protocols = none # edited while the primary is down\n")
        restarted_at = time.monotonic()
        cluster.start(PRIMARY)
        cluster.wait_until_joined(timeout_s=JOIN_LIMIT_S)
        self.wait_for_convergence(cluster, since=restarted_at)
        cluster.wait_for_log("mx2", r"local change to 'dovecot\.conf' on this secondary is overwritten", CHANGE_LIMIT_S,
                             after=mark, since=restarted_at)


class OwnFilesTest(ReplicationTestCase):
    # A config-dir that contains the node's role config, TLS files and log
    # (the node folder of init-local-cluster): a secondary must keep its
    # own, or it would run as the primary after its next restart.
    def test_own_files_in_config_dir_kept(self):
        cluster = self.make_cluster(nodes=2)
        for node in cluster.node_names():
            cluster.set_option(node, "replication", "config-dir", f'"{cluster.node_dir(node)}"')
        own_files = ["node.ini", "tls/node.key", "tls/node.pem"]
        originals = {path: harness.file_sha256(cluster.node_dir("mx2") / path) for path in own_files}
        # mailclusterctl reads the node.ini it is given, so a copy reaches mx2
        # even if its node.ini is overwritten.
        saved_config = cluster.root / "mx2-node.ini"
        shutil.copyfile(cluster.config("mx2"), saved_config)
        cluster.start_all()

        def settled():
            if not cluster.is_running(PRIMARY) or not cluster.is_running("mx2"):
                return "a node exited"
            primary = cluster.replication(PRIMARY)
            status = cluster.try_status("mx2", config=saved_config)
            secondary = status.get("replication") if status else None
            if not primary or not secondary or secondary["state"] != "idle":
                return None
            return secondary["applied_generation"] == primary["applied_generation"]

        cluster.wait_for("mx2 applied the primary's generation, or a node exited", settled, SYNC_LIMIT_S)
        for path in own_files:
            digest = harness.file_sha256(cluster.node_dir("mx2") / path)
            self.assertEqual(digest, originals[path], cluster.explain(f"mx2's {path} was overwritten"))


class SymlinkedFolderTest(ReplicationTestCase):
    """A folder on a secondary replaced by a symbolic link to a folder outside
    the configuration directory."""

    def replace_with_symlink(self) -> tuple[harness.Cluster, Path, float]:
        def prepare(cluster):
            write_file(cluster.config_dir(PRIMARY) / "conf.d/10-auth.conf", b"auth_mechanisms = plain\n")

        cluster = self.start_cluster(prepare=prepare)
        self.wait_for_convergence(cluster, limit_s=SYNC_LIMIT_S)
        outside = cluster.root / "outside"
        outside.mkdir()
        folder = cluster.config_dir("mx2") / "conf.d"
        replaced_at = time.monotonic()
        shutil.rmtree(folder)
        os.symlink(outside, folder)
        return cluster, outside, replaced_at

    def test_symlink_not_followed(self):
        cluster, outside, replaced_at = self.replace_with_symlink()
        cluster.wait_for_log("mx2", r"'conf\.d' on this secondary is a symbolic link", CHANGE_LIMIT_S,
                             since=replaced_at)
        self.assertEqual(os.listdir(outside), [], cluster.explain("mx2 wrote through the symbolic link", ["mx2"]))

    # A symbolic link in the way of a replicated folder is replaced by a
    # real folder (it once made every retry fail, each 2 s).
    def test_symlink_replaced_by_folder(self):
        cluster, outside, replaced_at = self.replace_with_symlink()
        self.wait_for_convergence(cluster, limit_s=WATCH_LIMIT_S, since=replaced_at)
        self.assertFalse(os.path.islink(cluster.config_dir("mx2") / "conf.d"), cluster.explain("link is left", ["mx2"]))


class HiddenEditTest(ReplicationTestCase):
    """Edits that keep a file's size and modification time, which the
    stat-based checks cannot see, are found by the rolling rehash within
    one rescan interval."""

    def start_with_short_rescan(self):
        def prepare(cluster):
            for node in cluster.node_names():
                cluster.set_option(node, "replication", "rescan-interval", "2s")
            write_file(cluster.config_dir(PRIMARY) / "dovecot.conf", b"protocols = imap\n")

        cluster = self.start_cluster(prepare=prepare)
        self.wait_for_convergence(cluster, limit_s=SYNC_LIMIT_S)
        return cluster

    @staticmethod
    def rewrite_keeping_stat(path: Path, content: bytes) -> None:
        before = os.stat(path)
        assert len(content) == before.st_size
        path.write_bytes(content)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))

    def test_hidden_edit_on_primary(self):
        cluster = self.start_with_short_rescan()
        edited_at = time.monotonic()
        self.rewrite_keeping_stat(cluster.config_dir(PRIMARY) / "dovecot.conf", b"protocols = pop3\n")
        self.wait_for_convergence(cluster, limit_s=10, since=edited_at)
        for node in SECONDARIES:
            content = (cluster.config_dir(node) / "dovecot.conf").read_bytes()
            self.assertEqual(content, b"protocols = pop3\n", cluster.explain(f"{node} holds {content!r}", [node]))

    def test_hidden_edit_on_secondary(self):
        cluster = self.start_with_short_rescan()
        path = cluster.config_dir("mx2") / "dovecot.conf"
        edited_at = time.monotonic()
        self.rewrite_keeping_stat(path, b"protocols = pop3\n")
        cluster.wait_for("mx2's hidden edit overwritten", lambda: path.read_bytes() == b"protocols = imap\n", 10,
                         since=edited_at, nodes=["mx2"])
        cluster.wait_for_log("mx2", r"local change to 'dovecot\.conf'", 5, since=edited_at)


class RemovedServerTest(ReplicationTestCase):
    def test_removed_server_gets_no_changes(self):
        def prepare(cluster):
            write_file(cluster.config_dir(PRIMARY) / "dovecot.conf", b"protocols = imap\n")

        cluster = self.start_cluster(prepare=prepare)
        self.wait_for_convergence(cluster, limit_s=SYNC_LIMIT_S)
        result = cluster.ctl(PRIMARY, "remove-server", "mx3")
        self.assertEqual(result.returncode, 0, cluster.explain(f"remove-server: {result.stderr}"))
        changed_at = time.monotonic()
        write_file(cluster.config_dir(PRIMARY) / "dovecot.conf", b"protocols = pop3\n")
        self.wait_for_convergence(cluster, nodes=["mx2"], limit_s=CHANGE_LIMIT_S, since=changed_at)
        # mx2 has the change; give mx3 the same time again to (wrongly) get it.
        time.sleep(max(1.0, time.monotonic() - changed_at))
        content = (cluster.config_dir("mx3") / "dovecot.conf").read_bytes()
        self.assertEqual(content, b"protocols = imap\n", cluster.explain("removed mx3 still got the change", ["mx3"]))


class EmptyPrimaryTest(ReplicationTestCase):
    def test_empty_primary_dir_deletes_nothing(self):
        """A primary that restarts with an empty configuration directory (an
        unmounted file system) pauses instead of deleting every copy."""

        def prepare(cluster):
            write_file(cluster.config_dir(PRIMARY) / "dovecot.conf", b"protocols = imap\n")
            write_file(cluster.config_dir(PRIMARY) / "conf.d/10-auth.conf", b"auth = plain\n")

        cluster = self.start_cluster(prepare=prepare)
        self.wait_for_convergence(cluster, limit_s=SYNC_LIMIT_S)
        cluster.terminate(PRIMARY, timeout_s=10)
        aside = cluster.root / "aside"
        shutil.move(str(cluster.config_dir(PRIMARY)), str(aside))
        cluster.config_dir(PRIMARY).mkdir()
        mark = cluster.log_mark(PRIMARY)
        cluster.start(PRIMARY)
        cluster.wait_for_log(PRIMARY, r"is empty, but it held 2 files", WATCH_LIMIT_S, after=mark)
        cluster.wait_until_joined(timeout_s=JOIN_LIMIT_S)
        time.sleep(2)
        for node in SECONDARIES:
            self.assertTrue((cluster.config_dir(node) / "dovecot.conf").exists(),
                            cluster.explain(f"{node} lost its copy", [node]))
        # Files coming back resume replication.
        resumed_at = time.monotonic()
        shutil.copytree(aside, cluster.config_dir(PRIMARY), dirs_exist_ok=True)
        write_file(cluster.config_dir(PRIMARY) / "new.conf", b"x = 1\n")
        self.wait_for_convergence(cluster, limit_s=CHANGE_LIMIT_S, since=resumed_at)


class PrimaryExclusionsTest(ReplicationTestCase):
    def test_primary_exclusions_keep_local_files(self):
        """Files below a name the primary excludes stay on each secondary."""

        def prepare(cluster):
            cluster.set_option(PRIMARY, "replication", "exclude", '"Local Rules"')
            write_file(cluster.config_dir(PRIMARY) / "dovecot.conf", b"protocols = imap\n")
            write_file(cluster.config_dir(PRIMARY) / "Local Rules/a.cf", b"primary only\n")
            write_file(cluster.config_dir("mx2") / "Local Rules/mine.cf", b"mx2 only\n")

        cluster = self.start_cluster(prepare=prepare)
        cluster.wait_for("dovecot.conf on mx2", lambda: (cluster.config_dir("mx2") / "dovecot.conf").exists(),
                         SYNC_LIMIT_S, nodes=["mx2"])
        changed_at = time.monotonic()
        write_file(cluster.config_dir(PRIMARY) / "dovecot.conf", b"protocols = pop3\n")
        cluster.wait_for("change on mx2",
                         lambda: (cluster.config_dir("mx2") / "dovecot.conf").read_bytes() == b"protocols = pop3\n",
                         CHANGE_LIMIT_S, since=changed_at, nodes=["mx2"])
        mine = cluster.config_dir("mx2") / "Local Rules/mine.cf"
        self.assertTrue(mine.exists(), cluster.explain("mx2's file below an excluded name was deleted", ["mx2"]))
        self.assertFalse((cluster.config_dir("mx2") / "Local Rules/a.cf").exists(),
                         cluster.explain("an excluded file was replicated", ["mx2"]))
        self.assertIsNone(cluster.find_log("mx2", r"Local Rules/mine\.cf"), cluster.explain("warned about mine.cf", ["mx2"]))


class OwnerTest(ReplicationTestCase):
    def test_owner_and_group_replicate(self):
        """Files keep their owner and group by name, as dovecot's root:dovecot
        0640 files need; a chgrp alone replicates too."""
        import grp

        def group_of(path):
            return grp.getgrgid(os.stat(path).st_gid).gr_name

        def prepare(cluster):
            path = cluster.config_dir(PRIMARY) / "passwd.conf"
            write_file(path, b"user:{PLAIN}secret\n", 0o640)
            shutil.chown(path, user="root", group="mail")

        cluster = self.start_cluster(prepare=prepare)
        self.wait_for_convergence(cluster, limit_s=SYNC_LIMIT_S)
        for node in SECONDARIES:
            copy = cluster.config_dir(node) / "passwd.conf"
            self.assertEqual(group_of(copy), "mail", cluster.explain(f"group on {node}", [node]))
        changed_at = time.monotonic()
        shutil.chown(cluster.config_dir(PRIMARY) / "passwd.conf", group="nogroup")
        for node in SECONDARIES:
            copy = cluster.config_dir(node) / "passwd.conf"
            cluster.wait_for(f"group nogroup on {node}", lambda: group_of(copy) == "nogroup", CHANGE_LIMIT_S,
                             since=changed_at, nodes=[node])


class LeftoverTemporaryFilesTest(ReplicationTestCase):
    # A secondary killed in the middle of a transfer leaves .mc-tmp.* files
    # behind; the next start removes them. This test places such a file
    # directly instead of killing a transfer.
    def test_leftover_temporary_file_removed(self):
        leftover = "conf.d/.mc-tmp.0123456789ab.10-auth.conf"

        def prepare(cluster):
            write_file(cluster.config_dir(PRIMARY) / "conf.d/10-auth.conf", b"auth_mechanisms = plain\n")
            write_file(cluster.config_dir("mx2") / leftover, b"auth_mech")

        cluster = self.start_cluster(prepare=prepare)
        self.wait_for_convergence(cluster, limit_s=SYNC_LIMIT_S)
        path = cluster.config_dir("mx2") / leftover
        cluster.wait_for(f"{path} removed", lambda: not path.exists(), LEFTOVER_LIMIT_S, nodes=["mx2"])


class ConfigCommandsTest(ReplicationTestCase):
    def setUp(self):
        def prepare(cluster):
            write_file(cluster.config_dir(PRIMARY) / "dovecot.conf", b"protocols = imap\n", 0o640)

        self.cluster = self.start_cluster(prepare=prepare)
        self.wait_for_convergence(self.cluster, limit_s=SYNC_LIMIT_S)
        self.content_file = self.cluster.root / "new-content.conf"
        self.content_file.write_bytes(b"mail_plugins = quota\n")

    def run_ctl(self, node, *args, stdin=None):
        command = self.cluster.ctl_command(node, *args)
        result = subprocess.run(command, input=stdin, capture_output=True, timeout=20)
        return result, self.cluster.explain(
            f"{' '.join(args)} on {node}: exit {result.returncode}\nstdout: {result.stdout!r}\nstderr: {result.stderr!r}",
            [node])

    def test_writes_rejected_on_secondary(self):
        cluster = self.cluster
        address = f"127.0.0.1:{cluster.cluster_port(PRIMARY)}"
        generation = self.generation(cluster)
        cases = [
            ("put", ["config", "put", "conf.d/new.conf", "--from", str(self.content_file)], None),
            ("put from stdin", ["config", "put", "conf.d/new.conf"], b"x = 1\n"),
            ("put existing", ["config", "put", "dovecot.conf", "--from", str(self.content_file)], None),
            ("delete", ["config", "delete", "dovecot.conf"], None),
        ]
        for name, args, stdin in cases:
            with self.subTest(command=name):
                result, context = self.run_ctl("mx2", *args, stdin=stdin)
                stderr = result.stderr.decode(errors="replace")
                self.assertEqual(result.returncode, 1, context)
                self.assertIn("secondary", stderr, context)
                self.assertIn("read-only", stderr, context)
                self.assertIn(PRIMARY, stderr, context)
                self.assertIn(address, stderr, context)
        for node in cluster.node_names():
            root = cluster.config_dir(node)
            self.assertFalse((root / "conf.d/new.conf").exists(), cluster.explain(f"a rejected put wrote on {node}"))
            self.assertEqual((root / "dovecot.conf").read_bytes(), b"protocols = imap\n",
                             cluster.explain(f"a rejected command changed dovecot.conf on {node}"))
        self.assertEqual(self.generation(cluster), generation, cluster.explain("rejected commands made a generation"))

    def test_reads_work_on_secondary(self):
        result, context = self.run_ctl("mx3", "config", "get", "dovecot.conf")
        self.assertEqual(result.returncode, 0, context)
        self.assertEqual(result.stdout, b"protocols = imap\n", context)
        result, context = self.run_ctl("mx3", "config", "list")
        self.assertEqual(result.returncode, 0, context)
        self.assertIn(b" dovecot.conf\n", result.stdout, context)

    def test_commands_on_primary_replicate(self):
        cluster = self.cluster
        generation = self.generation(cluster)

        result, context = self.run_ctl(PRIMARY, "config", "put", "conf.d/new.conf", "--from", str(self.content_file))
        self.assertEqual(result.returncode, 0, context)
        result, context = self.run_ctl(PRIMARY, "config", "put", "dovecot.conf", stdin=b"protocols = imap lmtp\n")
        self.assertEqual(result.returncode, 0, context)
        primary = self.wait_for_convergence(cluster)
        self.assertEqual(primary["applied_generation"], generation + 2,
                         cluster.explain(f"generation after two config put (before: {generation})"))
        for node in SECONDARIES:
            root = cluster.config_dir(node)
            context = cluster.explain(f"tree of {node} after config put", [node])
            self.assertEqual((root / "conf.d/new.conf").read_bytes(), b"mail_plugins = quota\n", context)
            self.assertEqual((root / "dovecot.conf").read_bytes(), b"protocols = imap lmtp\n", context)
            # put keeps the mode of the file it replaces.
            self.assertEqual(os.stat(root / "dovecot.conf").st_mode & 0o7777, 0o640, context)

        result, context = self.run_ctl(PRIMARY, "config", "get", "conf.d/new.conf")
        self.assertEqual(result.returncode, 0, context)
        self.assertEqual(result.stdout, b"mail_plugins = quota\n", context)
        result, context = self.run_ctl(PRIMARY, "config", "list")
        self.assertEqual(result.returncode, 0, context)
        listed = [line.split(b" ", 3)[-1] for line in result.stdout.splitlines()]
        self.assertEqual(sorted(listed), [b"conf.d/new.conf", b"dovecot.conf"], context)

        result, context = self.run_ctl(PRIMARY, "config", "delete", "conf.d/new.conf")
        self.assertEqual(result.returncode, 0, context)
        primary = self.wait_for_convergence(cluster)
        self.assertEqual(primary["applied_generation"], generation + 3,
                         cluster.explain(f"generation after config delete (before the puts: {generation})"))
        for node in cluster.node_names():
            path = cluster.config_dir(node) / "conf.d/new.conf"
            self.assertFalse(path.exists(), cluster.explain(f"{path} is left after config delete", [node]))

    def test_invalid_paths_rejected_on_primary(self):
        cluster = self.cluster
        generation = self.generation(cluster)
        cases = [
            ("Users/alice/INBOX/1.msg", "excluded"),
            ("conf.d/editing.lock", "excluded"),
            ("../outside.conf", "not allowed"),
            ("/etc/passwd", "not allowed"),
            ("a//b.conf", "not allowed"),
        ]
        for path, message in cases:
            with self.subTest(path=path):
                result, context = self.run_ctl(PRIMARY, "config", "put", path, "--from", str(self.content_file))
                self.assertEqual(result.returncode, 1, context)
                self.assertIn(message, result.stderr.decode(errors="replace"), context)
        self.assertFalse((cluster.config_dir(PRIMARY).parent / "outside.conf").exists(),
                         cluster.explain("config put wrote outside the configuration directory"))
        result, context = self.run_ctl(PRIMARY, "config", "delete", "missing.conf")
        self.assertEqual(result.returncode, 1, context)
        self.assertEqual(self.generation(cluster), generation, cluster.explain("rejected commands made a generation"))


class PrimaryRestartTest(ReplicationTestCase):
    def test_restart_keeps_generation(self):
        def prepare(cluster):
            write_generated_tree(cluster.config_dir(PRIMARY), seed=8)

        cluster = self.start_cluster(prepare=prepare)
        primary = self.wait_for_convergence(cluster, limit_s=SYNC_LIMIT_S)
        generation = primary["applied_generation"]
        marks = {node: cluster.log_mark(node) for node in cluster.node_names()}

        exit_code = cluster.terminate(PRIMARY, timeout_s=CHANGE_LIMIT_S)
        self.assertIsNotNone(exit_code, cluster.explain("the primary did not stop on SIGTERM", [PRIMARY]))
        restarted_at = time.monotonic()
        cluster.start(PRIMARY)
        cluster.wait_until_joined(timeout_s=JOIN_LIMIT_S)
        cluster.wait_for_log(PRIMARY, rf"Completed rebuilding current replication file list: "
                                      rf"generation={generation} .*unchanged-since-restart=true",
                             CHANGE_LIMIT_S, after=marks[PRIMARY], since=restarted_at)
        for node in SECONDARIES:
            cluster.wait_for_log(node, rf"Replication Signal from: {PRIMARY} generation={generation} ",
                                 CHANGE_LIMIT_S, after=marks[node], since=restarted_at)
        cluster.wait_for_generation(SECONDARIES, generation, CHANGE_LIMIT_S, since=restarted_at)
        self.assertEqual(self.generation(cluster), generation, cluster.explain("generation after an idle restart"))
        for node in SECONDARIES:
            jobs = cluster.find_logs(node, r"Replication Job Completed: ", marks[node])
            self.assertEqual(jobs, [], cluster.explain(f"{node} ran a job after a restart without changes", [node]))

        cluster.kill(PRIMARY)
        (cluster.config_dir(PRIMARY) / "names/plain.conf").write_bytes(b"changed while the primary was down\n")
        restarted_at = time.monotonic()
        cluster.start(PRIMARY)
        cluster.wait_until_joined(timeout_s=JOIN_LIMIT_S)
        primary = self.wait_for_convergence(cluster, since=restarted_at)
        self.assertEqual(primary["applied_generation"], generation + 1,
                         cluster.explain(f"generation after one change while the primary was down (before: {generation})"))
        for node in SECONDARIES:
            content = (cluster.config_dir(node) / "names/plain.conf").read_bytes()
            self.assertEqual(content, b"changed while the primary was down\n", cluster.explain(f"content on {node}"))


class SecondaryRestartTest(ReplicationTestCase):
    def test_restart_fetches_only_changes(self):
        def prepare(cluster):
            write_generated_tree(cluster.config_dir(PRIMARY), seed=12)

        cluster = self.start_cluster(prepare=prepare)
        primary = self.wait_for_convergence(cluster, limit_s=SYNC_LIMIT_S)
        generation = primary["applied_generation"]
        marks = {node: cluster.log_mark(node) for node in SECONDARIES}

        # mx3 restarts with nothing changed: it has applied everything.
        cluster.kill("mx3")
        restarted_at = time.monotonic()
        cluster.start("mx3")
        cluster.wait_for_log("mx3", rf"Replication Signal from: {PRIMARY} generation={generation} ", JOIN_LIMIT_S,
                             after=marks["mx3"], since=restarted_at)
        cluster.wait_for_generation(["mx3"], generation, CHANGE_LIMIT_S, since=restarted_at)
        jobs = cluster.find_logs("mx3", r"Replication Job Completed: ", marks["mx3"])
        self.assertEqual(jobs, [], cluster.explain("mx3 ran a job after a restart without changes", ["mx3"]))

        # mx2 misses one change, one new file and one deletion while it is down.
        cluster.kill("mx2")
        root = cluster.config_dir(PRIMARY)
        (root / "names/plain.conf").write_bytes(b"changed while mx2 was down\n")
        write_file(root / "added while mx2 was down.conf", b"new\n")
        (root / "binary/blob-65536.bin").unlink()
        primary = self.wait_for_convergence(cluster, nodes=["mx3"])
        seen = {}

        def lag_reported():
            seen["mx2"] = cluster.peer_replication(PRIMARY, "mx2")
            replication = seen["mx2"]
            return replication and replication["state"] == "offline" and replication["lag_generations"] >= 1

        cluster.wait_for("the primary reports mx2 offline and behind", lag_reported, CHANGE_LIMIT_S,
                         last_seen=lambda: seen.get("mx2"))
        context = cluster.explain(f"the primary's view of mx2: {seen['mx2']}")
        self.assertEqual(seen["mx2"]["applied_generation"], generation, context)
        self.assertEqual(seen["mx2"]["lag_generations"], primary["applied_generation"] - generation, context)
        self.assertGreater(seen["mx2"]["lag_ms"], 0, context)
        restarted_at = time.monotonic()
        cluster.start("mx2")
        self.wait_for_convergence(cluster, since=restarted_at)
        jobs = cluster.find_logs("mx2", r"Replication Job Completed: ", marks["mx2"])
        context = cluster.explain(f"jobs of mx2 after its restart: {jobs}", ["mx2"])
        self.assertEqual(len(jobs), 1, context)
        self.assertIn(" files=2 ", jobs[0], context)
        self.assertIn(" deleted=1 ", jobs[0], context)


class PrimaryCrashTest(ReplicationTestCase):
    # The primary saves its file list in the background right after each
    # generation. Killed soon after a change, it must find that list at its
    # restart and publish no extra generation.
    def test_kill_after_change_keeps_generation(self):
        def prepare(cluster):
            write_file(cluster.config_dir(PRIMARY) / "dovecot.conf", b"protocols = imap\n")

        cluster = self.start_cluster(prepare=prepare)
        self.wait_for_convergence(cluster, limit_s=SYNC_LIMIT_S)
        changed_at = time.monotonic()
        (cluster.config_dir(PRIMARY) / "dovecot.conf").write_bytes(b"protocols = imap pop3\n")
        primary = self.wait_for_convergence(cluster, since=changed_at)
        generation = primary["applied_generation"]
        mark = cluster.log_mark(PRIMARY)
        cluster.kill(PRIMARY)
        restarted_at = time.monotonic()
        cluster.start(PRIMARY)
        cluster.wait_until_joined(timeout_s=JOIN_LIMIT_S)
        cluster.wait_for_log(PRIMARY, r"Completed rebuilding current replication file list: ", CHANGE_LIMIT_S,
                             after=mark, since=restarted_at)
        self.assertEqual(self.generation(cluster), generation,
                         cluster.explain("generation after kill -9 of the primary right after a change"))


class UnreadableFileTest(ReplicationTestCase):
    def test_unreadable_file_is_skipped(self):
        # Root reads any file whatever its mode. A bind mount of
        # /proc/<pid>/mem is a regular file whose read at offset 0 fails with
        # EIO for root too, because address 0 is never mapped.
        unreadable = "conf.d/unreadable.conf"

        def prepare(cluster):
            root = cluster.config_dir(PRIMARY)
            write_generated_tree(root / "generated", seed=9)
            write_file(root / "conf.d/readable.conf", b"readable = yes\n")
            write_file(root / unreadable, b"")
            os.mkfifo(root / "conf.d/a-fifo")
            self.expected = self.primary_tree(cluster)
            del self.expected[unreadable]
            target = root / unreadable
            result = subprocess.run(["mount", "--bind", f"/proc/{os.getpid()}/mem", str(target)],
                                    capture_output=True, text=True, timeout=30)
            if result.returncode != 0:
                self.skipTest(f"cannot make a file unreadable for root: mount --bind failed: {result.stderr.strip()}")
            self.addCleanup(self.unmount, cluster, target)
            try:
                target.read_bytes()
            except OSError:
                pass
            else:
                self.skipTest(f"reading {target} (a bind mount of /proc/<pid>/mem) succeeded; "
                              f"no way found to make a file unreadable for root")

        cluster = self.start_cluster(prepare=prepare)
        for node in SECONDARIES:
            cluster.wait_for_tree(node, self.expected, SYNC_LIMIT_S, ignore=is_excluded_by_default)
        primary = cluster.wait_for_admin(PRIMARY, CHANGE_LIMIT_S)["replication"]
        self.assertEqual(primary["files"], len(self.expected), cluster.explain(f"primary status: {primary}"))
        cluster.wait_for_generation(SECONDARIES, primary["applied_generation"], CHANGE_LIMIT_S)
        cluster.wait_for_log(PRIMARY, rf"skipped while building the replication file list: cannot read "
                                      rf"'{unreadable}': Input/output error", CHANGE_LIMIT_S)
        for node in SECONDARIES:
            for path in [unreadable, "conf.d/a-fifo"]:
                self.assertFalse(os.path.lexists(cluster.config_dir(node) / path),
                                 cluster.explain(f"{path} exists on {node}", [node]))

    def unmount(self, cluster, target):
        cluster.stop_all()
        result = subprocess.run(["umount", str(target)], capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            subprocess.run(["umount", "-l", str(target)], capture_output=True, text=True, timeout=30)


class AddedNodeTest(ReplicationTestCase):
    def test_added_node_gets_full_tree(self):
        def prepare(cluster):
            write_generated_tree(cluster.config_dir(PRIMARY), seed=10)

        cluster = self.start_cluster(prepare=prepare)
        primary = self.wait_for_convergence(cluster, limit_s=SYNC_LIMIT_S)
        result = harness.run_command(
            [harness.binary("mailclusterctl"), "add-local-node", str(cluster.root), "mx4"], timeout_s=30)
        self.assertEqual(result.returncode, 0, cluster.explain(f"add-local-node: {result.stdout}{result.stderr}"))
        result = cluster.ctl(PRIMARY, "add-server", "mx4")
        self.assertEqual(result.returncode, 0, cluster.explain(f"add-server mx4: {result.stdout}{result.stderr}"))
        started_at = time.monotonic()
        cluster.start("mx4")
        cluster.wait_for_peer(PRIMARY, "mx4", "online", JOIN_LIMIT_S, since=started_at)
        cluster.wait_for_log(PRIMARY, r"Secondary cluster node added: Cluster Service on mx4 will now restart",
                             CHANGE_LIMIT_S, since=started_at)
        self.wait_for_convergence(cluster, nodes=["mx4"], limit_s=SYNC_LIMIT_S, since=started_at)
        line = cluster.find_log("mx4", rf"Replication Job Completed: generation={primary['applied_generation']} "
                                       rf"files={primary['files']} ")
        self.assertIsNotNone(line, cluster.explain("mx4 logged no job with every file", ["mx4"]))


if __name__ == "__main__":
    harness.main()
