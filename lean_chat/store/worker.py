"""One worker thread for a blocking connection: each operation runs whole there, in one hop from the event loop."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

__all__ = ["Worker", "to_the_end"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


class Worker:
    """A single thread that runs operations one at a time, so a transaction's statements never interleave."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        """Start the thread (lazily, on the first operation)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)

    async def run(self, work: Callable[..., _T], *args: Any) -> _T:
        """`work(*args)` on the worker thread; one wake-up of the event loop when it ends."""
        # Each hop waits for a turn of the event loop, which is long while thousands of streams run: one hop
        # per operation, not one per statement, keeps saves quick under load.
        if self._pool is None:
            raise RuntimeError(f"{self._name} is not started")
        return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)

    def stop(self) -> None:
        """Let queued operations finish, then end the thread."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


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
