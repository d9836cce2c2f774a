"""The load generator: raw asyncio sockets speaking HTTP/1.1, decoding chunked SSE and counting frames."""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field

__all__ = ["EVENT_ENDS", "UI_ENDS", "Connection", "Ends", "GapHistogram", "Reply", "http_request", "percentile"]

TOKEN = b"event: token\n"
DONE = b"event: done\n"
ERROR = b"event: error\n"
TOKEN_FRAME = b"event: "


@dataclass(frozen=True, slots=True)
class Ends:
    """How a stream's frames look: the marker every frame holds, and the markers of its end (done) or failure."""

    frame: bytes
    done: bytes
    error: bytes


# `/chat/stream`'s frames; the AI SDK's UI message stream (`/chat/ui`): a `finish` or `error` chunk ends it.
EVENT_ENDS = Ends(TOKEN_FRAME, DONE, ERROR)
UI_ENDS = Ends(b"data: ", b'{"type":"finish"', b'{"type":"error"')
_TAIL = 32

_HEAD, _SIZE, _DATA, _DATA_END, _TRAILER, _BODY = range(6)


class GapHistogram:
    """Gaps between consecutive tokens of a stream, counted in 1 ms buckets (cheap enough for 100k tokens/s)."""

    def __init__(self, limit_ms: int = 10_000) -> None:
        self.counts = [0] * (limit_ms + 1)
        self.limit = limit_ms
        self.total = 0
        self.largest = 0.0

    def add(self, gap: float, zeros: int = 0) -> None:
        """Record one gap (seconds) and `zeros` gaps of nothing (tokens that came in the same read)."""
        index = int(gap * 1000.0)
        self.counts[index if index < self.limit else self.limit] += 1
        self.counts[0] += zeros
        self.total += 1 + zeros
        if gap > self.largest:
            self.largest = gap

    def percentile_ms(self, q: float) -> float:
        """The q-th percentile gap in ms (upper edge of its bucket); 0 when nothing was recorded."""
        if not self.total:
            return 0.0
        rank = q / 100.0 * self.total
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return float(index + 1)
        return float(self.limit)


@dataclass(slots=True)
class Reply:
    """What came back for one request: status, frames counted, timings."""

    status: int = 0
    tokens: int = 0
    dones: int = 0
    errors: int = 0
    body_bytes: int = 0
    complete: bool = False
    sent_at: float = 0.0
    first_token_at: float = 0.0
    finished_at: float = 0.0
    head: bytes = b""
    body: bytearray = field(default_factory=bytearray)

    @property
    def ok(self) -> bool:
        """True for a well-formed chat stream: 200, tokens present, exactly one `done`, no `error`."""
        return self.complete and self.status == 200 and self.tokens > 0 and self.dones == 1 and self.errors == 0

    @property
    def seconds(self) -> float:
        """Time from sending the request to the end of the response."""
        return self.finished_at - self.sent_at

    @property
    def ttft(self) -> float:
        """Time from sending the request to the first token."""
        return self.first_token_at - self.sent_at


