"""Keys never leak: not in logs, `error` frames, exception messages or URLs, whatever the upstream does.

Upstream failures are chosen to tempt a leak (error messages that quote the key, as OpenAI's 401 does; cuts,
timeouts and refused connections whose httpx exceptions carry URLs); every log record at DEBUG (with its
traceback), every frame and every URL the fake upstream saw are searched for the provider key, and for the
API key clients use to reach lean_chat."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lean_chat import Settings, create_app
from tests.support.apps import in_process
from tests.support.live_server import LiveServer, fake_upstreams
from tests.support.server_process import ServerProcess
from tests.support.upstreams import API_KEY, FakeUpstream, Reply, refused_url

pytestmark = pytest.mark.anyio

MODELS = {"openai": "gpt-4.1", "anthropic": "claude-3-5-sonnet", "gemini": "gemini-2.0-flash"}
LEAN_KEY = "lean-backend-key-4b1d9e-never-log"
ECHO = f"Incorrect API key provided: {API_KEY}. You can find your API key at the dashboard."


def tempting_replies() -> list[list[Reply]]:
    """Upstream scripts that would leak a careless implementation's key."""
    return [
        [Reply(status=401, error_message=ECHO, error_type="invalid_api_key")],
        [Reply(status=400, error_message=ECHO)],
        [Reply(status=429, headers={"retry-after": "0"}, error_message=ECHO)],
        [Reply(status=500, error_message=ECHO)],
        [Reply(tokens=["a", "b", "c"], fail_after=1, error_message=ECHO)],
        [Reply(tokens=["a", "b", "c"], drop_after=2)],
        [Reply(tokens=["a"], stall=1.0)],
        [Reply(raw=[f"data: {API_KEY}\n\n", f'event: error\ndata: {{"error": "{API_KEY}"}}\n\n'])],
    ]


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeUpstream]]:
    """The three fake upstreams under uvicorn on loopback."""
    with fake_upstreams() as found:
        yield found


def assert_no_key(text: str, where: str) -> None:
    """Neither the provider key nor the lean_chat API key (nor a long piece of either) is in `text`."""
    for key in (API_KEY, LEAN_KEY):
        assert key not in text, f"key found in {where}"
        assert key[4:20] not in text, f"part of a key found in {where}"


@pytest.mark.parametrize("provider", list(MODELS))
async def test_no_key_in_frames_logs_exceptions_or_urls(
    provider: str, fakes: dict[str, FakeUpstream], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)  # everything: lean_chat, httpx, httpcore, asyncio, uvicorn
    fake = fakes[provider]
    frames_seen = 0
    for base in (fake.base_url(), refused_url(), "http://upstream.lean-chat.invalid"):
        for script in tempting_replies() if base == fake.base_url() else [[Reply()]]:
            fake.reset(*script)
            upstream_options: dict[str, Any] = {
                f"{provider}_api_key": API_KEY,
                f"{provider}_base_url": base,
                f"{provider}_retry_base_delay_ms": 1,
                f"{provider}_retry_max_delay_ms": 2,
            }
            app = create_app(
                sqlite_path=str(tmp_path / "secrets.sqlite3"),
                api_keys=[LEAN_KEY],
                read_timeout_seconds=0.3,
                **upstream_options,
            )
            body = {
                "userId": "u",
                "messages": [{"role": "user", "content": "hi"}],
                "params": {"model": MODELS[provider]},
            }
            async with in_process(app) as http:
                headers = {"authorization": f"Bearer {LEAN_KEY}"}
                response = await http.post("/chat/stream", json=body, headers=headers)
                history = await http.get("/chat/history", params={"userId": "u"}, headers=headers)
            assert response.status_code == 200
            assert b"event: error" in response.content  # every one of these fails
            frames_seen += response.content.count(b"\n\n")
            assert_no_key(response.text, "a frame")
            assert_no_key(history.text, "the stored history")
    assert frames_seen > 0
    for received in fake.received:
        assert_no_key(received.path + "?" + received.raw_query, "an upstream URL")
    assert_no_key(caplog.text, "the logs")  # the handler's text includes formatted tracebacks
    for record in caplog.records:
        assert_no_key(str(record.args), "log arguments")
        if record.exc_info and record.exc_info[1] is not None:
            assert_no_key(repr(record.exc_info[1]), "a logged exception")


def test_settings_repr_hides_keys() -> None:
    settings = Settings(openai_api_key=API_KEY, anthropic_api_key=API_KEY, gemini_api_key=API_KEY, api_keys=[LEAN_KEY])
    assert_no_key(repr(settings), "repr(Settings)")
    assert_no_key(str(settings), "str(Settings)")


def test_no_key_in_the_server_output(
    fakes: dict[str, FakeUpstream], live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    """A real `lean-chat serve` at debug log level: failing streams, refused credentials, shutdown."""
    env: dict[str, str] = {"LEAN_CHAT_API_KEYS": LEAN_KEY, "LEAN_CHAT_READ_TIMEOUT_SECONDS": "0.3"}
    for fake in fakes.values():
        env.update(fake.env())
        upper = fake.name.upper()
        env[f"LEAN_CHAT_{upper}_RETRY_BASE_DELAY_MS"] = "1"
        env[f"FASTAPI_AI_CHAT_{upper}_RETRY_BASE_DELAY_MS"] = "1"
    server = ServerProcess(str(tmp_path / "s.sqlite3"), tmp_path / "server.log", env, log_level="debug")
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for provider, fake in fakes.items():
                for script in tempting_replies():
                    fake.reset(*script)
                    body = {
                        "userId": "u",
                        "messages": [{"role": "user", "content": "hi"}],
                        "params": {"model": MODELS[provider]},
                    }
                    answer = http.post("/chat/stream", json=body, headers={"authorization": f"Bearer {LEAN_KEY}"})
                    assert b"event: error" in answer.content
                    assert_no_key(answer.text, "a frame")
            wrong = http.get("/chat/history", params={"userId": "u"}, headers={"authorization": f"Bearer {API_KEY}"})
            assert wrong.status_code == 401
            assert_no_key(wrong.text, "a 401")
        server.signal(signal.SIGTERM)
        server.wait(20)
    finally:
        server.stop()
    output = server.output()
    assert "lean_chat ready" in output and "Uvicorn running" in output
    assert_no_key(output, "the server's output")
    assert os.path.getsize(tmp_path / "server.log") > 0
