"""An ASGI app that notes the event-loop turn each request reached it in, to see how a server accepts a crowd.

The helpers below serve it in a thread and send it a crowd: CONNECTIONS requests queued together.

In a thread (`TurnCounter`): the test holds the loop with `hold`/`release` while it fills the accept queue. In a
server process (`create`, `app`, for uvicorn's command line and its workers): `GET /hold` answers at once with the
process id, then keeps that process's loop still until a file `release-<pid>` appears in `$TURN_APP_FOLDER`; every
other request is answered with `<pid> <turn>`.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from tests.support.live_server import free_port

# Seconds a loop turn costs (a busy loop, as under load).
TURN_COST = 0.002


class TurnCounter:
    """Answers 200 to every request, noting the loop turn it arrived in; in front of `inner` when given."""

    def __init__(self, inner: Any = None) -> None:
        self.inner = inner
        self.turn = 0
        self.turns: list[int] = []
        self.hold = threading.Event()  # set: the loop's next turn waits until `release` is set
        self.release = threading.Event()
        self._ticking = False

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        """Once per loop turn: count it (a held turn waits while the test fills the accept queue)."""
        if self.hold.is_set():
            self.hold.clear()
            self.release.wait(10)
        self.turn += 1
        time.sleep(TURN_COST)
        loop.call_soon(self._tick, loop)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            if self.inner is not None:
                await self.inner(scope, receive, send)
                return
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if not self._ticking:
            self._ticking = True
            loop = asyncio.get_running_loop()
            loop.call_soon(self._tick, loop)
        self.turns.append(self.turn)
        if scope["path"] == "/hold":
            await _hold(send)
            return
        if self.inner is not None:
            await self.inner(scope, receive, send)
            return
        body = f"{os.getpid()} {self.turn}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})


async def _hold(send: Any) -> None:
    """Say which process this is, then keep its loop still until the test releases it."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    # Written at once (the transport's buffer is empty) and without yielding: once the line has arrived, this
    # process's loop is held and accepts nothing more.
    await send({"type": "http.response.body", "body": f"{os.getpid()}\n".encode(), "more_body": True})
    release = Path(os.environ["TURN_APP_FOLDER"]) / f"release-{os.getpid()}"
    deadline = time.monotonic() + 20
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    await send({"type": "http.response.body", "body": b""})


def create() -> TurnCounter:
    """A fresh counter (a factory, as `lean-chat serve` loads its app)."""
    return TurnCounter()


app = TurnCounter()


# Connections a test's crowd opens at once.
CONNECTIONS = 100


@contextmanager
def running(
    server_class: type[uvicorn.Server], loop: str, app: TurnCounter | None = None
) -> Iterator[tuple[TurnCounter, int, uvicorn.Server]]:
    """A server of that class serving the counter (a fresh one unless given) on a free port, in a thread."""
    app = app if app is not None else TurnCounter()
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, loop=loop, http="httptools", log_level="error")
    server = server_class(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "the server did not start"
    try:
        yield app, port, server
    finally:
        app.release.set()
        server.should_exit = True
        thread.join(10)
        assert not thread.is_alive(), "the server did not stop"


def request(port: int, path: str = "/") -> bytes:
    """One plain GET over a fresh connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode())
        return b"".join(iter(lambda: sock.recv(65536), b""))


def crowd(port: int, release: Callable[[], None], path: str = "/") -> list[bytes]:
    """Queue CONNECTIONS requests (the server's loops are held), call `release`; every reply, each a 200."""
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(CONNECTIONS)]
    replies = []
    try:
        for sock in sockets:
            sock.sendall(f"GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode())
        release()
        for sock in sockets:
            reply = b"".join(iter(lambda sock=sock: sock.recv(65536), b""))  # type: ignore[misc]
            assert reply.startswith(b"HTTP/1.1 200"), reply[:80]
            replies.append(reply)
    finally:
        for sock in sockets:
            sock.close()
    return replies


def crowd_turns(app: TurnCounter, port: int, path: str = "/") -> list[int]:
    """Hold the loop, queue CONNECTIONS requests, let the loop go; the turns in which the app saw them."""
    assert request(port, path).startswith(b"HTTP/1.1 200"), "the first request failed"  # starts the turn counter
    app.hold.set()
    deadline = time.monotonic() + 5
    while app.hold.is_set() and time.monotonic() < deadline:  # wait for the loop to stop in its next turn
        time.sleep(0.001)
    crowd(port, app.release.set, path)
    return app.turns[1:]


def spread(turns: list[int]) -> int:
    """Over how many loop turns the requests reached the app."""
    return max(turns) - min(turns) + 1


def _held(port: int) -> tuple[socket.socket, int]:
    """`GET /hold` on a fresh connection: the socket (its reply unfinished) and the process whose loop it holds."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    sock.sendall(b"GET /hold HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    received = b""
    while (found := re.search(rb"\r\n\r\n[0-9a-fA-F]+\r\n(\d+)\n", received)) is None:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed: {received!r}"
        received += chunk
    return sock, int(found.group(1))


def worker_crowds(port: int, folder: Path, workers: int = 2) -> dict[int, list[int]]:
    """Per worker process: the loop turns in which a crowd reached it, queued while that worker's loop was held.

    A round holds every worker (each `/hold` reaches a worker not yet held, as held ones accept nothing),
    queues CONNECTIONS requests, releases one worker that has not had a crowd yet, and once it has answered
    them all, the others. Every reply must come from the worker released first.
    """
    crowds: dict[int, list[int]] = {}
    for _ in range(workers):
        held = [_held(port) for _ in range(workers)]
        pids = [pid for _, pid in held]
        assert len(set(pids)) == workers, f"a worker was held twice: {pids}"
        first = next(pid for pid in pids if pid not in crowds)
        replies = crowd(port, (folder / f"release-{first}").touch)
        answers = [reply.rsplit(b"\r\n\r\n", 1)[1].split() for reply in replies]
        assert {int(pid) for pid, _ in answers} == {first}, "a held worker answered"
        crowds[first] = [int(turn) for _, turn in answers]
        for sock, pid in held:
            (folder / f"release-{pid}").touch()
            assert b"".join(iter(lambda sock=sock: sock.recv(65536), b"")).endswith(b"0\r\n\r\n")  # type: ignore[misc]
            sock.close()
        for pid in pids:
            (folder / f"release-{pid}").unlink()
    return crowds
