"""lean_chat's HTTP/1.1 transport on the wire: TLS trust (system store, SSL_CERT_FILE), body framings, reuse."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from benchmarks.tls import make_loopback_ca
from lean_chat.providers.client import tls_context
from lean_chat.providers.transport import LeanTransport
from tests.support.live_server import LiveServer
from tests.support.providers import ask, lean, tokens
from tests.support.upstreams import FakeOpenAI, Reply

pytestmark = pytest.mark.anyio


async def test_tls_upstream_trusted_through_ssl_cert_file(
    tmp_path: Path, live_server: Callable[..., LiveServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, cert, key = make_loopback_ca(str(tmp_path))
    fake = FakeOpenAI(Reply(tokens=["over", " TLS"]))
    server = live_server(fake, ssl_certfile=cert, ssl_keyfile=key)
    fake.url = f"https://127.0.0.1:{server.port}"

    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    async with lean(fake) as http:
        _, last = await ask(http, "gpt-4.1")
    assert last.event == "error"  # a CA nobody trusts: the certificate is checked
    assert "could not connect" in last.data["error"]["message"]

    monkeypatch.setenv("SSL_CERT_FILE", ca)
    async with lean(fake) as http:
        frames, last = await ask(http, "gpt-4.1")
    assert last.event == "done" and tokens(frames) == ["over", " TLS"]


async def test_closing_the_pool_leaves_no_tls_socket_to_the_collector(
    tmp_path: Path, live_server: Callable[..., LiveServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A kept-alive TLS connection was closed gracefully at shutdown; the close never finished, and the
    # collector later found the socket open (a ResourceWarning, failing whichever test ran then).
    ca, cert, key = make_loopback_ca(str(tmp_path))
    fake = FakeOpenAI(Reply(tokens=["kept", " alive"]))
    server = live_server(fake, ssl_certfile=cert, ssl_keyfile=key)
    fake.url = f"https://127.0.0.1:{server.port}"
    monkeypatch.setenv("SSL_CERT_FILE", ca)
    async with lean(fake) as http:
        _, last = await ask(http, "gpt-4.1")
    assert last.event == "done"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_the_tls_context_trusts_the_system_store() -> None:
    context = tls_context()
    assert context.verify_mode.name == "CERT_REQUIRED" and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0


async def _serve_once(answer: bytes) -> tuple[asyncio.Server, str]:
    """A raw server that answers one request with these bytes, then closes the connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/x"


async def test_a_body_ended_by_closing_the_connection_is_read_to_its_end() -> None:
    server, url = await _serve_once(b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nall of it")
    async with server, httpx.AsyncClient(transport=LeanTransport()) as client:
        response = await client.get(url)
    assert response.status_code == 200 and response.content == b"all of it"


async def test_a_chunked_body_cut_short_is_a_protocol_error() -> None:
    server, url = await _serve_once(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
    async with server, httpx.AsyncClient(transport=LeanTransport()) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(url)


async def test_a_malformed_answer_is_a_protocol_error() -> None:
    server, url = await _serve_once(b"NOT HTTP AT ALL\r\n\r\n")
    async with server, httpx.AsyncClient(transport=LeanTransport()) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(url)


async def test_status_reason_and_headers_reach_httpx() -> None:
    answer = b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 3\r\ncontent-length: 2\r\n\r\n{}"
    server, url = await _serve_once(answer)
    async with server, httpx.AsyncClient(transport=LeanTransport()) as client:
        response = await client.get(url)
    assert (response.status_code, response.reason_phrase) == (429, "Too Many Requests")
    assert response.headers["retry-after"] == "3" and response.content == b"{}"


async def test_only_http_and_https_urls() -> None:
    async with httpx.AsyncClient(transport=LeanTransport()) as client:
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.get("ftp://127.0.0.1/x")


async def test_a_connection_whose_tls_handshake_never_ends_times_out_as_a_connect_timeout() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # takes the connection, never answers the ClientHello

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    timeout = httpx.Timeout(5.0, connect=0.2)
    async with server, httpx.AsyncClient(transport=LeanTransport(), timeout=timeout) as client:
        with pytest.raises(httpx.ConnectTimeout):
            await client.get(f"https://127.0.0.1:{port}/x")
        for writer in accepted:
            writer.close()
