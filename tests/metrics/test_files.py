"""Several processes' metric files: read as one set of figures; the files of processes gone are folded away."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lean_chat.metrics.files import MetricFiles, process_alive
from tests.support.scrape import parse_samples, value

# One short-lived "worker": counts, observes and holds a live gauge, then exits.
WORKER = """
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
r = CollectorRegistry()
Counter("lean_chat_test_streams", "s", ["provider"], registry=r).labels("mock").inc(3)
Histogram("lean_chat_test_seconds", "d", buckets=(1, 2), registry=r).observe(1.5)
Gauge("lean_chat_test_open", "o", registry=r, multiprocess_mode="livesum").inc(1)
"""


def run_worker(folder: Path) -> None:
    """One process that writes its figures into the folder and ends."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    subprocess.run([sys.executable, "-c", WORKER], env=env, check=True)


def test_dead_workers_files_are_folded_and_their_counts_kept(tmp_path: Path) -> None:
    for _ in range(20):
        run_worker(tmp_path)
    assert len(list(tmp_path.glob("*.db"))) == 60  # a counter, a histogram and a live gauge file each
    files = MetricFiles(str(tmp_path))
    samples = parse_samples(files.exposition().decode())
    assert value(samples, "lean_chat_test_streams_total", provider="mock") == 60
    assert value(samples, "lean_chat_test_seconds_count") == 20
    assert value(samples, "lean_chat_test_seconds_bucket", le="1.0") == 0
    assert value(samples, "lean_chat_test_seconds_bucket", le="2.0") == 20
    # The processes are gone: their live gauge counts nothing, and two archives replace sixty files.
    assert value(samples, "lean_chat_test_open") == 0
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["counter_archive.db", "histogram_archive.db"]
    # More workers come and go: the archives grow in value, not in number.
    for _ in range(5):
        run_worker(tmp_path)
    samples = parse_samples(files.exposition().decode())
    assert value(samples, "lean_chat_test_streams_total", provider="mock") == 75
    assert value(samples, "lean_chat_test_seconds_count") == 25
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["counter_archive.db", "histogram_archive.db"]


def test_files_of_running_processes_are_left_alone(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    code = WORKER + "import sys; print('ready', flush=True); sys.stdin.read()"
    with subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as worker:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        files = MetricFiles(str(tmp_path))
        assert files.fold_dead() == 0
        samples = parse_samples(files.exposition().decode())
        assert value(samples, "lean_chat_test_open") == 1
        assert len(list(tmp_path.glob(f"*_{worker.pid}.db"))) == 3
        assert worker.stdin is not None
        worker.stdin.close()
        worker.wait(timeout=10)
    assert not process_alive(worker.pid)
    assert MetricFiles(str(tmp_path)).fold_dead() == 3
