"""Conversation storage: the Store protocol, and the choice of store (memory, SQLite, PostgreSQL) by settings."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from .base import Store

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["open_store"]

_POSTGRES_SCHEMES = ("postgresql", "postgres")


def open_store(settings: Settings) -> Store:
    """The store the settings ask for: `database_url` by its scheme, else SQLite at the path, or memory."""
    url = (settings.database_url or "").strip()
    if url:
        scheme = urlsplit(url).scheme.lower()
        if scheme in _POSTGRES_SCHEMES:
            return _postgres(url, settings)
        if scheme == "sqlite":
            # As SQLAlchemy writes them: sqlite:///relative/file, sqlite:////absolute/file.
            rest = unquote(url.split("://", 1)[1]) if "://" in url else ""
            return _sqlite(rest[1:] if rest.startswith("/") else rest)
        if scheme == "memory":
            return _memory()
        raise ValueError(f"database_url: unknown scheme {scheme!r} (postgresql://, sqlite:///PATH or memory://)")
    path = settings.resolved_sqlite_path()
    return _sqlite(path) if path else _memory()


def _memory() -> Store:
    """History in this process only."""
    from .memory import MemoryStore

    return MemoryStore()


def _sqlite(path: str) -> Store:
    """History in one SQLite file."""
    from .sqlite import SQLiteStore

    return SQLiteStore(path)


def _postgres(url: str, settings: Settings) -> Store:
    """History in PostgreSQL (the `postgres` extra)."""
    try:
        from .postgres import PostgresStore
    except ImportError as exc:
        raise ImportError(
            "database_url names PostgreSQL, which needs asyncpg: pip install 'lean-chat[postgres]'"
        ) from exc
    return PostgresStore(
        url,
        min_size=settings.database_pool_min_size,
        max_size=settings.database_pool_max_size,
        statement_cache_size=settings.database_statement_cache_size,
        timeout=settings.database_timeout_seconds,
        synchronous_commit=settings.database_synchronous_commit,
    )
