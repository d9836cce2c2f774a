"""A PostgreSQL database of its own for a test run, on the server at 127.0.0.1:5432; a clear failure without it."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import pytest

from tests.support.services import needs

__all__ = ["ADMIN_URL", "database_url", "run_sql", "temporary_database"]

# Trust auth on loopback, as the development and CI machines run it.
ADMIN_URL = os.environ.get("LEAN_CHAT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def database_url(name: str) -> str:
    """The URL of database `name` on the test server."""
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def run_sql(url: str, *statements: str) -> None:
    """Run statements on their own connection (from sync code)."""

    async def run() -> None:
        connection = await asyncpg.connect(url, timeout=5)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


@contextmanager
def temporary_database(prefix: str = "lc_test") -> Iterator[str]:
    """A new database, dropped afterwards (its connections cut first); yields its URL. Fails when unreachable."""
    needs("postgres")
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        run_sql(ADMIN_URL, f'CREATE DATABASE "{name}"')
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL at {ADMIN_URL} is unreachable or refused CREATE DATABASE: {exc!r}", pytrace=False)
    try:
        yield database_url(name)
    finally:
        run_sql(ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
