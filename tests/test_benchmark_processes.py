"""benchmarks/processes.py reads a server's CPU and memory over its process tree (under `--workers` workers serve)."""

from __future__ import annotations

import subprocess
import sys
import time

from benchmarks.processes import process_cpu_seconds, process_tree, tree_cpu_seconds, tree_rss_bytes

# A parent that only waits, and a child that spins for a while, then holds 64 MB, then waits.
_SUPERVISOR = """
import subprocess, sys
worker = subprocess.Popen([sys.executable, "-c", sys.argv[1]])
worker.wait()
"""
_WORKER = """
import time
end = time.process_time() + 0.6
while time.process_time() < end:
    pass
held = bytearray(64 * 1024 * 1024)
print("ready", flush=True)
time.sleep(30)
"""


def test_a_supervisors_tree_counts_its_workers_cpu_and_memory() -> None:
    supervisor = subprocess.Popen([sys.executable, "-c", _SUPERVISOR, _WORKER])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            tree = process_tree(supervisor.pid)
            if len(tree) == 2 and tree_rss_bytes(supervisor.pid) > 64 * 1024 * 1024:
                break
            time.sleep(0.05)
        tree = process_tree(supervisor.pid)
        assert len(tree) == 2, tree
        # The worker's spinning is counted; the supervisor alone used almost none of it.
        assert tree_cpu_seconds(supervisor.pid) >= 0.5
        assert process_cpu_seconds(supervisor.pid) < 0.5
        assert tree_rss_bytes(supervisor.pid) > 64 * 1024 * 1024
    finally:
        for pid in reversed(process_tree(supervisor.pid)):
            subprocess.run(["kill", str(pid)], check=False)
        supervisor.wait(timeout=10)
