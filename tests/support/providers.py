"""Provider tests' helpers: lean_chat in front of a fake upstream, and reading its stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx

from tests.support.apps import in_process
from tests.support.frames import Frame, check_grammar, parse_frames
from tests.support.upstreams import FakeUpstream

__all__ = ["FAST_RETRIES", "MODELS", "app_settings", "ask", "chat_body", "lean", "second_on_a_pool_of_one", "tokens"]

MODELS = {"openai": "gpt-4.1", "anthropic": "claude-3-5-sonnet", "gemini": "gemini-2.0-flash"}
# Retries in tests wait about a millisecond, unless a test asks otherwise.
FAST_RETRIES = {"retry_base_delay_ms": 1, "retry_max_delay_ms": 2}


def app_settings(fake: FakeUpstream, url: str | None = None, **settings: Any) -> dict[str, Any]:
    """lean_chat settings with the fake's provider configured (quick retries, memory history)."""
    options: dict[str, Any] = {"sqlite_path": "", **fake.options(url)}
    options.update({f"{fake.name}_{k}": v for k, v in FAST_RETRIES.items()})
    options.update(settings)
    return options


@asynccontextmanager
async def lean(fake: FakeUpstream, url: str | None = None, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking in-process to a lean_chat app whose provider is the fake (lifespan run)."""
    async with in_process(**app_settings(fake, url, **settings)) as http:
        yield http


def chat_body(
    model: str | None,
    *contents: str,
    user: str = "u1",
    system: str | None = None,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A `/chat/stream` body: optional system text, then user messages; `params` added to the model."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.extend({"role": "user", "content": c} for c in contents or ("hi",))
    params = {**({"model": model} if model else {}), **(params or {})}
    return {"userId": user, "messages": messages, "params": params}


async def ask(http: httpx.AsyncClient, model: str | None, *contents: str, **body: Any) -> tuple[list[Frame], Frame]:
    """Stream one turn; the frames and the final (`done` or `error`) frame, grammar checked."""
    response = await http.post("/chat/stream", json=chat_body(model, *contents, **body))
    assert response.status_code == 200, response.text
    frames = parse_frames(response.content)
    return frames, check_grammar(frames)


def tokens(frames: list[Frame]) -> list[str]:
    """The token strings, in order."""
    return [f.data["token"] for f in frames if f.event == "token"]


async def second_on_a_pool_of_one(fake: FakeUpstream, **settings: Any) -> dict[str, str]:
    """Two streams on a pool of one connection (timeout 0.3 s), the second sent once the first holds it.

    Each user's ending: `done`, or its error message. The upstream should answer slowly (over 0.3 s).
    """
    finals: dict[str, str] = {}
    async with lean(fake, max_connections=1, pool_timeout_seconds=0.3, **settings) as http:

        async def one(user: str) -> None:
            _, last = await ask(http, "gpt-4.1", user=user)
            finals[user] = last.event if last.event == "done" else last.data["error"]["message"]

        async with anyio.create_task_group() as group:
            group.start_soon(one, "first")
            with anyio.fail_after(5):
                while fake.attempts < 1:  # the first stream holds the only connection
                    await anyio.sleep(0.01)
            group.start_soon(one, "second")
    return finals
