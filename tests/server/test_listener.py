"""The listener: a crowd of waiting connections is accepted in one loop turn, on uvloop as on asyncio.

Each server runs in a thread on a real port. Its loop is held still while the test opens every connection and
sends every request, so all of them wait in the kernel's accept queue together; then the loop runs, and the app
notes the loop turn in which each request reached it.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from lean_chat.server.listener import Server
from tests.support.live_server import free_port
from tests.support.postgres import temporary_database
from tests.support.server_process import ServerProcess, environment
from tests.support.turn_app import CONNECTIONS, crowd_turns, request, running


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_crowd_waiting_together_is_accepted_within_a_few_turns(loop: str) -> None:
    with running(Server, loop) as (app, port, _):
        turns = crowd_turns(app, port)
    assert len(turns) == CONNECTIONS
    assert max(turns) - min(turns) <= 5, f"requests reached the app over {max(turns) - min(turns) + 1} loop turns"


def test_uvicorns_own_listener_under_uvloop_takes_one_connection_a_turn() -> None:
    """Why the listener exists: if this ever fails, uvloop accepts a crowd at once and listener.py can go."""
    with running(uvicorn.Server, "uvloop") as (app, port, _):
        turns = crowd_turns(app, port)
    assert max(turns) - min(turns) >= CONNECTIONS - 1


def test_stopping_closes_the_listening_socket() -> None:
    with running(Server, "uvloop") as (_, port, server):
        assert request(port).startswith(b"HTTP/1.1 200")
        assert [type(s).__name__ for s in server.servers] == ["Acceptor"]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def test_out_of_file_descriptors_it_says_so_then_serves_again(tmp_path: Path) -> None:
    """A flood past the process's descriptor limit: accepting pauses (logged) and resumes once they are closed."""
    port = free_port()
    argv = ["lean-chat", "serve", "--port", str(port), "--sqlite-path", str(tmp_path / "chat.sqlite3"), "--no-demo"]
    limited = (
        "import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)); "
        f"sys.argv = {argv!r}; runpy.run_module('lean_chat', run_name='__main__')"
    )
    command = [sys.executable, "-c", limited]
    with ServerProcess(None, env=environment(), command=command, port=port) as server:
        flood = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(100)]
        try:
            deadline = time.monotonic() + 10
            while "cannot accept connections" not in server.output() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "Too many open files" in server.output()
        finally:
            for sock in flood:
                sock.close()
        deadline = time.monotonic() + 10
        status = 0
        while status != 200 and time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                status = httpx.get(f"{server.url}/healthz", timeout=2).status_code
            time.sleep(0.1)
        assert status == 200, server.output()[-2000:]


@contextmanager
def _backend(name: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of an instance keeping its history in SQLite, or also using Redis, or PostgreSQL."""
    env = {"FASTAPI_AI_CHAT_SQLITE_PATH": str(tmp_path / "chat.sqlite3")}
    if name == "redis":
        yield {**env, "LEAN_CHAT_REDIS_URL": "redis://127.0.0.1:6379/0", "LEAN_CHAT_REDIS_PREFIX": "lc_test_taken:"}
    elif name == "postgres":
        with temporary_database() as url:
            yield {"LEAN_CHAT_DATABASE_URL": url}
    else:
        yield env


@pytest.mark.parametrize(
    "backend",
    ["sqlite", pytest.param("redis", marks=pytest.mark.redis), pytest.param("postgres", marks=pytest.mark.postgres)],
)
def test_a_taken_port_exits_at_once_with_one_clear_line(backend: str, tmp_path: Path) -> None:
    """A second instance on a busy port (the README's command run twice) says so and exits; it used to hang with
    Redis configured, deaf to SIGINT and SIGTERM, after opening and closing every backend for nothing."""
    with _backend(backend, tmp_path) as env, socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        started = time.monotonic()
        server = ServerProcess(None, env=env, port=port)
        try:
            code = server.wait(timeout=10)
            took = time.monotonic() - started
        finally:
            server.stop()
    assert code != 0 and took < 5, (code, took)
    lines = [" ".join(line.split()) for line in server.lines if "Started server process" not in line]
    assert lines == [
        f"ERROR: cannot listen on 127.0.0.1:{port}: the address is already in use (another process, perhaps"
        " another lean-chat instance, holds the port: give each instance its own --port)"
    ], server.output()
