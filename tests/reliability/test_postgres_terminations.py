"""PostgreSQL backends terminated under concurrent turns: only `503` before a stream, `store_unavailable` in one.

A `lean-chat serve` on PostgreSQL takes 80 turns at once while another connection keeps terminating the app's
backends (`pg_terminate_backend`), as a failover, a pooler restart or an administrator does. What must hold:
no `500`, no `internal_error`; every stream ends with exactly one `done` or `error` (`store_unavailable`
allowed); every reply whose `done` arrived is stored, once. The short run is part of the normal suite; the long
one runs with `-m slow`.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.frames import check_grammar, parse_frames
from tests.support.postgres import ADMIN_URL, temporary_database
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.postgres

_TERMINATE = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"
)


@dataclass
class Outcome:
    """What the clients saw."""

    statuses: list[int] = field(default_factory=list)
    endings: list[str] = field(default_factory=list)  # "done", or the error frame's code
    replies: dict[str, str] = field(default_factory=dict)  # conversation id -> content of its `done`
    terminated: int = 0


async def one_turn(http: httpx.AsyncClient, cid: str, rng: random.Random, outcome: Outcome) -> None:
    """One turn into a conversation of its own, its answer noted."""
    await asyncio.sleep(rng.random() * 0.5)
    mock = {"tokenDelayMs": rng.choice([1, 3, 5]), "targetChars": rng.choice([250, 500, 800])}
    body: dict[str, Any] = {
        "userId": f"user{rng.randrange(8)}",
        "messages": [{"role": "user", "content": f"question {cid}"}],
        "params": {"conversationId": cid, "mock": mock},
    }
    response = await http.post("/chat/stream", json=body)
    outcome.statuses.append(response.status_code)
    if response.status_code != 200:
        if response.status_code == 503:  # refused before the stream: the store's 503, nothing else
            assert "unavailable" in response.json()["detail"] and response.headers["retry-after"]
        return
    last = check_grammar(parse_frames(response.content))  # exactly one done or error, last
    if last.event == "done":
        outcome.endings.append("done")
        outcome.replies[cid] = last.data["message"]["content"]
    else:
        outcome.endings.append(last.data["error"]["code"])


async def terminator(database: str, stop: asyncio.Event, outcome: Outcome) -> None:
    """Terminate every backend of the database but our own, again and again until told to stop."""
    connection = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        while not stop.is_set():
            outcome.terminated += await connection.fetchval(_TERMINATE, database)
            await asyncio.sleep(0.015)
    finally:
        await connection.close()


async def under_terminations(url: str, database: str, turns: int, seed: int) -> Outcome:
    """`turns` concurrent turns against the server at `url` while the database's backends are terminated."""
    rng = random.Random(seed)
    outcome = Outcome()
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=turns, max_keepalive_connections=turns)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        killing = asyncio.create_task(terminator(database, stop, outcome))
        try:
            await asyncio.gather(*(one_turn(http, f"t{seed}-{n}", rng, outcome) for n in range(turns)))
        finally:
            stop.set()
            await killing
    return outcome


async def stored_replies(url: str) -> dict[str, list[tuple[str, Any]]]:
    """Each conversation's assistant messages as stored: (content, meta)."""
    connection = await asyncpg.connect(url, timeout=5)
    try:
        rows = await connection.fetch(
            "SELECT conversation_id, content, meta FROM lc_messages WHERE role = 'assistant' ORDER BY pos"
        )
    finally:
        await connection.close()
    found: dict[str, list[tuple[str, Any]]] = {}
    for row in rows:
        found.setdefault(row["conversation_id"], []).append((row["content"], row["meta"]))
    return found


def summary(outcome: Outcome) -> str:
    """The statuses and endings counted."""
    statuses = {s: outcome.statuses.count(s) for s in sorted(set(outcome.statuses))}
    endings = {e: outcome.endings.count(e) for e in sorted(set(outcome.endings))}
    return f"statuses {statuses}, endings {endings}, {outcome.terminated} backends terminated"


def run(tmp_path: Path, rounds: int, turns: int) -> tuple[Outcome, str]:
    """`rounds` bursts of `turns` concurrent turns, backends terminated throughout; every promise checked."""
    total = Outcome()
    with temporary_database() as url:
        database = url.rsplit("/", 1)[1]
        env = {"LEAN_CHAT_DATABASE_URL": url, "LEAN_CHAT_HEARTBEAT_SECONDS": "0"}
        server = ServerProcess(str(tmp_path / "unused.sqlite3"), tmp_path / "server.log", env)
        try:
            server.wait_ready()
            for round_ in range(rounds):
                outcome = asyncio.run(under_terminations(server.url, database, turns, seed=round_))
                total.statuses += outcome.statuses
                total.endings += outcome.endings
                total.replies |= outcome.replies
                total.terminated += outcome.terminated
            assert server.process.poll() is None, "the server died"
            stored = asyncio.run(stored_replies(url))
        finally:
            server.stop()
        log = server.output()
    assert len(total.statuses) == rounds * turns
    assert set(total.statuses) <= {200, 503}, summary(total)
    assert set(total.endings) <= {"done", "store_unavailable"}, summary(total)
    # Every reply whose `done` arrived is stored, whole and once.
    for cid, content in total.replies.items():
        assert stored.get(cid) == [(content, None)], cid
    assert total.terminated >= 20 * rounds, "too few backends were terminated for the test to mean anything"
    return total, log


@pytest.mark.load
def test_terminated_backends_give_503_or_store_unavailable_never_500(tmp_path: Path) -> None:
    total, log = run(tmp_path, rounds=1, turns=80)
    assert "Traceback" not in log, log[-3000:]
    # Faults are allowed, but the run means something only when plenty of turns also went through them.
    assert total.endings.count("done") >= 20, summary(total)


@pytest.mark.slow
def test_terminated_backends_long_run(tmp_path: Path) -> None:
    total, log = run(tmp_path, rounds=10, turns=80)
    assert "Traceback" not in log, log[-3000:]
    print(
        f"\nterminations: {total.terminated} backends terminated under {len(total.statuses)} turns; "
        f"{total.statuses.count(503)} answered 503, {total.endings.count('done')} done, "
        f"{total.endings.count('store_unavailable')} ended store_unavailable"
    )
