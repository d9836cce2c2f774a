"""The streaming response: writes a turn's frames in batches, sends heartbeats, watches for disconnect."""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from .chat import Turn, TurnFailed
from .frames import PING_FRAME, SSE_HEADERS, error_frame, token_frames
from .request_id import frame_request_id, id_header
from .shutdown import Drain

__all__ = ["ErrorStream", "TurnStream"]

logger = logging.getLogger("lean_chat")


async def _next_message(receive: Receive) -> Message:
    """The next ASGI message from the client (a coroutine, so it can run as a task)."""
    return await receive()


class ErrorStream:
    """A stream that is nothing but one `error` frame (for failures found before any provider is called)."""

    def __init__(self, message: str, code: str) -> None:
        self.message = message
        self.code = code

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the headers and the single frame."""
        body = error_frame(self.message, self.code, frame_request_id(scope))
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + id_header(scope)})
        await send({"type": "http.response.body", "body": body, "more_body": False})


class TurnStream:
    """The SSE response of one turn; the watchers run as one receive task and one timer, not per token."""

    def __init__(
        self, turn: Turn, heartbeat_seconds: float, send_timeout_seconds: float, drain: Drain | None = None
    ) -> None:
        self.turn = turn
        self.heartbeat = heartbeat_seconds
        self.send_timeout = send_timeout_seconds
        self.drain = drain
        self.disconnected = False
        self.stalled = False
        self.stopped: bytes | None = None
        self.error_code: str | None = None  # the code of the `error` frame that ended the reply, if one did
        self.request_id: str | None = None
        self._finishing = False
        self._last_write = 0.0
        self._sending_since: float | None = None
        self._writes_in_flight = 0
        self._ping: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None
        self._send: Send | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the turn, framing its batches, until done, error or the client goes away."""
        loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._send = send
        self.request_id = frame_request_id(scope)
        watcher = loop.create_task(_next_message(receive))
        watcher.add_done_callback(self._on_receive)
        self._last_write = loop.time()
        self._arm(loop)
        if self.drain is not None:
            self.drain.add(self)
        try:
            await self._write({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + id_header(scope)})
            final = await self._produce()
            if self._ping is not None and not self._ping.done():
                await self._ping
            self._finishing = True
            await self._write({"type": "http.response.body", "body": final, "more_body": False})
        except asyncio.CancelledError:
            if not (self.disconnected or self.stalled or self.stopped is not None):
                await asyncio.shield(self.turn.save_partial())
                raise
            uncancel = getattr(self._task, "uncancel", None)
            if uncancel is not None:
                uncancel()
            await self.turn.save_partial()
            if self.stopped is not None and not (self.disconnected or self.stalled):
                await self._write({"type": "http.response.body", "body": self.stopped, "more_body": False})
        finally:
            if self.drain is not None:
                self.drain.discard(self)
            watcher.remove_done_callback(self._on_receive)
            watcher.cancel()
            if self._timer is not None:
                self._timer.cancel()
            if self._ping is not None:
                self._ping.cancel()

    async def _produce(self) -> bytes:
        """Send every token batch and return the final frame (`done`, or `error` with the partial reply saved)."""
        try:
            async with aclosing(self.turn.batches()) as batches:
                async for batch in batches:
                    await self._write({"type": "http.response.body", "body": token_frames(batch), "more_body": True})
            self._finishing = True  # the reply is complete: a shutdown now still ends with its `done`
            return await self.turn.finish()
        except TurnFailed as exc:
            self.error_code = exc.code
            await self.turn.save_partial()
            return error_frame(exc.message, exc.code, self.request_id)
        except Exception:
            logger.exception("stream failed")
            self.error_code = "internal_error"
            await self.turn.save_partial()
            return error_frame("Internal error while streaming the reply.", "internal_error", self.request_id)

    def stop(self, message: str, code: str) -> None:
        """End the stream now with an `error` frame (the partial reply is saved); used on shutdown."""
        if self.stopped is None and self._task is not None and not self._finishing:
            self.stopped = error_frame(message, code, self.request_id)
            self._task.cancel()

    async def _write(self, message: Message) -> None:
        """Send one ASGI message, noting when it started and ended (for heartbeats and the send timeout)."""
        assert self._send is not None
        loop = asyncio.get_running_loop()
        # A ping may be in flight beside a batch: the clock runs from the first write until the last one ends.
        self._writes_in_flight += 1
        if self._sending_since is None:
            self._sending_since = loop.time()
        try:
            await self._send(message)
        finally:
            self._writes_in_flight -= 1
            if not self._writes_in_flight:
                self._sending_since = None
            self._last_write = loop.time()

    def _on_receive(self, task: asyncio.Task[Message]) -> None:
        """The client went away (or the server is closing the connection): stop the turn."""
        if task.cancelled() or task.exception() is not None:
            return
        if task.result().get("type") == "http.disconnect":
            self.disconnected = True
            if self._task is not None:
                self._task.cancel()

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        """Schedule the next check for silence or a stuck send."""
        now = loop.time()
        if self._sending_since is not None and self.send_timeout > 0:
            at = self._sending_since + self.send_timeout
        elif self.heartbeat > 0:
            at = self._last_write + self.heartbeat if self._sending_since is None else now + self.heartbeat
        elif self.send_timeout > 0:
            at = now + self.send_timeout
        else:
            return
        self._timer = loop.call_at(max(at, now + 0.001), self._tick)

    def _tick(self) -> None:
        """Send a ping after silence; stop a turn whose client has not taken a write for too long."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._sending_since is not None:
            if self.send_timeout > 0 and now - self._sending_since >= self.send_timeout:
                self.stalled = True
                if self._task is not None:
                    self._task.cancel()
                return
        elif self.heartbeat > 0 and now - self._last_write >= self.heartbeat and self._ping is None:
            self._last_write = now
            self._ping = loop.create_task(self._send_ping())
        self._arm(loop)

    async def _send_ping(self) -> None:
        """Write one comment frame."""
        try:
            await self._write({"type": "http.response.body", "body": PING_FRAME, "more_body": True})
        finally:
            self._ping = None
