"""Slow and vanished clients, over real uvicorn: a client that stops reading is dropped by the send timeout
(production stops, memory stays bounded); a client that vanishes closes the upstream request within 200 ms."""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from lean_chat import create_app
from lean_chat.frames import token_frames
from lean_chat.http.chat_params import mock_knobs
from lean_chat.providers.mock import build_reply, split_tokens
from tests.support.live_server import LiveServer, fake_upstreams
from tests.support.sqlite_rows import stored_rows
from tests.support.upstreams import FakeUpstream, Reply

MODELS = {"openai": "gpt-4.1", "anthropic": "claude-3-5-sonnet", "gemini": "gemini-2.0-flash"}


def raw_request(url: str, body: dict[str, Any], receive_buffer: int | None = None) -> socket.socket:
    """POST /chat/stream on a raw socket (optionally with a tiny receive buffer) and return the socket."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect((host, int(port)))
    payload = json.dumps(body).encode()
    head = f"POST /chat/stream HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    sock.sendall(head.encode() + f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
    return sock


def read_until(sock: socket.socket, marker: bytes, timeout: float = 10.0) -> bytes:
    """Read until `marker` has arrived."""
    sock.settimeout(timeout)
    received = b""
    while marker not in received:
        chunk = sock.recv(4096)
        assert chunk, "connection closed early"
        received += chunk
    return received


def vanish(sock: socket.socket) -> float:
    """Drop the connection the way a killed client or a dead network does (RST, no goodbye); return when."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    return time.monotonic()


def kernel_send_buffer_max() -> int:
    """The most a TCP socket may buffer for sending (Linux tcp_wmem's maximum; 4 MiB when unknown)."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem", encoding="ascii") as values:
            return int(values.read().split()[2])
    except (OSError, IndexError, ValueError):
        return 4 * 1024 * 1024


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll until `check()` is true."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_client_that_stops_reading_is_dropped_and_production_stops(
    live_server: Callable[..., LiveServer], sqlite_path: str
) -> None:
    app = create_app(
        sqlite_path=sqlite_path, send_timeout_seconds=0.5, heartbeat_seconds=0, max_message_chars=1_000_000
    )
    server = live_server(app)
    # The reply repeats the prompt: 200,000 one-character words, 400,000 tokens, about 20 MB of frames.
    prompt = "a " * 200_000
    body = {
        "userId": "stuck",
        "messages": [{"role": "user", "content": prompt}],
        "params": {"conversationId": "stuck-c", "mock": {"tokenDelayMs": 0}},
    }
    full = build_reply(prompt, "mock", mock_knobs({}))
    sock = raw_request(server.url, body, receive_buffer=4096)
    try:
        read_until(sock, b"event: token")  # the stream started; from now on the client reads nothing
        wait_for(lambda: len(stored_rows(sqlite_path, "stuck-c")) == 2)
        role, content, meta = stored_rows(sqlite_path, "stuck-c")[1]
        assert (role, meta) == ("assistant", {"partial": True})
        # What the server produced, and so could have buffered, is bounded by the socket buffers (the kernel's,
        # up to tcp_wmem's maximum, and uvicorn's 64 KiB high-water mark), far below the whole reply.
        assert full.startswith(content)
        produced = len(token_frames(split_tokens(content)))
        bound = kernel_send_buffer_max() + 1024 * 1024
        assert produced <= bound, (produced, bound)
        assert len(token_frames(split_tokens(full))) > 3 * bound
        time.sleep(0.3)
        assert stored_rows(sqlite_path, "stuck-c")[1][1] == content  # nothing more is produced
        # The connection was closed: after the buffered bytes the client reads EOF, and never a `done`.
        sock.settimeout(10)
        rest = b""
        while chunk := sock.recv(65536):
            rest += chunk
        assert b"event: done" not in rest
    finally:
        sock.close()


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeUpstream]]:
    """The three fake upstreams under uvicorn on loopback."""
    with fake_upstreams() as found:
        yield found


SLOW = Reply(tokens=[f"t{i} " for i in range(500)], token_delay=0.02)


@pytest.mark.parametrize("moment", ["mid-stream", "before the first byte"])
@pytest.mark.parametrize("provider", list(MODELS))
def test_vanished_client_closes_the_upstream_within_200_ms(
    provider: str, moment: str, fakes: dict[str, FakeUpstream], live_server: Callable[..., LiveServer], sqlite_path: str
) -> None:
    fake = fakes[provider]
    fake.reset(SLOW if moment == "mid-stream" else Reply(tokens=["late"], stall=30))
    app = create_app(sqlite_path=sqlite_path, max_streams_per_user=1, **fake.options())
    lean = live_server(app)
    body = {
        "userId": "vanishing",
        "messages": [{"role": "user", "content": "tell me everything"}],
        "params": {"model": MODELS[provider], "conversationId": "v-c"},
    }
    sock = raw_request(lean.url, body)
    if moment == "mid-stream":
        read_until(sock, b"t3 ")
    else:
        read_until(sock, b"\r\n\r\n")  # headers only: lean_chat waits for the upstream's first byte
        wait_for(lambda: fake.attempts == 1)
    left_at = vanish(sock)
    assert fake.disconnected.wait(5), "the upstream request was never closed"
    closed_at = fake.received[-1].disconnected_at
    assert closed_at is not None
    assert closed_at - left_at < 0.2, closed_at - left_at
    assert fake.attempts == 1
    wait_for(lambda: len(stored_rows(sqlite_path, "v-c")) >= 1)
    rows = stored_rows(sqlite_path, "v-c")
    assert rows[0] == ("user", "tell me everything", None)
    if moment == "mid-stream":
        wait_for(lambda: len(stored_rows(sqlite_path, "v-c")) == 2)
        role, content, meta = stored_rows(sqlite_path, "v-c")[1]
        assert (role, meta) == ("assistant", {"partial": True})
        assert content.startswith("t0 t1 t2 t3 ")
        assert fake.received[-1].sent_writes < 100  # it stopped long before the end
    else:
        time.sleep(0.2)
        assert len(stored_rows(sqlite_path, "v-c")) == 1  # no token, nothing to save
    # The user's stream slot was given back (the limit is 1 here): the next stream is served, not refused.
    fake.reset(Reply(tokens=["back"]))
    again = httpx.post(f"{lean.url}/chat/stream", json=body, timeout=10)
    assert again.status_code == 200 and b"event: done" in again.content


def test_vanished_client_during_a_retry_wait_makes_no_further_attempt(
    fakes: dict[str, FakeUpstream], live_server: Callable[..., LiveServer], sqlite_path: str
) -> None:
    fake = fakes["openai"]
    fake.reset(Reply(status=503, headers={"retry-after": "0.6"}), Reply(tokens=["never"]))
    lean = live_server(create_app(sqlite_path=sqlite_path, **fake.options()))
    body = {"userId": "w", "messages": [{"role": "user", "content": "x"}], "params": {"model": "gpt-4.1"}}
    sock = raw_request(lean.url, body)
    read_until(sock, b"\r\n\r\n")
    wait_for(lambda: fake.attempts == 1)
    vanish(sock)
    time.sleep(1.0)  # past the 0.6 s the upstream asked for
    assert fake.attempts == 1
