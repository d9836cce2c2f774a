"""Regression: when the default provider failed before its first token, the mock answered and nothing was logged.

Each fallback now logs one warning (provider, model, status, error type; never a key), `mock_fallback=False`
ends such a stream with an `error` frame instead, and the start-up line says which way the app is set.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from lean_chat import create_app
from tests.support.apps import in_process, stream_body
from tests.support.frames import check_grammar, parse_frames
from tests.support.live_server import fake_upstreams
from tests.support.upstreams import API_KEY, FakeUpstream, Reply

pytestmark = pytest.mark.anyio

MODELS = {"openai": "gpt-4.1", "anthropic": "claude-3-5-sonnet", "gemini": "gemini-2.0-flash"}
REVOKED_KEY = "sk-revoked-3b1d-never-logged"


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeUpstream]]:
    """The three fake upstreams under uvicorn on loopback."""
    with fake_upstreams() as found:
        yield found


def _options(fake: FakeUpstream, failure: str, **extra: Any) -> dict[str, Any]:
    """An app whose default model is this provider's, failing as named: "401" (a revoked key) or "429" (quota)."""
    fake.reset(Reply(status=429, error_type="insufficient_quota", error_message="You exceeded your quota."))
    return {
        "sqlite_path": "",
        "default_model": MODELS[fake.name],
        f"{fake.name}_api_key": REVOKED_KEY if failure == "401" else fake.key,
        f"{fake.name}_base_url": fake.base_url(),
        f"{fake.name}_max_retries": 0,
        **extra,
    }


def _fallbacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The fallback warnings logged."""
    return [r for r in caplog.records if r.levelno == logging.WARNING and "mock answered instead" in r.getMessage()]


@pytest.mark.parametrize("provider", list(MODELS))
@pytest.mark.parametrize("failure", ["401", "429"])
async def test_a_fallback_to_the_mock_logs_a_warning_naming_the_failure(
    provider: str, failure: str, fakes: dict[str, FakeUpstream], caplog: pytest.LogCaptureFixture
) -> None:
    fake = fakes[provider]
    caplog.set_level(logging.INFO, logger="lean_chat")
    async with in_process(**_options(fake, failure)) as http:
        response = await http.post("/chat/stream", json=stream_body("fb", "hello"))
    done = check_grammar(parse_frames(response.content))
    assert done.event == "done" and done.data["provider"] == f"mock:{MODELS[provider]}"
    (warning,) = _fallbacks(caplog)
    line = warning.getMessage()
    assert line.startswith(f"{provider} failed before its first token for model '{MODELS[provider]}'"), line
    assert f"status {failure}" in line, line
    expected_type = "authentication_error" if failure == "401" else "insufficient_quota"
    assert f"error type '{expected_type}'" in line, line
    assert "mock_fallback is on" in line
    for record in caplog.records:
        text = record.getMessage()
        assert REVOKED_KEY not in text and API_KEY not in text


@pytest.mark.parametrize("failure", ["401", "429"])
async def test_the_fallback_to_the_mock_can_be_turned_off(
    failure: str, fakes: dict[str, FakeUpstream], caplog: pytest.LogCaptureFixture
) -> None:
    fake = fakes["openai"]
    caplog.set_level(logging.INFO, logger="lean_chat")
    async with in_process(**_options(fake, failure, mock_fallback=False)) as http:
        response = await http.post("/chat/stream", json=stream_body("off", "hello"))
    frames = parse_frames(response.content)
    last = check_grammar(frames)
    assert last.event == "error", last.data
    assert last.data["error"]["message"].startswith("openai failed for model 'gpt-4.1': ")
    assert not [f for f in frames if f.event == "token"], "mock text reached the client"
    assert _fallbacks(caplog) == []
    ready = [r.getMessage() for r in caplog.records if "lean_chat ready" in r.getMessage()]
    assert len(ready) == 1 and ready[0].endswith("mock fallback off"), ready


async def test_with_the_fallback_off_a_default_provider_without_a_key_is_an_error() -> None:
    async with in_process(sqlite_path="", mock_fallback=False, anthropic_api_key="sk-any") as http:
        response = await http.post("/chat/stream", json=stream_body("nokey", "hello"))
        named = await http.post("/chat/stream", json=stream_body("nokey", "hello", model="mock"))
    last = check_grammar(parse_frames(response.content))
    assert last.event == "error" and last.data["error"]["code"] == "provider_not_configured"
    # The mock still answers when a client names it.
    assert check_grammar(parse_frames(named.content)).event == "done"


async def test_a_default_provider_without_a_key_logs_its_fallback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lean_chat")
    async with in_process(sqlite_path="", anthropic_api_key="sk-any") as http:
        response = await http.post("/chat/stream", json=stream_body("nokey", "hello"))
    assert check_grammar(parse_frames(response.content)).data["provider"] == "mock:gpt-4.1"
    (warning,) = _fallbacks(caplog)
    assert warning.getMessage().startswith("openai has no API key for model 'gpt-4.1'")


async def test_the_start_up_line_says_the_fallback_is_on_by_default(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lean_chat")
    app = create_app(sqlite_path="")
    async with app.router.lifespan_context(app):
        pass
    ready = [r.getMessage() for r in caplog.records if "lean_chat ready" in r.getMessage()]
    assert len(ready) == 1 and ready[0].endswith("mock fallback on"), ready
