"""One upstream request (`providers/upstream.py`): status and transport failures as safe messages, error bodies
in every provider's shape, redaction of keys, and the body read as SSE events."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from lean_chat.providers.retry import UpstreamError
from lean_chat.providers.upstream import ErrorInfo, UpstreamStream, error_detail, redact

pytestmark = pytest.mark.anyio

KEY = "sk-upstream-secret-0123456789"
URL = "http://upstream.test/v1/chat"


async def open_stream(handler: Callable[[httpx.Request], httpx.Response]) -> UpstreamStream:
    """Send one streamed POST to a transport answering with `handler`; the stream, or the error it raised."""
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    stream = UpstreamStream(client, client.build_request("POST", URL, json={}), [KEY], request_timeout=30)
    try:
        return await stream.__aenter__()
    finally:
        await client.aclose()


async def refusal(status: int, content: bytes = b"", **headers: str) -> UpstreamError:
    """The error an upstream answer of `status` with this body and headers becomes."""
    with pytest.raises(UpstreamError) as raised:
        await open_stream(lambda request: httpx.Response(status, content=content, headers=headers))
    return raised.value


async def failure(exc: Exception) -> UpstreamError:
    """The error a transport failure becomes."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(UpstreamError) as raised:
        await open_stream(handler)
    return raised.value


def test_redact_replaces_every_secret_and_ignores_empty_ones() -> None:
    assert (
        redact(f"{KEY} and again {KEY}, then other", [KEY, "", "other"])
        == "[redacted] and again [redacted], then [redacted]"
    )


def test_error_detail_is_one_short_line_with_its_kind() -> None:
    long = "line one\n\n  line two " + "x" * 1000
    detail = error_detail(ErrorInfo(message=long, type="invalid_request_error"), [], "HTTP 400")
    assert detail.startswith("line one line two xxx") and "\n" not in detail
    assert detail.endswith(" (HTTP 400, invalid_request_error)")
    assert len(detail) < 560
    assert error_detail("a bare string", []) == "a bare string"
    assert error_detail(ErrorInfo(status="UNAVAILABLE"), []) == "unknown error (UNAVAILABLE)"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b'{"error": {"message": "Bad model", "type": "invalid_request_error"}}',
            "Bad model (HTTP 400, invalid_request_error)",
        ),
        (
            b'[{"error": {"message": "Key missing", "status": "INVALID_ARGUMENT"}}]',
            "Key missing (HTTP 400, INVALID_ARGUMENT)",
        ),
        (b'{"error": "plain words"}', "plain words (HTTP 400)"),
        (b"<html>Bad Gateway page</html>", "Bad Request (HTTP 400)"),
        (b"[]", "Bad Request (HTTP 400)"),
        (b"", "Bad Request (HTTP 400)"),
    ],
)
async def test_error_bodies_of_every_shape_give_a_message_and_the_status(body: bytes, expected: str) -> None:
    error = await refusal(400, body)
    assert error.detail == expected
    assert error.status == 400 and not error.retryable


async def test_retryable_statuses_keep_retry_after_and_quota_429s_are_final() -> None:
    busy = await refusal(
        429, b'{"error": {"message": "slow down", "type": "rate_limit_error"}}', **{"retry-after": "3"}
    )
    assert busy.retryable and busy.retry_after == 3 and busy.error_type == "rate_limit_error"
    broke = await refusal(429, b'{"error": {"message": "pay up", "code": "insufficient_quota"}}')
    assert not broke.retryable and broke.error_type == "insufficient_quota"
    assert (await refusal(503)).retryable
    assert not (await refusal(401, b'{"error": {"message": "no"}}')).retryable


async def test_a_key_echoed_in_an_error_body_is_redacted() -> None:
    error = await refusal(401, b'{"error": {"message": "Incorrect API key provided: ' + KEY.encode() + b'"}}')
    assert KEY not in str(error) and "[redacted]" in str(error)


@pytest.mark.parametrize(
    ("exc", "words", "retryable"),
    [
        (httpx.ConnectError(f"refused {URL}?key={KEY}"), "could not connect", True),
        (httpx.ConnectTimeout(f"timed out {URL}"), "could not connect to the upstream server within", True),
        (httpx.ReadTimeout(f"read {URL}"), "sent nothing for", False),
        (httpx.PoolTimeout("pool"), "pool timeout", False),
        (httpx.RemoteProtocolError(f"peer closed {URL}"), "closed the connection before answering", True),
        (httpx.UnsupportedProtocol(f"ftp {URL}"), "must start with http:// or https://", False),
    ],
)
async def test_transport_failures_are_safe_messages(exc: Exception, words: str, retryable: bool) -> None:
    error = await failure(exc)
    assert words in str(error)
    assert error.retryable is retryable
    assert URL not in str(error) and KEY not in str(error)  # httpx's own text can carry the URL


async def test_the_body_comes_out_as_events_per_read() -> None:
    stream = await open_stream(
        lambda request: httpx.Response(200, content=b"data: one\n\ndata: two\n\nevent: last\ndata: three")
    )
    try:
        reads = []
        while (events := stream.events()) is not None:
            if events:
                reads.append([(event.event, event.data) for event in events])
            else:
                await stream.arrival()
        assert stream.events() is None  # the end stays the end
    finally:
        await stream.__aexit__(None, None, None)
    assert [item for read in reads for item in read] == [("message", b"one"), ("message", b"two"), ("last", b"three")]
