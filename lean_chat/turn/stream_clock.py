"""One timer per event loop for every open stream's heartbeat and send timeout, instead of a timer per stream.

A timer per stream costs each open stream about 0.45 KB (uvloop's timer handle and libuv timer, a copy of the
context, the bound callback); thousands of streams may be open. The clock ticks every quarter of the shortest
period its streams asked for, and each tick asks each stream to check itself: a ping or a stalled send is noticed
up to a quarter of a period late (a 15 s heartbeat is sent after 15 to 18.75 s of silence).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Protocol

__all__ = ["Clocked", "StreamClock", "clock_of"]

# Ticks per shortest period: the lateness of a check, as a share of the period, is at most its inverse.
_TICKS_PER_PERIOD = 4
_SHORTEST_TICK = 0.001


class Clocked(Protocol):
    """A stream the clock checks: it sends a ping after silence, or ends a send stuck for too long."""

    def check_clock(self, now: float) -> None:
        """Check for silence or a stuck send, at the loop's time `now`."""


class StreamClock:
    """The streams of one loop that want checking, and the one timer that checks them."""

    __slots__ = ("_interval", "_loop", "_streams", "_timer", "__weakref__")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._streams: dict[Clocked, None] = {}  # in the order they came (a dict: ordered, and no hashing of order)
        self._interval = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._streams)

    def add(self, stream: Clocked, period: float) -> None:
        """Check `stream` from now on, at least every quarter of `period` seconds (a positive period)."""
        self._streams[stream] = None
        interval = max(_SHORTEST_TICK, period / _TICKS_PER_PERIOD)
        if self._timer is None or interval < self._interval:
            if self._timer is not None:
                self._timer.cancel()
            self._interval = interval
            self._timer = self._loop.call_later(interval, self._tick)

    def discard(self, stream: Clocked) -> None:
        """Stop checking `stream` (the timer stops at its next tick once no stream is left)."""
        self._streams.pop(stream, None)

    def _tick(self) -> None:
        """Check every stream; tick again while any is left."""
        self._timer = None
        if not self._streams:
            self._interval = 0.0
            return
        now = self._loop.time()
        for stream in list(self._streams):
            stream.check_clock(now)
        if self._streams:
            self._timer = self._loop.call_later(self._interval, self._tick)
        else:
            self._interval = 0.0


_CLOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StreamClock] = weakref.WeakKeyDictionary()


def clock_of(loop: asyncio.AbstractEventLoop) -> StreamClock:
    """The clock of `loop` (made at its first stream)."""
    clock = _CLOCKS.get(loop)
    if clock is None:
        clock = _CLOCKS[loop] = StreamClock(loop)
    return clock
