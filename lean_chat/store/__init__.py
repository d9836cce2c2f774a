"""Conversation storage: the Store protocol (`base`), history in memory, in SQLite, and the choice between them."""

from __future__ import annotations

from ..config import Settings
from .base import Store
from .memory import MemoryStore
from .sqlite import SQLiteStore

__all__ = ["open_store"]


def open_store(settings: Settings) -> Store:
    """The store the settings ask for: SQLite at the resolved path, or memory when disabled."""
    path = settings.resolved_sqlite_path()
    return SQLiteStore(path) if path else MemoryStore()
