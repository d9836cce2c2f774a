"""A raw ASGI client for tests: any bytes in the path, query string, headers and body chunks, and a deadline."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from tests.support.apps import http_scope

__all__ = ["RawResponse", "call"]


@dataclass
class RawResponse:
    """What the app sent back."""

    status: int | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    complete: bool = False

    def header(self, name: bytes) -> bytes | None:
        """The first header of that name, or None."""
        return next((v for k, v in self.headers if k == name), None)


async def call(
    app: Any,
    method: str,
    path: str,
    *,
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    chunks: list[bytes] | None = None,
    truncated: bool = False,
    timeout: float = 10.0,
) -> RawResponse:
    """One HTTP request as uvicorn would hand it to the app; `truncated`: the client vanishes mid-body.

    The body arrives in `chunks`; afterwards `receive()` waits until the response is complete and then
    reports a disconnect, as a real server does. Raises TimeoutError when the app takes longer than `timeout`.
    """
    response = RawResponse()
    done = asyncio.Event()
    pending: list[dict[str, Any]] = []
    parts = chunks if chunks is not None else [b""]
    for index, chunk in enumerate(parts):
        pending.append({"type": "http.request", "body": chunk, "more_body": truncated or index < len(parts) - 1})

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        if not truncated:
            await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert response.status is None, "response started twice"
            response.status = message["status"]
            response.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            assert response.status is not None, "body before start"
            assert not response.complete, "body after the response was complete"
            response.body += message.get("body", b"")
            if not message.get("more_body", False):
                response.complete = True
                done.set()

    scope = http_scope(method, path, query=query, headers=headers)
    await asyncio.wait_for(app(scope, receive, send), timeout)
    return response
