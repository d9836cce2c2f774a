"""The bare-ASGI floors: a few lines writing the same SSE bytes as lean_chat, with no logic at all."""

from __future__ import annotations

import asyncio
from typing import Any

from lean_chat.frames import SSE_HEADERS, done_frame, token_frame
from lean_chat.http.chat_params import mock_knobs
from lean_chat.providers.mock import BURST_BATCH, build_reply, split_tokens
from lean_chat.providers.transport import body_source, lean_transport_of

__all__ = ["FloorApp", "RelayFloor", "reply_frames"]


def reply_frames(prompt: str, knobs: dict[str, Any]) -> tuple[list[bytes], bytes]:
    """The token frames and the done frame lean_chat's mock sends for this prompt (built once, at start-up)."""
    text = build_reply(prompt, "mock", mock_knobs(knobs))
    frames = [token_frame(token) for token in split_tokens(text)]
    usage = {"tokens": max(1, (len(text) + 3) // 4)}
    return frames, done_frame(text, "mock:gpt-4.1", usage, "floor")


class FloorApp:
    """`batch`: one send per 256 frames; `token`: one send per frame; `paced`: one frame per `delay` seconds."""

    def __init__(self, mode: str, prompt: str, knobs: dict[str, Any]) -> None:
        self.mode = mode
        self.frames, self.done = reply_frames(prompt, knobs)
        self.batches = [b"".join(self.frames[i : i + BURST_BATCH]) for i in range(0, len(self.frames), BURST_BATCH)]
        self.delay = max(0, int(knobs.get("tokenDelayMs", 0))) / 1000.0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Drain the request, then write the frames."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = "startup" if message["type"] == "lifespan.startup" else "shutdown"
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body", False):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        if self.mode == "batch":
            for batch in self.batches:
                await send({"type": "http.response.body", "body": batch, "more_body": True})
        elif self.mode == "token":
            for frame in self.frames:
                await send({"type": "http.response.body", "body": frame, "more_body": True})
        else:
            loop = asyncio.get_running_loop()
            due = loop.time()
            for frame in self.frames:
                due += self.delay
                await asyncio.sleep(max(0.0, due - loop.time()))
                await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": self.done, "more_body": False})


class RelayFloor:
    """Relays the upstream's bytes as they come, through lean_chat's own upstream client, with no other logic.

    Every request POSTs one fixed chat-completions body upstream and writes each read of the answer as it
    is; a `done` frame ends the stream so the load generator counts it as finished.
    """

    def __init__(self, upstream: str) -> None:
        self.url = upstream.rstrip("/") + "/chat/completions"
        self.body = b'{"model":"gpt-4.1","messages":[{"role":"user","content":"hi"}],"stream":true}'
        self.headers = {"authorization": "Bearer sk-bench", "content-type": "application/json"}
        self.done = done_frame("", "floor:relay", {"tokens": 1}, "floor")
        self.client: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Open the shared client at start-up; per request, relay."""
        if scope["type"] == "lifespan":
            from lean_chat.config import Settings
            from lean_chat.providers.client import upstream_client

            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.client = upstream_client(Settings.from_env())
                    await self.client.__aenter__()
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await self.client.__aexit__(None, None, None)
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body", False):
            pass
        request = self.client.build_request("POST", self.url, headers=self.headers, content=self.body)
        # The same shortcuts lean_chat's providers take: straight to the lean transport, reads straight from it.
        direct = lean_transport_of(self.client)
        if direct is not None:
            response = await direct.handle_async_request(request)
        else:
            response = await self.client.send(request, stream=True)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
            body = body_source(response)
            while (chunk := body.poll()) != b"":
                if chunk is None:
                    await body.arrival()
                else:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            await response.aclose()
        await send({"type": "http.response.body", "body": self.done, "more_body": False})
