"""A store with each operation timed and its failures counted, by store kind (memory, sqlite, postgres...)."""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from prometheus_client import Counter, Histogram

from ..store.base import ConversationForbidden, ConversationGone, Store

__all__ = ["WatchedStore", "store_kind", "watched"]

# Answers, not failures: the conversation is another user's, or was deleted while a reply streamed.
_EXPECTED = (ConversationForbidden, ConversationGone)


def store_kind(store: object) -> str:
    """`sqlite` for SQLiteStore, `memory` for MemoryStore...: the class name, lower case, without "store"."""
    name = type(store).__name__.lower()
    return name.removesuffix("store") or name


class WatchedStore:
    """Passes every attribute through to the store; its async methods come back timed (made once, then kept)."""

    def __init__(self, store: Store, duration: Histogram, failures: Counter) -> None:
        self.store = store
        self.kind = store_kind(store)
        self.persistent = store.persistent
        self._duration = duration
        self._failures = failures

    def __getattr__(self, name: str) -> Any:
        """The store's attribute; an async method is wrapped with a timer and kept on this object."""
        attribute = getattr(self.store, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(attribute):
            return attribute
        timed = self._timed(name, attribute)
        setattr(self, name, timed)
        return timed

    def _timed(self, operation: str, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """The method, observing each call's latency and counting the calls that fail."""
        duration = self._duration.labels(self.kind, operation)
        failures = self._failures.labels(self.kind, operation)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await method(*args, **kwargs)
            except _EXPECTED:
                raise
            except Exception:
                failures.inc()
                raise
            finally:
                duration.observe(time.perf_counter() - start)

        return timed


def watched(store: Store, duration: Histogram, failures: Counter) -> Store:
    """The store behind a timer (typed as the protocol it passes through)."""
    return cast(Store, WatchedStore(store, duration, failures))
