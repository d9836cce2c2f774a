"""Shared fixtures: the app in-process (ASGI transport, lifespan run) and under a real uvicorn on loopback."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from typing import Any

import httpx
import pytest

from tests.support import services
from tests.support.apps import in_process
from tests.support.busy_cpu import busy_cpus
from tests.support.live_server import LiveServer


def pytest_addoption(parser: pytest.Parser) -> None:
    """`--busy-cpu`: run the selected tests while other processes keep every core busy."""
    parser.addoption(
        "--busy-cpu",
        action="store_true",
        help="keep every core busy with spinning processes for the whole run (scripts/test runs the `load` tests so)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Stop the run when a test asks for a service's fixture without its marker (before `-m` leaves any out)."""
    problems = [
        f"{item.nodeid}: `{name}` without the `{services.FIXTURES[name]}` marker"
        for item in items
        for name in services.unmarked(item)
    ]
    if problems:
        raise pytest.UsageError("tests reaching a service must carry its marker:\n" + "\n".join(problems))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """Note the test being run, for `services.needs` (set up, call and teardown)."""
    services.running.append(item)
    try:
        return (yield)
    finally:
        services.running.remove(item)


@pytest.fixture(scope="session", autouse=True)
def busy_cpu_while_testing(request: pytest.FixtureRequest) -> Iterator[None]:
    """With `--busy-cpu`, one spinning process per core for the whole session; otherwise nothing."""
    if not request.config.getoption("--busy-cpu"):
        yield
        return
    with busy_cpus():
        yield


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


REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_options() -> Iterator[dict[str, Any]]:
    """Settings for a Redis hub under a prefix of this test's own; its keys are deleted afterwards."""
    import redis

    services.needs("redis")

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail("Redis at 127.0.0.1:6379 is unreachable: the Redis tests need it (start redis-server)")
    prefix = f"lc_test_{os.getpid()}_{uuid.uuid4().hex[:8]}:"
    try:
        yield {"redis_url": REDIS_URL, "redis_prefix": prefix}
    finally:
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        client.close()
