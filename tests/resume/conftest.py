"""Fixtures of the resume and Stop tests: a hub in memory or on the real Redis (tests/conftest.py's `redis_options`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from lean_chat import create_app
from tests.support.live_server import LiveServer


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def hub_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Hub settings: each test runs with the in-process hub and with the Redis one."""
    if request.param == "memory":
        return {}
    options: dict[str, Any] = request.getfixturevalue("redis_options")
    return options


@pytest.fixture
def serve(
    live_server: Callable[..., LiveServer], hub_options: dict[str, Any], tmp_path: Any
) -> Iterator[Callable[..., httpx.Client]]:
    """A factory: a lean_chat app under uvicorn (SQLite history, the test's hub) and a client for it."""
    clients: list[httpx.Client] = []

    def start(**settings: Any) -> httpx.Client:
        options = {"sqlite_path": str(tmp_path / "chat.sqlite3"), **hub_options, **settings}
        server = live_server(create_app(**options))
        client = httpx.Client(base_url=server.url, timeout=20)
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.close()
