"""Shared fixtures: the app in-process (ASGI transport, lifespan run) and under a real uvicorn on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.apps import in_process
from tests.support.live_server import LiveServer


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
    async with in_process(sqlite_path=sqlite_path) as http:
        yield http


@pytest.fixture
def live_server() -> Iterator[Callable[..., LiveServer]]:
    """A factory: `live_server(app)` starts uvicorn on a free loopback port; all are stopped afterwards."""
    started: list[LiveServer] = []

    def start(app: Any, **config: Any) -> LiveServer:
        server = LiveServer(app, **config).start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()
