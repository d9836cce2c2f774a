"""A store with each operation timed and its failures counted, by store kind (memory, sqlite, postgres...)."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from prometheus_client import Counter, Histogram

from ..store.base import ConversationForbidden, ConversationInfo, Store, StoredMessage

__all__ = ["WatchedStore", "store_kind"]

T = TypeVar("T")


def store_kind(store: object) -> str:
    """`sqlite` for SQLiteStore, `memory` for MemoryStore...: the class name, lower case, without "store"."""
    name = type(store).__name__.lower()
    return name.removesuffix("store") or name


class WatchedStore:
    """Passes every call to the store, timing the protocol's operations (a foreign conversation is no failure)."""

    def __init__(self, store: Store, duration: Histogram, failures: Counter) -> None:
        self.store = store
        self.kind = store_kind(store)
        self._duration = duration
        self._failures = failures
        self.persistent = store.persistent

    def __getattr__(self, name: str) -> Any:
        """Anything else the store has (its path, its own helpers), untimed."""
        return getattr(self.store, name)

    async def _timed(self, operation: str, call: Awaitable[T]) -> T:
        """Await the store's call, observing its latency; count it failed when it raises (not when refused)."""
        start = time.perf_counter()
        try:
            return await call
        except ConversationForbidden:
            raise
        except Exception:
            self._failures.labels(self.kind, operation).inc()
            raise
        finally:
            self._duration.labels(self.kind, operation).observe(time.perf_counter() - start)

    async def open(self) -> None:
        """Open the store."""
        await self._timed("open", self.store.open())

    async def close(self) -> None:
        """Close the store."""
        await self._timed("close", self.store.close())

    async def ping(self) -> None:
        """Check the store answers."""
        await self._timed("ping", self.store.ping())

    async def load(self, *args: Any, **kwargs: Any) -> list[StoredMessage]:
        """Load a conversation for a turn."""
        return await self._timed("load", self.store.load(*args, **kwargs))

    async def append(self, *args: Any, **kwargs: Any) -> None:
        """Append messages."""
        await self._timed("append", self.store.append(*args, **kwargs))

    async def create(self, *args: Any, **kwargs: Any) -> str:
        """Create a conversation."""
        return await self._timed("create", self.store.create(*args, **kwargs))

    async def delete(self, *args: Any, **kwargs: Any) -> None:
        """Delete a conversation."""
        await self._timed("delete", self.store.delete(*args, **kwargs))

    async def clear(self, *args: Any, **kwargs: Any) -> None:
        """Delete all of a user's conversations."""
        await self._timed("clear", self.store.clear(*args, **kwargs))

    async def list_conversations(self, *args: Any, **kwargs: Any) -> list[ConversationInfo]:
        """List a user's conversations."""
        return await self._timed("list_conversations", self.store.list_conversations(*args, **kwargs))

    async def read(self, *args: Any, **kwargs: Any) -> list[StoredMessage]:
        """Read a conversation for the history endpoints."""
        return await self._timed("read", self.store.read(*args, **kwargs))
