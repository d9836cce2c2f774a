"""The SQLite driver comparison (`benchmarks.sqlite_driver`): its aiosqlite variant does what the store does, so the
figures compare like with like; a tiny run prints figures for both variants on both shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.sqlite_driver import AiosqliteStore
from lean_chat.store.base import ConversationForbidden, ConversationGone, StoredMessage, TurnStart
from lean_chat.store.sqlite import SQLiteStore
from tests.support.modules import run_module
from tests.support.sqlite_rows import stored_rows


async def _script(store: SQLiteStore | AiosqliteStore) -> list[object]:
    """A conversation past the window cache's threshold, a capped context, a merge of a resent history, refusals."""
    seen: list[object] = []

    def kept(start: TurnStart) -> tuple[list[tuple[str, str]], str]:
        return [(m.role, m.content) for m in start.context], start.title

    history = [StoredMessage("system", "Be brief.")]
    life = 0
    for turn in range(40):
        asked = StoredMessage("user", f"question {turn}")
        start = await store.start_turn("u", "c", [history[0], asked] if turn == 0 else [asked], 300)
        seen.append(kept(start))
        life = start.life
        reply = StoredMessage("assistant", f"answer {turn} " * 3, {"partial": True} if turn % 7 == 0 else None)
        await store.save_reply("u", "c", life, reply)
    resent = [StoredMessage("user", "first"), StoredMessage("assistant", "one"), StoredMessage("user", "second")]
    seen.append(kept(await store.start_turn("u", "merge", resent[:1], 0)))
    await store.save_reply("u", "merge", (await store.start_turn("u", "merge", [], 0)).life, resent[1])
    seen.append(kept(await store.start_turn("u", "merge", resent, 0)))
    for refused in (
        store.start_turn("v", "c", [StoredMessage("user", "mine?")], 0),
        store.start_turn("v", "default:u", [StoredMessage("user", "mine?")], 0),
        store.save_reply("u", "c", life + 1, StoredMessage("assistant", "late")),
        store.save_reply("u", "nowhere", life, StoredMessage("assistant", "late")),
    ):
        with pytest.raises((ConversationForbidden, ConversationGone)) as caught:
            await refused
        seen.append(type(caught.value).__name__)
    return seen


async def _reopened(store: SQLiteStore | AiosqliteStore) -> list[tuple[str, str]]:
    """A turn of the long conversation on a fresh process's store: its context read from the file, capped."""
    start = await store.start_turn("u", "c", [StoredMessage("user", "again")], 300)
    return [(m.role, m.content) for m in start.context]


@pytest.mark.anyio
async def test_the_aiosqlite_variant_answers_and_stores_what_the_store_does(tmp_path: Path) -> None:
    async def worker_store() -> SQLiteStore:
        store = SQLiteStore(str(tmp_path / "worker.sqlite3"))
        await store.open()
        return store

    async def aio_store() -> AiosqliteStore:
        return await AiosqliteStore.open(str(tmp_path / "aio.sqlite3"))

    outcomes = []
    for opener in (worker_store, aio_store):
        seen: list[object] = []
        for run in (_script, _reopened):
            store = await opener()
            try:
                seen.append(await run(store))
            finally:
                await store.close()
        outcomes.append(seen)
    assert outcomes[1] == outcomes[0]
    for conversation in ("c", "merge"):
        assert stored_rows(str(tmp_path / "aio.sqlite3"), conversation) == stored_rows(
            str(tmp_path / "worker.sqlite3"), conversation
        )


def test_a_tiny_run_prints_figures_for_both_variants_on_both_shapes() -> None:
    result = run_module("benchmarks.sqlite_driver", "--turns", "20", "--streams", "10", "--rounds", "2")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["rounds"] == 2
    for variant in ("worker", "aiosqlite"):
        figures = report["figures"][variant]
        assert set(figures) == {"longConversation", "manyStreams10"}
        assert set(figures["longConversation"]) == {"firstMs", "lastMs", "medianMs"}
        assert set(figures["manyStreams10"]) == {"turnsPerSecond", "loopCpuUs", "cpuUs"}
        for shape in figures.values():
            for spread in shape.values():
                assert 0 < spread["min"] <= spread["median"] <= spread["max"], spread
