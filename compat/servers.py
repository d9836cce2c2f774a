"""The servers of a side-by-side run: fake upstreams, lean_chat and the reference, each under uvicorn on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from lean_chat import create_app
from tests.support.live_server import LiveServer, free_port
from tests.support.upstreams import API_KEY, FakeAnthropic, FakeGemini, FakeOpenAI, FakeUpstream

__all__ = [
    "API_KEY",
    "CONFIG_PREFIXES",
    "RETRY_ENV",
    "RETRY_SETTINGS",
    "GeminiKeyFromQuery",
    "ReferenceServer",
    "Upstreams",
    "lean_server",
    "thread_server",
    "wait_for_port",
]

# Environment variables that configure either implementation; a child process starts without any of them.
CONFIG_PREFIXES = ("OPENAI_", "ANTHROPIC_", "GEMINI_", "FASTAPI_AI_CHAT_", "LEAN_CHAT_")
# Retry pacing for both sides: the same count, but no real waiting.
RETRY_ENV = {
    "FASTAPI_AI_CHAT_OPENAI_MAX_RETRIES": "2",
    "FASTAPI_AI_CHAT_OPENAI_RETRY_BASE_DELAY_MS": "1",
    "FASTAPI_AI_CHAT_OPENAI_RETRY_MAX_DELAY_MS": "5",
    "FASTAPI_AI_CHAT_GEMINI_MAX_RETRIES": "2",
    "FASTAPI_AI_CHAT_GEMINI_RETRY_BASE_DELAY_MS": "1",
    "FASTAPI_AI_CHAT_GEMINI_RETRY_MAX_DELAY_MS": "5",
}
RETRY_SETTINGS: dict[str, Any] = {
    f"{name}_{knob}": value
    for name in ("openai", "anthropic", "gemini")
    for knob, value in (("max_retries", 2), ("retry_base_delay_ms", 1), ("retry_max_delay_ms", 5))
}


def wait_for_port(port: int, deadline: float, alive: Any) -> None:
    """Return once something accepts connections on the port; raise when `alive()` turns false or time runs out."""
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"server on port {port} exited before it started")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"server on port {port} did not start in time")


def thread_server(app: Any) -> LiveServer:
    """An ASGI app under a real uvicorn in a background thread of this process (uvicorn's own choice of loop)."""
    return LiveServer(app, loop="auto")


class GeminiKeyFromQuery:
    """Lets the Gemini fake accept the key in the query string (where the reference puts it) as well as a header.

    Notes, per request, whether the key came in the URL, then moves it into `x-goog-api-key` for the fake.
    """

    def __init__(self, fake: FakeGemini) -> None:
        self.fake = fake
        self.key_in_url: list[bool] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Forward to the fake, with the query's key moved into the header."""
        if scope["type"] == "http":
            pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            keys = [value for name, value in pairs if name == "key"]
            self.key_in_url.append(bool(keys))
            if keys:
                rest = [(name, value) for name, value in pairs if name != "key"]
                headers = [h for h in scope["headers"] if h[0] != b"x-goog-api-key"]
                headers.append((b"x-goog-api-key", keys[0].encode("latin-1")))
                scope = {**scope, "query_string": urlencode(rest).encode("latin-1"), "headers": headers}
        await self.fake(scope, receive, send)


class Upstreams:
    """The three fake providers, each on its own loopback port, shared by both implementations."""

    def __init__(self) -> None:
        self.openai = FakeOpenAI()
        self.anthropic = FakeAnthropic()
        self.gemini = FakeGemini()
        self.gemini_door = GeminiKeyFromQuery(self.gemini)
        self._servers = {
            "openai": thread_server(self.openai),
            "anthropic": thread_server(self.anthropic),
            "gemini": thread_server(self.gemini_door),
        }

    def start(self) -> Upstreams:
        """Start the three servers."""
        for server in self._servers.values():
            server.start()
        return self

    def stop(self) -> None:
        """Stop them."""
        for server in self._servers.values():
            server.stop()

    def fake(self, provider: str) -> FakeUpstream:
        """The fake for a provider name."""
        fake: FakeUpstream = getattr(self, provider)
        return fake

    def env(self) -> dict[str, str]:
        """Keys and base URLs as environment variables (the reference reads these)."""
        env: dict[str, str] = {}
        for name, server in self._servers.items():
            env.update(self.fake(name).env(server.url))
        return env

    def options(self) -> dict[str, Any]:
        """Keys and base URLs as lean_chat settings."""
        options: dict[str, Any] = {}
        for name, server in self._servers.items():
            options.update(self.fake(name).options(server.url))
        return options


def lean_server(sqlite_path: str, upstreams: Upstreams | None) -> LiveServer:
    """lean_chat, configured with the upstreams' keys and base URLs (or none), under uvicorn."""
    options = upstreams.options() if upstreams is not None else {}
    app = create_app(sqlite_path=sqlite_path, heartbeat_seconds=0, **RETRY_SETTINGS, **options)
    return thread_server(app).start()


class ReferenceServer:
    """fastapi-ai-chat (`create_app_from_env`) under uvicorn in a child process, configured by its environment."""

    def __init__(self, sqlite_path: str, env: Mapping[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        clean = {k: v for k, v in os.environ.items() if not k.startswith(CONFIG_PREFIXES)}
        clean.update(RETRY_ENV)
        clean.update(env)
        clean["FASTAPI_AI_CHAT_SQLITE_PATH"] = sqlite_path
        command = [sys.executable, "-m", "uvicorn", "fastapi_ai_chat:create_app_from_env", "--factory"]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
        folder = os.path.dirname(sqlite_path)
        self.log_path = os.path.join(folder, f"reference-{self.port}.log")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, env=clean, stdout=log, stderr=subprocess.STDOUT, cwd=folder)

    def wait(self) -> ReferenceServer:
        """Wait until it accepts connections."""
        try:
            wait_for_port(self.port, time.monotonic() + 30, lambda: self.process.poll() is None)
        except RuntimeError:
            self.stop()
            with open(self.log_path, encoding="utf-8", errors="replace") as log:
                raise RuntimeError("the reference did not start: " + log.read()[-2000:]) from None
        return self

    def stop(self) -> None:
        """Stop the child process (gracefully, then for good)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
