"""Every store under one contract: memory, SQLite and PostgreSQL (a database of its own per test session)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from lean_chat.config import Settings
from lean_chat.store import open_store
from lean_chat.store.base import Store
from tests.support.postgres import run_sql, temporary_database
from tests.support.services import needs
from tests.support.stores import STORES


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database for this test session, dropped at its end."""
    with temporary_database() as url:
        yield url


@pytest.fixture(params=STORES)
def kind(request: Any) -> str:
    """The kind of store (a test may parametrise `kind` itself, e.g. with PERSISTENT)."""
    return str(request.param)


@pytest.fixture
def database_url(request: Any, kind: str, tmp_path: Any) -> str:
    """The `database_url` of a fresh, empty store of this kind."""
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/chat.sqlite3"
    needs("postgres")
    url: str = request.getfixturevalue("postgres_url")
    try:
        run_sql(url, "TRUNCATE lc_conversations CASCADE")
    except Exception:  # noqa: BLE001 - no schema yet: the first store to open creates it
        pass
    return url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """The store, open; closed afterwards."""
    opened = open_store(Settings(database_url=database_url))
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
