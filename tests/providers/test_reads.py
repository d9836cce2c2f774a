"""Each provider over byte-exact reads (httpx.MockTransport): lines cut at every offset, CRLF, one batch per read."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from lean_chat.config import Settings
from lean_chat.providers import build_providers
from lean_chat.providers.base import ContextMessage, Provider, StreamCall
from tests.support.providers import MODELS
from tests.support.upstreams import FakeAnthropic, FakeGemini, FakeOpenAI, FakeUpstream, Reply

pytestmark = pytest.mark.anyio

FAKES: dict[str, Callable[[], FakeUpstream]] = {"openai": FakeOpenAI, "anthropic": FakeAnthropic, "gemini": FakeGemini}
TOKENS = ["Hé", " wörld", " ✓", "\n"]


def provider_for(fake: FakeUpstream, client: httpx.AsyncClient) -> Provider:
    """The provider build_providers makes for the fake's name, pointed at it."""
    settings = Settings(**fake.options("http://upstream.test"))
    return build_providers(settings, client)[fake.name]


async def batches(
    fake: FakeUpstream, reply: Reply, client: httpx.AsyncClient | None = None
) -> tuple[list[list[str]], StreamCall]:
    """The batches of one reply streamed through the provider, and the call (with its usage)."""
    fake.reset(reply)
    call = StreamCall(MODELS[fake.name], [ContextMessage("user", "hi")])
    if client is not None:
        return [batch async for batch in provider_for(fake, client).stream(call) if isinstance(batch, list)], call
    async with httpx.AsyncClient(transport=fake.transport()) as own:
        return [batch async for batch in provider_for(fake, own).stream(call) if isinstance(batch, list)], call


@pytest.mark.parametrize("name", list(FAKES))
@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
async def test_every_byte_offset_split(name: str, crlf: bool) -> None:
    fake = FAKES[name]()
    plan_reply = Reply(tokens=TOKENS, crlf=crlf)
    fake.url = "http://upstream.test"
    size = sum(len(w) for w in fake.plan(plan_reply, _request(name), _auth(fake), "POST", _path(name)).writes)
    assert size > 400
    async with httpx.AsyncClient(transport=fake.transport()) as client:
        for cut in range(1, size):
            out, call = await batches(fake, Reply(tokens=TOKENS, crlf=crlf, cuts=[cut]), client)
            assert [t for batch in out for t in batch] == TOKENS, cut
            assert (call.usage.input_tokens, call.usage.output_tokens) == (11, len(TOKENS)), cut
            assert len(out) <= 2, cut  # one batch per read that completed tokens


@pytest.mark.parametrize("name", list(FAKES))
async def test_one_byte_per_read(name: str) -> None:
    out, call = await batches(FAKES[name](), Reply(tokens=TOKENS, chunk_size=1))
    assert out == [[t] for t in TOKENS]
    assert call.usage.output_tokens == len(TOKENS)


@pytest.mark.parametrize("name", list(FAKES))
async def test_all_tokens_of_one_read_are_one_batch(name: str) -> None:
    out, _ = await batches(FAKES[name](), Reply(tokens=TOKENS, chunk_size=1 << 20))
    assert out == [TOKENS]


@pytest.mark.parametrize("name", list(FAKES))
async def test_one_event_per_read_is_one_batch_per_token(name: str) -> None:
    out, _ = await batches(FAKES[name](), Reply(tokens=TOKENS))
    assert out == [[t] for t in TOKENS]


@pytest.mark.parametrize("name", list(FAKES))
async def test_comment_lines_are_ignored(name: str) -> None:
    out, _ = await batches(FAKES[name](), Reply(tokens=TOKENS, comment=True))
    assert [t for batch in out for t in batch] == TOKENS


def _request(name: str) -> dict[str, object]:
    """A request body as the provider sends it (enough for the fake's plan)."""
    return {"model": MODELS[name], "stream_options": {"include_usage": True}}


def _auth(fake: FakeUpstream) -> dict[str, str]:
    """Headers that pass the fake's key check."""
    return {
        "authorization": f"Bearer {fake.key}",
        "x-api-key": fake.key,
        "anthropic-version": "2023-06-01",
        "x-goog-api-key": fake.key,
    }


def _path(name: str) -> str:
    """The provider's streaming path on the fake."""
    return {
        "openai": "/v1/chat/completions",
        "anthropic": "/v1/messages",
        "gemini": f"/v1beta/models/{MODELS[name]}:streamGenerateContent",
    }[name]
