"""A resumable turn: produced in a task of its own, apart from any connection; its frames kept in the hub."""

from __future__ import annotations

import asyncio
import time
from contextlib import aclosing

from ..frames import token_frames_with_ids, with_id
from ..hub import Hub, StreamInfo, release_whole
from ..metrics import Metrics
from .cancellation import take_back_cancel
from .chat import Turn
from .event_frames import EventFrames
from .framing import outcome_frame
from .outcomes import Failed, Outcome, Unsaved
from .shutdown import Drain
from .stream_summary import summarize
from .streaming import End

__all__ = ["ABANDONED_CODE", "DetachedTurn"]

ABANDONED_CODE = "abandoned"
ABANDONED_MESSAGE = "No reader came back within the grace period; the reply was cut short."


class DetachedTurn:
    """Runs one turn to its end whoever reads it; with no reader for `grace` seconds, it is cut short."""

    def __init__(
        self,
        turn: Turn,
        info: StreamInfo,
        hub: Hub,
        grace_seconds: float,
        drain: Drain | None,
        producers: set[DetachedTurn],
        metrics: Metrics | None = None,
    ) -> None:
        self.turn = turn
        self.metrics = metrics or Metrics()
        self.started = time.perf_counter()
        self.end: End | None = None  # why the reply ended (read by the metrics)
        self.error_code: str | None = None  # the code of the `error` frame that ended it, if one did
        self.producers = producers  # the app's running producers (a task is kept alive by a reference)
        self.info = info
        self.hub = hub
        self.grace = grace_seconds
        self.events = EventFrames(turn.request.events)  # the opt-in frames the stream's client asked for
        self.drain = drain
        self.readers = 0
        self.next_id = 1
        self.task: asyncio.Task[None] | None = None
        self._finishing = False
        self._cut: str | tuple[str, str] | None = None  # why the reply was cut short
        self._grace_timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Start producing."""
        self.task = asyncio.get_running_loop().create_task(self._run())
        self.producers.add(self)
        if self.drain is not None:
            self.drain.add(self)

    async def _run(self) -> None:
        """Produce the reply, keep its frames, then its final frame; release the stream whatever happens."""
        turn, stream_id = self.turn, self.info.stream_id
        self.metrics.stream_opened(self)
        try:
            await self._produce(turn, stream_id)
        finally:
            self.metrics.stream_closed(self)
            self._finishing = True
            if self._grace_timer is not None:
                self._grace_timer.cancel()
            if self.drain is not None:
                self.drain.discard(self)
            self.producers.discard(self)
            if self.end is None:
                self.end, self.error_code = End.ERROR, "internal_error"
            self.metrics.stream_ended(summarize(self, self.started))
            await release_whole(self.hub, self.info)

    async def _produce(self, turn: Turn, stream_id: str) -> None:
        """The reply's frames, kept in the hub, then its final frame."""
        try:
            frame_of = self.events.frame
            async with aclosing(turn.events()) as events:
                async for item in events:
                    if isinstance(item, list):
                        if item:
                            first_id = self.next_id
                            self.next_id += len(item)
                            self.hub.keep(stream_id, first_id, self.next_id - 1, token_frames_with_ids(item, first_id))
                    elif (frame := frame_of(item)) is not None:
                        self.hub.keep(stream_id, self.next_id, self.next_id, with_id(frame, self.next_id))
                        self.next_id += 1
            self._finishing = True
            outcome: Outcome = await turn.finish()
            self.end = End.DONE
            if isinstance(outcome, Unsaved):
                self.end, self.error_code = End.ERROR, outcome.code
        except asyncio.CancelledError:
            if self._cut is None:
                await asyncio.shield(turn.save_partial())
                raise
            if self.task is not None:
                take_back_cancel(self.task)
            outcome = await self._cut_short()
        except Exception as exc:
            failed = turn.failure(exc)
            outcome = await turn.fail(failed)
            self.end, self.error_code = End.ERROR, failed.code
        # An `error` frame names the request that started the stream, as a plain stream's does (docs/wire.md).
        final = outcome_frame(outcome, self.info.request_id, self.events.any)
        await self.hub.end(stream_id, self.next_id, with_id(final, self.next_id))

    async def _cut_short(self) -> Outcome:
        """Save what was produced; how the reply ended, for the reason it was cut short."""
        if self._cut == "stopped":
            self.end = End.USER_STOP
            return await self.turn.stop_reply()
        await self.turn.save_partial()
        if isinstance(self._cut, tuple):
            self.end, self.error_code = End.STOPPED, self._cut[1]
            return Failed(*self._cut)
        self.end, self.error_code = End.ERROR, ABANDONED_CODE
        return Failed(ABANDONED_MESSAGE, ABANDONED_CODE)

    def _cancel(self, reason: str | tuple[str, str]) -> None:
        """Cut the reply short (once): the upstream is closed at once."""
        if self._cut is None and not self._finishing and self.task is not None:
            self._cut = reason
            self.task.cancel()

    def stop_by_user(self) -> None:
        """The user pressed Stop: end with a `done` holding the text so far, marked stopped."""
        self._cancel("stopped")

    def stop(self, message: str, code: str) -> None:
        """The server is shutting down: end with this `error` (the partial reply is saved)."""
        self._cancel((message, code))

    def attach(self) -> None:
        """A reader in this process follows the stream."""
        self.readers += 1
        if self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None

    def detach(self) -> None:
        """A reader in this process went away: with none left, the grace period starts."""
        self.readers -= 1
        if self.readers == 0 and not self._finishing:
            self._arm_grace(self.grace)

    def _arm_grace(self, seconds: float) -> None:
        """Check for readers after `seconds`."""
        loop = asyncio.get_running_loop()
        self._grace_timer = loop.call_later(seconds, lambda: loop.create_task(self._grace_over()))

    async def _grace_over(self) -> None:
        """No reader here for the grace period: cut short, unless one reads on another instance."""
        self._grace_timer = None
        if self.readers or self._finishing:
            return
        try:
            elsewhere = await self.hub.readers_elsewhere(self.info.stream_id)
        except Exception:
            elsewhere = False
        if elsewhere:
            self._arm_grace(self.grace)
        else:
            self._cancel("abandoned")

    async def wait(self) -> None:
        """Until the producer has ended."""
        if self.task is not None:
            await asyncio.shield(self.task)
