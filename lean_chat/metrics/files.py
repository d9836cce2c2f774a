"""Several workers' figures: prometheus-client's multiprocess files, read on a scrape and kept few.

Each worker process writes its own files (`counter_<pid>.db`, `histogram_<pid>.db`, `gauge_livesum_<pid>.db`)
in one folder. A worker that dies leaves them behind, and a scrape reads every file: after many restarts a
scrape would read hundreds. So before each scrape, the files of processes that no longer run are folded into
one `<kind>_archive.db` per kind (counters and histograms add up; live gauges of a dead process are dropped,
as `prometheus_client.multiprocess.mark_process_dead` does). A lock file keeps a fold and a read apart.
"""

from __future__ import annotations

import fcntl
import os
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest, mmap_dict, multiprocess

__all__ = ["MetricFiles", "process_alive"]

# prometheus-client leaves these untyped.
MmapedDict: Any = mmap_dict.MmapedDict
MultiProcessCollector: Any = multiprocess.MultiProcessCollector
_ADDED_UP = ("counter", "histogram", "summary")
_ARCHIVE = "archive"


def process_alive(pid: int) -> bool:
    """True while a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class MetricFiles:
    """The folder of a multiprocess run: scraped as one set of figures, dead workers' files folded away."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.lock_path = os.path.join(folder, "lean_chat.lock")

    def exposition(self) -> bytes:
        """Every worker's figures added up, in the Prometheus text format."""
        self.fold_dead()
        with self._locked(fcntl.LOCK_SH):
            registry = CollectorRegistry(auto_describe=False)
            MultiProcessCollector(registry, path=self.folder)
            return generate_latest(registry)

    def dead_files(self) -> dict[str, list[str]]:
        """Files of processes that no longer run, by kind (`counter`, `histogram`, `gauge_livesum`...)."""
        found: dict[str, list[str]] = defaultdict(list)
        alive: dict[int, bool] = {}
        for name in os.listdir(self.folder):
            if not name.endswith(".db"):
                continue
            kind, _, pid_text = name[:-3].rpartition("_")
            if not pid_text.isdigit():
                continue
            pid = int(pid_text)
            if pid not in alive:
                alive[pid] = process_alive(pid)
            if not alive[pid]:
                found[kind].append(os.path.join(self.folder, name))
        return found

    def fold_dead(self) -> int:
        """Fold dead processes' files into the archives; the number of files removed."""
        if not self.dead_files():
            return 0
        with self._locked(fcntl.LOCK_EX):
            dead = self.dead_files()  # again, under the lock: another worker may have folded them
            removed = 0
            for kind, paths in dead.items():
                if kind in _ADDED_UP:
                    self._add_into_archive(kind, paths)
                elif not kind.startswith("gauge_live"):
                    continue  # other gauge modes keep a dead process's last value: left as they are
                for path in paths:
                    os.remove(path)
                    removed += 1
            return removed

    def _add_into_archive(self, kind: str, paths: list[str]) -> None:
        """Write `<kind>_archive.db` holding its old values plus the given files' (replaced in one rename)."""
        archive = os.path.join(self.folder, f"{kind}_{_ARCHIVE}.db")
        totals: dict[str, float] = defaultdict(float)
        for path in ([archive] if os.path.exists(archive) else []) + paths:
            for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(path):
                totals[key] += value
        scratch = os.path.join(self.folder, f".{kind}_{_ARCHIVE}.next")
        if os.path.exists(scratch):
            os.remove(scratch)
        merged = MmapedDict(scratch)
        try:
            for key, value in totals.items():
                merged.write_value(key, value, 0.0)
        finally:
            merged.close()
        os.replace(scratch, archive)

    @contextmanager
    def _locked(self, mode: int) -> Iterator[None]:
        """Hold the folder's lock (shared to read, exclusive to fold)."""
        with open(self.lock_path, "a+b") as handle:
            fcntl.flock(handle, mode)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
