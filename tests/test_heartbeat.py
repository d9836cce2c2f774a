"""Heartbeats: a `: ping` comment frame after silence on a slow stream; 0 turns them off."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from lean_chat import create_app
from tests.apps import stream_body
from tests.conftest import LiveServer
from tests.frames import parse_frames


def first_bytes(url: str, user: str, token_delay_ms: int, tokens: int) -> bytes:
    """The stream's bytes up to `tokens` token frames, read over a real connection (then the client leaves)."""
    body = stream_body(user, "slowly", tokenDelayMs=token_delay_ms, targetChars=250)
    received = b""
    with httpx.Client(base_url=url, timeout=10) as http, http.stream("POST", "/chat/stream", json=body) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            received += chunk
            if received.count(b"event: token") >= tokens:
                break
    return received


def test_ping_frames_fill_silences(live_server: Callable[..., LiveServer], sqlite_path: str) -> None:
    server = live_server(create_app(sqlite_path=sqlite_path, heartbeat_seconds=0.05))
    received = first_bytes(server.url, "hb", token_delay_ms=300, tokens=3)
    frames = parse_frames(received[: received.rfind(b"\n\n") + 2])
    pings = [f for f in frames if f.event is None]
    assert len(pings) >= 3
    assert all(f.raw == ": ping" for f in pings)
    # Pings come whole, between frames, and the stream goes on after them.
    assert received.count(b": ping\n\n") == len(pings)
    assert frames[-1].event == "token"
    assert [f.data["token"] for f in frames if f.event == "token"][:3] == ["Mock", " ", "reply"]


def test_no_ping_while_tokens_flow(live_server: Callable[..., LiveServer], sqlite_path: str) -> None:
    server = live_server(create_app(sqlite_path=sqlite_path, heartbeat_seconds=0.5))
    with httpx.Client(base_url=server.url, timeout=10) as http:
        text = http.post("/chat/stream", json=stream_body("busy", "go", tokenDelayMs=20, targetChars=250)).text
    assert ": ping" not in text
    assert parse_frames(text)[-1].event == "done"


def test_zero_turns_heartbeats_off(live_server: Callable[..., LiveServer], sqlite_path: str) -> None:
    server = live_server(create_app(sqlite_path=sqlite_path, heartbeat_seconds=0))
    received = first_bytes(server.url, "quiet", token_delay_ms=150, tokens=4)
    assert b": ping" not in received
    assert received.count(b"event: token") >= 4
