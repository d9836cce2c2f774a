"""A lean HTTP/1.1 transport under httpx's API: asyncio protocols, httptools parsing, a pool that never queues silently.

httpx's own transport (httpcore) parses HTTP in pure Python (h11) and walks every pooled connection on each
request; at thousands of concurrent streams both show. This transport keeps httpx's client API (requests,
responses, timeouts, exceptions) and replaces what sits under it:

- one `asyncio.Protocol` per connection, the response parsed by httptools (C, shipped with uvicorn);
- body reads buffered per connection and handed out together (one read, one chunk), reading paused past a
  high-water mark;
- a pool with O(1) acquire and release: idle connections kept per origin (LIFO) up to the pool size, so a
  burst keeps its keep-alive connections; a request that finds the pool full waits at most the pool
  timeout, then fails with `httpx.PoolTimeout` (never an unbounded queue);
- timeouts from the request (connect, read, pool), TLS from an `ssl.SSLContext`.

It speaks HTTP/1.1 only, directly to the origin: `upstream_client` uses httpx's own transport when HTTP/2
is asked for or a proxy is configured in the environment.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import weakref
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Protocol

import httptools
import httpx

__all__ = ["BODY_EXTENSION", "LeanTransport", "BodySource", "body_source", "lean_transport_of", "use_lean_transport"]

# The response extension holding the body stream itself, so a reader can skip httpx's per-read layers.
BODY_EXTENSION = "lean_chat.body"

# Pause reading a connection while this much of its body is waiting to be read.
_HIGH_WATER = 256 * 1024

_Origin = tuple[str, str, int]

# `asyncio.timeout` (Python 3.11+), else None: `asyncio.wait_for` then bounds the connect.
_timeout: Any = getattr(asyncio, "timeout", None)


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: sends a request, parses its response, buffers the body's reads."""

    def __init__(self, origin: _Origin, loop: asyncio.AbstractEventLoop) -> None:
        self.origin = origin
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self._reset()

    def _reset(self) -> None:
        """Forget the previous exchange."""
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.framed = False  # content-length or chunked: the body's end is known without closing
        self.complete = False
        self.keep_alive = False
        self.error: Exception | None = None
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.paused = False
        self.waiter: asyncio.Future[None] | None = None
        # The wait in progress: its timeout, and whether the head is still awaited (two fields: no tuple per read).
        self.wait_timeout: float | None = None
        self.before_head = False

    # -- asyncio.Protocol --------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        """Parse what arrived and wake the reader."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.error = httpx.RemoteProtocolError("the upstream server sent a malformed HTTP answer")
            self.close()
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        """The end of the connection ends the body only when nothing else frames it."""
        self.closed = True
        if not self.complete and self.error is None:
            if self.headers_done and not self.framed:
                self.complete = True
            else:
                self.error = httpx.RemoteProtocolError("the server closed the connection without a complete answer")
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- httptools callbacks -----------------------------------------------------------------------------------

    def on_status(self, status: bytes) -> None:
        """The reason phrase (the status code is read when the headers are complete)."""
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        """One header; content-length and chunked framing noted."""
        self.headers.append((name, value))
        lowered = name.lower()
        if lowered == b"content-length" or (lowered == b"transfer-encoding" and b"chunked" in value.lower()):
            self.framed = True

    def on_headers_complete(self) -> None:
        """The head is complete."""
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        """One piece of body; reading pauses while too much waits."""
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        """The answer is complete."""
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()

    # -- use ---------------------------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Write one request (after an earlier exchange on the same connection was complete)."""
        self._reset()
        assert self.transport is not None
        self.transport.write(data)

    def take(self) -> bytes:
        """Every body piece buffered so far, as one."""
        chunks = self.chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data

    def arrival(self, timeout: float | None, before_head: bool) -> asyncio.Future[None]:
        """A future done when something arrives (or the connection ends); it raises `httpx.ReadTimeout` after
        `timeout` seconds of silence. A future, not a coroutine: a relayed chunk allocates one object here.

        The timer is lazy: one per connection, armed when none is pending, and when it fires it re-arms
        itself for the deadline of the wait in progress (no timer made and cancelled per read).
        """
        waiter = self.loop.create_future()
        self.waiter = waiter
        self.wait_timeout = timeout
        self.before_head = before_head
        if timeout is not None:
            self.deadline = self.loop.time() + timeout
            if self.timer is None:
                self.timer = self.loop.call_at(self.deadline, self._check_deadline)
        return waiter

    def _check_deadline(self) -> None:
        """The lazy read timer fired: time the wait out if its deadline passed, else sleep until it."""
        self.timer = None
        waiter = self.waiter
        if waiter is None or waiter.done() or self.closed:
            return
        timeout = self.wait_timeout
        if timeout is not None and self.loop.time() >= self.deadline:
            where = "before answering" if self.before_head else "between two reads"
            waiter.set_exception(httpx.ReadTimeout(f"the upstream server sent nothing for {timeout} s {where}"))
        else:
            self.timer = self.loop.call_at(self.deadline, self._check_deadline)

    def reusable(self) -> bool:
        """Whether another request may use this connection."""
        return (
            self.complete
            and self.keep_alive
            and not self.chunks
            and not self.closed
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def abort(self) -> None:
        """Close the socket at once, whatever the state of the exchange."""
        self.complete = False
        self.close()

    def close(self) -> None:
        """Close the socket: gracefully when the exchange was complete, else at once (unsent data dropped)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.transport is not None and not self.closed:
            if self.complete:
                self.transport.close()
            else:
                self.transport.abort()
        self.closed = True


_TIMED_OUT: Any = object()


def _time_out(waiter: asyncio.Future[Any]) -> None:
    """Resolve a pool waiter as timed out, unless something came first."""
    if not waiter.done():
        waiter.set_result(_TIMED_OUT)


class _Body(httpx.AsyncByteStream):
    """A response body: each iteration takes everything buffered; closing gives the connection back (or closes it)."""

    def __init__(self, pool: LeanTransport, connection: _Connection, read_timeout: float | None) -> None:
        self.pool = pool
        self.connection = connection
        self.read_timeout = read_timeout
        self.released = False

    def poll(self) -> bytes | None:
        """Everything buffered now, as one; b"" at the end of the body; None when nothing is (await `arrival()`)."""
        connection = self.connection
        if connection.chunks:
            return connection.take()
        if connection.complete:
            return b""
        if connection.error is not None:
            raise connection.error
        return None

    def arrival(self) -> asyncio.Future[None]:
        """Done when more of the body arrives or it ends; raises `httpx.ReadTimeout` after the read timeout."""
        return self.connection.arrival(self.read_timeout, before_head=False)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            chunk = self.poll()
            if chunk is None:
                await self.arrival()
            elif chunk:
                yield chunk
            else:
                return

    async def aclose(self) -> None:
        """Give the connection back to the pool if its answer was read to the end; close it at once otherwise."""
        if not self.released:
            self.released = True
            if not self.pool.release(self.connection):
                await asyncio.sleep(0)  # the event loop closes an aborted socket on its next turn: let it


_CLIENTS: weakref.WeakKeyDictionary[httpx.AsyncClient, LeanTransport] = weakref.WeakKeyDictionary()


def use_lean_transport(client: httpx.AsyncClient, transport: LeanTransport) -> None:
    """Note that this client sends everything through this transport (no mounts, no proxies)."""
    _CLIENTS[client] = transport


def lean_transport_of(client: httpx.AsyncClient) -> LeanTransport | None:
    """The lean transport a client sends everything through, if it was noted (see `use_lean_transport`).

    A request with no auth, cookies or redirects to handle can go to it directly, skipping the client's
    per-request layers (the response then has no `elapsed` and no cookie extraction).
    """
    return _CLIENTS.get(client)


class BodySource(Protocol):
    """A response body read without generators: `poll()` what is buffered, await `arrival()` for more."""

    def poll(self) -> bytes | None:
        """Everything buffered now; b"" at the end of the body; None when nothing is."""

    def arrival(self) -> Awaitable[None]:
        """Done when more arrives or the body ends; raises httpx's errors (`ReadTimeout`, network errors)."""


class _IteratedBody:
    """A `BodySource` over httpx's `aiter_bytes()`: for other transports, or a body that needs decoding."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self.chunks = chunks
        self.buffered: bytes | None = None

    def poll(self) -> bytes | None:
        """The read taken by the last `arrival()`, if any."""
        chunk, self.buffered = self.buffered, None
        return chunk

    async def arrival(self) -> None:
        """Take the next read (b"" at the end)."""
        try:
            self.buffered = await self.chunks.__anext__()
        except StopAsyncIteration:
            self.buffered = b""


def body_source(response: httpx.Response) -> BodySource:
    """The response's body as a `BodySource`: straight from the lean transport when nothing needs decoding.

    Closing the response still closes (or pools) the connection.
    """
    body = response.extensions.get(BODY_EXTENSION)
    if isinstance(body, _Body) and "content-encoding" not in response.headers:
        return body
    return _IteratedBody(response.aiter_bytes())


class LeanTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over asyncio and httptools, with a pool of at most `max_connections` connections."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 4096,
        keepalive_expiry: float = 30.0,
    ) -> None:
        self.ssl_context = ssl_context
        self.max_connections = max_connections
        self.keepalive_expiry = keepalive_expiry
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._idle_count = 0
        self._open = 0  # connections open or opening, idle ones included
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False

    @property
    def open_connections(self) -> int:
        """Connections open (or being opened) now, idle ones included."""
        return self._open

    @property
    def idle_connections(self) -> int:
        """Connections kept alive, waiting for a request."""
        return self._idle_count

    @property
    def waiting_requests(self) -> int:
        """Requests waiting for a connection to become free (the pool is full)."""
        return sum(1 for waiter in self._waiters if not waiter.done())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request on a pooled (or new) connection and answer once the response's head arrived."""
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol("the URL must start with http:// or https://")
        if self._closed:
            raise httpx.ConnectError("the upstream client is closed")
        origin = (scheme, url.host, url.port or (443 if scheme == "https" else 80))
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        data = _request_bytes(request, await request.aread())
        connection = await self._acquire(origin, timeouts.get("pool"))
        try:
            if connection is None:
                connection = await self._connect(origin, timeouts.get("connect"))
            connection.send(data)
            read_timeout = timeouts.get("read")
            while not connection.headers_done:
                if connection.error is not None:
                    raise connection.error
                await connection.arrival(read_timeout, before_head=True)
        except BaseException:
            if connection is None:
                self._forget_slot()
            else:
                connection.close()
                self.release(connection)
            raise
        body = _Body(self, connection, read_timeout)
        return httpx.Response(
            connection.parser.get_status_code(),
            headers=connection.headers,
            stream=body,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": connection.reason, BODY_EXTENSION: body},
        )

    async def _acquire(self, origin: _Origin, timeout: float | None) -> _Connection | None:
        """An idle connection to the origin, or None with a slot reserved for a new one; waits while all are busy."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            idle = self._idle.get(origin)
            now = loop.time()
            while idle:
                connection = idle.pop()
                self._idle_count -= 1
                if connection.reusable() and now - connection.idle_since < self.keepalive_expiry:
                    return connection
                connection.close()
                self._open -= 1
            if self._open < self.max_connections:
                self._open += 1
                return None
            if self._idle_count:
                self._evict_one()
                continue
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise httpx.PoolTimeout("no upstream connection became free in time")
            waiter = loop.create_future()
            self._waiters.append(waiter)
            timer = None if remaining is None else loop.call_later(remaining, _time_out, waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken, then cancelled before taking the turn: pass it on
                raise
            finally:
                if timer is not None:
                    timer.cancel()
            if waiter.result() is _TIMED_OUT:
                raise httpx.PoolTimeout("no upstream connection became free in time")

    def _evict_one(self) -> None:
        """Close the longest-idle connection of any origin, to make room."""
        oldest: list[_Connection] | None = None
        for stack in self._idle.values():
            if stack and (oldest is None or stack[0].idle_since < oldest[0].idle_since):
                oldest = stack
        assert oldest is not None
        connection = oldest.pop(0)
        self._idle_count -= 1
        connection.close()
        self._open -= 1

    async def _connect(self, origin: _Origin, timeout: float | None) -> _Connection:
        """A new connection (TLS for https)."""
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        tls = None
        if scheme == "https":
            tls = self.ssl_context or httpx.create_ssl_context()
        opening = loop.create_connection(
            lambda: _Connection(origin, loop), host, port, ssl=tls, server_hostname=host if tls else None
        )
        try:
            if _timeout is None or timeout is None:
                _, connection = await asyncio.wait_for(opening, timeout)
            else:
                async with _timeout(timeout):  # a timer; wait_for adds a task per connection (before Python 3.12)
                    _, connection = await opening
        except TimeoutError:
            raise httpx.ConnectTimeout(f"could not connect within {timeout} s") from None
        except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            raise httpx.ConnectError(f"could not connect ({type(exc).__name__})") from None
        return connection

    def release(self, connection: _Connection) -> bool:
        """Keep a connection whose exchange is complete for the next request (True); close any other; wake a waiter."""
        kept = connection.reusable() and not self._closed
        if kept:
            connection.idle_since = connection.loop.time()
            self._idle.setdefault(connection.origin, []).append(connection)
            self._idle_count += 1
        else:
            connection.close()
            self._open -= 1
        self._wake_one()
        return kept

    def _forget_slot(self) -> None:
        """A reserved slot whose connection was never made."""
        self._open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        """Let the longest-waiting request look at the pool again."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        """Close the idle connections; those in use close when their responses do."""
        self._closed = True
        closed = self._idle_count
        for stack in self._idle.values():
            for connection in stack:
                # At once, not gracefully: a TLS close waits for the peer's reply over loop turns that a
                # closing app may not have, leaving the socket to the garbage collector.
                connection.abort()
                self._open -= 1
        self._idle.clear()
        self._idle_count = 0
        if closed:
            await asyncio.sleep(0)  # the event loop releases closed sockets on its next turn: let it


def _request_bytes(request: httpx.Request, body: bytes) -> bytes:
    """The request line, headers and body as they go on the wire."""
    url = request.url
    lines = [request.method.encode("ascii"), b" ", url.raw_path, b" HTTP/1.1\r\n"]
    chunked = False
    for name, value in request.headers.raw:
        lines += (name, b": ", value, b"\r\n")
        if name.lower() == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    lines.append(b"\r\n")
    if chunked:
        lines += (b"%x\r\n" % len(body), body, b"\r\n0\r\n\r\n") if body else (b"0\r\n\r\n",)
    else:
        lines.append(body)
    return b"".join(lines)
