"""One streamed upstream request: status and transport failures as safe errors, the body as parsed SSE events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType

import httpx
import msgspec

from ..redaction import redact
from .base import ProviderError
from .retry import RETRY_STATUSES, UpstreamError, retry_after_seconds
from .sse_parser import DEFAULT_MAX_LINE_BYTES, LineTooLong, SSEEvent, SSEParser
from .transport import BodySource, body_source, lean_transport_of

__all__ = ["ErrorInfo", "UpstreamStream", "error_detail", "line_too_long", "redact"]

# 429s that mean "out of money", not "slow down": retrying cannot help.
_NO_RETRY_KINDS = frozenset({"insufficient_quota", "enforced_spend_limit_reached"})
_MAX_ERROR_BODY = 64 * 1024
_MAX_MESSAGE = 500


class ErrorInfo(msgspec.Struct, gc=False):
    """A provider's error object (OpenAI, Anthropic and Gemini name these fields alike)."""

    message: str | None = None
    type: str | None = None
    code: str | int | None = None
    status: str | None = None


class _ErrorEnvelope(msgspec.Struct, gc=False):
    """`{"error": {...}}`."""

    error: ErrorInfo | str | None = None


_decode_envelope = msgspec.json.Decoder(_ErrorEnvelope).decode
_decode_envelopes = msgspec.json.Decoder(list[_ErrorEnvelope]).decode


def error_detail(error: ErrorInfo | str, secrets: Sequence[str], suffix: str = "") -> str:
    """A short, safe message from a provider error object (or bare string), with its type or status after it."""
    info = ErrorInfo(message=error) if isinstance(error, str) else error
    message = " ".join(redact(info.message or "", secrets).split())[:_MAX_MESSAGE] or "unknown error"
    kind = info.type or info.status
    tail = ", ".join(part for part in (suffix, kind) if part)
    return redact(f"{message} ({tail})" if tail else message, secrets)


def _parse_error_body(body: bytes) -> ErrorInfo | str | None:
    """The error object of an error answer, in any of the providers' shapes, or None."""
    try:
        if body.lstrip()[:1] == b"[":
            envelopes = _decode_envelopes(body)
            envelope = envelopes[0] if envelopes else _ErrorEnvelope()
        else:
            envelope = _decode_envelope(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return envelope.error or None


def _status_error(response: httpx.Response, body: bytes, secrets: Sequence[str]) -> UpstreamError:
    """The error for a non-2xx answer: the provider's message and the status; retryable per policy."""
    status = response.status_code
    error = _parse_error_body(body) or response.reason_phrase or "error"
    info = ErrorInfo(message=error) if isinstance(error, str) else error
    kinds = {str(info.type or ""), str(info.code or ""), str(info.status or "")}
    retryable = status in RETRY_STATUSES and not (kinds & _NO_RETRY_KINDS)
    return UpstreamError(
        error_detail(info, secrets, f"HTTP {status}"),
        retryable=retryable,
        retry_after=retry_after_seconds(response.headers),
        status=status,
        error_type=str(info.type or info.status or info.code or "") or None,
    )


def _transport_error(exc: httpx.HTTPError, timeouts: httpx.Timeout, *, answered: bool) -> UpstreamError:
    """A safe message for a network failure (httpx's own text can carry the URL), of httpx's class's kind."""
    error = _transport_message(exc, timeouts, answered=answered)
    error.failure_kind = type(exc).__name__
    return error


def _transport_message(exc: httpx.HTTPError, timeouts: httpx.Timeout, *, answered: bool) -> UpstreamError:
    """The error for a network failure, by kind."""
    if isinstance(exc, httpx.ConnectTimeout):
        return UpstreamError(f"could not connect to the upstream server within {timeouts.connect} s", retryable=True)
    if isinstance(exc, httpx.ConnectError):
        return UpstreamError("could not connect to the upstream server (connection refused or failed)", retryable=True)
    if isinstance(exc, httpx.ReadTimeout):
        where = "between two reads" if answered else "before answering"
        return UpstreamError(f"the upstream server sent nothing for {timeouts.read} s {where} (read timeout)")
    if isinstance(exc, httpx.PoolTimeout):
        return UpstreamError("no upstream connection became free in time (pool timeout)")
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamError("the upstream request timed out")
    if isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError)):
        where = "mid-stream" if answered else "before answering"
        return UpstreamError(f"the upstream server closed the connection {where}", retryable=True)
    if isinstance(exc, httpx.UnsupportedProtocol):
        return UpstreamError("the configured base URL must start with http:// or https://")
    return UpstreamError(f"the upstream request failed ({type(exc).__name__})")


