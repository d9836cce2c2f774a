"""The SSE response of a reader that follows a kept stream from a frame id (resumes, and resumable starts)."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from dataclasses import dataclass

from starlette.types import Message, Receive, Scope, Send

from ..frames import PING_FRAME, SSE_HEADERS, with_request_id
from ..hub import Hub
from ..hub.base import GAP_FRAME, HUB_UNAVAILABLE_FRAME
from .cancellation import take_back_cancel
from .chat import Turn
from .client_watch import watch_client
from .detached import DetachedTurn
from .framing import Reframer
from .streaming import End

__all__ = ["FollowStream", "FollowedTurn", "stream_headers"]


def stream_headers(stream_id: str, headers: list[tuple[bytes, bytes]] | None = None) -> list[tuple[bytes, bytes]]:
    """The response headers of a stream (the SSE ones unless a dialect names its own), with its id (for Stop)."""
    return [*(SSE_HEADERS if headers is None else headers), (b"x-stream-id", stream_id.encode())]


class FollowStream:
    """Writes the frames after `after`, then the live ones, until the stream's end; pings while it is quiet.

    The reader only reads what the producer kept: a slow or gone reader never holds the producer back.
    """

    def __init__(
        self,
        hub: Hub,
        stream_id: str,
        after: int,
        heartbeat_seconds: float,
        send_timeout_seconds: float,
        producer: DetachedTurn | None = None,
        request_id: str | None = None,
        id_headers: list[tuple[bytes, bytes]] | None = None,
        reframe: Reframer | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.hub = hub
        self.stream_id = stream_id
        self.after = after
        self.heartbeat = heartbeat_seconds
        self.send_timeout = send_timeout_seconds
        self.producer = producer
        self.request_id = request_id  # the client's own id, for the `error` frames made for this reader
        self.id_headers = id_headers or []  # the request's `x-request-id` answer header
        self.reframe = reframe  # the reader's dialect, when it is not the kept frames' own
        self.headers = headers  # the dialect's response headers (else the kept frames' SSE headers), before the ids
        self.gone = False
        # Why this reader stopped: it left first (client gone, stalled), or the stream ended (then its producer's
        # end, when that producer runs in this process). None: unknown, or cut off from outside.
        self.end: End | None = None
        self.error_code: str | None = None
        self._task: asyncio.Task[object] | None = None
        self._sending_since: float | None = None
        self._watchdog: asyncio.TimerHandle | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Follow the stream until its end or the client goes away."""
        loop = asyncio.get_running_loop()
        self._loop_time = loop.time
        self._task = asyncio.current_task()
        if self.send_timeout > 0:
            self._watchdog = loop.call_later(self.send_timeout, self._watch)
        watcher = watch_client(receive, self)
        if self.producer is not None:
            self.producer.attach()
        try:
            headers = stream_headers(self.stream_id, self.headers) + self.id_headers
            await self._send(send, {"type": "http.response.start", "status": 200, "headers": headers})
            request_id, reframe = self.request_id, self.reframe
            async with aclosing(self.hub.follow(self.stream_id, self.after, self.heartbeat)) as frames:
                async for chunk in frames:
                    body = PING_FRAME if chunk is None else chunk
                    if (
                        body is GAP_FRAME or body is HUB_UNAVAILABLE_FRAME
                    ):  # made for this reader: it names this request, as a plain stream's does
                        body = with_request_id(body, request_id)
                    if reframe is not None and chunk is not None:
                        body = reframe(body)
                    if body:
                        await self._send(send, {"type": "http.response.body", "body": body, "more_body": True})
            if self.end is None and self.producer is not None:
                self.end, self.error_code = self.producer.end, self.producer.error_code
            await self._send(send, {"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not self.gone:
                raise
            if self._task is not None:
                take_back_cancel(self._task)
        finally:
            if self._watchdog is not None:
                self._watchdog.cancel()
            watcher.cancel()
            if self.producer is not None:
                self.producer.detach()

    async def _send(self, send: Send, message: Message) -> None:
        """One write, timed by the watchdog (a client that takes none for the send timeout is dropped)."""
        self._sending_since = self._loop_time()
        try:
            await send(message)
        finally:
            self._sending_since = None

    def _watch(self) -> None:
        """Drop the reader when a write has waited for the send timeout; else look again when one could have."""
        loop = asyncio.get_running_loop()
        since = self._sending_since
        if since is not None and loop.time() - since >= self.send_timeout:
            self._drop(End.STALLED)
            return
        at = (since if since is not None else loop.time()) + self.send_timeout
        self._watchdog = loop.call_at(at, self._watch)

    def _drop(self, cause: End) -> None:
        """Give up on this reader."""
        self.gone = True
        if self.end is None:
            self.end = cause
        if self._task is not None:
            self._task.cancel()

    def client_gone(self) -> None:
        """The client went away: stop following (the producer goes on)."""
        self._drop(End.CLIENT_GONE)


@dataclass(frozen=True, slots=True)
class FollowedTurn:
    """A turn produced in this process as one reader saw it end (what that reader's log line tells)."""

    turn: Turn
    reader: FollowStream

    @property
    def end(self) -> End | None:
        """The producer's end when the reader read to it; the reader's own when it left first."""
        return self.reader.end

    @property
    def error_code(self) -> str | None:
        """The code of the `error` frame that ended what the reader read, if one did."""
        return self.reader.error_code
