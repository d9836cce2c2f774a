"""SQLite writes committed in groups: one COMMIT for the writes queued together, each write's failure its own."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from lean_chat.store.group_commit import GroupCommit
from lean_chat.store.worker import Worker

pytestmark = pytest.mark.anyio


class Forbidden(Exception):
    """A write that refuses (before writing, as the stores' refusals do; or after, whose row must not stay)."""


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Worker, GroupCommit, sqlite3.Connection, list[str], str]]:
    """A worker, its group commit, a WAL connection whose statements are recorded, and the file's path."""
    path = str(tmp_path / "group.sqlite3")
    worker = Worker("test-sqlite")
    worker.start()
    db = await worker.run(sqlite3.connect, path, 5.0, 0, None, False)
    await worker.run(db.execute, "PRAGMA journal_mode = WAL")
    await worker.run(db.execute, "CREATE TABLE t (k TEXT PRIMARY KEY)")
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    try:
        yield worker, GroupCommit(worker), db, statements, path
    finally:
        await worker.run(db.close)
        worker.stop()


def insert(db: sqlite3.Connection, key: str) -> str:
    """Write one row."""
    db.execute("INSERT INTO t (k) VALUES (?)", (key,))
    return key


def refuse(db: sqlite3.Connection, key: str) -> str:
    """Read, then fail before writing anything."""
    db.execute("SELECT k FROM t WHERE k = ?", (key,)).fetchone()
    raise Forbidden(key)


def insert_then_refuse(db: sqlite3.Connection, key: str) -> str:
    """Write one row, then fail."""
    db.execute("INSERT INTO t (k) VALUES (?)", (key,))
    raise Forbidden(key)


def end_the_transaction(db: sqlite3.Connection, key: str) -> str:
    """A write that breaks the group it runs in (it ends the transaction itself)."""
    db.execute("ROLLBACK")
    return key


def keys(path: str) -> list[str]:
    """The committed rows, read by a connection of its own."""
    with sqlite3.connect(path) as other:
        return sorted(row[0] for row in other.execute("SELECT k FROM t"))


async def hold_worker(worker: Worker) -> threading.Event:
    """Keep the worker busy until the returned event is set (writes queue up meanwhile)."""
    started, release = threading.Event(), threading.Event()

    def busy() -> None:
        started.set()
        release.wait()

    worker.submit(busy)
    await asyncio.get_running_loop().run_in_executor(None, started.wait)
    return release


async def queued_together(setup: Any, *writes: tuple[Any, str]) -> list[asyncio.Future[Any]]:
    """The writes, queued while the worker is busy (so they run as one group), then the worker let go."""
    worker, group, db, _, _ = setup
    release = await hold_worker(worker)
    futures = [asyncio.ensure_future(group.write(db, work, key)) for work, key in writes]
    await asyncio.sleep(0)
    release.set()
    return futures


async def test_writes_queued_together_share_one_commit_and_a_refusal_is_its_own(setup: Any) -> None:
    worker, group, db, statements, path = setup
    release = await hold_worker(worker)
    writes = [asyncio.ensure_future(group.write(db, insert, f"k{i}")) for i in range(5)]
    refused = asyncio.ensure_future(group.write(db, refuse, "refused"))
    last = asyncio.ensure_future(group.write(db, insert, "last"))
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*writes, last) == ["k0", "k1", "k2", "k3", "k4", "last"]
    with pytest.raises(Forbidden):
        await refused
    assert statements.count("COMMIT") == 1
    assert keys(path) == ["k0", "k1", "k2", "k3", "k4", "last"]


async def test_a_write_that_fails_after_writing_is_rolled_back_alone(setup: Any) -> None:
    _, _, db, _, path = setup
    before, refused, after = await queued_together(
        setup, (insert, "before"), (insert_then_refuse, "refused"), (insert, "after")
    )
    assert await before == "before"
    assert await after == "after"
    with pytest.raises(Forbidden):
        await refused
    assert keys(path) == ["after", "before"]
    assert not db.in_transaction


async def test_a_lone_write_commits_alone_and_is_committed_when_it_returns(setup: Any) -> None:
    _, group, db, statements, path = setup
    assert await group.write(db, insert, "alone") == "alone"
    assert keys(path) == ["alone"]
    assert statements.count("BEGIN IMMEDIATE") == statements.count("COMMIT") == 1
    with pytest.raises(Forbidden):
        await group.write(db, insert_then_refuse, "refused")
    assert keys(path) == ["alone"]


async def test_a_group_that_fails_runs_each_write_alone(setup: Any) -> None:
    _, _, db, _, path = setup
    first, breaker, after = await queued_together(
        setup, (insert, "first"), (end_the_transaction, "breaker"), (insert, "after")
    )
    assert await first == "first"
    assert await after == "after"
    with pytest.raises(sqlite3.OperationalError):
        await breaker  # alone, its COMMIT finds no transaction
    assert keys(path) == ["after", "first"]
    assert not db.in_transaction


async def test_a_cancelled_writer_waits_for_its_commit(setup: Any) -> None:
    worker, group, db, _, path = setup
    release = await hold_worker(worker)
    writer = asyncio.ensure_future(group.write(db, insert, "kept"))
    await asyncio.sleep(0)
    writer.cancel()
    await asyncio.sleep(0)
    assert not writer.done()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await writer
    assert keys(path) == ["kept"]


class PreemptedWorker(Worker):
    """A worker whose thread may run an operation before `submit` has returned it: the event loop's thread
    preempted right after queuing, as the OS does when the loop and the worker share one busy core."""

    def submit(self, work: Any, *args: Any) -> Any:
        ran = threading.Event()

        def run(*given: Any) -> Any:
            try:
                return work(*given)
            finally:
                ran.set()

        operation = super().submit(run, *args)
        ran.wait(0.5)  # the thread runs it now, unless it must wait for the caller (then this times out)
        return operation


async def test_a_commit_that_runs_before_submit_returns_leaves_later_writes_working(tmp_path: Path) -> None:
    # The commit ran before `write` noted it as pending; noted for good, every later write found it "pending",
    # waited for it (done long ago) and returned None without running: start_turn answered None under load.
    path = str(tmp_path / "preempted.sqlite3")
    worker = PreemptedWorker("test-sqlite")
    worker.start()
    db = await worker.run(sqlite3.connect, path, 5.0, 0, None, False)
    await worker.run(db.execute, "CREATE TABLE t (k TEXT PRIMARY KEY)")
    group = GroupCommit(worker)
    try:
        assert [await group.write(db, insert, key) for key in ("a", "b", "c")] == ["a", "b", "c"]
    finally:
        await worker.run(db.close)
        worker.stop()
    assert keys(path) == ["a", "b", "c"]