def line_too_long(max_line_bytes: int) -> UpstreamError:
    """The error for the SSE parser's `LineTooLong`."""
    return UpstreamError(f"the upstream sent a line longer than {max_line_bytes} bytes (max_upstream_line_bytes)")


class UpstreamStream:
    """A streamed POST: `async with` sends it and checks the status; then `events()` gives what arrived, parsed,
    and `arrival()` is awaited for more (no generators: the relay path allocates little per chunk). The relay path
    itself (HTTPProvider) polls `body` and hands each read to its reader with `parser`, with no call of ours between.

    Leaving the block closes the response at once (a half-read response closes its connection, which
    stops the upstream from generating more); `drain()` reads the rest of a finished body so that the
    connection goes back to the pool instead.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        request: httpx.Request,
        secrets: Sequence[str],
        request_timeout: float,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        self.client = client
        self.request = request
        self.secrets = secrets
        self.request_timeout = request_timeout
        self.max_line_bytes = max_line_bytes
        self.timeouts = client.timeout
        self._response: httpx.Response | None = None
        # The body, once the answer started: a reader may `poll()` it and await its `arrival()` itself, per read,
        # without a method of ours between (both raise httpx's errors: see `failure`).
        self.body: BodySource | None = None
        self.parser = SSEParser(max_line_bytes)
        self._loop = asyncio.get_running_loop()
        # The event loop's time past which the reply took too long (`overdue()`); set once the answer starts.
        self.deadline = 0.0
        self._ended = False

    async def __aenter__(self) -> UpstreamStream:
        direct = lean_transport_of(self.client)
        try:
            if direct is not None:
                # Our requests need none of the client's auth, redirect or cookie handling.
                response = await direct.handle_async_request(self.request)
                response.request = self.request
            else:
                response = await self.client.send(self.request, stream=True)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self.timeouts, answered=False) from None
        self._response = response
        if not response.is_success:
            try:
                body = await self._read_capped(response)
            except httpx.HTTPError as exc:
                raise _transport_error(exc, self.timeouts, answered=True) from None
            finally:
                await response.aclose()
            raise _status_error(response, body, self.secrets)
        self.body = body_source(response)
        # Awaited once per read: done when more of the body arrived; raises httpx's errors (see `failure`).
        self.arrival: Callable[[], Awaitable[None]] = self.body.arrival
        self.deadline = self._loop.time() + self.request_timeout
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._response is not None:
            await self._response.aclose()

    @staticmethod
    async def _read_capped(response: httpx.Response) -> bytes:
        """The start of an error answer's body."""
        parts: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            parts.append(chunk)
            size += len(chunk)
            if size >= _MAX_ERROR_BODY:
                break
        return b"".join(parts)

    def events(self) -> list[SSEEvent] | None:
        """The events completed by what has arrived ([] when none yet: await `arrival()`); None after the end.

        At the end of the body, the last event may be unterminated.
        """
        assert self.body is not None
        if self._ended:
            return None
        if self._loop.time() > self.deadline:
            raise self.overdue()
        try:
            chunk = self.body.poll()
            if chunk is None:
                return []
            if chunk:
                return self.parser.feed(chunk)
            self._ended = True
            return self.parser.flush() or None
        except httpx.HTTPError as exc:
            raise self.failure(exc) from None
        except LineTooLong:
            raise line_too_long(self.max_line_bytes) from None

    def overdue(self) -> UpstreamError:
        """The error once the reply took longer than the request timeout (checked at each read against `deadline`)."""
        return UpstreamError(f"the upstream reply took longer than {self.request_timeout:g} s")

    def failure(self, exc: httpx.HTTPError) -> UpstreamError:
        """A network failure while reading the body, as a safe error."""
        return _transport_error(exc, self.timeouts, answered=True)

    async def drain(self, grace: float = 0.25) -> None:
        """Read what is left of a finished body (briefly), so the connection can be reused."""
        if self.body is None:
            return
        try:
            # Most often the end of the body came with its last event: nothing to wait for, no timer to set.
            while events := self.events():
                pass
            if events is None:
                return
        except ProviderError:
            return

        async def rest() -> None:
            while (events := self.events()) is not None:
                if not events:
                    await self.arrival()

        try:
            await asyncio.wait_for(rest(), grace)
        except (TimeoutError, ProviderError, httpx.HTTPError):
            pass
