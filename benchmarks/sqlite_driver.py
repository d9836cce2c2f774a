"""`python -m benchmarks.sqlite_driver`: the SQLite store's two turn operations on its worker thread against the
same operations through aiosqlite's public API, side by side in one run.

The worker store is `lean_chat.store.sqlite.SQLiteStore` itself: each operation runs whole on its thread in one
hop, and writes queued together share one COMMIT. The aiosqlite variant runs the same statements on the same
schema, one awaited call per statement (BEGIN IMMEDIATE and COMMIT included: the public API runs one statement or
one fetch per hop, and can run a whole function on its thread only through the private `_execute`); it keeps the
same window cache and commits the writes queued while one transaction ran in one transaction too, so the two
differ in how they reach the thread, not in batching.

Two shapes, each variant on a fresh file, alternately, several rounds:

- long conversation: `--turns` turns into one conversation, each `start_turn` (one new user message) then
  `save_reply`; milliseconds per turn over the first and the last 5 %.
- many streams: `--streams` turns at once, each in a conversation of its own, `start_turn`, a yield, then
  `save_reply`; turns per second, and microseconds of CPU per turn on the event loop's thread and in the process.

The last line printed is the figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import aiosqlite

from lean_chat.store.base import (
    ConversationForbidden,
    ConversationGone,
    StoredMessage,
    TurnStart,
    is_reserved_for_other,
)
from lean_chat.store.history import NEW_CHAT, ContextWindow, same, title_for
from lean_chat.store.sqlite import (
    _CACHE_FROM,
    INSERT_CONVERSATION,
    INSERT_MESSAGE,
    SELECT_ANY_USER_MESSAGE,
    SELECT_CONVERSATION,
    SELECT_FOR_REPLY,
    SELECT_ROLES_AND_CONTENTS,
    SELECT_ROWS_FROM,
    SELECT_ROWS_NEWEST_FIRST,
    SELECT_SYSTEM_ROWS,
    UPDATE_AFTER_REPLY,
    UPDATE_AFTER_TURN,
    SQLiteStore,
    _connect,
    _encode_meta,
    _message,
    _new_life,
)
from lean_chat.store.window_cache import WindowCache

__all__ = ["main"]

_T = TypeVar("_T")

CAP = 400_000
REPLY = "The mock's reply, about as long as a short answer. " * 12
WORKER, AIOSQLITE = "worker", "aiosqlite"


class TurnStore(Protocol):
    """The two operations of a turn."""

    async def start_turn(
        self, user_id: str, conversation_id: str, incoming: Sequence[StoredMessage], max_context_chars: int
    ) -> TurnStart: ...

    async def save_reply(self, user_id: str, conversation_id: str, life: int, reply: StoredMessage) -> None: ...


class AiosqliteStore:
    """`start_turn` and `save_reply` of the SQLite store, statement by statement through aiosqlite's public API."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db
        self._cache = WindowCache(_CACHE_FROM)
        self._waiting: list[tuple[Callable[[], Awaitable[Any]], asyncio.Future[Any]]] = []
        self._committer: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: str) -> AiosqliteStore:
        """The file's schema made by the store's own `_connect`, then opened through aiosqlite."""
        _connect(path).close()
        db = await aiosqlite.connect(path, isolation_level=None)
        await db.execute("PRAGMA busy_timeout = 5000")
        await db.execute("PRAGMA synchronous = NORMAL")
        return cls(db)

    async def close(self) -> None:
        """Close the connection (its thread ends)."""
        await self.db.close()

    async def _write(self, work: Callable[[], Awaitable[_T]]) -> _T:
        """`work()` in a write transaction, with the writes queued beside it (one BEGIN IMMEDIATE, one COMMIT)."""
        future: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._waiting.append((work, future))
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit())
        return await future

    async def _commit(self) -> None:
        """Commit the waiting writes, group by group, until none waits."""
        try:
            while self._waiting:
                writes, self._waiting = self._waiting, []
                try:
                    await self._together(writes)
                except BaseException as exc:  # the group failed: each of its callers sees why
                    if self.db.in_transaction:
                        await self.db.rollback()
                    for _, future in writes:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
        finally:
            self._committer = None

    async def _together(self, writes: list[tuple[Callable[[], Awaitable[Any]], asyncio.Future[Any]]]) -> None:
        """One transaction for the writes; each caller answered after its COMMIT."""
        await self.db.execute("BEGIN IMMEDIATE")
        results: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        for work, future in writes:
            try:
                results.append((future, await work(), None))
            except (ConversationForbidden, ConversationGone) as exc:  # refused before changing a row
                results.append((future, None, exc))
        await self.db.execute("COMMIT")
        for future, result, error in results:
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

    async def _one(self, sql: str, args: Sequence[Any]) -> Any:
        """The first row of a query (one hop)."""
        rows = list(await self.db.execute_fetchall(sql, args))
        return rows[0] if rows else None

    async def start_turn(
        self, user_id: str, conversation_id: str, incoming: Sequence[StoredMessage], max_context_chars: int
    ) -> TurnStart:
        """As `SQLiteStore.start_turn`."""
        now, new_messages = time.time(), list(incoming)
        return await self._write(
            lambda: self._start_turn(user_id, conversation_id, new_messages, max_context_chars, now)
        )

    async def _start_turn(
        self, user_id: str, conversation_id: str, incoming: list[StoredMessage], cap: int, now: float
    ) -> TurnStart:
        """`SQLiteStore._start_turn`, each statement awaited."""
        db = self.db
        row = await self._one(
            SELECT_CONVERSATION,
            (conversation_id,),
        )
        if is_reserved_for_other(conversation_id, user_id) or (row is not None and row[0] != user_id):
            raise ConversationForbidden(conversation_id)
        if row is None:
            life, title, explicit, count = _new_life(), NEW_CHAT, False, 0
        else:
            life, title, explicit, count = int(row[1]), str(row[2]), bool(row[3]), int(row[4])
        prefix = 0 < count <= len(incoming) and await self._stored_is_prefix(conversation_id, incoming)
        if prefix:
            new = incoming[count:]
            window = ContextWindow(cap, life)
        elif count:
            new = incoming
            window = await self._window(conversation_id, life, count, cap)
        else:
            new = incoming
            window = ContextWindow(cap, life)
        window.extend(incoming)
        window.count = count + len(new)
        if new:
            known = incoming[:count] if prefix or not count else None
            if not explicit and title == NEW_CHAT and not await self._has_user(conversation_id, known):
                title = title_for(new)
            await self._insert(conversation_id, count, new)
        if row is None:
            await db.execute(
                INSERT_CONVERSATION,
                (conversation_id, user_id, title, now, now, life, len(new)),
            )
        elif new:
            await db.execute(
                UPDATE_AFTER_TURN,
                (count + len(new), now, title, conversation_id),
            )
        self._cache.keep(conversation_id, window)
        return TurnStart(window.messages(), title, life)

    async def _window(self, conversation_id: str, life: int, count: int, cap: int) -> ContextWindow:
        """`SQLiteStore._window`: the cached window plus the rows added since, or the tail read from the file."""
        cached = self._cache.take(conversation_id)
        if cached is not None and cached.life == life and cached.cap == cap and cached.count <= count:
            if cached.count < count:
                rows = await self.db.execute_fetchall(
                    SELECT_ROWS_FROM,
                    (conversation_id, cached.count, count),
                )
                cached.extend(_message(*row) for row in rows)
                cached.count = count
            return cached
        window = ContextWindow(cap, life, count)
        if count:
            window.extend(await self._tail(conversation_id, cap))
        return window

    async def _stored_is_prefix(self, conversation_id: str, incoming: list[StoredMessage]) -> bool:
        """`_stored_is_prefix`: rows fetched a chunk per hop, up to the first difference."""
        cursor = await self.db.execute(SELECT_ROLES_AND_CONTENTS, (conversation_id,))
        try:
            position = 0
            async for role, content in cursor:
                if position >= len(incoming) or not same(StoredMessage(role, content), incoming[position]):
                    return False
                position += 1
            return True
        finally:
            await cursor.close()

    async def _tail(self, conversation_id: str, cap: int) -> list[StoredMessage]:
        """`_tail`: the system messages, then the newest rows that fit, fetched a chunk per hop."""
        systems = [
            (int(idx), _message(role, content, meta))
            for idx, role, content, meta in await self.db.execute_fetchall(
                SELECT_SYSTEM_ROWS,
                (conversation_id,),
            )
        ]
        budget = cap - sum(len(m.content) for _, m in systems) if cap > 0 else 0
        tail: list[StoredMessage] = []
        start: int | None = None
        cursor = await self.db.execute(
            SELECT_ROWS_NEWEST_FIRST,
            (conversation_id,),
        )
        try:
            async for idx, role, content, meta in cursor:
                if role != "system" and cap > 0:
                    if len(content) > budget and tail:
                        break
                    budget -= len(content)
                tail.append(_message(role, content, meta))
                start = int(idx)
        finally:
            await cursor.close()
        tail.reverse()
        return [m for idx, m in systems if start is None or idx < start] + tail

    async def _has_user(self, conversation_id: str, known: list[StoredMessage] | None) -> bool:
        """`_has_user`."""
        if known is not None:
            return any(m.role == "user" for m in known)
        row = await self._one(SELECT_ANY_USER_MESSAGE, (conversation_id,))
        return row is not None

    async def _insert(self, conversation_id: str, start: int, messages: Sequence[StoredMessage]) -> None:
        """`_insert` (one hop)."""
        await self.db.executemany(
            INSERT_MESSAGE,
            [
                (conversation_id, start + i, m.role, m.content, _encode_meta(m.meta) if m.meta else None)
                for i, m in enumerate(messages)
            ],
        )

    async def save_reply(self, user_id: str, conversation_id: str, life: int, reply: StoredMessage) -> None:
        """As `SQLiteStore.save_reply`."""
        now = time.time()
        await self._write(lambda: self._save_reply(user_id, conversation_id, life, reply, now))

    async def _save_reply(
        self, user_id: str, conversation_id: str, life: int, reply: StoredMessage, now: float
    ) -> None:
        """`_save_reply`, each statement awaited."""
        row = await self._one(SELECT_FOR_REPLY, (conversation_id,))
        if row is None or row[0] != user_id or int(row[1]) != life:
            raise ConversationGone(conversation_id)
        count = int(row[2])
        await self._insert(conversation_id, count, [reply])
        await self.db.execute(
            UPDATE_AFTER_REPLY,
            (count + 1, now, conversation_id),
        )


