"""Processes of a run: servers and the fake upstream pinned to cores, with their CPU time and memory read from /proc.

A server's CPU time and memory are its whole process tree's: under `--workers` the supervisor only watches, and
its workers (its children) serve.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

from tests.support.live_server import free_port

__all__ = ["Cores", "Pinned", "free_port", "process_cpu_seconds", "process_tree", "tree_cpu_seconds", "tree_rss_bytes"]

_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int, children: bool = False) -> float:
    """User plus system CPU time of a process so far (`children`: with that of its children it has waited for)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICKS


def process_tree(pid: int) -> list[int]:
    """The process and its live descendants (a worker's own children included)."""
    tree, index = [pid], 0
    while index < len(tree):
        parent = tree[index]
        index += 1
        try:
            for task in os.listdir(f"/proc/{parent}/task"):
                with open(f"/proc/{parent}/task/{task}/children") as children:
                    tree.extend(int(child) for child in children.read().split())
        except OSError:  # gone meanwhile
            continue
    return tree


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and its descendants so far (those that ended too, once waited for)."""
    total = 0.0
    for member in process_tree(pid):
        try:
            total += process_cpu_seconds(member, children=True)
        except OSError:  # ended meanwhile: its time is its parent's once waited for
            pass
    return total


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and its descendants (pages two workers share count twice)."""
    return sum(_rss_bytes(member) for member in process_tree(pid))


def _rss_bytes(pid: int) -> int:
    """A process's resident memory (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Cores:
    """Which core runs the server and which the load generator (and upstream); no pinning on one core."""

    def __init__(self) -> None:
        available = sorted(os.sched_getaffinity(0))
        self.pinned = len(available) >= 2 and shutil.which("taskset") is not None
        self.server = available[0]
        self.load = available[1] if len(available) >= 2 else available[0]

    def pin_self(self) -> None:
        """Move this process (the load generator) to the load core."""
        if self.pinned:
            os.sched_setaffinity(0, {self.load})

    def command(self, core: int, argv: Sequence[str]) -> list[str]:
        """The argv, run under `taskset -c CORE` when pinning."""
        return ["taskset", "-c", str(core), *argv] if self.pinned else list(argv)


class Pinned:
    """A Python module run as a child process pinned to one core, waited on until its port answers."""

    def __init__(
        self,
        cores: Cores,
        core: int,
        module: str,
        args: Sequence[str],
        port: int,
        env: dict[str, str],
        profile_to: str = "",
    ) -> None:
        self.port = port
        argv = cores.command(core, [sys.executable, "-m", module, *args])
        environment = dict(os.environ)
        environment.update(env)
        self.process = subprocess.Popen(argv, env=environment, stdin=subprocess.DEVNULL)
        self.profiler: subprocess.Popen[bytes] | None = None
        self._wait_ready()
        if profile_to:
            # py-spy samples from the load core, so the profiled server keeps its own core to itself.
            beside = os.path.join(os.path.dirname(sys.executable), "py-spy")
            sampler = [
                beside if os.path.exists(beside) else "py-spy",
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                "200",
                "--format",
                "raw",
            ]
            sampler += ["--nonblocking", "--output", profile_to]
            self.profiler = subprocess.Popen(
                cores.command(cores.load, sampler), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )

    @property
    def pid(self) -> int:
        """The child's process id (taskset execs, so this is the Python process itself)."""
        return self.process.pid

    def _wait_ready(self, timeout: float = 30.0) -> None:
        """Block until the port accepts a connection."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"process exited early with status {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nothing listening on port {self.port} after {timeout} s")

    def cpu_seconds(self) -> float:
        """CPU time used by the child and its descendants so far."""
        return tree_cpu_seconds(self.pid)

    def rss_bytes(self) -> int:
        """The resident memory of the child and its descendants."""
        return tree_rss_bytes(self.pid)

    def stop(self) -> None:
        """Interrupt the child (and its profiler, which then writes its file), then kill it if it does not go."""
        if self.profiler is not None and self.profiler.poll() is None:
            self.profiler.send_signal(signal.SIGINT)
            try:
                self.profiler.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.profiler.kill()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Pinned:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
