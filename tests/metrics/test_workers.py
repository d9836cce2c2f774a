"""`lean-chat serve --workers 2`: every scrape gives both workers' figures, also after the workers restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from prometheus_client.mmap_dict import MmapedDict

from tests.support.apps import stream_body
from tests.support.frames import check_grammar, parse_frames
from tests.support.live_server import free_port
from tests.support.scrape import Samples, parse_samples, value
from tests.support.server_process import ServerProcess

STARTED = "lean_chat_streams_started_total"


def children(pid: int) -> set[int]:
    """The worker processes of the server (children started by multiprocessing's spawn, not its resource tracker)."""
    found: set[int] = set()
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.add(int(child))
        except FileNotFoundError:
            pass  # gone meanwhile
    return found


def wait_until(check: Callable[[], bool], seconds: float = 30.0, message: Callable[[], str] = lambda: "") -> None:
    """Poll until `check()` holds."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out: {message()}"
        time.sleep(0.1)


def streams_per_worker(folder: Path) -> dict[int, float]:
    """Streams started, per live worker, read from each worker's own counter file."""
    counts: dict[int, float] = {}
    for path in folder.glob("counter_*.db"):
        pid = path.stem.rsplit("_", 1)[1]
        if not pid.isdigit():
            continue
        for key, number, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            if json.loads(key)[1] == STARTED:
                counts[int(pid)] = counts.get(int(pid), 0.0) + number
    return counts


def test_two_workers_figures_add_up_and_survive_restarts(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "lean_chat", "serve", "--port", str(port), "--sqlite-path", "", "--workers", "2"]
    served = ServerProcess(
        None,
        None,
        {"TMPDIR": str(tmp_path)},  # the metrics folder the command makes goes under tmp_path
        port=port,
        command=command,
        cwd=tmp_path,
        new_session=True,  # its own process group: the workers can be stopped with it whatever happens
    )
    process = served.process
    sent = 0

    def scrape() -> Samples:
        with httpx.Client(base_url=served.url, timeout=10) as http:  # a new connection: any worker may answer
            response = http.get("/metrics")
        assert response.status_code == 200, response.text
        return parse_samples(response.text)

    def one_stream(user: int) -> None:
        with httpx.Client(base_url=served.url, timeout=20) as http:
            response = http.post("/chat/stream", json=stream_body(f"w{user}", "hi", tokenDelayMs=5, targetChars=300))
        assert check_grammar(parse_frames(response.content)).event == "done"

    try:
        served.wait_ready()
        wait_until(lambda: value(scrape(), "lean_chat_workers") == 2)
        (folder,) = tmp_path.glob("lean-chat-metrics-*")
        # Streams until both workers have served some (the kernel picks which worker accepts).
        with ThreadPoolExecutor(8) as pool:
            for _ in range(10):
                list(pool.map(one_stream, range(sent, sent + 8)))
                sent += 8
                per_worker = streams_per_worker(folder)
                if len(per_worker) == 2 and all(per_worker.values()):
                    break
        assert len(per_worker) == 2 and all(per_worker.values()), per_worker
        assert sum(per_worker.values()) == sent
        for _ in range(10):
            samples = scrape()
            assert value(samples, STARTED, provider="mock", model="gpt-4.1") == sent
            assert value(samples, "lean_chat_workers") == 2
        # Restart every worker three times (SIGHUP): their figures stay, their files do not pile up.
        for _ in range(3):
            before = children(process.pid)
            process.send_signal(signal.SIGHUP)

            def replaced(before: set[int] = before) -> bool:
                return not (children(process.pid) & before) and len(children(process.pid)) >= 2

            def change(before: set[int] = before) -> str:
                return f"workers {before} -> {children(process.pid)}\n{served.log}"

            wait_until(replaced, message=change)
        wait_until(lambda: value(scrape(), "lean_chat_workers") == 2)
        samples = scrape()
        assert value(samples, STARTED, provider="mock", model="gpt-4.1") == sent
        assert value(
            samples, "lean_chat_streams_ended_total", provider="mock", model="gpt-4.1", outcome="done", code=""
        )
        names = sorted(path.name for path in folder.glob("*.db"))
        live = children(process.pid)
        assert [
            n for n in names if n.rsplit("_", 1)[1][:-3].isdigit() and int(n.rsplit("_", 1)[1][:-3]) not in live
        ] == []
        assert len(names) <= 2 + 3 * 2, names  # two archives, and three files for each live worker
        assert served.interrupt() == 0
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        served.stop()
    assert not list(tmp_path.glob("lean-chat-metrics-*")), "the metrics folder is removed at exit"
