"""The fault table, for every provider, end to end: lean_chat over HTTP, the fake upstream under uvicorn."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.support.providers import MODELS, ask, lean, tokens
from tests.support.upstreams import FakeUpstream, Reply, refused_url

pytestmark = pytest.mark.anyio

TOKENS = ["Hello", ",", " world", "!"]
# A status each provider's own servers use for "overloaded, come back later".
OVERLOADED = {"openai": 503, "anthropic": 529, "gemini": 503}


async def test_tokens_usage_and_done(upstream: FakeUpstream) -> None:
    upstream.reset(Reply(tokens=TOKENS, input_tokens=21, output_tokens=9))
    async with lean(upstream) as http:
        frames, last = await ask(http, MODELS[upstream.name], "hi")
    assert tokens(frames) == TOKENS
    assert last.event == "done"
    assert last.data["message"] == {"role": "assistant", "content": "Hello, world!"}
    assert last.data["provider"] == f"{upstream.name}:{MODELS[upstream.name]}"
    assert last.data["usage"] == {"tokens": 9, "inputTokens": 21, "outputTokens": 9}
    assert upstream.attempts == 1


async def test_crlf_line_ends(upstream: FakeUpstream) -> None:
    upstream.reset(Reply(tokens=TOKENS, crlf=True, chunk_size=7))
    async with lean(upstream) as http:
        frames, last = await ask(http, MODELS[upstream.name])
    assert tokens(frames) == TOKENS and last.event == "done"


async def test_without_usage_the_estimate_is_used(upstream: FakeUpstream) -> None:
    upstream.reset(Reply(tokens=TOKENS, usage=False))
    async with lean(upstream) as http:
        _, last = await ask(http, MODELS[upstream.name])
    assert last.data["usage"] == {"tokens": max(1, (len("Hello, world!") + 3) // 4)}


@pytest.mark.parametrize(
    ("first", "retry_after"),
    [(429, "retry-after"), (500, None), ("overloaded", None), (429, "retry-after-ms")],
    ids=["429-retry-after", "500", "overloaded", "429-retry-after-ms"],
)
async def test_retryable_status_then_success(upstream: FakeUpstream, first: int | str, retry_after: str | None) -> None:
    status = OVERLOADED[upstream.name] if first == "overloaded" else int(first)
    headers = {}
    if retry_after == "retry-after":
        headers = {"retry-after": "0.15"}
    elif retry_after == "retry-after-ms":
        headers = {"retry-after-ms": "150"}
    upstream.reset(Reply(status=status, headers=headers), Reply(tokens=TOKENS))
    async with lean(upstream) as http:
        frames, last = await ask(http, MODELS[upstream.name])
    assert last.event == "done" and tokens(frames) == TOKENS
    assert upstream.attempts == 2
    if retry_after:
        gap = upstream.received[1].at - upstream.received[0].at
        assert gap >= 0.15, gap


async def test_529_then_success(anthropic_fake: FakeUpstream) -> None:
    anthropic_fake.reset(Reply(status=529, error_message="Overloaded"), Reply(status=529), Reply(tokens=TOKENS))
    async with lean(anthropic_fake) as http:
        _, last = await ask(http, MODELS["anthropic"])
    assert last.event == "done"
    assert anthropic_fake.attempts == 3


async def test_retry_after_is_capped(upstream: FakeUpstream) -> None:
    upstream.reset(Reply(status=429, headers={"retry-after": "3600"}), Reply(tokens=TOKENS))
    async with lean(upstream, retry_after_cap_seconds=0.05) as http:
        _, last = await ask(http, MODELS[upstream.name])
    assert last.event == "done"
    gap = upstream.received[1].at - upstream.received[0].at
    assert 0.05 <= gap < 30, gap


async def test_retries_run_out(upstream: FakeUpstream, caplog: pytest.LogCaptureFixture) -> None:
    upstream.reset(Reply(status=500, error_message="Upstream is on fire."))
    caplog.set_level(logging.WARNING, "lean_chat")
    retries: dict[str, Any] = {f"{upstream.name}_max_retries": 2}
    async with lean(upstream, **retries) as http:
        frames, last = await ask(http, MODELS[upstream.name])
    assert tokens(frames) == []
    assert last.event == "error"
    message = last.data["error"]["message"]
    assert message.startswith(f"{upstream.name} failed for model '{MODELS[upstream.name]}': Upstream is on fire.")
    assert "HTTP 500" in message
    assert last.data["error"]["code"] == "provider_error"
    assert upstream.attempts == 3
    assert sum("retry" in r.getMessage() for r in caplog.records) == 2


async def test_client_errors_are_not_retried(upstream: FakeUpstream) -> None:
    upstream.reset(Reply(status=400, error_message="messages: field required"))
    async with lean(upstream) as http:
        _, last = await ask(http, MODELS[upstream.name])
    assert last.event == "error"
    assert "messages: field required" in last.data["error"]["message"]
    assert "HTTP 400" in last.data["error"]["message"]
    assert upstream.attempts == 1


async def test_refused_connections_are_retried_then_reported(upstream: FakeUpstream) -> None:
    url = refused_url()
    async with lean(upstream, url) as http:
        frames, last = await ask(http, MODELS[upstream.name])
    assert tokens(frames) == []
    assert last.event == "error"
    assert "could not connect to the upstream server" in last.data["error"]["message"]
    assert url.split("//")[1] not in last.data["error"]["message"]


async def test_stall_before_the_first_byte_is_a_read_timeout(upstream: FakeUpstream) -> None:
    upstream.reset(Reply(stall=5.0))
    async with lean(upstream, read_timeout_seconds=0.3) as http:
        _, last = await ask(http, MODELS[upstream.name])
    assert last.event == "error"
    assert "read timeout" in last.data["error"]["message"]
    assert upstream.attempts == 1  # a stalled upstream is not asked again


async def test_stall_between_tokens_is_a_read_timeout_after_the_tokens(upstream: FakeUpstream) -> None:
    upstream.reset(Reply(tokens=TOKENS, token_delay=2.0))
    async with lean(upstream, read_timeout_seconds=0.3) as http:
        frames, last = await ask(http, MODELS[upstream.name])
    assert last.event == "error" and "read timeout" in last.data["error"]["message"]
    assert upstream.attempts == 1


async def test_a_reply_longer_than_the_request_timeout_is_cut(upstream: FakeUpstream) -> None:
    upstream.reset(Reply(tokens=[f"t{i}" for i in range(40)], token_delay=0.05))
    async with lean(upstream, request_timeout_seconds=0.4) as http:
        frames, last = await ask(http, MODELS[upstream.name])
    assert 0 < len(tokens(frames)) < 40
    assert last.event == "error"
    assert "took longer than 0.4 s" in last.data["error"]["message"]


async def test_an_upstream_line_over_the_bound_ends_with_error(upstream: FakeUpstream) -> None:
    upstream.reset(Reply(tokens=["Hello", "x" * 5000, "!"], chunk_size=512))
    async with lean(upstream, max_upstream_line_bytes=2000) as http:
        frames, last = await ask(http, MODELS[upstream.name])
    assert tokens(frames) == ["Hello"]
    assert last.event == "error"
    assert "line longer than 2000 bytes" in last.data["error"]["message"]
    assert upstream.attempts == 1  # the same reply again would be just as long


async def test_close_mid_stream_keeps_the_tokens_and_ends_with_error(upstream: FakeUpstream) -> None:
    upstream.reset(Reply(tokens=TOKENS, drop_after=2))
    async with lean(upstream) as http:
        frames, last = await ask(http, MODELS[upstream.name])
    assert tokens(frames) == TOKENS[:2]
    assert last.event == "error"
    assert "closed the connection mid-stream" in last.data["error"]["message"]
    assert upstream.attempts == 1  # never retried once a token was sent


async def test_close_before_the_first_token_is_retried(upstream: FakeUpstream) -> None:
    upstream.reset(Reply(tokens=TOKENS, drop_after=0), Reply(tokens=TOKENS))
    async with lean(upstream) as http:
        frames, last = await ask(http, MODELS[upstream.name])
    assert last.event == "done" and tokens(frames) == TOKENS
    assert upstream.attempts == 2


async def test_a_stream_that_ends_without_its_finish_is_an_error(upstream: FakeUpstream) -> None:
    upstream.reset(Reply(tokens=TOKENS, end_after=3))
    async with lean(upstream) as http:
        frames, last = await ask(http, MODELS[upstream.name])
    assert tokens(frames) == TOKENS[:3]
    assert last.event == "error"
    assert "ended before the reply was complete" in last.data["error"]["message"]


async def test_mid_stream_error_event_ends_with_error(upstream: FakeUpstream) -> None:
    upstream.reset(Reply(tokens=TOKENS, fail_after=2, error_message="Overloaded", error_type="overloaded_error"))
    async with lean(upstream) as http:
        frames, last = await ask(http, MODELS[upstream.name])
    assert tokens(frames) == TOKENS[:2]
    assert last.event == "error"
    assert last.data["error"]["message"].startswith(f"{upstream.name} failed for model '{MODELS[upstream.name]}'")
    assert "Overloaded" in last.data["error"]["message"]
    assert upstream.attempts == 1


async def test_failure_without_a_model_falls_back_to_the_mock(upstream: FakeUpstream) -> None:
    upstream.reset(Reply(status=503))
    async with lean(upstream, default_model=MODELS[upstream.name]) as http:
        _, last = await ask(http, None, params={"mock": {"tokenDelayMs": 0}})
    assert last.event == "done"
    assert last.data["provider"] == f"mock:{MODELS[upstream.name]}"
    assert "inputTokens" not in last.data["usage"]
    assert upstream.attempts == 3


async def test_one_connection_is_reused_across_requests(upstream: FakeUpstream) -> None:
    async with lean(upstream) as http:
        for _ in range(4):
            _, last = await ask(http, MODELS[upstream.name])
            assert last.event == "done"
    assert upstream.attempts == 4
    assert upstream.connections == 1


async def test_the_key_is_never_shown(upstream: FakeUpstream, caplog: pytest.LogCaptureFixture) -> None:
    key = upstream.key
    echo = f"Incorrect API key provided: {key}."
    upstream.reset(
        Reply(status=429, error_message=echo),
        Reply(tokens=TOKENS, fail_after=1, error_message=echo),
        Reply(status=401, error_message=echo),
    )
    caplog.set_level(logging.DEBUG)
    async with lean(upstream) as http:
        first = await http.post("/chat/stream", json=_body(upstream))
        second = await http.post("/chat/stream", json=_body(upstream))
    for response in (first, second):
        assert response.status_code == 200
        assert "[redacted]" in response.text
        assert key not in response.text
    assert caplog.records, "nothing was logged"
    assert key not in caplog.text
    for received in upstream.received:
        assert key not in received.path and key not in received.raw_query


def _body(upstream: FakeUpstream) -> dict[str, object]:
    """A request naming the provider's model."""
    return {"userId": "u1", "messages": [{"role": "user", "content": "hi"}], "params": {"model": MODELS[upstream.name]}}
