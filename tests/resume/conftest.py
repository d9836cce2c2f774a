"""Fixtures of the resume and Stop tests: a hub in memory or on the real Redis, under a key prefix of its own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from lean_chat import create_app
from tests.support.live_server import LiveServer
from tests.support.services import needs

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_options() -> Iterator[dict[str, Any]]:
    """Settings for a Redis hub under a prefix of this test's own; its keys are deleted afterwards."""
    import redis

    needs("redis")

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail("Redis at 127.0.0.1:6379 is unreachable: the resume tests need it (start redis-server)")
    prefix = f"lc_test_{os.getpid()}_{uuid.uuid4().hex[:8]}:"
    try:
        yield {"redis_url": REDIS_URL, "redis_prefix": prefix}
    finally:
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        client.close()


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
