"""Regression: slow clients held connections forever (a body sent a byte every few seconds, idle keep-alives).

`lean-chat serve` on loopback with auth on, spoken to over raw sockets: a body that takes longer than
`--body-timeout` gets 408 and its connection closed; an idle keep-alive connection is closed after
`--timeout-keep-alive`; past `--limit-concurrency` connections, new requests get 503. Slow or partial headers
are not bounded by uvicorn: a reverse proxy in front bounds those (docs/deployment.md).
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator

import pytest

from tests.support.server_process import ServerProcess, environment, serving

KEY = "slow-client-backend-key"
BODY_TIMEOUT = 1.0
KEEP_ALIVE = 1
LIMIT = 4
SLACK = 2.0  # the bound plus this, on a shared machine


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`lean-chat serve` with small limits and an API key required."""
    limits = ["--body-timeout", str(BODY_TIMEOUT), "--timeout-keep-alive", str(KEEP_ALIVE)]
    folder = tmp_path_factory.mktemp("slow")
    env = environment(LEAN_CHAT_API_KEYS=KEY)
    with serving(folder, "--sqlite-path", "", *limits, "--limit-concurrency", str(LIMIT), env=env) as server:
        yield server


def _port(served: ServerProcess) -> int:
    return int(served.url.rsplit(":", 1)[1])


def _head(path: str, length: int, *, signed: bool = True) -> bytes:
    """Request headers of a JSON POST with this Content-Length."""
    lines = [f"POST {path} HTTP/1.1", "Host: lean.test", "Content-Type: application/json", f"Content-Length: {length}"]
    if signed:
        lines.append(f"Authorization: Bearer {KEY}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _trickle(port: int, first: bytes, drip: bytes, every: float, give_up: float) -> tuple[bytes, float | None]:
    """Send `first`, then one byte of `drip` every `every` s; (what came back, seconds until the server closed)."""
    started = time.monotonic()
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=give_up) as sock:
        sock.sendall(first)
        sent = 0
        next_drip = started + every
        while time.monotonic() - started < give_up:
            now = time.monotonic()
            if sent < len(drip) and now >= next_drip:
                try:
                    sock.sendall(drip[sent : sent + 1])
                except OSError:
                    pass  # the server may already have closed its side
                sent += 1
                next_drip = now + every
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    return received, time.monotonic() - started
                if not chunk:
                    return received, time.monotonic() - started
                received += chunk
    return received, None


@pytest.mark.parametrize("path", ["/chat/clear", "/chat/stream", "/chat/conversation/create"])
def test_a_body_sent_a_byte_at_a_time_gets_408_within_the_body_timeout(served: ServerProcess, path: str) -> None:
    body = b'{"userId":"slow","messages":[{"role":"user","content":"' + b"x" * 200 + b'"}]}'
    received, closed_after = _trickle(_port(served), _head(path, len(body)), body, 0.2, 15)
    assert received.startswith(b"HTTP/1.1 408 "), received[:200]
    assert b"took too long" in received
    assert closed_after is not None and closed_after < BODY_TIMEOUT + SLACK, closed_after


def test_a_slow_body_without_credentials_is_refused_at_once(served: ServerProcess) -> None:
    received, closed_after = _trickle(_port(served), _head("/chat/clear", 50, signed=False), b"{" * 50, 0.2, 15)
    assert received.startswith(b"HTTP/1.1 401 "), received[:200]
    # Answered before the body was read; uvicorn then waits for the next request on the connection (keep-alive).
    assert closed_after is not None and closed_after < BODY_TIMEOUT + SLACK, closed_after


def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(served: ServerProcess) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: lean.test\r\n\r\n"
    received, closed_after = _trickle(_port(served), request, b"", 1.0, 15)
    assert received.startswith(b"HTTP/1.1 200 "), received[:200]
    assert closed_after is not None and KEEP_ALIVE - 0.2 < closed_after < KEEP_ALIVE + SLACK, closed_after


def test_connections_past_the_limit_get_503(served: ServerProcess) -> None:
    port = _port(served)
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(LIMIT)]
    try:
        time.sleep(0.2)  # let the server accept them all
        received, _ = _trickle(
            port, b"GET /healthz HTTP/1.1\r\nHost: lean.test\r\nConnection: close\r\n\r\n", b"", 1, 5
        )
        assert received.startswith(b"HTTP/1.1 503 "), received[:200]
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.2)
    received, _ = _trickle(port, b"GET /healthz HTTP/1.1\r\nHost: lean.test\r\nConnection: close\r\n\r\n", b"", 1, 5)
    assert received.startswith(b"HTTP/1.1 200 "), received[:200]


def test_a_body_declared_too_large_kept_its_connection_while_it_trickled(served: ServerProcess) -> None:
    head = _head("/chat/clear", 10 * 1024 * 1024)
    received, closed_after = _trickle(_port(served), head, b"{" * 100, 0.2, 15)
    assert received.startswith(b"HTTP/1.1 413 "), received[:200]
    assert closed_after is not None and closed_after < SLACK, closed_after
