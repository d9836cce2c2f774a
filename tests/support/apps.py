"""A lean_chat app in-process (httpx over `ASGITransport`), stream bodies, and raw ASGI scopes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from lean_chat import create_app
from tests.support.frames import check_grammar, parse_frames

__all__ = ["FAST", "asgi_client", "http_scope", "in_process", "json_headers", "reply_to", "stream_body", "turn"]

# Mock knobs for a quick stream: no pacing.
FAST: dict[str, Any] = {"tokenDelayMs": 0}


@asynccontextmanager
async def asgi_client(app: Any, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking in-process to `app`, whose lifespan the caller runs (or leaves off)."""
    options.setdefault("base_url", "http://lean.test")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), **options) as http:
        yield http


@asynccontextmanager
async def in_process(app: Any = None, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking in-process to `app` (or a new app with these settings), lifespan run."""
    app = app if app is not None else create_app(**settings)
    async with app.router.lifespan_context(app), asgi_client(app) as http:
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


async def reply_to(http: httpx.AsyncClient, user: str, text: str, cid: str | None = None) -> dict[str, Any]:
    """Stream one turn (a fast mock) and return the done frame's data."""
    done = check_grammar(parse_frames((await turn(http, stream_body(user, text, conversation_id=cid))).content))
    assert done.event == "done"
    data: dict[str, Any] = done.data
    return data


def json_headers(body: bytes | None = None) -> list[tuple[bytes, bytes]]:
    """Request headers declaring a JSON body (and its length, when given)."""
    headers = [(b"content-type", b"application/json")]
    if body is not None:
        headers.append((b"content-length", str(len(body)).encode()))
    return headers


def http_scope(
    method: str = "POST",
    path: str = "/chat/stream",
    *,
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> dict[str, Any]:
    """An ASGI HTTP scope as uvicorn builds it (any bytes in the path, query string and headers)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "query_string": query,
        "root_path": "",
        "headers": list(headers or []),
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
