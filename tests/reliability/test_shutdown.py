"""Graceful shutdown of a real `lean-chat serve` process: SIGTERM lets short streams finish, ends the rest."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import pytest

from lean_chat import create_app
from lean_chat.turn.shutdown import SHUTDOWN_CODE
from tests.support.apps import in_process, stream_body
from tests.support.frames import check_grammar, parse_frames
from tests.support.server_process import ServerProcess
from tests.support.sqlite_rows import stored_rows

GRACE = 1.5


def body(user: str, delay_ms: int, chars: int) -> dict[str, Any]:
    """A mock stream of about `chars` characters, one token every `delay_ms`."""
    params = {"conversationId": f"{user}-c", "mock": {"tokenDelayMs": delay_ms, "targetChars": chars}}
    return {"userId": user, "messages": [{"role": "user", "content": f"hello from {user}"}], "params": params}


async def stream(http: httpx.AsyncClient, payload: dict[str, Any], started: asyncio.Event) -> tuple[bytes, float]:
    """The whole body of one stream, and when it ended; `started` is set at the first token."""
    received = b""
    async with http.stream("POST", "/chat/stream", json=payload) as response:
        assert response.status_code == 200
        async for chunk in response.aiter_bytes():
            received += chunk
            if b"event: token" in received:
                started.set()
    return received, time.monotonic()


async def scenario(server: ServerProcess) -> dict[str, Any]:
    """Two long streams and one short, SIGTERM once all are under way; what each client saw."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        payloads = {
            "short": body("short", 8, 250),  # about 1 s in all: ends inside the grace period
            "long1": body("long1", 40, 8000),  # minutes: still running when the grace period ends
            "long2": body("long2", 25, 8000),
        }
        events = {name: asyncio.Event() for name in payloads}
        tasks = {name: asyncio.create_task(stream(http, p, events[name])) for name, p in payloads.items()}
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events.values())), 20)
        signalled = time.monotonic()
        server.signal(signal.SIGTERM)
        await asyncio.sleep(0.4)
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=2) as late:
                refused: Any = await late.get("/healthz")
        except httpx.ConnectError as exc:
            refused = exc
        results = {name: await asyncio.wait_for(task, GRACE + 10) for name, task in tasks.items()}
    return {"signalled": signalled, "refused": refused, "results": results}


def test_sigterm_drains_then_ends_running_streams_with_an_error_frame(tmp_path: Path) -> None:
    path = str(tmp_path / "shutdown.sqlite3")
    env = {"LEAN_CHAT_SHUTDOWN_GRACE_SECONDS": str(GRACE), "LEAN_CHAT_HEARTBEAT_SECONDS": "0"}
    with ServerProcess(path, tmp_path / "server.log", env) as server:
        seen = asyncio.run(scenario(server))
        code = server.wait(GRACE + 10)
    assert code in (0, -signal.SIGTERM), server.output()
    # New connections are refused as soon as shutdown begins.
    assert isinstance(seen["refused"], httpx.ConnectError)

    short_body, _ = seen["results"]["short"]
    done = check_grammar(parse_frames(short_body))
    assert done.event == "done"
    assert stored_rows(path, "short-c")[-1] == ("assistant", done.data["message"]["content"], None)

    for name in ("long1", "long2"):
        received, ended = seen["results"][name]
        frames = parse_frames(received)
        last = check_grammar(frames)
        assert last.event == "error", name
        assert last.data["error"]["code"] == SHUTDOWN_CODE
        # Ended by lean_chat at the end of the grace period (not cut at once, not by uvicorn's later cancel).
        assert GRACE - 0.2 <= ended - seen["signalled"] <= GRACE + 1.3, ended - seen["signalled"]
        shown = "".join(f.data["token"] for f in frames if f.event == "token")
        stored = stored_rows(path, f"{name}-c")
        assert stored[0] == ("user", f"hello from {name}", None)
        assert stored[1] == ("assistant", shown, {"partial": True})
    assert "Cancel" not in server.output()  # uvicorn never had to cancel a task


@pytest.mark.anyio
async def test_drain_in_process_refuses_new_streams_and_stops_running_ones(sqlite_path: str) -> None:
    """The drain without a subprocess: the server's own SIGTERM handler still runs, new streams get 503."""
    seen: list[int] = []

    def servers_handler(sig: int, frame: FrameType | None) -> None:
        seen.append(sig)

    previous = signal.signal(signal.SIGTERM, servers_handler)
    try:
        app = create_app(sqlite_path=sqlite_path, shutdown_grace_seconds=0.3, heartbeat_seconds=0)
        async with in_process(app) as http:
            long = stream_body("d", "a long one", conversation_id="d-c", tokenDelayMs=20, targetChars=4000)
            running = asyncio.create_task(http.post("/chat/stream", json=long))
            await asyncio.sleep(0.2)
            signal.raise_signal(signal.SIGTERM)
            await asyncio.sleep(0.05)
            refused = await http.post("/chat/stream", json=stream_body("e", "too late"))
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "5"
            assert refused.json() == {"detail": "The server is shutting down."}
            response = await asyncio.wait_for(running, 10)
            frames = parse_frames(response.content)
            last = check_grammar(frames)
            assert last.event == "error" and last.data["error"]["code"] == SHUTDOWN_CODE
            shown = "".join(f.data["token"] for f in frames if f.event == "token")
            assert shown
            stored = await http.get("/chat/conversation", params={"userId": "d", "conversationId": "d-c"})
            assert stored.json()["messages"][1] == {"role": "assistant", "content": shown, "meta": {"partial": True}}
        assert seen == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is servers_handler  # put back when the app stopped
    finally:
        signal.signal(signal.SIGTERM, previous)
