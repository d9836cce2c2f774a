"""Anthropic specifics: headers, system text, aliases, max_tokens, usage, ping, `event: error`, spend limits."""

from __future__ import annotations

import pytest

from lean_chat.providers.anthropic import ANTHROPIC_VERSION
from tests.support.providers import ask, lean, tokens
from tests.support.upstreams import FakeUpstream, Reply

pytestmark = pytest.mark.anyio

TOKENS = ["Bonjour", " à", " tous"]


async def test_request_shape(anthropic_fake: FakeUpstream) -> None:
    body = {
        "userId": "u1",
        "messages": [
            {"role": "system", "content": "Be kind."},
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hi!"},
            {"role": "system", "content": " Answer in French. "},
            {"role": "user", "content": "how are you?"},
        ],
        "params": {"model": "claude-sonnet-4-5"},
    }
    async with lean(anthropic_fake, anthropic_max_tokens=333) as http:
        response = await http.post("/chat/stream", json=body)
    assert response.status_code == 200
    seen = anthropic_fake.received[-1]
    assert seen.path == "/v1/messages"
    assert seen.headers["x-api-key"] == anthropic_fake.key
    assert seen.headers["anthropic-version"] == ANTHROPIC_VERSION == "2023-06-01"
    assert "authorization" not in seen.headers
    assert seen.body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 333,
        "messages": [
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hi!"},
            {"role": "user", "content": "how are you?"},
        ],
        "stream": True,
        "system": "Be kind.\n\nAnswer in French.",
    }


@pytest.mark.parametrize("alias", ["claude-3-5-sonnet", "claude-3.5-sonnet"])
async def test_short_alias_is_mapped(anthropic_fake: FakeUpstream, alias: str) -> None:
    async with lean(anthropic_fake) as http:
        _, last = await ask(http, alias)
    assert anthropic_fake.received[-1].body["model"] == "claude-3-5-sonnet-latest"
    assert last.data["provider"] == f"anthropic:{alias}"


async def test_default_max_tokens(anthropic_fake: FakeUpstream) -> None:
    async with lean(anthropic_fake) as http:
        await ask(http, "claude-3-haiku")
    assert anthropic_fake.received[-1].body["max_tokens"] == 1024
    assert "system" not in anthropic_fake.received[-1].body


async def test_usage_keeps_the_last_running_total(anthropic_fake: FakeUpstream) -> None:
    def event(name: str, data: str) -> str:
        return f"event: {name}\ndata: {data}\n\n"

    delta = '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"%s"}}'
    anthropic_fake.reset(
        Reply(
            raw=[
                event("message_start", '{"type":"message_start","message":{"usage":{"input_tokens":40}}}'),
                event("ping", '{"type": "ping"}'),
                event("content_block_delta", delta % "a"),
                event("message_delta", '{"type":"message_delta","delta":{},"usage":{"output_tokens":3}}'),
                event("content_block_delta", '{"type":"content_block_delta","delta":{"type":"input_json_delta"}}'),
                event("future_event", '{"type":"future_event"}'),
                event("content_block_delta", delta % "b"),
                event("message_delta", '{"type":"message_delta","delta":{},"usage":{"output_tokens":7}}'),
                event("message_stop", '{"type":"message_stop"}'),
            ]
        )
    )
    async with lean(anthropic_fake) as http:
        frames, last = await ask(http, "claude-3-haiku")
    assert tokens(frames) == ["a", "b"]
    assert last.data["usage"] == {"tokens": 7, "inputTokens": 40, "outputTokens": 7}


async def test_overloaded_error_event_mid_stream(anthropic_fake: FakeUpstream) -> None:
    anthropic_fake.reset(Reply(tokens=TOKENS, fail_after=2, error_message="Overloaded", error_type="overloaded_error"))
    async with lean(anthropic_fake) as http:
        frames, last = await ask(http, "claude-3-haiku")
    assert tokens(frames) == TOKENS[:2]
    assert last.data["error"]["message"] == "anthropic failed for model 'claude-3-haiku': Overloaded (overloaded_error)"
    assert last.data["error"]["code"] == "provider_error"


async def test_overloaded_error_event_before_any_token_is_retried(anthropic_fake: FakeUpstream) -> None:
    anthropic_fake.reset(Reply(fail_after=0, error_type="overloaded_error"), Reply(tokens=TOKENS))
    async with lean(anthropic_fake) as http:
        frames, last = await ask(http, "claude-3-haiku")
    assert tokens(frames) == TOKENS and last.event == "done"
    assert anthropic_fake.attempts == 2


async def test_invalid_request_error_event_is_not_retried(anthropic_fake: FakeUpstream) -> None:
    anthropic_fake.reset(Reply(fail_after=0, error_type="invalid_request_error", error_message="bad"))
    async with lean(anthropic_fake) as http:
        _, last = await ask(http, "claude-3-haiku")
    assert last.data["error"]["message"].endswith("bad (invalid_request_error)")
    assert anthropic_fake.attempts == 1


async def test_spend_limit_is_not_retried(anthropic_fake: FakeUpstream) -> None:
    anthropic_fake.reset(
        Reply(status=429, error_message="Spend limit reached.", error_type="enforced_spend_limit_reached"),
        Reply(tokens=TOKENS),
    )
    async with lean(anthropic_fake) as http:
        _, last = await ask(http, "claude-3-haiku")
    assert last.event == "error" and "Spend limit reached." in last.data["error"]["message"]
    assert anthropic_fake.attempts == 1


async def test_rate_limit_error_status_is_retried(anthropic_fake: FakeUpstream) -> None:
    anthropic_fake.reset(Reply(status=429, headers={"retry-after": "0"}), Reply(tokens=TOKENS))
    async with lean(anthropic_fake) as http:
        _, last = await ask(http, "claude-3-haiku")
    assert last.event == "done" and anthropic_fake.attempts == 2
