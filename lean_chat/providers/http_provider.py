"""What the HTTP providers share: one streamed POST per attempt, one token batch per network read, retries."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any, Final, TypedDict

import httpx

from .base import ProviderError, StreamCall
from .events import ProviderEvent
from .retry import RetryPolicy, UpstreamError, retry_wait
from .sse_parser import DEFAULT_MAX_LINE_BYTES, LineTooLong, SSEEvent, SSEParser
from .step_output import StepOutput
from .upstream import UpstreamStream, line_too_long

__all__ = ["DONE", "FINISHED", "MORE", "EventHandler", "HTTPProvider", "HTTPProviderOptions", "ReadHandler"]

# What one event meant; a handler raises UpstreamError for a failure instead.
MORE: Final = 0  # nothing decisive: read on
FINISHED: Final = 1  # the reply is complete; read on to the end of the body
DONE: Final = 2  # the reply and the stream are complete: stop reading, drain the rest

# Endpoints whose parsed URL is kept (Gemini's differ per model).
_MAX_CACHED_URLS = 64

# One attempt's handler: appends an event's tokens to the batch (its rare events to the attempt's StepOutput,
# through `emit`) and says what the event meant.
EventHandler = Callable[[SSEEvent, list[str]], int]

# One attempt's reader: parses one network read (b"" at the end of the body), handles its events as `EventHandler`
# does, and says what the read meant: DONE at a DONE event (the events after it are not read), else FINISHED if
# any event finished the reply, else MORE. It raises UpstreamError for a failure (the batch keeps the tokens
# before it).
ReadHandler = Callable[[bytes, list[str]], int]


class _RequiredOptions(TypedDict):
    api_key: str
    base_url: str
    policy: RetryPolicy


class HTTPProviderOptions(_RequiredOptions, total=False):
    """The keyword arguments of `HTTPProvider`, which a subclass passes on as they came (`**options`)."""

    request_timeout: float
    max_line_bytes: int


class HTTPProvider(ABC):
    """A provider streamed over HTTP: subclasses give the headers, URL, body and a per-event handler."""

    name: str
    # The failure when the body ended before the provider's end marker.
    truncated: str
    # Query parameters of every request.
    params: Mapping[str, str] | None = None

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        api_key: str,
        base_url: str,
        policy: RetryPolicy,
        request_timeout: float = 600.0,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        self.client = client
        self.api_key = api_key.strip()
        self.secrets = (self.api_key,)
        self.base_url = base_url.rstrip("/")
        self.policy = policy
        self.request_timeout = request_timeout
        self.max_line_bytes = max_line_bytes
        self.headers = self.request_headers()
        # Per endpoint: its parsed URL and the headers every request to it starts with (Host first).
        self._urls: dict[str, tuple[httpx.URL, httpx.Headers]] = {}
        self._headers: httpx.Headers | None = None
        self._extensions: dict[str, Any] = {}

    def _request(self, call: StreamCall, body: bytes) -> httpx.Request:
        """The POST, as `client.build_request` would make it, with its URL and headers parsed once, not per request.

        httpx's `Request(content=...)` works out the same `Host` and `Content-Length` headers for every request
        (a few header scans, then the whole list built again); here only `Content-Length` is added per request.
        """
        endpoint = self.endpoint(call)
        known = self._urls.get(endpoint)
        if known is None:
            url = httpx.URL(endpoint)
            if self.params:
                url = url.copy_merge_params(self.params)
            if self._headers is None:
                self._headers = httpx.Headers({**self.client.headers, **self.headers})
                self._extensions = {"timeout": self.client.timeout.as_dict()}
            host = [(b"Host", url.netloc)] if url.host else []  # where httpx puts it: first
            known = (url, httpx.Headers(host + self._headers.raw))
            if len(self._urls) < _MAX_CACHED_URLS:
                self._urls[endpoint] = known
        url, headers = known
        stream = httpx.ByteStream(body)
        request = httpx.Request("POST", url, headers=headers, stream=stream, extensions=self._extensions)
        request.headers["Content-Length"] = str(len(body))  # where httpx puts it: last
        request.read()
        return request

    @abstractmethod
    def request_headers(self) -> dict[str, str]:
        """The headers of every request, the key among them."""

    @abstractmethod
    def endpoint(self, call: StreamCall) -> str:
        """The URL to POST to."""

    @abstractmethod
    def body(self, call: StreamCall) -> bytes:
        """The request body."""

    def handler(self, call: StreamCall, output: StepOutput) -> EventHandler:
        """A fresh event handler for one attempt (it records usage on `call`, events and the step's end on `output`).

        A provider gives this, or a `reader` of its own (which then need not call it).
        """
        raise NotImplementedError(f"{type(self).__name__} gives neither handler() nor reader()")

    def reader(self, call: StreamCall, output: StepOutput, parser: SSEParser) -> ReadHandler:
        """A fresh reader for one attempt: each read parsed by the upstream's SSE parser, its events through `handler`.

        A provider may give its own, to take its common reads in fewer calls (one call per read is the aim).
        """
        handle = self.handler(call, output)
        limit = self.max_line_bytes

        def read(chunk: bytes, batch: list[str]) -> int:
            try:
                events = parser.feed(chunk) if chunk else parser.flush()
            except LineTooLong:
                raise line_too_long(limit) from None
            finished = MORE
            for event in events:
                outcome = handle(event, batch)
                if outcome == DONE:
                    return DONE
                if outcome:
                    finished = FINISHED
            return finished

        return read

    def stream(self, call: StreamCall) -> AsyncGenerator[list[str] | ProviderEvent, None]:
        """The step's token batches and events, retried before the first of them; its StepEnd last."""
        return self._stream(call, self.body(call))

    async def _stream(self, call: StreamCall, body: bytes) -> AsyncGenerator[list[str] | ProviderEvent, None]:
        """Attempts until one ends well or fails past retrying: the tokens (and events) of each network read.

        One generator for the retries and the reads: every layer of generators costs each relayed chunk.
        """
        loop = asyncio.get_running_loop()
        tries = 0
        while True:
            call.attempts += 1
            started = False
            try:
                try:
                    request = self._request(call, body)
                except httpx.InvalidURL:
                    raise UpstreamError("the configured base URL is not valid") from None
                output = StepOutput()
                items = output.items
                finished = done = False
                async with UpstreamStream(
                    self.client, request, self.secrets, self.request_timeout, self.max_line_bytes
                ) as upstream:
                    # The read loop inline, not behind a method: each relayed chunk passes here twice (its read,
                    # then the poll that finds nothing and waits), so every call saved here is saved twice.
                    # Methods called on their objects, not kept bound: a bound method held costs each stream 64 bytes.
                    source = upstream.body
                    assert source is not None
                    read = self.reader(call, output, upstream.parser)
                    deadline = upstream.deadline
                    while True:
                        if loop.time() > deadline:
                            raise upstream.overdue()
                        try:
                            chunk = source.poll()
                            if chunk is None:
                                await source.arrival()
                                continue
                        except httpx.HTTPError as exc:
                            raise upstream.failure(exc) from None
                        batch: list[str] = []
                        failure: UpstreamError | None = None
                        try:
                            outcome = read(chunk, batch)
                        except UpstreamError as exc:
                            failure = exc
                        else:
                            if outcome:
                                finished = True
                                done = outcome == DONE
                        if items:
                            started = True
                            for item in items:
                                yield item
                            items.clear()
                        if batch:
                            started = True
                            yield batch
                        # Not kept while the next read is awaited: the batch sent (`chunk` is the next poll's).
                        del batch
                        if failure is not None:
                            raise failure
                        if done or not chunk:
                            break
                    if done and chunk:  # the body's end is still to come: read it, so the connection is reused
                        await upstream.drain()
                if not finished:
                    truncated = UpstreamError(self.truncated, retryable=True)
                    truncated.failure_kind = "truncated"
                    raise truncated
                yield output.finish()
                return
            except ProviderError as exc:
                wait = retry_wait(self.name, self.policy, exc, tries, started, call)
                if wait is None:
                    raise
                tries += 1
            await asyncio.sleep(wait)
