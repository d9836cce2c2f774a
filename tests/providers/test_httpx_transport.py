"""httpx's own transport (HTTP/2, a proxy, or `upstream_transport="httpx"`) keeps the core of the fault table."""

from __future__ import annotations

import pytest

from tests.support.providers import MODELS, ask, lean, second_on_a_pool_of_one, tokens
from tests.support.upstreams import FakeUpstream, Reply, refused_url

pytestmark = pytest.mark.anyio

TOKENS = ["Hello", ",", " world", "!"]
HTTPX = {"upstream_transport": "httpx"}


async def test_tokens_and_done(upstream: FakeUpstream) -> None:
    upstream.reset(Reply(tokens=TOKENS))
    async with lean(upstream, **HTTPX) as http:
        frames, last = await ask(http, MODELS[upstream.name])
    assert last.event == "done" and tokens(frames) == TOKENS


async def test_retryable_status_then_success(openai_fake: FakeUpstream) -> None:
    openai_fake.reset(Reply(status=503), Reply(tokens=TOKENS))
    async with lean(openai_fake, **HTTPX) as http:
        frames, last = await ask(http, "gpt-4.1")
    assert last.event == "done" and openai_fake.attempts == 2


async def test_read_timeout_and_close_mid_stream(openai_fake: FakeUpstream) -> None:
    openai_fake.reset(Reply(stall=5.0))
    async with lean(openai_fake, read_timeout_seconds=0.3, **HTTPX) as http:
        _, last = await ask(http, "gpt-4.1")
    assert last.event == "error" and "read timeout" in last.data["error"]["message"]
    openai_fake.reset(Reply(tokens=TOKENS, drop_after=2))
    async with lean(openai_fake, **HTTPX) as http:
        frames, last = await ask(http, "gpt-4.1")
    assert tokens(frames) == TOKENS[:2] and "closed the connection mid-stream" in last.data["error"]["message"]


async def test_refused_connection(openai_fake: FakeUpstream) -> None:
    url = refused_url()
    async with lean(openai_fake, url, **HTTPX) as http:
        _, last = await ask(http, "gpt-4.1")
    assert last.event == "error" and "could not connect to the upstream server" in last.data["error"]["message"]


async def test_a_full_pool_ends_with_a_clear_error(openai_fake: FakeUpstream) -> None:
    openai_fake.reset(Reply(tokens=[f"t{i}" for i in range(8)], token_delay=0.15))
    finals = await second_on_a_pool_of_one(openai_fake, **HTTPX)
    assert finals["first"] == "done"
    assert "pool timeout" in finals["second"]
