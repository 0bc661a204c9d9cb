"""Start, break and observe local mailcluster clusters for integration tests.

Every test script imports this module, subclasses ClusterTestCase and calls
main(). A Cluster runs `mailclusterctl init-local-cluster` in a new temporary
directory on free loopback ports, starts mailclusterd processes there and
polls their status and logs until a condition is true or a deadline passes.

Cleanup: each test kills the processes it started (SIGCONT, then SIGKILL)
in its cleanup. The temporary directory is removed when the test passed and
kept, with its path printed, when it failed. An atexit hook and a SIGTERM or
SIGINT handler kill processes that still run and keep their directories.
Every child gets PR_SET_PDEATHSIG, so it dies with the test process even
when that is killed with SIGKILL, for example by the ctest timeout.
"""

from __future__ import annotations

import argparse
import atexit
import ctypes
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path
from typing import Callable, Iterable, Optional

# Directory of mailclusterd and mailclusterctl, set by main() from --bin-dir.
BIN_DIR: Optional[Path] = None

PRIMARY = "mx1"

# Interval between two polls of a condition.
POLL_INTERVAL_S = 0.1

# Number of log lines per file that failure messages include.
TAIL_LINES = 25

_PR_SET_PDEATHSIG = 1

# Clusters whose processes may still run, for the atexit and signal handlers.
_live_clusters: list["Cluster"] = []


# -- ports --------------------------------------------------------------------