class Opened:
    """A store of either variant on a fresh file, and how to close it."""

    def __init__(self, store: TurnStore, close: Callable[[], Awaitable[None]]) -> None:
        self.store = store
        self.close = close


async def _open(variant: str, path: str) -> Opened:
    """The variant's store on the file."""
    if variant == WORKER:
        store = SQLiteStore(path)
        await store.open()
        return Opened(store, store.close)
    aio = await AiosqliteStore.open(path)
    return Opened(aio, aio.close)


async def _turn(store: TurnStore, user: str, conversation: str, prompt: str) -> None:
    """One turn: start it, let the loop run, save the reply."""
    start = await store.start_turn(user, conversation, [StoredMessage("user", prompt)], CAP)
    await asyncio.sleep(0)
    await store.save_reply(user, conversation, start.life, StoredMessage("assistant", REPLY))


async def long_conversation(store: TurnStore, turns: int) -> dict[str, float]:
    """Milliseconds per turn of one conversation: median of the first and of the last 5 %, and overall."""
    times: list[float] = []
    for turn in range(turns):
        began = time.perf_counter()
        await _turn(store, "long-user", "long-conv", f"Turn {turn}: tell me more.")
        times.append((time.perf_counter() - began) * 1000.0)
    window = max(3, turns // 20)
    return {
        "firstMs": statistics.median(times[:window]),
        "lastMs": statistics.median(times[-window:]),
        "medianMs": statistics.median(times),
    }


async def many_streams(store: TurnStore, streams: int) -> dict[str, float]:
    """`streams` turns at once, each its own conversation: turns per second and CPU per turn (loop, process)."""
    wall, loop_cpu, cpu = time.perf_counter(), time.thread_time(), time.process_time()
    await asyncio.gather(
        *(_turn(store, f"user{i}", f"conv{i}", "Hello there, tell me a story.") for i in range(streams))
    )
    wall, loop_cpu, cpu = time.perf_counter() - wall, time.thread_time() - loop_cpu, time.process_time() - cpu
    return {
        "turnsPerSecond": streams / wall,
        "loopCpuUs": loop_cpu / streams * 1e6,
        "cpuUs": cpu / streams * 1e6,
    }


def _spread(values: list[float]) -> dict[str, float]:
    """Median, least and most of a figure over the rounds."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


async def run(turns: int, streams: list[int], rounds: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Both variants on both shapes, alternately (the order swapped every round), each on a fresh file."""
    raw: dict[str, dict[str, list[dict[str, float]]]] = {v: {} for v in (WORKER, AIOSQLITE)}
    shapes: list[tuple[str, Callable[[TurnStore], Awaitable[dict[str, float]]]]] = [
        ("longConversation", lambda s: long_conversation(s, turns))
    ]
    shapes += [(f"manyStreams{n}", lambda s, n=n: many_streams(s, n)) for n in streams]  # type: ignore[misc]
    with tempfile.TemporaryDirectory(prefix="lean-chat-sqlite-driver-") as folder:
        for round_ in range(rounds):
            order = (WORKER, AIOSQLITE) if round_ % 2 == 0 else (AIOSQLITE, WORKER)
            for shape, measure in shapes:
                for variant in order:
                    path = os.path.join(folder, f"{variant}-{shape}-{round_}.sqlite3")
                    opened = await _open(variant, path)
                    try:
                        figures = await measure(opened.store)
                    finally:
                        await opened.close()
                    raw[variant].setdefault(shape, []).append(figures)
                    shown = ", ".join(f"{k} {v:.3f}" for k, v in figures.items())
                    log(f"round {round_ + 1}/{rounds} {shape} {variant}: {shown}")
    summary: dict[str, Any] = {}
    for variant, by_shape in raw.items():
        summary[variant] = {
            shape: {key: _spread([f[key] for f in runs]) for key in runs[0]} for shape, runs in by_shape.items()
        }
    return summary


def main(argv: list[str] | None = None) -> None:
    """Run, print progress on stderr and a table and the JSON figures on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--turns", type=int, default=1000, help="turns of the long conversation")
    parser.add_argument("--streams", type=int, nargs="+", default=[200, 1000], help="turns at once")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each variant (alternating)")
    args = parser.parse_args(argv)
    began = time.perf_counter()

    def log(line: str) -> None:
        print(f"[{time.perf_counter() - began:6.1f}s] {line}", file=sys.stderr, flush=True)

    summary = asyncio.run(run(args.turns, args.streams, args.rounds, log))
    for shape in summary[WORKER]:
        for key, worker in summary[WORKER][shape].items():
            aio = summary[AIOSQLITE][shape][key]
            print(
                f"{shape:18} {key:14} worker {worker['median']:9.3f} ({worker['min']:.3f}-{worker['max']:.3f})"
                f"   aiosqlite {aio['median']:9.3f} ({aio['min']:.3f}-{aio['max']:.3f})"
                f"   aiosqlite/worker {aio['median'] / worker['median']:.2f}"
            )
    machine = {"cores": os.cpu_count(), "python": platform.python_version(), "aiosqlite": aiosqlite.__version__}
    print(json.dumps({"turns": args.turns, "rounds": args.rounds, "machine": machine, "figures": summary}))


if __name__ == "__main__":
    main()
