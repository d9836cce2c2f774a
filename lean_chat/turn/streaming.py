"""The streaming response: writes a turn's frames in batches, sends heartbeats, watches for disconnect."""

from __future__ import annotations

import asyncio
import enum
from typing import Any, Protocol

from starlette.types import Message, Receive, Scope, Send

from ..frames import PING_FRAME, SSE_HEADERS
from ..scope_keys import BODY_SEND
from .cancellation import take_back_cancel
from .chat import Turn
from .client_watch import ClientWatch, watch_client
from .framing import Framer, KeptFrames, outcome_frame
from .outcomes import Failed, Outcome, Unsaved
from .shutdown import Drain
from .stream_clock import StreamClock, clock_of

__all__ = ["End", "ErrorStream", "StreamCloser", "TurnStream", "outcome_frame"]


class StreamCloser(Protocol):
    """Who is told that a stream ended (held as the object: a bound method kept by every open stream costs 64 B)."""

    async def stream_closed(self, stream: TurnStream) -> None:
        """The stream has ended."""


class ErrorStream:
    """A stream that is nothing but its `error` (for failures found before any provider is called)."""

    def __init__(
        self,
        message: str,
        code: str,
        request_id: str | None,
        headers: list[tuple[bytes, bytes]] = SSE_HEADERS,
        framer: Framer | None = None,
    ) -> None:
        self.message = message
        self.code = code
        self.request_id = request_id  # the client's own id, for the frame
        self.headers = headers
        self.framer = framer or KeptFrames()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the headers and the single frame."""
        body = self.framer.outcome(Failed(self.message, self.code), self.request_id)
        await send({"type": "http.response.start", "status": 200, "headers": self.headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


# The `/chat/stream` frames of every stream without opt-in events: one for all (only event frames change its state).
_PLAIN_FRAMES = KeptFrames()
# What `_stop_outcome` holds until stop() is called (one for every stream: frozen).
_NO_STOP = Failed("", "")


class End(enum.Enum):
    """Why a stream ended: the first cause wins, and later ones change nothing."""

    DONE = "done"  # the reply is complete: saved, and ended by its `done` frame
    ERROR = "error"  # the turn failed: partial reply saved, ended by an `error` frame
    CLIENT_GONE = "client_gone"  # the client went away: partial reply saved, nothing more written
    STALLED = "stalled"  # the client took no write for the send timeout: partial reply saved, nothing more written
    STOPPED = "stopped"  # the server stopped it (shutdown): partial reply saved, ended by the `error` frame given
    USER_STOP = "user_stop"  # the user pressed Stop: saved partial and stopped, ended by `done` marked stopped


class TurnStream:
    """The SSE response of one turn; the watchers run as one receive watch and the loop's clock, not per token.

    The watchers (client gone, stalled, stopped) end a running turn by setting `end` and cancelling the task once;
    when `end` is already set they change nothing, except that a write stuck after the end is cut (once). Any other
    cancellation comes from outside and is passed on, with the partial reply saved.
    """

    # Declared: every open stream keeps one (64 bytes less than an instance dict's values).
    __slots__ = (
        "_body_send",
        "_cancel_sent",
        "_clock",
        "_cut",
        "_last_write",
        "_loop",
        "_main_writing",
        "_ping",
        "_send",
        "_sending_since",
        "_stop_outcome",
        "_task",
        "_watcher",
        "_writes_in_flight",
        "claim",
        "closer",
        "drain",
        "end",
        "error_code",
        "framer",
        "headers",
        "heartbeat",
        "request_id",
        "send_timeout",
        "turn",
    )

    def __init__(
        self,
        turn: Turn,
        heartbeat_seconds: float,
        send_timeout_seconds: float,
        drain: Drain | None = None,
        framer: Framer | None = None,
    ) -> None:
        self.turn = turn
        # The dialect's bytes: by default the `/chat/stream` frames, with the events this client opted in to.
        self.framer = framer or (KeptFrames(turn.request.events) if turn.request.events else _PLAIN_FRAMES)
        self.heartbeat = heartbeat_seconds
        self.send_timeout = send_timeout_seconds
        self.drain = drain
        self.end: End | None = None
        self.headers = SSE_HEADERS  # the stream's own id and the request's are added by the endpoint
        self.error_code: str | None = None  # the code of the `error` frame that ended the reply, if one did
        self.request_id = turn.request.request_id  # the client's own id, for `error` frames
        self._stop_outcome = _NO_STOP  # the shutdown's error, once stop() is called
        # After the end, the client stopped reading or left: the write in flight is cut, and no more follow.
        self._cut = False
        self._cancel_sent = False  # our cancellation of the task is on its way (never more than one at a time)
        self._main_writing = False
        self._last_write = 0.0
        self._sending_since: float | None = None
        self._writes_in_flight = 0
        self._ping: asyncio.Task[None] | None = None
        self._clock: StreamClock | None = None  # the loop's clock, while it checks this stream
        self._task: asyncio.Task[Any] | None = None
        self._watcher: ClientWatch | None = None
        self._send: Send | None = None
        self._body_send: Send | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # What the endpoint claimed for this stream, and who is told once the stream has ended (to release it).
        self.claim: object = None
        self.closer: StreamCloser | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the turn until it ends (see `End`): the head, the batches framed, the last frame."""
        self._loop = loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._send = send  # for the head only (it goes through the lane's middleware): dropped once sent
        self._body_send = scope.get(BODY_SEND, send)  # past the lane's middleware, when none changes bodies
        del send
        self._watcher = watcher = watch_client(receive, self)
        self._last_write = loop.time()
        self._watch_clock(loop)
        if self.drain is not None:
            self.drain.add(self)
        final: Outcome | None = None
        request_id = self.request_id
        try:  # one frame for the set-up, the head, the wait for the batches and the last frame: every stream keeps it
            try:
                head = {"type": "http.response.start", "status": 200, "headers": self.headers}
                self.headers = SSE_HEADERS  # the stream's own list is not kept for the stream's life once sent
                await self._write(head, head=True)
                del head
                self._send = None
                # The batches are written here, in this frame and this task: a task of its own would shorten each
                # relayed chunk's wake-up by a few frames (tens of nanoseconds each), and a coroutine of its own keep
                # a frame more, but every open stream would keep them (0.65 KB and 0.3 KB).
                try:
                    # Closed as `aclosing` would, without its object and bound `__aexit__` kept meanwhile.
                    events = self.turn.events()
                    try:
                        # (Methods called as such: a bound method kept in a local would live as long as the stream.)
                        if not self.turn.wants_events:  # token batches only: the plain path, nothing checked per batch
                            body_send = self._body_send
                            assert body_send is not None
                            async for batch in events:
                                # `_write`'s steps without its coroutine (this runs once per relayed chunk).
                                self._writing(True)
                                try:
                                    body = self.framer.tokens(batch)  # type: ignore[arg-type]  # (only batches come here)
                                    await body_send({"type": "http.response.body", "body": body, "more_body": True})
                                finally:
                                    self._wrote(True)
                                del batch, body  # not kept while the next one is awaited
                            del body_send
                        else:
                            async for item in events:
                                body = self.framer.tokens(item) if isinstance(item, list) else self.framer.event(item)
                                if body:
                                    await self._write({"type": "http.response.body", "body": body, "more_body": True})
                                del item, body
                    finally:
                        await events.aclose()
                        del events
                    # Done, unless a watcher's cause ended the turn first (its cancellation then did not reach here).
                    if self._settle(End.DONE):
                        final = await asyncio.shield(self.turn.finish())
                        if isinstance(final, Unsaved):  # the reply could not be saved: the outcome says why
                            self.end, self.error_code = End.ERROR, final.code
                except Exception as exc:
                    final = await self._failed(exc)
            except asyncio.CancelledError:
                if self.end is None or not self._take_back_cancel():
                    await asyncio.shield(self.turn.save_partial())
                    raise
            # After a watcher's cause, save and end as it says.
            if final is None and self.end is End.USER_STOP:
                final = await asyncio.shield(self.turn.stop_reply())
                request_id = None  # the `error` of a Stop whose conversation is gone names no request (as ever)
            elif final is None:  # a watcher's cause ended the turn
                await asyncio.shield(self.turn.save_partial())
                if self.end is not End.STOPPED:
                    return
                final = self._stop_outcome
            await self._write_last(self.framer.outcome(final, request_id))
        finally:
            if self.drain is not None:
                self.drain.discard(self)
            watcher.cancel()
            self._quiet()
            if self.closer is not None:
                await self.closer.stream_closed(self)

    async def _failed(self, exc: Exception) -> Outcome | None:
        """The turn raised `exc`: its outcome (failed, with the partial reply saved), or None when a watcher's cause
        ended the turn first."""
        failed = self.turn.failure(exc)  # logged, unless a TurnFailed (which finish() never raises)
        if self.end is End.DONE:  # the complete reply could not be saved
            self.end = End.ERROR
        elif not self._settle(End.ERROR):
            return None
        self.error_code = failed.code
        return await asyncio.shield(self.turn.fail(failed))

    def _settle(self, end: End) -> bool:
        """Record how the turn ended, unless a watcher's cause came first (then False)."""
        if self.end is not None:
            self._take_back_cancel()
            return False
        self.end = end
        return True

    async def _write_last(self, frame: bytes) -> None:
        """Write the stream's last frame, after a ping in flight; not to a client that left or stopped reading."""
        if self._ping is not None:
            await asyncio.wait((self._ping,))
        if self._cut or self._client_left():
            return
        try:
            await self._write({"type": "http.response.body", "body": frame, "more_body": False})
        except asyncio.CancelledError:
            if not (self._cut and self._take_back_cancel()):
                raise

    def stop(self, message: str, code: str) -> None:
        """End the stream now with an `error` frame (the partial reply is saved); used on shutdown."""
        if self.end is None and self._task is not None:
            self._stop_outcome = Failed(message, code)
            self._end_by(End.STOPPED)

    def stop_by_user(self) -> None:
        """The user pressed Stop (POST /chat/stop): end with a `done` holding the text so far, marked stopped."""
        if self.end is None and self._task is not None:
            self._end_by(End.USER_STOP)

    def _end_by(self, cause: End) -> None:
        """A watcher's cause ends the running turn: the first one wins and cancels the task, once."""
        if self.end is not None or self._task is None:
            return
        self.end = cause
        if cause not in (End.STOPPED, End.USER_STOP):  # nothing more is written: no pings, no send timeout
            self._quiet()
        self._cancel()

    def _cancel(self) -> None:
        """Cancel the task (ours: taken back where it is caught)."""
        if self._task is not None and not self._cancel_sent:
            self._cancel_sent = True
            self._task.cancel()

    def _take_back_cancel(self) -> bool:
        """Take back our cancellation of the task; False when it was not ours, or another (from outside) is pending."""
        if not self._cancel_sent:
            return False
        self._cancel_sent = False
        return self._task is None or take_back_cancel(self._task) == 0

    def _client_left(self) -> bool:
        """True once the server has told us the client went away."""
        return self._watcher is not None and self._watcher.left

    def _leave_clock(self) -> None:
        """The loop's clock checks this stream no more."""
        if self._clock is not None:
            self._clock.discard(self)
            self._clock = None

    def _quiet(self) -> None:
        """Stop the clock's checks and any ping in flight."""
        self._leave_clock()
        if self._ping is not None:
            self._ping.cancel()

    async def _write(self, message: Message, main: bool = True, head: bool = False) -> None:
        """Send one ASGI message, noting when it started and ended (for heartbeats and the send timeout).

        `main`: written by the turn (not a ping), so a write stuck after the end is cut by cancelling the turn.
        `head`: the response head, which goes through the lane's middleware (CORS adds its headers there).
        """
        send = self._send if head else self._body_send
        assert send is not None
        self._writing(main)
        try:
            await send(message)
        finally:
            self._wrote(main)

    def _writing(self, main: bool) -> None:
        """A write starts: the clock's bookkeeping (a ping may be in flight beside a batch: the send timeout runs
        from the first write until the last one ends)."""
        if main:
            self._main_writing = True
        self._writes_in_flight += 1
        if self._sending_since is None:
            assert self._loop is not None
            self._sending_since = self._loop.time()

    def _wrote(self, main: bool) -> None:
        """A write has ended (or failed): the clock's bookkeeping of `_write`."""
        if main:
            self._main_writing = False
        self._writes_in_flight -= 1
        if not self._writes_in_flight:
            self._sending_since = None
        assert self._loop is not None
        self._last_write = self._loop.time()

    def client_gone(self) -> None:
        """The client went away (or the server is closing the connection): stop the turn."""
        if self.end is None:
            self._end_by(End.CLIENT_GONE)
        else:  # after another end, nothing more goes to a client that left: not even the write in flight
            self._cut_stuck_write()
            self._quiet()

    def _watch_clock(self, loop: asyncio.AbstractEventLoop) -> None:
        """Have the loop's clock check this stream for silence (a ping) and a stuck send (the send timeout)."""
        periods = [period for period in (self.heartbeat, self.send_timeout) if period > 0]
        if periods:
            self._clock = clock_of(loop)
            self._clock.add(self, min(periods))

    def check_clock(self, now: float) -> None:
        """Send a ping after silence; stop a turn whose client has not taken a write for too long."""
        if self._sending_since is not None:
            if self.send_timeout > 0 and now - self._sending_since >= self.send_timeout:
                self._leave_clock()  # checked no more: what follows ends the stream, or cuts its write
                if self.end is None:
                    self._end_by(End.STALLED)
                else:
                    self._cut_stuck_write()
        elif self.heartbeat > 0 and now - self._last_write >= self.heartbeat and self._ping is None:
            assert self._loop is not None
            self._last_write = now
            self._ping = self._loop.create_task(self._send_ping())

    def _cut_stuck_write(self) -> None:
        """After the end, a write the client does not take (or left) is cancelled, once: nothing else would end it."""
        if self._cut:
            return
        self._cut = True
        if self._ping is not None:
            self._ping.cancel()
        if self._main_writing:
            self._cancel()

    async def _send_ping(self) -> None:
        """Write one comment frame."""
        try:
            await self._write({"type": "http.response.body", "body": PING_FRAME, "more_body": True}, main=False)
        finally:
            self._ping = None
