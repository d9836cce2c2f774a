"""PostgreSQL beside SQLite in one run: long conversation, loop stalls, added latency, the store's round trip.

`python -m benchmarks --only postgres` (needs the `postgres` extra and PostgreSQL at 127.0.0.1:5432, or
LEAN_CHAT_BENCH_POSTGRES=postgresql://.../postgres). The run creates its own database and drops it after.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import ssl
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any

from .loadgen import Connection, percentile
from .report import Figure
from .scenarios import (
    LEAN,
    Bench,
    _background_streams,
    _conversation,
    _growth,
    _stats,
    chat_body,
    direct_upstream_request,
    median,
    stream_request,
)

__all__ = ["POSTGRES_SCENARIOS", "postgres_figures"]

ADMIN_URL = os.environ.get("LEAN_CHAT_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
STORES = ("sqlite", "postgres")


@contextlib.asynccontextmanager
async def _database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for the run; dropped after."""
    import asyncpg

    name = f"lc_bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _env(store: str, url: str) -> dict[str, str]:
    """The server environment for a store (read by benchmarks.serve)."""
    return {"LEAN_CHAT_DATABASE_URL": url} if store == "postgres" else {}


async def _long_conversation(bench: Bench, url: str) -> dict[str, Any]:
    """1,000 turns of one conversation per store: last / first turn time."""
    results: dict[str, Any] = {}
    for store in STORES:
        server = bench.server(LEAN, env=_env(store, url))
        try:
            times = await _conversation(server.port, bench.plan.conversation_turns, f"pglong{store}")
        finally:
            server.stop()
        results[store] = _growth(times)
        bench.log(f"postgres/long conversation {store}: {results[store]['growth']:.2f}x")
    return results


async def _loop_stalls(bench: Bench, url: str) -> dict[str, Any]:
    """The largest event-loop stall per store while a long conversation runs beside 200 streams."""
    plan = bench.plan
    results: dict[str, Any] = {}
    for store in STORES:
        server = bench.server(LEAN, env=_env(store, url), watch_loop=True)
        try:
            async with _background_streams(server.port, plan.stall_streams, 600) as tally:
                await _stats(server.port, reset=True)
                times = await _conversation(server.port, plan.stall_turns, f"pgstall{store}")
                # Both stores see the same load: every background stream saves at least one reply (and starts
                # the next turn) inside the measured window, however quick the conversation was.
                deadline = time.perf_counter() + 30.0
                while tally[0] < plan.stall_streams and time.perf_counter() < deadline:
                    await asyncio.sleep(0.1)
                stats = await _stats(server.port)
        finally:
            server.stop()
        results[store] = {
            "largestStallMs": stats["largestStallMs"],
            "largestLoopThreadStallMs": stats.get("largestLoopThreadStallMs"),
            "turnGrowth": _growth(times)["growth"],
            "backgroundStreams": {"ok": tally[0], "bad": tally[1]},
            "gcPauses": stats.get("gcPauses"),
            "gcLargestMs": stats.get("gcLargestMs"),
        }
        bench.log(f"postgres/loop stalls {store}: largest {stats['largestStallMs']:.2f} ms")
    return results


async def _added_latency(bench: Bench, url: str) -> dict[str, Any]:
    """Time to first token through the server minus straight from the TLS upstream, per store."""
    from .tls import make_loopback_ca

    plan = bench.plan
    ca, cert, key = make_loopback_ca(bench.scratch)
    context = ssl.create_default_context(cafile=ca)
    upstream_request = direct_upstream_request()
    results: dict[str, Any] = {}
    with bench.upstream(20, cert, key) as upstream:
        for store in STORES:
            env = {"SSL_CERT_FILE": ca, **_env(store, url)}
            server = bench.server(LEAN, upstream=f"https://127.0.0.1:{upstream.port}/v1", env=env)
            try:
                direct = await Connection.open(upstream.port, tls=context, token_marker=b"data: {")
                through = await Connection.open(server.port)
                added: list[float] = []
                for index in range(plan.latency_requests + 10):
                    straight = await direct.fetch(upstream_request)
                    served = await through.fetch(stream_request(chat_body(f"pglat{index}", model="gpt-4.1")))
                    if not (straight.complete and served.ok):
                        raise RuntimeError(f"postgres/added latency: {store} request {index} was not well-formed")
                    if index >= 10:
                        added.append((served.ttft - straight.ttft) * 1000.0)
                direct.close()
                through.close()
            finally:
                server.stop()
            results[store] = {"medianMs": median(added), "p99Ms": percentile(added, 99), "requests": len(added)}
            bench.log(f"postgres/added latency {store}: median {results[store]['medianMs']:.3f} ms")
    return results


