"""The store's worker thread: operations in order, results and errors handed back, writes that outlive their caller."""

from __future__ import annotations

import asyncio
import threading
from typing import cast

import pytest

from lean_chat.store.worker import Wakeup, Worker

pytestmark = pytest.mark.anyio


async def test_operations_run_in_order_on_one_thread_and_hand_back_results_and_errors() -> None:
    worker = Worker("test-worker")
    worker.start()
    seen: list[tuple[int, str]] = []

    def note(index: int) -> int:
        seen.append((index, threading.current_thread().name))
        if index == 7:
            raise ValueError("seven")
        return index * 10

    try:
        results = await asyncio.gather(*(worker.run(note, i) for i in range(50)), return_exceptions=True)
    finally:
        worker.stop()
    assert [index for index, _ in seen] == list(range(50))
    assert {name for _, name in seen} == {"test-worker"}
    assert isinstance(results[7], ValueError)
    assert [r for i, r in enumerate(results) if i != 7] == [i * 10 for i in range(50) if i != 7]


async def test_a_write_whose_caller_is_cancelled_runs_to_its_end_and_the_caller_waits_for_it() -> None:
    worker = Worker("test-worker")
    worker.start()
    started, release = threading.Event(), threading.Event()
    done: list[str] = []

    def write() -> str:
        started.set()
        release.wait()
        done.append("written")
        return "ok"

    try:
        caller = asyncio.ensure_future(worker.run_to_the_end(write))
        await asyncio.get_running_loop().run_in_executor(None, started.wait)
        caller.cancel()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert not caller.done()  # still waiting for the write
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert done == ["written"]
    finally:
        release.set()
        worker.stop()


async def test_a_cancelled_read_returns_at_once_and_later_operations_still_run() -> None:
    worker = Worker("test-worker")
    worker.start()
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait()
        return "late"

    try:
        caller = asyncio.ensure_future(worker.run(slow))
        await asyncio.get_running_loop().run_in_executor(None, started.wait)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        release.set()
        assert await worker.run(lambda: "next") == "next"
    finally:
        release.set()
        worker.stop()


async def waiting_on(wakeup: Wakeup, seen: list[str]) -> asyncio.Task[None]:
    """A task that has started to wait on the wakeup, and notes when it resumes."""

    async def caller() -> None:
        await wakeup
        seen.append("resumed")

    task = asyncio.get_running_loop().create_task(caller())
    await asyncio.sleep(0)
    return task


async def test_a_wakeup_steps_its_waiting_task_inside_the_hand_back() -> None:
    loop = asyncio.get_running_loop()
    wakeup = Wakeup(loop)
    seen: list[str] = []
    task = await waiting_on(wakeup, seen)

    def hand_back() -> None:
        wakeup.set_result(None)
        seen.append("hand-back returned")

    loop.call_soon(hand_back)
    await task
    assert seen == ["resumed", "hand-back returned"]  # an asyncio future would wake it a loop turn later


async def test_a_task_waiting_on_a_wakeup_can_be_cancelled_and_shielded_or_waited_for() -> None:
    loop = asyncio.get_running_loop()
    cancelled = Wakeup(loop)

    async def caller() -> None:
        await cancelled

    task = loop.create_task(caller())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.cancelled()
    shielded, waited = Wakeup(loop), Wakeup(loop)
    loop.call_soon(shielded.set_result)
    loop.call_soon(waited.set_result)
    # A Wakeup is no Future subclass; it speaks the part of the protocol that shield and wait use.
    await asyncio.shield(cast("asyncio.Future[None]", shielded))
    waited_future = cast("asyncio.Future[None]", waited)
    finished, _ = await asyncio.wait((waited_future,))
    assert finished == {waited_future}


async def test_a_wakeup_set_from_inside_a_task_wakes_its_waiter_on_the_next_turn() -> None:
    loop = asyncio.get_running_loop()
    wakeup = Wakeup(loop)
    seen: list[str] = []
    task = await waiting_on(wakeup, seen)
    wakeup.set_result(None)  # from this test's own task
    seen.append("set")
    await task
    assert seen == ["set", "resumed"]
