"""Two `lean-chat serve` processes on one PostgreSQL: shared history, SIGKILLs, and PostgreSQL going away.

- Several instances: conversations of 3 turns, every turn sent to a random instance (some turns of a
  conversation at once, to both); read back through either instance, history equals what was streamed.
- SIGKILL one instance at random moments while both write: every user message of a started turn and every
  reply whose `done` arrived is stored (the durability promise of SQLite, restated for PostgreSQL).
- PostgreSQL going away (its connections cut and refused, as when it stops): `/healthz` answers 503 and
  new streams get a quick 503; when it is back, the same process serves again within 5 s.
Short versions run in the normal suite; long ones with `-m slow`.
"""

from __future__ import annotations

import asyncio
import random
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.durability import Tally, TurnRecord, verify
from tests.support.frames import check_grammar, parse_frames
from tests.support.postgres import ADMIN_URL, run_sql, temporary_database
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.postgres

TURNS = 3


def start_server(url: str, tmp_path: Path, name: str) -> ServerProcess:
    """A `lean-chat serve` process with its history in the PostgreSQL database at `url` (not yet ready)."""
    env = {"LEAN_CHAT_DATABASE_URL": url, "LEAN_CHAT_HEARTBEAT_SECONDS": "0", "LEAN_CHAT_DATABASE_TIMEOUT_SECONDS": "2"}
    return ServerProcess(str(tmp_path / f"{name}-unused.sqlite3"), tmp_path / f"{name}.log", env)


@contextmanager
def instances(url: str, tmp_path: Path, count: int = 2) -> Iterator[list[ServerProcess]]:
    """`count` servers started at once on one database (their schema migrations race), all ready."""
    servers: list[ServerProcess] = []
    try:
        servers += [start_server(url, tmp_path, f"i{n}") for n in range(count)]
        for server in servers:
            server.wait_ready()
        yield servers  # the test may replace one (a restart): whatever is in the list at the end is stopped
    finally:
        for server in servers:
            server.stop()


def body(user: str, conversation: str, text: str, rng: random.Random) -> dict[str, Any]:
    """A one-message turn with a small, paced mock reply (so that a kill finds some mid-stream)."""
    mock = {"tokenDelayMs": rng.choice([0, 2, 5]), "targetChars": rng.choice([250, 400, 800])}
    return {
        "userId": user,
        "messages": [{"role": "user", "content": text}],
        "params": {"conversationId": conversation, "mock": mock},
    }


async def stream(http: httpx.AsyncClient, url: str, record: TurnRecord, payload: dict[str, Any]) -> None:
    """Send one turn to the instance at `url`, noting whether it started and what `done` said."""
    received = b""
    try:
        async with http.stream("POST", f"{url}/chat/stream", json=payload) as response:
            if response.status_code != 200:
                return
            record.started = True
            async for chunk in response.aiter_bytes():
                received += chunk
    except httpx.TransportError:
        pass  # the instance was killed under this turn
    frames = parse_frames(received[: received.rfind(b"\n\n") + 2])
    if frames and frames[-1].event == "done":
        record.done = frames[-1].data["message"]["content"]


@dataclass
class Conversation:
    """One conversation of the workload and the turns sent into it."""

    user: str
    cid: str
    together: bool  # turns 2 and 3 sent at the same moment, to different instances
    turns: list[TurnRecord]


async def converse(http: httpx.AsyncClient, urls: list[str], conversation: Conversation, seed: int) -> None:
    """Run the conversation's turns, each at a random instance."""
    rng = random.Random(seed)

    def turn(n: int) -> tuple[TurnRecord, dict[str, Any]]:
        record = TurnRecord(conversation.user, conversation.cid, f"{conversation.cid} turn {n}: {rng.random():.6f}")
        conversation.turns.append(record)
        return record, body(conversation.user, conversation.cid, record.text, rng)

    first, payload = turn(0)
    await stream(http, rng.choice(urls), first, payload)
    if conversation.together:
        (second, p2), (third, p3) = turn(1), turn(2)
        order = rng.sample(urls, len(urls))
        await asyncio.gather(stream(http, order[0], second, p2), stream(http, order[-1], third, p3))
        return
    for n in range(1, TURNS):
        record, payload = turn(n)
        await stream(http, rng.choice(urls), record, payload)


def plan(count: int, tag: str) -> list[Conversation]:
    """`count` conversations; every fifth sends two turns together."""
    return [Conversation(f"{tag}u{n % 17}", f"{tag}c{n}", n % 5 == 0, []) for n in range(count)]


async def workload(urls: list[str], conversations: list[Conversation], seed: int) -> list[Conversation]:
    """Run the conversations at once across the instances."""
    count = len(conversations)
    limits = httpx.Limits(max_connections=count * 2, max_keepalive_connections=count * 2)
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0), limits=limits) as http:
        await asyncio.gather(*(converse(http, urls, c, seed + n) for n, c in enumerate(conversations)))
    return conversations


