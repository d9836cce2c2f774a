"""`python -m lean_chat serve`: a real process on loopback that streams, logs one start-up line, and stops on Ctrl-C."""

from __future__ import annotations

import json
import signal
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.apps import stream_body
from tests.support.frames import check_grammar, parse_frames
from tests.support.live_server import free_port
from tests.support.server_process import ServerProcess, environment, serving
from tests.support.turn_app import CONNECTIONS, spread, worker_crowds
from tests.support.upstreams import refused_url

SECRETS = {"OPENAI_API_KEY": "sk-cli-secret-openai-0001", "GEMINI_API_KEY": "gm-cli-secret-gemini-0002"}


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServerProcess]:
    """`python -m lean_chat serve --port P --sqlite-path F` with two provider keys set (pointing nowhere)."""
    env = environment(**SECRETS, OPENAI_BASE_URL=refused_url(), GEMINI_BASE_URL=refused_url())
    env["LEAN_CHAT_SHUTDOWN_GRACE_SECONDS"] = "0.5"
    with serving(tmp_path, "--sqlite-path", "history.sqlite3", env=env) as served:
        yield served


def test_serve_streams_logs_and_stops_on_ctrl_c(serve: ServerProcess, tmp_path: Path) -> None:
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


def test_ctrl_c_during_a_stream_ends_it_and_exits_cleanly(serve: ServerProcess, tmp_path: Path) -> None:
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


def test_serve_with_workers_each_accepts_a_crowd_within_a_few_turns(tmp_path: Path) -> None:
    """`--workers 2` runs uvicorn's supervisor; each worker's loop takes a queued crowd in a few turns, not 100."""
    port = free_port()
    argv = ["serve", "--workers", "2", "--port", str(port), "--log-level", "warning", "--no-metrics"]
    # The command line as it is, serving the turn-counting app in place of lean_chat's.
    app = "tests.support.turn_app:create"
    script = f"import lean_chat.server.cli as cli; cli.APP = {app!r}; raise SystemExit(cli.main({argv!r}))"
    command = [sys.executable, "-c", script]
    env = environment(TURN_APP_FOLDER=str(tmp_path))
    with ServerProcess(None, env=env, command=command, port=port, new_session=True) as served:
        crowds = worker_crowds(port, tmp_path)
    assert len(crowds) == 2, served.log
    for pid, turns in crowds.items():
        assert len(turns) == CONNECTIONS
        assert spread(turns) <= 5, f"worker {pid}: the crowd reached the app over {spread(turns)} loop turns"