def _ephemeral_port_range() -> tuple[int, int]:
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        low, high = (int(word) for word in text.split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def find_free_base_port(nodes: int, attempts: int = 200) -> int:
    """Return a base port P whose cluster ports P..P+nodes-1 and admin ports
    P+100..P+100+nodes-1 are free on 127.0.0.1.

    Candidates are drawn at random from 20000-60000, so that tests that ctest
    runs in parallel rarely pick the same range. Ranges that overlap the
    kernel's ephemeral port range are skipped, because an outgoing connection
    of any process may take such a port while a node is down and make its
    restart fail with "address in use".
    NOTE: another process can still take a port between this check and the
    node's bind(), so a clash is unlikely but possible.
    """
    ephemeral_low, ephemeral_high = _ephemeral_port_range()
    for _ in range(attempts):
        base = random.randint(20000, 60000 - 100 - nodes)
        ports = list(range(base, base + nodes)) + list(range(base + 100, base + 100 + nodes))
        if any(ephemeral_low <= port <= ephemeral_high for port in ports):
            continue
        if all(_port_is_free(port) for port in ports):
            return base
    raise RuntimeError(f"no free range of ports for {nodes} nodes after {attempts} attempts")


# -- processes ----------------------------------------------------------------


def _die_with_parent() -> None:
    """Make the child get SIGKILL when the test process ends (Linux only)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def binary(name: str) -> str:
    if BIN_DIR is None:
        raise RuntimeError("BIN_DIR is not set; run the test through harness.main()")
    path = BIN_DIR / name
    if not path.is_file():
        raise RuntimeError(f"{path} not found; build the project or pass --bin-dir")
    return str(path)


def run_command(args: list[str], timeout_s: float, env: Optional[dict] = None):
    """Run a short-lived program and return the CompletedProcess.

    Raises AssertionError with the command line when the program runs
    longer than timeout_s, because every program under test must end on its
    own.
    """
    try:
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=env,
            preexec_fn=_die_with_parent,
        )
    except subprocess.TimeoutExpired as error:
        raise AssertionError(
            f"{' '.join(args)} did not exit within {timeout_s} s; "
            f"stdout: {error.stdout!r}; stderr: {error.stderr!r}"
        ) from None


def start_command(args: list[str]) -> subprocess.Popen:
    """Start a program with stdout and stderr as text pipes, for a test that
    acts while the program runs."""
    return subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_die_with_parent,
    )


def run_daemon_once(config_file: str | Path, timeout_s: float = 5.0, env: Optional[dict] = None):
    """Run `mailclusterd --config-file=...` and return the CompletedProcess.

    For configs that must make mailclusterd exit at startup. An env value of
    None removes that variable.
    """
    full_env = dict(os.environ)
    for name, value in (env or {}).items():
        if value is None:
            full_env.pop(name, None)
        else:
            full_env[name] = value
    return run_command([binary("mailclusterd"), f"--config-file={config_file}"], timeout_s, full_env)


# -- role config files --------------------------------------------------------


def edit_ini(text: str, section: str, key: str, value: Optional[str]) -> str:
    """Set `key = value` in [section] of INI text, or remove the key when value
    is None.

    value is written as it is, so strings need their double quotes. A key that
    is not in the section is appended at the end of the section.
    """
    lines = text.splitlines()
    result: list[str] = []
    current = None
    done = False
    key_pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for line in lines:
        header = re.match(r"^\s*\[([^\]]+)\]", line)
        if header:
            if current == section and not done and value is not None:
                result.append(f"{key} = {value}")
                done = True
            current = header.group(1).strip()
        elif current == section and key_pattern.match(line):
            done = True
            if value is not None:
                result.append(f"{key} = {value}")
            continue
        result.append(line)
    if current == section and not done and value is not None:
        result.append(f"{key} = {value}")
        done = True
    if not done and value is not None:
        raise ValueError(f"section [{section}] not found")
    return "\n".join(result) + "\n"


def read_ini_value(text: str, section: str, key: str) -> Optional[str]:
    """Return the value of `key` in [section], without surrounding quotes."""
    current = None
    for line in text.splitlines():
        header = re.match(r"^\s*\[([^\]]+)\]", line)
        if header:
            current = header.group(1).strip()
            continue
        match = re.match(rf"^\s*{re.escape(key)}\s*=\s*(.*?)\s*$", line)
        if current == section and match:
            return match.group(1).strip('"')
    return None


# -- status JSON --------------------------------------------------------------


def find_peer(status: Optional[dict], node: str) -> Optional[dict]:
    """Return the entry of `node` in status["peers"], or None."""
    if not status:
        return None
    for peer in status.get("peers", []):
        if peer.get("node") == node:
            return peer
    return None


def peer_state(status: Optional[dict], node: str) -> Optional[str]:
    peer = find_peer(status, node)
    return peer.get("state") if peer else None


# -- configuration trees ------------------------------------------------------

# Prefix of the temporary files that a secondary writes before it renames
# them into place.
TEMPORARY_PREFIX = ".mc-tmp."


def file_sha256(path: str | Path) -> str:
    """Return the SHA-256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while True:
            block = handle.read(1 << 20)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


def tree_snapshot(root: str | Path) -> dict[str, tuple[str, int]]:
    """Return {relative path: (SHA-256, permission bits)} of every regular
    file below root.

    Paths are '/'-separated str (undecodable bytes as surrogate escapes, see
    os.fsdecode). Symbolic links are neither followed nor listed, and files
    that vanish during the walk are left out, so the snapshot of a tree that
    is being written is still well defined.
    """
    snapshot: dict[str, tuple[str, int]] = {}
    root = str(root)
    for folder, folders, files in os.walk(root):
        folders.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            try:
                info = os.lstat(path)
                if not stat.S_ISREG(info.st_mode):
                    continue
                digest = file_sha256(path)
            except FileNotFoundError:
                continue
            relative = os.path.relpath(path, root).replace(os.sep, "/")
            snapshot[relative] = (digest, stat.S_IMODE(info.st_mode))
    return snapshot


def temporary_files(root: str | Path) -> list[str]:
    """Return the relative paths of the secondary's temporary files below root."""
    found = []
    for folder, _, files in os.walk(str(root)):
        for name in files:
            if name.startswith(TEMPORARY_PREFIX):
                found.append(os.path.relpath(os.path.join(folder, name), str(root)))
    return sorted(found)


def describe_tree_difference(expected: dict, actual: dict, limit: int = 10) -> str:
    """Return a short text listing the files missing from, extra in and
    different in `actual` compared with `expected` (snapshots of
    tree_snapshot())."""
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    content = sorted(path for path in set(expected) & set(actual) if expected[path][0] != actual[path][0])
    modes = sorted(path for path in set(expected) & set(actual)
                   if expected[path][0] == actual[path][0] and expected[path][1] != actual[path][1])
    parts = [f"{len(expected)} files expected, {len(actual)} present"]
    for label, paths in [("missing", missing), ("extra", extra), ("other content", content)]:
        if paths:
            parts.append(f"{label} ({len(paths)}): {paths[:limit]!r}")
    if modes:
        shown = [f"{path}: {actual[path][1]:04o} instead of {expected[path][1]:04o}" for path in modes[:limit]]
        parts.append(f"other mode ({len(modes)}): {shown!r}")
    return "; ".join(parts)


# -- failure messages ---------------------------------------------------------


def tail_file(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(file does not exist)"
    if not content:
        return "(empty)"
    return "\n".join(content[-lines:])


class Explanation:
    """Assert message that appends the clusters' log tails when it is printed.

    unittest formats the message only when the assert fails, so passing
    asserts never read the logs.
    """

    def __init__(self, message: str, render: Callable[[], str]):
        self.message = message
        self.render = render

    def __str__(self) -> str:
        return f"{self.message}\n{self.render()}"


# -- clusters -----------------------------------------------------------------


class Cluster:
    """A local cluster written by `mailclusterctl init-local-cluster`.

    Nodes are named mx1..mxN, and mx1 is the primary. Node processes are
    started only on request.
    """

    def __init__(self, nodes: int = 3, name: Optional[str] = None, label: str = "cluster"):
        self.nodes = nodes
        self.name = name
        self.root = Path(tempfile.mkdtemp(prefix=f"mailcluster-it-{label}-"))
        self.base_port = find_free_base_port(nodes)
        self.processes: dict[str, subprocess.Popen] = {}
        self.finished: list[tuple[str, subprocess.Popen]] = []
        # The last failed mailclusterctl run, for timeout messages.
        self.last_ctl_failure: Optional[str] = None
        self._open_files: list = []
        _live_clusters.append(self)
        args = [
            binary("mailclusterctl"),
            "init-local-cluster",
            str(self.root),
            "--nodes",
            str(nodes),
            "--base-port",
            str(self.base_port),
        ]
        if name:
            args += ["--cluster", name]
        result = run_command(args, timeout_s=30)
        if result.returncode != 0:
            raise RuntimeError(
                f"init-local-cluster failed with exit code {result.returncode}: {result.stderr}"
            )

    # -- paths and ports --

    def node_names(self) -> list[str]:
        return [f"mx{index}" for index in range(1, self.nodes + 1)]

    def node_dir(self, node: str) -> Path:
        return self.root / node

    def config(self, node: str) -> Path:
        return self.node_dir(node) / "node.ini"

    def log_file(self, node: str) -> Path:
        return self.node_dir(node) / "cluster.log"

    def stderr_file(self, node: str) -> Path:
        return self.node_dir(node) / "stderr.log"

    def cluster_port(self, node: str) -> int:
        return self.base_port + int(node[2:]) - 1

    def admin_port(self, node: str) -> int:
        return self.base_port + 100 + int(node[2:]) - 1

    # -- role configs --

    def config_text(self, node: str) -> str:
        return self.config(node).read_text()

    def set_option(self, node: str, section: str, key: str, value: Optional[str]) -> None:
        """Edit the node's node.ini in place, see edit_ini()."""
        path = self.config(node)
        path.write_text(edit_ini(path.read_text(), section, key, value))

    def option(self, node: str, section: str, key: str) -> Optional[str]:
        return read_ini_value(self.config_text(node), section, key)

    # -- processes --

    def start(self, node: str, env: Optional[dict] = None, config: Optional[Path] = None,
              instance: Optional[str] = None) -> subprocess.Popen:
        """Start mailclusterd for `node`, with stdout and stderr appended to
        files in the node directory.

        `instance` names a second process of the same node: its stdout and
        stderr get their own files, and the other methods take the instance
        name in place of the node name.
        """
        key = instance or node
        if self.is_running(key):
            raise RuntimeError(f"{key} is already running")
        full_env = dict(os.environ)
        full_env.update(env or {})
        prefix = f"{instance}-" if instance else ""
        stdout = open(self.node_dir(node) / f"{prefix}stdout.log", "ab")
        stderr = open(self.node_dir(node) / f"{prefix}stderr.log", "ab")
        self._open_files += [stdout, stderr]
        process = subprocess.Popen(
            [binary("mailclusterd"), f"--config-file={config or self.config(node)}"],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=full_env,
            preexec_fn=_die_with_parent,
        )
        previous = self.processes.pop(key, None)
        if previous is not None:
            self.finished.append((key, previous))
        self.processes[key] = process
        return process

    def start_all(self, env: Optional[dict] = None) -> None:
        for node in self.node_names():
            self.start(node, env=env)

    def is_running(self, node: str) -> bool:
        process = self.processes.get(node)
        return process is not None and process.poll() is None

    def exit_code(self, node: str) -> Optional[int]:
        """Return the exit code of the node's last process, or None while it runs
        (a negative code is the number of the signal that ended it)."""
        return self.processes[node].poll()

    def send_signal(self, node: str, signal_number: int) -> None:
        self.processes[node].send_signal(signal_number)

    def kill(self, node: str) -> None:
        """Kill the node with SIGKILL and wait until it is gone."""
        process = self.processes[node]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def pause(self, node: str) -> None:
        self.send_signal(node, signal.SIGSTOP)

    def resume(self, node: str) -> None:
        self.send_signal(node, signal.SIGCONT)

    def terminate(self, node: str, timeout_s: float) -> Optional[int]:
        """Send SIGTERM and return the exit code, or None if the node still runs
        after timeout_s."""
        process = self.processes[node]
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop_all(self) -> None:
        """Resume and kill every process this cluster started, and wait for them.

        SIGCONT comes first so that a stopped process does not linger.
        """
        everything = list(self.processes.values()) + [process for _, process in self.finished]
        for process in everything:
            if process.poll() is None:
                try:
                    process.send_signal(signal.SIGCONT)
                    process.send_signal(signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for process in everything:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                print(f"process {process.pid} did not end after SIGKILL", file=sys.stderr)
        for handle in self._open_files:
            handle.close()
        self._open_files.clear()

    def remove(self) -> None:
        """Stop all processes and delete the cluster directory."""
        self.stop_all()
        shutil.rmtree(self.root, ignore_errors=True)
        if self in _live_clusters:
            _live_clusters.remove(self)

    def keep(self, reason: str) -> None:
        """Stop all processes and keep the cluster directory for debugging."""
        self.stop_all()
        print(f"{reason}: kept {self.root}", file=sys.stderr)
        if self in _live_clusters:
            _live_clusters.remove(self)

    # -- mailclusterctl --

    def ctl_command(self, node: str, *args: str, timeout_ms: int = 3000, config: Optional[Path] = None) -> list[str]:
        """Return the command line of `mailclusterctl --config-file=<node.ini> ARGS`."""
        return [
            binary("mailclusterctl"),
            f"--config-file={config or self.config(node)}",
            f"--timeout={timeout_ms}",
            *args,
        ]

    def ctl(self, node: str, *args: str, timeout_ms: int = 3000, config: Optional[Path] = None):
        """Run `mailclusterctl --config-file=<node.ini> ARGS` and return the
        CompletedProcess."""
        command = self.ctl_command(node, *args, timeout_ms=timeout_ms, config=config)
        # mailclusterctl bounds its own run by --timeout; the extra seconds
        # only catch a hang.
        result = run_command(command, timeout_s=timeout_ms / 1000 + 10)
        if result.returncode != 0:
            self.last_ctl_failure = f"{' '.join(args)} on {node}: exit {result.returncode}: {result.stderr.strip()}"
        return result

    def try_status(self, node: str, timeout_ms: int = 2000, config: Optional[Path] = None) -> Optional[dict]:
        """Return the node's status JSON, or None if mailclusterctl failed."""
        result = self.ctl(node, "status", "--json", timeout_ms=timeout_ms, config=config)
        if result.returncode != 0:
            return None
        return json.loads(result.stdout)

    def status(self, node: str, config: Optional[Path] = None) -> dict:
        result = self.ctl(node, "status", "--json", config=config)
        if result.returncode != 0:
            raise AssertionError(
                str(self.explain(f"status of {node} failed with exit code {result.returncode}: {result.stderr}"))
            )
        return json.loads(result.stdout)

    # -- logs --

    def log_lines(self, node: str) -> list[str]:
        try:
            return self.log_file(node).read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def log_mark(self, node: str) -> int:
        """Return the number of log lines now, to search only newer lines."""
        return len(self.log_lines(node))

    def find_log(self, node: str, pattern: str, after: int = 0) -> Optional[str]:
        """Return the first log line from index `after` on that matches the regex."""
        regex = re.compile(pattern)
        for line in self.log_lines(node)[after:]:
            if regex.search(line):
                return line
        return None

    def find_logs(self, node: str, pattern: str, after: int = 0) -> list[str]:
        """Return every log line from index `after` on that matches the regex."""
        regex = re.compile(pattern)
        return [line for line in self.log_lines(node)[after:] if regex.search(line)]

    # -- configuration replication --

    def config_dir(self, node: str) -> Path:
        """Return the node's managed configuration directory, [replication]
        config-dir of its node.ini."""
        value = self.option(node, "replication", "config-dir")
        if value is None:
            raise AssertionError(f"{self.config(node)} has no [replication] config-dir")
        return Path(value)

    def replication(self, node: str) -> Optional[dict]:
        """Return the "replication" object of the node's status, or None if
        mailclusterctl failed."""
        status = self.try_status(node)
        return status.get("replication") if status else None

    def peer_replication(self, observer: str, peer: str) -> Optional[dict]:
        """Return the "replication" object of `peer` in `observer`'s status
        (the primary's view of a secondary), or None."""
        entry = find_peer(self.try_status(observer), peer)
        return entry.get("replication") if entry else None

    def wait_for_generation(self, nodes: Iterable[str], generation: int, timeout_s: float,
                            since: Optional[float] = None) -> dict[str, dict]:
        """Wait until every node's status shows replication applied_generation
        equal to `generation` and state "idle", and return their replication
        objects by node."""
        start = time.monotonic() if since is None else since
        seen: dict[str, dict] = {}
        for node in nodes:
            def check(node=node):
                seen[node] = self.replication(node)
                replication = seen[node]
                if not replication:
                    return None
                if replication.get("applied_generation") != generation or replication.get("state") != "idle":
                    return None
                return replication

            self.wait_for(f"{node} applied replication generation {generation} and is idle", check,
                          timeout_s, since=start, nodes=[node], last_seen=lambda node=node: seen.get(node))
        return seen

    def wait_for_tree(self, node: str, expected: dict, timeout_s: float, since: Optional[float] = None,
                      ignore: Callable[[str], bool] = lambda path: False) -> dict:
        """Wait until tree_snapshot() of the node's configuration directory,
        without the paths for which ignore() is true, equals `expected`, and
        return the snapshot."""
        seen = {}

        def check():
            snapshot = tree_snapshot(self.config_dir(node))
            seen["tree"] = {path: value for path, value in snapshot.items() if not ignore(path)}
            return seen["tree"] if seen["tree"] == expected else None

        return self.wait_for(
            f"configuration directory of {node} equals the expected tree", check, timeout_s, since=since,
            nodes=[node], last_seen=lambda: describe_tree_difference(expected, seen.get("tree", {})))

    # -- waiting --

    def wait_for(self, description: str, check: Callable[[], object], timeout_s: float,
                 since: Optional[float] = None, nodes: Optional[Iterable[str]] = None,
                 last_seen: Optional[Callable[[], object]] = None):
        """Poll check() until it returns a true value and return that value.

        The deadline is `since` (a time.monotonic() value, default now) plus
        timeout_s. Raises AssertionError with the description, the last value
        (or last_seen() if given), the last failed mailclusterctl run and the
        log tails when the deadline passes.
        """
        start = time.monotonic() if since is None else since
        deadline = start + timeout_s
        self.last_ctl_failure = None
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() >= deadline:
                elapsed = time.monotonic() - start
                message = (
                    f"timed out after {elapsed:.1f} s (limit {timeout_s} s) waiting for: "
                    f"{description}; last value: {last_seen() if last_seen else value!r}"
                )
                if self.last_ctl_failure:
                    message += f"\nlast failed mailclusterctl run: {self.last_ctl_failure}"
                raise AssertionError(str(self.explain(message, nodes)))
            time.sleep(POLL_INTERVAL_S)

    def wait_for_log(self, node: str, pattern: str, timeout_s: float, after: int = 0,
                     since: Optional[float] = None) -> str:
        """Wait until the node's log has a line matching the regex and return it."""
        return self.wait_for(
            f"log line /{pattern}/ in {node}",
            lambda: self.find_log(node, pattern, after),
            timeout_s,
            since=since,
            nodes=[node],
        )

    def wait_for_peer(self, observer: str, peer: str, state: str, timeout_s: float,
                      since: Optional[float] = None) -> dict:
        """Wait until `observer`'s status lists `peer` in `state` and return
        that status."""

        seen = {}

        def check():
            seen["status"] = self.try_status(observer)
            return seen["status"] if peer_state(seen["status"], peer) == state else None

        return self.wait_for(f"{observer} reports {peer} {state}", check, timeout_s, since=since,
                             last_seen=lambda: seen.get("status"))

    def wait_for_join_state(self, node: str, state: str, timeout_s: float,
                            since: Optional[float] = None, config: Optional[Path] = None) -> dict:
        seen = {}

        def check():
            seen["status"] = self.try_status(node, config=config)
            status = seen["status"]
            return status if status and status.get("join_state") == state else None

        return self.wait_for(f"{node} has join_state {state}", check, timeout_s, since=since,
                             last_seen=lambda: seen.get("status"))

    def wait_for_admin(self, node: str, timeout_s: float = 10.0) -> dict:
        """Wait until the node's admin endpoint returns a status, and return it."""
        return self.wait_for(f"status of {node}", lambda: self.try_status(node), timeout_s, nodes=[node])

    def wait_until_joined(self, timeout_s: float = 10.0, nodes: Optional[Iterable[str]] = None) -> None:
        """Wait until the primary reports every given secondary online and each
        of them reports join_state "joined"."""
        secondaries = list(nodes) if nodes is not None else self.node_names()[1:]
        start = time.monotonic()
        for node in secondaries:
            self.wait_for_peer(PRIMARY, node, "online", timeout_s, since=start)
            self.wait_for_join_state(node, "joined", timeout_s, since=start)

    # -- diagnostics --

    def diagnostics(self, nodes: Optional[Iterable[str]] = None) -> str:
        """Return the tails of cluster.log, stdout.log and stderr.log of the
        given nodes (default: all), the cluster directory and the exit codes."""
        parts = [f"cluster directory: {self.root}"]
        for node in self.node_names() if nodes is None else nodes:
            process = self.processes.get(node)
            if process is None:
                state = "not started"
            elif process.poll() is None:
                state = f"running (pid {process.pid})"
            else:
                state = f"exited with code {process.returncode}"
            parts.append(f"--- {node}: {state}; last lines of {self.log_file(node)}:")
            parts.append(tail_file(self.log_file(node)))
            # CAF prints "*** unexpected message" lines to stdout.
            for output in [self.node_dir(node) / "stdout.log", self.stderr_file(node)]:
                if output.exists() and output.stat().st_size > 0:
                    parts.append(f"--- {node}: last lines of {output}:")
                    parts.append(tail_file(output))
        return "\n".join(parts)

    def explain(self, message: str, nodes: Optional[Iterable[str]] = None) -> Explanation:
        """Return an assert message that adds the log tails of `nodes` on failure."""
        selected = list(nodes) if nodes is not None else None
        return Explanation(message, lambda: self.diagnostics(selected))


# -- test cases ---------------------------------------------------------------


class ClusterTestCase(unittest.TestCase):
    """Test case that removes its clusters after a pass and keeps them after a
    failure."""

    def make_cluster(self, nodes: int = 3, name: Optional[str] = None) -> Cluster:
        cluster = Cluster(nodes=nodes, name=name, label=self._testMethodName)
        self._clusters.append(cluster)
        # Processes go away in the cleanup so that the next test starts on an
        # idle machine. The directory is handled in run() once the outcome is
        # known.
        self.addCleanup(cluster.stop_all)
        return cluster

    def run(self, result=None):
        self._clusters: list[Cluster] = []
        if result is None:
            result = self.defaultTestResult()
        problems_before = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
        try:
            return super().run(result)
        finally:
            problems_after = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
            for cluster in self._clusters:
                if problems_after > problems_before:
                    cluster.keep(f"{self.id()} failed")
                else:
                    cluster.remove()


# -- program entry ------------------------------------------------------------


def _stop_live_clusters(reason: str) -> None:
    for cluster in list(_live_clusters):
        cluster.keep(reason)


def _on_stop_signal(signal_number: int, _frame) -> None:
    _stop_live_clusters(f"test process got signal {signal_number}")
    os._exit(128 + signal_number)


def main() -> None:
    """Parse --bin-dir, run the test cases of __main__ and exit non-zero on
    failure."""
    global BIN_DIR
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True, help="directory of mailclusterd and mailclusterctl")
    args, _ = parser.parse_known_args()
    BIN_DIR = Path(args.bin_dir).resolve()
    atexit.register(_stop_live_clusters, "test process ended before its cleanup")
    signal.signal(signal.SIGTERM, _on_stop_signal)
    signal.signal(signal.SIGINT, _on_stop_signal)
    unittest.main(argv=[sys.argv[0]], verbosity=2)
