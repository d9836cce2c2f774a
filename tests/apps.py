"""Helpers for tests: a lean_chat app with chosen settings, in-process, and stream bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from lean_chat import create_app

__all__ = ["FAST", "http_scope", "in_process", "stream_body", "turn"]

# Mock knobs for a quick stream: no pacing.
FAST: dict[str, Any] = {"tokenDelayMs": 0}


@asynccontextmanager
async def in_process(app: Any = None, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking in-process to `app` (or a new app with these settings), lifespan run."""
    app = app if app is not None else create_app(**settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lean.test") as http:
            yield http


def stream_body(
    user_id: str, *contents: str, conversation_id: str | None = None, model: str | None = None, **mock: Any
) -> dict[str, Any]:
    """A `/chat/stream` body of user messages with a fast mock (knobs may be overridden)."""
    params: dict[str, Any] = {"mock": {**FAST, **mock}}
    if conversation_id is not None:
        params["conversationId"] = conversation_id
    if model is not None:
        params["model"] = model
    return {"userId": user_id, "messages": [{"role": "user", "content": c} for c in contents], "params": params}


async def turn(http: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    """POST one stream and return the complete response."""
    response = await http.post("/chat/stream", json=body)
    assert response.status_code == 200, response.text
    return response


def http_scope(body: bytes | None = None) -> dict[str, Any]:
    """An ASGI scope for `POST /chat/stream` with a JSON body (its length declared when given)."""
    headers = [(b"content-type", b"application/json")]
    if body is not None:
        headers.append((b"content-length", str(len(body)).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/chat/stream",
        "raw_path": b"/chat/stream",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
