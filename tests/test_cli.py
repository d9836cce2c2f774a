"""`python -m lean_chat serve`: a real process on loopback that streams, logs one start-up line, and stops on Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.apps import stream_body
from tests.conftest import free_port
from tests.fakes import refused_url
from tests.frames import check_grammar, parse_frames

SECRETS = {"OPENAI_API_KEY": "sk-cli-secret-openai-0001", "GEMINI_API_KEY": "gm-cli-secret-gemini-0002"}


class Served:
    """A `lean_chat serve` child process and everything it wrote to stderr."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def log(self) -> str:
        """The whole log so far."""
        return "\n".join(self.lines)

    def wait_ready(self) -> None:
        """Wait until the server answers its health check."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"lean_chat exited early:\n{self.log}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"lean_chat did not answer:\n{self.log}")

    def close(self) -> None:
        """Kill the process if it still runs and release its pipe."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.reader.join(timeout=5)
        if self.process.stderr is not None:
            self.process.stderr.close()

    def interrupt(self) -> int:
        """Send SIGINT (Ctrl-C) and return the exit code."""
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=20)
        self.reader.join(timeout=5)
        return code


def environment(**extra: str) -> dict[str, str]:
    """The child's environment: ours without provider settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL", "_SQLITE_PATH"))}
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextlib.contextmanager
def serving(folder: Path, *args: str, env: dict[str, str]) -> Iterator[Served]:
    """`python -m lean_chat serve --port P ARGS...` run in `folder`, answering; killed afterwards if still running."""
    port = free_port()
    command = [sys.executable, "-m", "lean_chat", "serve", "--port", str(port), *args]
    process = subprocess.Popen(
        command, cwd=folder, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    served = Served(process, f"http://127.0.0.1:{port}")
    try:
        served.wait_ready()
        yield served
    finally:
        served.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Served]:
    """`python -m lean_chat serve --port P --sqlite-path F` with two provider keys set (pointing nowhere)."""
    env = environment(**SECRETS, OPENAI_BASE_URL=refused_url(), GEMINI_BASE_URL=refused_url())
    env["LEAN_CHAT_SHUTDOWN_GRACE_SECONDS"] = "0.5"
    with serving(tmp_path, "--sqlite-path", "history.sqlite3", env=env) as served:
        yield served


def test_serve_streams_logs_and_stops_on_ctrl_c(serve: Served, tmp_path: Path) -> None:
    with httpx.Client(base_url=serve.url, timeout=10) as http:
        response = http.post("/chat/stream", json=stream_body("cli", "over the wire", model="mock-cli"))
        assert response.status_code == 200
        done = check_grammar(parse_frames(response.content))
        assert done.data["provider"] == "mock:mock-cli"
        history = http.get("/chat/history", params={"userId": "cli"}).json()["messages"]
        assert [m["role"] for m in history] == ["user", "assistant"]
    assert serve.interrupt() == 0
    ready = [line for line in serve.lines if "lean_chat ready" in line]
    assert len(ready) == 1, serve.log
    assert "openai" in ready[0] and "gemini" in ready[0] and "anthropic" not in ready[0]
    assert ready[0].endswith("; metrics at /metrics; mock fallback on"), ready[0]
    assert str(tmp_path / "history.sqlite3") in ready[0]
    for secret in SECRETS.values():
        assert secret not in serve.log
    # The history is in the file named on the command line, relative to the working folder.
    with sqlite3.connect(tmp_path / "history.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM lc_messages").fetchone() == (2,)


def test_ctrl_c_during_a_stream_ends_it_and_exits_cleanly(serve: Served, tmp_path: Path) -> None:
    body = stream_body("mid", "a slow one", tokenDelayMs=50, targetChars=3000)
    received = b""
    with (
        httpx.Client(base_url=serve.url, timeout=20) as http,
        http.stream("POST", "/chat/stream", json=body) as response,
    ):
        chunks = response.iter_bytes()
        for chunk in chunks:
            received += chunk
            if received.count(b"event: token") >= 3:
                break
        serve.process.send_signal(signal.SIGINT)
        for chunk in chunks:
            received += chunk
    # The stream ended with one terminal frame, not a cut connection.
    last = check_grammar(parse_frames(received))
    assert last.event == "error" and last.data["error"]["code"] == "server_shutdown"
    assert serve.process.wait(timeout=20) == 0
    with sqlite3.connect(tmp_path / "history.sqlite3") as db:
        rows = db.execute("SELECT role, meta FROM lc_messages ORDER BY idx").fetchall()
    assert [(role, json.loads(meta) if meta else None) for role, meta in rows] == [
        ("user", None),
        ("assistant", {"partial": True}),
    ]


def test_memory_mode_from_the_command_line(tmp_path: Path) -> None:
    with serving(tmp_path, "--sqlite-path", "", env=environment()) as served:
        with httpx.Client(base_url=served.url, timeout=10) as http:
            response = http.post("/chat/stream", json=stream_body("mem", "hi"))
            assert check_grammar(parse_frames(response.content)).event == "done"
        assert served.interrupt() == 0
    ready = next(line for line in served.lines if "lean_chat ready" in line)
    assert "mock only" in ready and "in memory" in ready
    assert list(tmp_path.iterdir()) == []
