"""The upstream pool: its size is a setting, a full pool fails a stream clearly in time, keep-alive survives a burst."""

from __future__ import annotations

import time

import anyio
import httpx
import pytest

from lean_chat.config import Settings
from lean_chat.providers.client import upstream_client
from tests.support.providers import ask, lean, second_on_a_pool_of_one, tokens
from tests.support.upstreams import FakeUpstream, Reply

pytestmark = pytest.mark.anyio

SLOW = Reply(tokens=[f"t{i}" for i in range(8)], token_delay=0.15)


async def test_a_stream_that_finds_the_pool_full_ends_with_a_clear_error(openai_fake: FakeUpstream) -> None:
    openai_fake.reset(SLOW)
    started = time.monotonic()
    finals = await second_on_a_pool_of_one(openai_fake)
    assert time.monotonic() - started < 5
    assert finals["first"] == "done"
    assert "no upstream connection became free in time (pool timeout)" in finals["second"]
    assert openai_fake.attempts == 1  # the second never reached the upstream (and was not retried)


async def test_streams_beyond_the_pool_size_wait_for_a_free_connection(openai_fake: FakeUpstream) -> None:
    openai_fake.reset(Reply(tokens=["a", "b"], token_delay=0.05))
    results: list[list[str]] = []
    async with lean(openai_fake, max_connections=3, pool_timeout_seconds=10) as http:

        async def one(user: str) -> None:
            frames, last = await ask(http, "gpt-4.1", user=user)
            assert last.event == "done"
            results.append(tokens(frames))

        async with anyio.create_task_group() as group:
            for index in range(9):
                group.start_soon(one, f"u{index}")
    assert results == [["a", "b"]] * 9
    assert openai_fake.connections == 3  # never more than the pool's size, each reused


async def test_keep_alive_survives_a_burst_larger_than_100(openai_fake: FakeUpstream) -> None:
    # httpx's default pool kept at most 100 idle connections: a burst of 150 closed 50 and opened them again.
    openai_fake.reset(Reply(tokens=["k"], token_delay=0.2))
    assert openai_fake.url is not None
    url = openai_fake.base_url() + "/chat/completions"
    headers = {"authorization": f"Bearer {openai_fake.key}"}

    async with upstream_client(Settings()) as client:

        async def one() -> None:
            response = await client.post(url, headers=headers, json={"model": "gpt-4.1", "stream": True})
            assert response.status_code == 200 and b"[DONE]" in response.content

        for _ in range(2):
            async with anyio.create_task_group() as group:
                for _ in range(150):
                    group.start_soon(one)
    assert openai_fake.attempts == 300
    assert openai_fake.connections == 150


async def test_the_pool_size_and_timeout_come_from_settings() -> None:
    settings = Settings(max_connections=7, pool_timeout_seconds=1.25)
    async with upstream_client(settings) as client:
        assert client.timeout.pool == 1.25
        transport = client._transport  # the client's own transport: which one, and its size
        assert getattr(transport, "max_connections", None) == 7
    assert Settings().max_connections >= 4000  # sized for thousands of concurrent streams


async def test_http2_or_a_proxy_in_the_environment_use_httpx_own_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    from lean_chat.providers.client import uses_lean_transport
    from lean_chat.providers.transport import LeanTransport

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert uses_lean_transport(Settings())
    assert not uses_lean_transport(Settings(http2=True))
    assert not uses_lean_transport(Settings(upstream_transport="httpx"))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert not uses_lean_transport(Settings())
    async with upstream_client(Settings()) as client:
        assert not isinstance(client._transport, LeanTransport)
        assert isinstance(client._transport, httpx.AsyncHTTPTransport)