async def read_back(urls: list[str], conversations: list[Conversation], seed: int) -> dict[str, list[tuple[str, str]]]:
    """Every conversation's messages as a random instance shows them."""
    rng = random.Random(seed)
    shown: dict[str, list[tuple[str, str]]] = {}
    async with httpx.AsyncClient(timeout=30) as http:

        async def fetch(conversation: Conversation) -> None:
            params = {"userId": conversation.user, "conversationId": conversation.cid}
            answer = await http.get(f"{rng.choice(urls)}/chat/conversation", params=params)
            shown[conversation.cid] = [(m["role"], m["content"]) for m in answer.json()["messages"]]

        for start in range(0, len(conversations), 50):
            await asyncio.gather(*(fetch(c) for c in conversations[start : start + 50]))
    return shown


def check_shared_history(conversations: list[Conversation], shown: dict[str, list[tuple[str, str]]]) -> None:
    """Each conversation holds exactly its turns' messages, each reply after its own question."""
    for conversation in conversations:
        stored = shown[conversation.cid]
        expected = [m for t in conversation.turns for m in (("user", t.text), ("assistant", t.done))]
        assert all(t.done is not None for t in conversation.turns), conversation.cid
        if not conversation.together:
            assert stored == expected, conversation.cid
            continue
        assert sorted(stored) == sorted(expected), conversation.cid  # nothing lost, nothing duplicated
        assert stored[:2] == expected[:2]
        for turn in conversation.turns:
            assert turn.done is not None
            assert stored.index(("assistant", turn.done)) > stored.index(("user", turn.text)), conversation.cid


def run_shared(tmp_path: Path, count: int, seed: int) -> int:
    """Two instances, `count` conversations of 3 turns; returns the number of messages checked."""
    with temporary_database() as url, instances(url, tmp_path) as servers:
        urls = [s.url for s in servers]
        conversations = asyncio.run(workload(urls, plan(count, "s"), seed))
        shown = asyncio.run(read_back(urls, conversations, seed))
    check_shared_history(conversations, shown)
    return sum(len(v) for v in shown.values())


@pytest.mark.load
def test_two_instances_share_one_history(tmp_path: Path) -> None:
    assert run_shared(tmp_path, count=40, seed=11) == 40 * TURNS * 2


@pytest.mark.slow
def test_two_instances_share_one_history_long_run(tmp_path: Path) -> None:
    checked = run_shared(tmp_path, count=200, seed=2026)
    assert checked == 200 * TURNS * 2
    print(f"\nseveral instances: 200 conversations x {TURNS} turns over 2 instances, {checked} messages checked")


async def stored_rows(url: str) -> dict[str, list[tuple[str, str, Any]]]:
    """Rows per conversation, read straight from the database."""
    connection = await asyncpg.connect(url)
    try:
        records = await connection.fetch(
            "SELECT conversation_id, role, content, meta FROM lc_messages ORDER BY conversation_id, pos"
        )
    finally:
        await connection.close()
    rows: dict[str, list[tuple[str, str, Any]]] = {}
    for record in records:
        rows.setdefault(record[0], []).append((record[1], record[2], record[3]))
    return rows


async def kill_round(servers: list[ServerProcess], count: int, tag: str, seed: int) -> list[TurnRecord]:
    """Both instances write; the first is SIGKILLed at a random moment once replies complete and stream."""
    rng = random.Random(seed)
    conversations = plan(count, tag)
    task = asyncio.ensure_future(workload([s.url for s in servers], conversations, seed))

    def under_way() -> bool:
        turns = [t for c in conversations for t in c.turns]
        return any(t.done is not None for t in turns) and any(t.started and t.done is None for t in turns)

    while not under_way() and not task.done():
        await asyncio.sleep(0.01)
    await asyncio.sleep(rng.uniform(0.0, 0.5))
    servers[0].signal(signal.SIGKILL)
    await asyncio.wait_for(task, 120)
    return [t for c in conversations for t in c.turns]


def run_kills(tmp_path: Path, rounds: int, count: int, seed: int) -> Tally:
    """`rounds` times: kill one of two instances under load, restart it, check nothing committed was lost."""
    tally = Tally()
    with temporary_database() as url, instances(url, tmp_path) as servers:
        for round_number in range(rounds):
            records = asyncio.run(kill_round(servers, count, f"k{round_number}", seed + round_number))
            assert servers[0].wait(10) == -signal.SIGKILL
            tally.kills += 1
            tally.records.extend(records)
            problems = verify(tally.records, asyncio.run(stored_rows(url)), Tally(), reply_right_after=False)
            assert problems == [], problems[:5]
            servers[0].stop()
            servers[0] = start_server(url, tmp_path, f"r{round_number}").wait_ready()
        problems = verify(tally.records, asyncio.run(stored_rows(url)), tally, reply_right_after=False)
    return tally.conclude(problems)


@pytest.mark.load
def test_sigkill_of_one_instance_loses_nothing_committed(tmp_path: Path) -> None:
    tally = run_kills(tmp_path, rounds=1, count=60, seed=5)
    assert tally.turns_done > 0 and tally.messages_checked >= tally.turns_started


