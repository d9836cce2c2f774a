"""Shared fixtures: the app in-process (ASGI transport, lifespan run) and under a real uvicorn on loopback."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from lean_chat import create_app
from tests.fakes import FakeAnthropic, FakeGemini, FakeOpenAI, FakeUpstream
from tests.frames import Frame, parse_frames

__all__ = ["Frame", "parse_frames"]


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio only."""
    return "asyncio"


@pytest.fixture
def sqlite_path(tmp_path: Any) -> str:
    """A fresh SQLite file for one test."""
    return str(tmp_path / "chat.sqlite3")


@pytest.fixture
async def client(sqlite_path: str) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking in-process to a lean_chat app with SQLite history (lifespan run)."""
    app = create_app(sqlite_path=sqlite_path)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lean.test") as http:
            yield http


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """An ASGI app served by a real uvicorn in a background thread."""

    def __init__(self, app: Any, **config: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        options: dict[str, Any] = {"log_level": "warning", "lifespan": "on", "loop": "asyncio"}
        options.update(config)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, **options))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server() -> Iterator[Callable[..., LiveServer]]:
    """A factory: `live_server(app)` starts uvicorn on a free loopback port; all are stopped afterwards."""
    started: list[LiveServer] = []

    def start(app: Any, **config: Any) -> LiveServer:
        server = LiveServer(app, **config).__enter__()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.__exit__(None, None, None)


@contextlib.contextmanager
def fake_upstreams() -> Iterator[dict[str, FakeUpstream]]:
    """Fresh fake OpenAI, Anthropic and Gemini upstreams, each under its own uvicorn on loopback."""
    fakes: dict[str, FakeUpstream] = {"openai": FakeOpenAI(), "anthropic": FakeAnthropic(), "gemini": FakeGemini()}
    with contextlib.ExitStack() as stack:
        for fake in fakes.values():
            fake.url = stack.enter_context(LiveServer(fake)).url
        yield fakes
