"""A client that goes away closes the upstream request at once: lean_chat and the fake both under real uvicorn."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from lean_chat import create_app
from tests.support.live_server import LiveServer
from tests.support.providers import MODELS, app_settings, chat_body
from tests.support.upstreams import FakeUpstream, Reply

pytestmark = pytest.mark.anyio

SLOW = Reply(tokens=[f"t{i} " for i in range(400)], token_delay=0.02)


async def test_upstream_closed_within_200_ms_of_client_disconnect(
    upstream: FakeUpstream, live_server: Callable[..., LiveServer]
) -> None:
    upstream.reset(SLOW)
    lean = live_server(create_app(**app_settings(upstream)))
    seen = 0
    async with httpx.AsyncClient(timeout=10) as client:
        async with client.stream(
            "POST", f"{lean.url}/chat/stream", json=chat_body(MODELS[upstream.name], user="gone")
        ) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                seen += line.startswith("event: token")
                if seen == 3:
                    break
            left_at = time.monotonic()
    assert upstream.disconnected.wait(5), "the upstream request was never closed"
    closed_at = upstream.received[-1].disconnected_at
    assert closed_at is not None
    assert closed_at - left_at < 0.2, closed_at - left_at
    assert upstream.received[-1].sent_writes < 100  # it stopped generating long before the end


async def test_partial_reply_is_saved_when_the_client_goes_away(
    openai_fake: FakeUpstream, live_server: Callable[..., LiveServer], sqlite_path: str
) -> None:
    openai_fake.reset(SLOW)
    settings: dict[str, Any] = app_settings(openai_fake, sqlite_path=sqlite_path)
    lean = live_server(create_app(**settings))
    async with httpx.AsyncClient(timeout=10) as client:
        async with client.stream("POST", f"{lean.url}/chat/stream", json=chat_body("gpt-4.1", user="p")) as response:
            async for line in response.aiter_lines():
                if line.startswith("event: token"):
                    break
        assert openai_fake.disconnected.wait(5)
        deadline = time.monotonic() + 5
        while True:
            history = (await client.get(f"{lean.url}/chat/history", params={"userId": "p"})).json()["messages"]
            if len(history) == 2 or time.monotonic() > deadline:
                break
            await anyio.sleep(0.02)
    assert history[-1]["role"] == "assistant"
    assert history[-1]["content"].startswith("t0 ")
    assert history[-1]["meta"] == {"partial": True}


async def test_upstream_closed_when_the_client_leaves_before_the_first_byte(
    upstream: FakeUpstream, live_server: Callable[..., LiveServer]
) -> None:
    upstream.reset(Reply(stall=10.0))
    lean = live_server(create_app(**app_settings(upstream)))
    async with httpx.AsyncClient(timeout=10) as client:
        body = chat_body(MODELS[upstream.name], user="impatient")
        async with client.stream("POST", f"{lean.url}/chat/stream", json=body) as response:
            assert response.status_code == 200
            while upstream.attempts == 0:
                await anyio.sleep(0.01)
            left_at = time.monotonic()
    assert upstream.disconnected.wait(5), "the stalled upstream request was never closed"
    closed_at = upstream.received[-1].disconnected_at
    assert closed_at is not None
    assert closed_at - left_at < 0.2, closed_at - left_at
    assert upstream.received[-1].sent_writes == 0
