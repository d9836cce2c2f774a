"""Providers configured from the environment (WIRE.md's variable names), as `lean-chat serve` reads them."""

from __future__ import annotations

import os

import pytest

from lean_chat import create_app_from_env
from tests.support.apps import in_process
from tests.support.frames import check_grammar, parse_frames
from tests.support.providers import MODELS, chat_body, tokens
from tests.support.upstreams import FakeUpstream, Reply

pytestmark = pytest.mark.anyio

ENV_PREFIXES = ("OPENAI_", "ANTHROPIC_", "GEMINI_", "FASTAPI_AI_CHAT_", "LEAN_CHAT_")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment without any provider or lean_chat variable."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize("retries", [0, 1])
async def test_key_base_url_and_retries_from_the_environment(
    upstream: FakeUpstream, clean_env: pytest.MonkeyPatch, retries: int
) -> None:
    for name, value in upstream.env().items():
        clean_env.setenv(name, value)
    clean_env.setenv("FASTAPI_AI_CHAT_SQLITE_PATH", "")
    prefix = "LEAN_CHAT_ANTHROPIC" if upstream.name == "anthropic" else f"FASTAPI_AI_CHAT_{upstream.name.upper()}"
    clean_env.setenv(f"{prefix}_MAX_RETRIES", str(retries))
    clean_env.setenv(f"{prefix}_RETRY_BASE_DELAY_MS", "1")
    upstream.reset(Reply(status=503), Reply(tokens=["from", " env"]))
    app = create_app_from_env()
    async with in_process(app) as http:
        response = await http.post("/chat/stream", json=chat_body(MODELS[upstream.name]))
    frames = parse_frames(response.content)
    last = check_grammar(frames)
    assert upstream.attempts == retries + 1
    if retries:
        assert last.event == "done" and tokens(frames) == ["from", " env"]
    else:
        assert last.event == "error" and "HTTP 503" in last.data["error"]["message"]
