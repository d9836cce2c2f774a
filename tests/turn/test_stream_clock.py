"""The loop's stream clock: one timer checks every open stream, at a quarter of the shortest period asked for."""

from __future__ import annotations

import asyncio

import pytest

from lean_chat.turn.stream_clock import StreamClock, clock_of

pytestmark = pytest.mark.anyio


class Checked:
    """A stream that records when the clock checked it."""

    def __init__(self) -> None:
        self.checks: list[float] = []

    def check_clock(self, now: float) -> None:
        self.checks.append(now)


async def test_streams_are_checked_every_quarter_period_and_the_timer_stops_when_none_is_left() -> None:
    loop = asyncio.get_running_loop()
    clock = StreamClock(loop)
    slow, fast = Checked(), Checked()
    clock.add(slow, 0.4)  # checked every 0.1 s
    await asyncio.sleep(0.25)
    assert 1 <= len(slow.checks) <= 3  # not a check per loop turn
    clock.add(fast, 0.08)  # the clock now ticks every 0.02 s, for both
    before = len(slow.checks)
    await asyncio.sleep(0.2)
    assert len(fast.checks) >= 3
    assert len(slow.checks) - before >= 3
    clock.discard(fast)
    clock.discard(slow)
    counts = len(fast.checks), len(slow.checks)
    await asyncio.sleep(0.1)
    assert (len(fast.checks), len(slow.checks)) == counts  # a discarded stream is not checked
    assert clock._timer is None and len(clock) == 0  # and the timer has stopped


async def test_a_stream_may_leave_the_clock_while_it_is_checked() -> None:
    loop = asyncio.get_running_loop()
    clock = StreamClock(loop)

    class Leaving(Checked):
        def check_clock(self, now: float) -> None:
            super().check_clock(now)
            clock.discard(self)

    leaving, staying = Leaving(), Checked()
    clock.add(leaving, 0.02)
    clock.add(staying, 0.02)
    await asyncio.sleep(0.06)
    assert len(leaving.checks) == 1
    assert len(staying.checks) >= 2
    clock.discard(staying)


async def test_each_loop_has_its_own_clock() -> None:
    loop = asyncio.get_running_loop()
    assert clock_of(loop) is clock_of(loop)
    other = asyncio.new_event_loop()
    try:
        assert clock_of(other) is not clock_of(loop)
    finally:
        other.close()
