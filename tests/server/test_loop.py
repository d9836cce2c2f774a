"""`lean_chat.server.loop:new_event_loop` under plain uvicorn: a waiting crowd is accepted in a few turns.

As in test_listener.py, the loop is held while the test queues every request, then let go; the app notes the
loop turn in which each request reached it. Here the server is uvicorn's own (`uvicorn.Server`, uvicorn's
command line, its `--workers` supervisor) with only the loop named.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import uvicorn

from lean_chat.compat import create_app
from lean_chat.server.loop import CrowdServer
from tests.support.live_server import free_port
from tests.support.server_process import ServerProcess
from tests.support.turn_app import CONNECTIONS, TurnCounter, crowd_turns, request, running, spread, worker_crowds

LOOP = "lean_chat.server.loop:new_event_loop"


def test_plain_uvicorn_on_our_loop_accepts_a_crowd_within_a_few_turns() -> None:
    with running(uvicorn.Server, LOOP) as (app, port, server):
        servers: list[object] = list(server.servers)
        assert len(servers) == 1 and type(servers[0]) is CrowdServer
        turns = crowd_turns(app, port)
    assert len(turns) == CONNECTIONS
    assert spread(turns) <= 5, f"requests reached the app over {spread(turns)} loop turns"


def test_the_fastapi_shim_under_uvicorn_on_our_loop_accepts_a_crowd_within_a_few_turns() -> None:
    shim = TurnCounter(create_app(sqlite_path=""))
    with running(uvicorn.Server, LOOP, shim) as (app, port, _):
        turns = crowd_turns(app, port, "/healthz")
    assert len(turns) == CONNECTIONS
    assert spread(turns) <= 5, f"requests reached the app over {spread(turns)} loop turns"


def test_uvicorn_workers_on_our_loop_each_accept_a_crowd_within_a_few_turns(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "tests.support.turn_app:app", "--loop", LOOP, "--workers", "2"]
    command += ["--http", "httptools", "--log-level", "warning", "--port", str(port)]
    server = ServerProcess(None, env={"TURN_APP_FOLDER": str(tmp_path)}, command=command, port=port, new_session=True)
    with server:
        crowds = worker_crowds(server.port, tmp_path)
    assert len(crowds) == 2
    for pid, turns in crowds.items():
        assert len(turns) == CONNECTIONS
        assert spread(turns) <= 5, f"worker {pid}: requests reached the app over {spread(turns)} loop turns"


def test_plain_uvicorn_on_our_loop_says_when_the_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [sys.executable, "-m", "uvicorn", "tests.support.turn_app:app", "--loop", LOOP, "--port", str(port)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode == 3, result.stderr
    assert f"error while attempting to bind on address ('127.0.0.1', {port}): address already in use" in result.stderr


def test_stopping_plain_uvicorn_on_our_loop_closes_the_listening_socket() -> None:
    with running(uvicorn.Server, LOOP) as (_, port, _):
        assert request(port).startswith(b"HTTP/1.1 200")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