@pytest.mark.slow
def test_sigkill_of_one_instance_long_run(tmp_path: Path) -> None:
    tally = run_kills(tmp_path, rounds=10, count=200, seed=2026)
    print(
        f"\nkills with two instances: {tally.kills} SIGKILLs; {tally.turns_started} turns started, "
        f"{tally.turns_done} completed; {tally.messages_checked} messages checked, {tally.messages_lost} lost"
    )


def cut_database(url: str, name: str, allow: bool) -> None:
    """Refuse (or allow again) new connections to the database, and cut the ones it has."""
    statements = [f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"true" if allow else "false"}']
    if not allow:
        statements.append(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    run_sql(ADMIN_URL, *statements)


def wait_for(check: Any, seconds: float) -> float:
    """Poll `check()` until it is true; return how long that took (fail after `seconds`)."""
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < seconds, f"not within {seconds} s"
        time.sleep(0.05)
    return time.monotonic() - began


class Flight(threading.Thread):
    """A slow stream read in the background: notes its first token and its last frame."""

    def __init__(self, url: str, payload: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.url, self.payload = url, payload
        self.first_token = threading.Event()
        self.last: Any = None
        self.start()

    def run(self) -> None:
        """Stream, then parse what came."""
        received = b""
        with httpx.stream("POST", f"{self.url}/chat/stream", json=self.payload, timeout=20) as response:
            for chunk in response.iter_bytes():
                received += chunk
                self.first_token.set()
        self.last = check_grammar(parse_frames(received))
        self.first_token.set()


async def burst(url: str, payloads: list[dict[str, Any]]) -> list[int]:
    """The statuses of streams all sent at once."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        answers = await asyncio.gather(*(http.post("/chat/stream", json=p) for p in payloads))
    return [a.status_code for a in answers]


def outage(tmp_path: Path, cycles: int) -> list[float]:
    """Cut PostgreSQL away from a serving instance `cycles` times; return the seconds each recovery took."""
    recoveries: list[float] = []
    with temporary_database() as url, instances(url, tmp_path, count=1) as (server,):
        name = url.rsplit("/", 1)[1]
        http = httpx.Client(base_url=server.url, timeout=10)
        rng = random.Random(3)
        try:
            for cycle in range(cycles):
                ok = http.post("/chat/stream", json=body("o", f"before{cycle}", f"before {cycle}", rng))
                assert check_grammar(parse_frames(ok.content)).event == "done"
                in_flight = Flight(
                    server.url,
                    {
                        **body("o", f"flight{cycle}", f"flight {cycle}", rng),
                        "params": {
                            "conversationId": f"flight{cycle}",
                            "mock": {"tokenDelayMs": 20, "targetChars": 300},
                        },
                    },
                )
                in_flight.first_token.wait(10)
                cut_database(url, name, allow=False)
                began = time.monotonic()
                health = http.get("/healthz")
                assert health.status_code == 503 and health.json() == {"ok": False, "detail": "store unavailable"}
                refused = http.post("/chat/stream", json=body("o", f"during{cycle}", f"during {cycle}", rng))
                assert refused.status_code == 503, refused.text
                assert refused.headers["retry-after"] and "unavailable" in refused.json()["detail"]
                assert http.get("/chat/conversations", params={"userId": "o"}).status_code == 503
                statuses = asyncio.run(
                    burst(server.url, [body(f"o{n}", f"during{cycle}-{n}", "x", rng) for n in range(30)])
                )
                assert statuses == [503] * 30
                assert time.monotonic() - began < 5, "answers while PostgreSQL is gone must be quick"
                # The stream that was running ends with a clear error: its reply could not be saved.
                in_flight.join(10)
                assert in_flight.last is not None and in_flight.last.event == "error"
                assert in_flight.last.data["error"]["code"] == "store_unavailable"
                cut_database(url, name, allow=True)
                recoveries.append(wait_for(lambda: http.get("/healthz").status_code == 200, 5.0))
                back = http.post("/chat/stream", json=body("o", f"after{cycle}", f"after {cycle}", rng))
                assert check_grammar(parse_frames(back.content)).event == "done"
            # Nothing half-written: the refused turns left nothing; the others are whole.
            rows = asyncio.run(stored_rows(url))
            assert not [cid for cid in rows if cid.startswith("during")]
            assert all(len(rows[f"{kind}{n}"]) == 2 for kind in ("before", "after") for n in range(cycles))
        finally:
            http.close()
            run_sql(ADMIN_URL, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    return recoveries


@pytest.mark.load
def test_postgres_going_away_gives_503_and_service_resumes(tmp_path: Path) -> None:
    recoveries = outage(tmp_path, cycles=2)
    assert max(recoveries) < 5


@pytest.mark.slow
def test_postgres_going_away_long_run(tmp_path: Path) -> None:
    recoveries = outage(tmp_path, cycles=20)
    print(f"\npostgres outages: {len(recoveries)} cut and restored; slowest recovery {max(recoveries):.2f} s")