def http_request(path: str, body: bytes, host: str = "127.0.0.1") -> bytes:
    """The bytes of one POST with a JSON body, keep-alive."""
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
        f"accept: text/event-stream\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; `fetch` sends a request and resolves when its response has ended."""

    def __init__(
        self,
        token_marker: bytes = TOKEN,
        gaps: GapHistogram | None = None,
        keep_body: bool = False,
        ends: Ends | None = None,
    ) -> None:
        self.token_marker = token_marker
        self.ends = ends or EVENT_ENDS
        # Each token is a frame of its own (one `event: `, or one `data: ` in the AI SDK's stream), or not (the marker
        # of an upstream's own stream, read directly or relayed raw by the relay floor).
        self._marker_is_event = 0 if self.ends is EVENT_ENDS and not token_marker.startswith(TOKEN_FRAME) else 1
        self.gaps = gaps
        self.keep_body = keep_body
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self._reply: Reply | None = None
        self._waiter: asyncio.Future[Reply] | None = None
        self._buffer = bytearray()
        self._state = _HEAD
        self._left = 0
        self._tail = b""
        self._last_token = 0.0

    @classmethod
    async def open(
        cls,
        port: int,
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
        token_marker: bytes = TOKEN,
        gaps: GapHistogram | None = None,
        keep_body: bool = False,
        ends: Ends | None = None,
    ) -> Connection:
        """Connect to host:port (over TLS when a context is given)."""
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(
            lambda: cls(token_marker, gaps, keep_body, ends), host, port, ssl=tls, server_hostname=host if tls else None
        )
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        """Fail the request in flight, if any."""
        self.transport = None
        if not self.closed.done():
            self.closed.set_result(None)
        self._finish(complete=False)

    def close(self) -> None:
        """Close the socket."""
        if self.transport is not None:
            self.transport.close()

    async def fetch(self, request: bytes) -> Reply:
        """Send one request and wait for its whole response."""
        if self.transport is None:
            return Reply()
        loop = asyncio.get_running_loop()
        self._reply = Reply(sent_at=time.perf_counter())
        self._waiter = loop.create_future()
        self._state = _HEAD
        self._tail = b""
        self._last_token = 0.0
        self.transport.write(request)
        return await self._waiter

    def _finish(self, complete: bool) -> None:
        """Resolve the request in flight."""
        reply, waiter = self._reply, self._waiter
        self._reply = self._waiter = None
        if reply is not None and waiter is not None and not waiter.done():
            reply.complete = complete
            reply.finished_at = time.perf_counter()
            waiter.set_result(reply)

    def data_received(self, data: bytes) -> None:
        """Decode as much of the response as has arrived."""
        reply = self._reply
        if reply is None:
            return
        if self._state == _SIZE and not self._buffer:
            # The common case, cheaply: a read holding exactly one whole chunk (one write of the server).
            end = data.find(b"\r\n", 0, 10)
            if end > 0:
                size = int(data[:end], 16)
                start = end + 2
                if size and len(data) == start + size + 2:
                    self._payload(reply, data[start : start + size])
                    return
        buffer = self._buffer
        buffer += data
        position = 0
        while True:
            state = self._state
            if state == _DATA:
                available = len(buffer) - position
                if not available:
                    break
                take = self._left if self._left < available else available
                self._payload(reply, bytes(buffer[position : position + take]))
                position += take
                self._left -= take
                if self._left == 0:
                    self._state = _DATA_END
                continue
            if state == _BODY:
                available = len(buffer) - position
                take = self._left if self._left < available else available
                if take:
                    self._payload(reply, bytes(buffer[position : position + take]))
                position += take
                self._left -= take
                if self._left == 0:
                    del buffer[:position]
                    self._finish(complete=True)
                    return
                break
            end = buffer.find(b"\r\n\r\n" if state == _HEAD else b"\r\n", position)
            if end < 0:
                break
            if state == _HEAD:
                head = bytes(buffer[position:end])
                position = end + 4
                self._head(reply, head)
                if self._state == _BODY and self._left == 0:
                    del buffer[:position]
                    self._finish(complete=True)
                    return
            elif state == _SIZE:
                size = int(bytes(buffer[position:end]).split(b";", 1)[0], 16)
                position = end + 2
                if size == 0:
                    self._state = _TRAILER
                else:
                    self._left = size
                    self._state = _DATA
            elif state == _DATA_END:
                position = end + 2
                self._state = _SIZE
            else:  # _TRAILER: the blank line after the last chunk
                position = end + 2
                del buffer[:position]
                self._finish(complete=True)
                return
        del buffer[:position]

    def _head(self, reply: Reply, head: bytes) -> None:
        """Read the status line and how the body is framed."""
        reply.head = head
        lines = head.split(b"\r\n")
        reply.status = int(lines[0].split(b" ", 2)[1])
        self._state = _BODY
        self._left = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"transfer-encoding" and b"chunked" in value.lower():
                self._state = _SIZE
            elif name == b"content-length":
                self._left = int(value.strip())

    def _payload(self, reply: Reply, data: bytes) -> None:
        """Count the frames in a piece of body (markers cut across pieces are found through a short tail)."""
        reply.body_bytes += len(data)
        if self.keep_body:
            reply.body += data
        tail = len(self._tail)
        joined = self._tail + data if tail else data
        # Only occurrences ending past the tail are new: those inside it were counted with the previous piece.
        tokens = joined.count(self.token_marker, max(0, tail - len(self.token_marker) + 1))
        if tokens:
            now = time.perf_counter()
            if not reply.tokens:
                reply.first_token_at = now
            elif self.gaps is not None:
                self.gaps.add(now - self._last_token, tokens - 1)
            if self.gaps is not None and not reply.tokens and tokens > 1:
                self.gaps.add(0.0, tokens - 2)
            self._last_token = now
            reply.tokens += tokens
        # Events other than tokens are rare: looked for only when the piece (its tail included, so that none is
        # missed across two pieces) holds more `event: ` lines than the new tokens.
        ends = self.ends
        if joined.count(ends.frame) > tokens * self._marker_is_event:
            reply.dones += joined.count(ends.done, max(0, tail - len(ends.done) + 1))
            reply.errors += joined.count(ends.error, max(0, tail - len(ends.error) + 1))
        self._tail = joined[-_TAIL:]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of the values; 0 when there are none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(q / 100.0 * len(ordered) + 0.5)) - 1))
    return ordered[rank]
