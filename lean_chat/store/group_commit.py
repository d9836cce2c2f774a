"""SQLite writes committed in groups: the writes that queued up while the worker was busy share one transaction.

Most of a small write's cost is its COMMIT (the WAL frames of every page it touched). When streams start or end
faster than the worker commits, the writes that arrived meanwhile run together: one BEGIN IMMEDIATE, the
writes, one COMMIT. A write that raises before changing a row (the stores' refusals) gets its own exception
and the others go on. Each caller is answered only after that COMMIT, so every write is as durable as when it
ran alone (WAL, synchronous=NORMAL). A lone write runs as before, in its own transaction. If the group fails
(BEGIN, the COMMIT, or a write that raised after changing rows), it is rolled back whole and each write runs
again in a transaction of its own, so each caller sees what it would have seen alone.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from .worker import Job, Operation, Worker, outlive

__all__ = ["GroupCommit"]

_T = TypeVar("_T")


class GroupCommit:
    """Queues writes on the event loop; one worker operation commits all those queued before it started."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self._waiting: list[Job] = []
        self._commit: Operation | None = None  # the queued commit that has not yet taken the waiting writes
        # The event loop queues writes and the worker thread takes them: each side changes the list and the commit
        # together, under this lock. Without it, a commit that ran before `write` had noted it stayed noted for
        # good, and every later write returned None without running (seen on one busy core).
        self._lock = threading.Lock()

    async def write(self, db: sqlite3.Connection, work: Callable[..., _T], *args: Any) -> _T:
        """`work(db, *args)` in a write transaction; it runs to its end even when the caller is cancelled
        (a client gone mid-save), which then waits for it."""
        write = Job(work, args)
        with self._lock:
            self._waiting.append(write)
            commit = self._commit
            if commit is None:
                commit = self._commit = self.worker.submit(self._run, db)
        await outlive(commit)
        commit.outcome()  # the commit itself failed (not one write): every write of it fails
        return write.outcome()  # type: ignore[no-any-return]

    def _run(self, db: sqlite3.Connection) -> None:
        """On the worker thread: take the waiting writes and commit them."""
        # Together: a write queued from now on finds no commit pending and queues the next one.
        with self._lock:
            self._commit = None
            writes, self._waiting = self._waiting, []
        if len(writes) == 1:
            _alone(db, writes[0])
            return
        try:
            _together(db, writes)
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            for write in writes:
                write.result = write.error = None
                _alone(db, write)


def _alone(db: sqlite3.Connection, write: Job) -> None:
    """One write in a transaction of its own; rolled back on any error (its exception kept for the caller)."""
    try:
        db.execute("BEGIN IMMEDIATE")
        write.result = write.work(db, *write.args)
        db.execute("COMMIT")
    except BaseException as exc:
        write.result, write.error = None, exc
        if db.in_transaction:
            db.execute("ROLLBACK")


def _together(db: sqlite3.Connection, writes: list[Job]) -> None:
    """Several writes in one transaction (raises when the group fails).

    A write that raises before changing anything (the stores' refusals: a conversation that is another user's, or
    gone) just gets its exception; one that changed rows before raising fails the group, which is then redone
    write by write.
    """
    db.execute("BEGIN IMMEDIATE")
    for write in writes:
        changes = db.total_changes
        try:
            write.result = write.work(db, *write.args)
        except Exception as exc:
            if db.total_changes != changes:
                raise
            write.error = exc
        if not db.in_transaction:  # the write ended the transaction: what follows must not run outside one
            raise sqlite3.OperationalError("a write of the group ended its transaction")
    db.execute("COMMIT")
