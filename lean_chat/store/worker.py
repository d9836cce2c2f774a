"""One worker thread for a blocking connection: each operation runs whole there, in one hop from the event loop.

The thread takes operations from a queue and hands results back in batches: the first operation that ends
while no hand-back is pending schedules one (`call_soon_threadsafe`), and that one call resolves every
operation that has ended by the time it runs. Under load the event loop is woken once per batch, not once
per operation, and no `concurrent.futures.Future` (a lock and a condition each) is made per operation. A caller
is woken inside the hand-back itself (`Wakeup`), not on the event loop's next turn, which under load is long.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import functools
import queue
import threading
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, ParamSpec, TypeVar

__all__ = ["Job", "Operation", "Wakeup", "Worker", "outlive", "to_the_end"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


_Callback = tuple[Callable[[Any], object], contextvars.Context | None]


class Wakeup:
    """What a caller awaits: a future that runs its callbacks (the waiting task's step) at once when it is set.

    An asyncio future schedules its callbacks for the loop's next turn; this one is set only by the hand-back,
    a plain callback of the loop with no task running, so the woken task runs there and then. Cancelling it
    schedules the callbacks, as asyncio does (a task is never stepped inside another one's step). It speaks the
    part of the future protocol that tasks, `asyncio.wait` and `asyncio.shield` use.
    """

    __slots__ = ("_asyncio_future_blocking", "_callbacks", "_loop", "_state")

    _PENDING, _DONE, _CANCELLED = 0, 1, 2

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._asyncio_future_blocking = False  # the marker asyncio looks for on anything a task awaits
        self._callbacks: list[_Callback] = []
        self._state = self._PENDING

    def get_loop(self) -> asyncio.AbstractEventLoop:
        """The loop it belongs to."""
        return self._loop

    def done(self) -> bool:
        """Set or cancelled."""
        return self._state != self._PENDING

    def cancelled(self) -> bool:
        """Cancelled."""
        return self._state == self._CANCELLED

    def result(self) -> None:
        """Nothing once set; CancelledError once cancelled."""
        if self._state == self._CANCELLED:
            raise asyncio.CancelledError()
        if self._state == self._PENDING:
            raise asyncio.InvalidStateError("the operation has not ended")

    def exception(self) -> None:
        """Never an exception of its own (the operation keeps the one it raised)."""
        self.result()

    def add_done_callback(
        self, callback: Callable[[Any], object], *, context: contextvars.Context | None = None
    ) -> None:
        """Call `callback(self)` when it is set or cancelled (on the next turn if it already is)."""
        if self._state != self._PENDING:
            self._loop.call_soon(callback, self, context=context)
        else:
            self._callbacks.append((callback, context))

    def remove_done_callback(self, callback: Callable[[Any], object]) -> int:
        """Forget a callback; how many were removed."""
        kept = [entry for entry in self._callbacks if entry[0] != callback]
        removed = len(self._callbacks) - len(kept)
        self._callbacks = kept
        return removed

    def cancel(self, msg: Any = None) -> bool:
        """Cancel it, its callbacks scheduled for the next turn (as an asyncio future does)."""
        if self._state != self._PENDING:
            return False
        self._state = self._CANCELLED
        callbacks, self._callbacks = self._callbacks, []
        for callback, context in callbacks:
            self._loop.call_soon(callback, self, context=context)
        return True

    def set_result(self, result: None = None) -> None:
        """Set it and run its callbacks now (from a plain callback of the loop; inside a task, on the next turn)."""
        if self._state != self._PENDING:
            return
        self._state = self._DONE
        callbacks, self._callbacks = self._callbacks, []
        if asyncio.current_task(self._loop) is not None:  # a task cannot be stepped inside another one's step
            for callback, context in callbacks:
                self._loop.call_soon(callback, self, context=context)
            return
        for callback, context in callbacks:
            try:
                if context is None:
                    callback(self)
                else:
                    context.run(callback, self)
            except Exception as exc:  # as the loop treats a failing callback
                self._loop.call_exception_handler({"message": "worker wake-up callback failed", "exception": exc})

    def __await__(self) -> Generator[Any, None, None]:
        if self._state == self._PENDING:
            self._asyncio_future_blocking = True
            yield self
        self.result()

    __iter__ = __await__


class Job:
    """What to run, `work(*args)`, and (once it ran) its result or its exception."""

    __slots__ = ("args", "error", "result", "work")

    def __init__(self, work: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.work = work
        self.args = args
        self.result: Any = None
        self.error: BaseException | None = None

    def outcome(self) -> Any:
        """The result, or the exception raised."""
        if self.error is not None:
            raise self.error
        return self.result


class Operation(Job):
    """One job of the worker thread, and who waits for it."""

    __slots__ = ("done", "loop", "waiters")

    def __init__(self, work: Callable[..., Any], args: tuple[Any, ...], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(work, args)
        self.loop = loop
        self.done = False  # handed back: the result is there (set on the event loop)
        # One per waiting caller: set when the operation is handed back.
        self.waiters: list[Wakeup | asyncio.Future[None]] = []

    def waiter(self) -> Wakeup:
        """A future of the caller's own, set when the operation is handed back (a cancelled one is skipped)."""
        waiter = Wakeup(asyncio.get_running_loop())
        self.waiters.append(waiter)
        return waiter


class Worker:
    """A single thread that runs operations one at a time, so a transaction's statements never interleave."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._thread: threading.Thread | None = None
        self._operations: queue.SimpleQueue[Operation | None] = queue.SimpleQueue()
        self._ended: collections.deque[Operation] = collections.deque()
        self._handing_back = False  # a hand-back is scheduled on the event loop and has not started yet

    def start(self) -> None:
        """Start the thread (once; again after `stop`)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
            self._thread.start()

    async def run(self, work: Callable[..., _T], *args: Any) -> _T:
        """`work(*args)` on the worker thread; a cancelled caller leaves it running and returns at once."""
        operation = self.submit(work, *args)
        await operation.waiter()
        return operation.outcome()  # type: ignore[no-any-return]

    async def run_to_the_end(self, work: Callable[..., _T], *args: Any) -> _T:
        """`work(*args)` on the worker thread; a cancelled caller waits for it to end (see `to_the_end`)."""
        operation = self.submit(work, *args)
        await outlive(operation)
        return operation.outcome()  # type: ignore[no-any-return]

    def submit(self, work: Callable[..., Any], *args: Any) -> Operation:
        """Queue `work(*args)`; it is handed back to this event loop when it has ended."""
        if self._thread is None:
            raise RuntimeError(f"{self._name} is not started")
        operation = Operation(work, args, asyncio.get_running_loop())
        self._operations.put(operation)
        return operation

    def stop(self) -> None:
        """Let queued operations finish, then end the thread."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._operations.put(None)
            thread.join()

    # The rest runs on the worker thread, except `_hand_back`.

    def _serve(self) -> None:
        """Run operations until told to stop."""
        take = self._operations.get
        while True:
            operation = take()
            if operation is None:
                return
            try:
                operation.result = operation.work(*operation.args)
            except BaseException as exc:  # handed to the caller, as an executor would
                operation.error = exc
            operation.work = operation.args = None  # type: ignore[assignment]
            self._ended.append(operation)
            if not self._handing_back:
                self._handing_back = True
                try:
                    operation.loop.call_soon_threadsafe(self._hand_back)
                except RuntimeError:  # that loop is closed: nobody waits there any more
                    self._handing_back = False
                    self._ended.remove(operation)

    def _hand_back(self) -> None:
        """On the event loop: wake the callers of every operation that has ended."""
        self._handing_back = False  # before taking: an operation ending from now on schedules the next hand-back
        ended = self._ended
        loop = asyncio.get_running_loop()
        while ended:
            operation = ended.popleft()
            if operation.loop is not loop:  # an operation from another event loop (tests): handed back there
                operation.loop.call_soon_threadsafe(_wake, operation)
            else:
                _wake(operation)


async def outlive(operation: Operation) -> None:
    """Wait for a queued operation to end; a cancelled caller still waits for that, then sees its cancellation
    (several callers may wait for one operation this way)."""
    if operation.done:
        return
    try:
        await operation.waiter()
    except asyncio.CancelledError:
        if not operation.done:
            waiter = asyncio.get_running_loop().create_future()
            operation.waiters.append(waiter)
            await asyncio.wait((waiter,))
        raise


def _wake(operation: Operation) -> None:
    """Mark an operation handed back and wake its callers (those that gave up are skipped)."""
    operation.done = True
    for waiter in operation.waiters:
        if not waiter.done():
            waiter.set_result(None)
    operation.waiters.clear()


def to_the_end(write: Callable[_P, Awaitable[_T]]) -> Callable[_P, Coroutine[Any, Any, _T]]:
    """A store write that runs to its end even when its caller is cancelled (a client gone mid-save):
    a transaction cut at BEGIN or COMMIT would leave the shared connection inside it, and the reply unsaved."""

    @functools.wraps(write)
    async def run(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        task = asyncio.ensure_future(write(*args, **kwargs))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            await asyncio.wait({task})
            if not task.cancelled():
                task.exception()  # retrieved: the caller is gone, and the cancellation is what it sees
            raise

    return run