async def _store_round_trip(bench: Bench, url: str) -> dict[str, Any]:
    """The store's share of a turn: `start_turn` (load the context, save the user message), median per store."""
    from lean_chat.config import Settings
    from lean_chat.store import open_store
    from lean_chat.store.base import StoredMessage

    results: dict[str, Any] = {}
    turns = max(50, bench.plan.latency_requests)
    with tempfile.TemporaryDirectory() as folder:
        for store_name, database_url in (("sqlite", f"sqlite:///{folder}/rt.sqlite3"), ("postgres", url)):
            store = open_store(Settings(database_url=database_url))
            await store.open()
            try:
                spent: list[float] = []
                for turn in range(turns + 10):
                    began = time.perf_counter()
                    start = await store.start_turn("rt", "rt", [StoredMessage("user", f"turn {turn}")], 400_000)
                    spent.append((time.perf_counter() - began) * 1000.0)
                    await store.save_reply("rt", "rt", start.life, StoredMessage("assistant", "reply " * 200))
            finally:
                await store.close()
            results[store_name] = {"medianMs": median(spent[10:]), "p99Ms": percentile(spent[10:], 99)}
            bench.log(f"postgres/store round trip {store_name}: median {results[store_name]['medianMs']:.3f} ms")
    results["floor"] = await _write_floor(url, turns)
    bench.log(f"postgres/one-row INSERT: median {results['floor']['medianMs']:.3f} ms")
    return results


async def _write_floor(url: str, count: int) -> dict[str, float]:
    """The floor of one PostgreSQL write on this machine: a one-row INSERT, autocommit, same settings."""
    import asyncpg

    connection = await asyncpg.connect(url, server_settings={"synchronous_commit": "off"})
    try:
        await connection.execute("CREATE TEMP TABLE floor (n integer PRIMARY KEY, t text)")
        spent: list[float] = []
        for n in range(count + 10):
            began = time.perf_counter()
            await connection.execute("INSERT INTO floor VALUES ($1, 'x')", n)
            spent.append((time.perf_counter() - began) * 1000.0)
    finally:
        await connection.close()
    return {"medianMs": median(spent[10:])}


async def postgres(bench: Bench) -> dict[str, Any]:
    """The PostgreSQL store beside SQLite, same machine, same run."""
    async with _database() as url:
        return {
            "storeRoundTrip": await _store_round_trip(bench, url),
            "longConversation": await _long_conversation(bench, url),
            "loopStalls": await _loop_stalls(bench, url),
            "addedLatency": await _added_latency(bench, url),
        }


def postgres_figures(results: dict[str, Any]) -> list[Figure]:
    """The headline figures of the PostgreSQL scenario, when it ran."""
    found = results.get("postgres")
    if not found:
        return []
    long, stalls, latency, trip = (
        found["longConversation"],
        found["loopStalls"],
        found["addedLatency"],
        found["storeRoundTrip"],
    )
    pg = "PostgreSQL store"
    return [
        Figure(
            pg,
            f"long conversation: last / first turn time ({long['postgres']['turns']} turns)",
            long["postgres"]["growth"],
            "x",
            "<= 1.5",
            long["postgres"]["growth"] <= 1.5,
            f"SQLite {long['sqlite']['growth']:.2f}x in the same run",
        ),
        Figure(
            pg,
            "largest event-loop stall beside 200 streams",
            stalls["postgres"]["largestStallMs"],
            "ms",
            "<= 5",
            stalls["postgres"]["largestStallMs"] <= 5,
            f"SQLite {stalls['sqlite']['largestStallMs']:.2f} ms in the same run",
        ),
        Figure(
            pg,
            "added latency to first token (median)",
            latency["postgres"]["medianMs"],
            "ms",
            "",
            None,
            f"SQLite {latency['sqlite']['medianMs']:.3f} ms; p99 {latency['postgres']['p99Ms']:.3f} ms",
        ),
        Figure(
            pg,
            "start of a turn (context loaded, user message saved), median",
            trip["postgres"]["medianMs"],
            "ms",
            "<= 0.3",
            trip["postgres"]["medianMs"] <= 0.3,
            f"one round trip (lc_start_turn); a one-row INSERT {trip['floor']['medianMs']:.3f} ms; "
            f"SQLite {trip['sqlite']['medianMs']:.3f} ms; p99 {trip['postgres']['p99Ms']:.3f} ms; in the load process",
        ),
    ]


POSTGRES_SCENARIOS = {"postgres": postgres}
