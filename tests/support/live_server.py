"""Real uvicorn on loopback in a background thread: a free port, a live ASGI server, the three fake upstreams,
and a client that reads a stream's first tokens and then leaves."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn

from tests.support.upstreams import FakeAnthropic, FakeGemini, FakeOpenAI, FakeUpstream

__all__ = ["LiveServer", "fake_upstreams", "first_tokens", "free_port"]


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """An ASGI app served by a real uvicorn in a background thread (`start()`/`stop()` or `with`)."""

    def __init__(self, app: Any, **config: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        options: dict[str, Any] = {"log_level": "warning", "lifespan": "on", "loop": "asyncio"}
        options.update(config)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, **options))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout: float = 15.0) -> LiveServer:
        """Start and wait until uvicorn says it has started."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for it."""
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def fake_upstreams() -> Iterator[dict[str, FakeUpstream]]:
    """Fresh fake OpenAI, Anthropic and Gemini upstreams, each under its own uvicorn on loopback."""
    fakes: dict[str, FakeUpstream] = {"openai": FakeOpenAI(), "anthropic": FakeAnthropic(), "gemini": FakeGemini()}
    with contextlib.ExitStack() as stack:
        for fake in fakes.values():
            fake.url = stack.enter_context(LiveServer(fake)).url
        yield fakes


def first_tokens(url: str, body: dict[str, Any], tokens: int, timeout: float = 10.0) -> bytes:
    """POST `body` to `url`'s `/chat/stream`; the bytes read until `tokens` token frames came, then leave."""
    received = b""
    with (
        httpx.Client(base_url=url, timeout=timeout) as http,
        http.stream("POST", "/chat/stream", json=body) as response,
    ):
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            received += chunk
            if received.count(b"event: token") >= tokens:
                break
    return received
