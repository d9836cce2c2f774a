"""A crowd under every documented way of serving: many relayed and many mock streams started together.

Each way runs as its users start it (`lean-chat serve`, plain `uvicorn` naming lean_chat's loop, their `--workers 2`,
the FastAPI app), pinned to the server core, with the OpenAI upstream trickling on the load core. Per way: all
done, first-token p99 and gap p99 for both crowds, and the relayed first-token p99 over `lean-chat serve`'s in the
same run (issue 23: at most 1.5x), beside the apparatus alone (the load generator reading the upstream directly).
The full plan adds plain `uvicorn` on its own loop, for contrast (uvloop's listener takes one connection a turn).
A server's CPU and memory are read over its process tree: under `--workers`, the workers' (`processes.Pinned`).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

from .processes import Pinned, free_port
from .report import Figure
from .scenarios import FIRST_TOKEN_P99_MS, Bench, StreamLoad, _probe, chat_body

__all__ = ["CROWD_SCENARIOS", "CrowdSize", "WAYS", "crowd_figures"]

APP = "lean_chat.app:create_app_from_env"
SHIM = "lean_chat.compat:create_app_from_env"
LOOP = "lean_chat.server.loop:new_event_loop"
SERVE = "lean-chat serve"
# Within this many times `lean-chat serve`'s relayed first-token p99, in the same run (issue 23).
WITHIN = 1.5


@dataclass(frozen=True)
class CrowdSize:
    """How many streams each crowd has and how long they run."""

    relayed: int
    relayed_chunks: int
    mock: int
    mock_chars: int
    ramp: float
    contrast: bool  # also plain uvicorn on its own loop


SIZES = {
    "full": CrowdSize(relayed=1500, relayed_chunks=100, mock=2000, mock_chars=400, ramp=1.0, contrast=True),
    "quick": CrowdSize(relayed=300, relayed_chunks=40, mock=300, mock_chars=120, ramp=1.0, contrast=False),
    "smoke": CrowdSize(relayed=5, relayed_chunks=5, mock=5, mock_chars=60, ramp=0.1, contrast=False),
}
INTERVAL_MS = 50.0  # the upstream's pace: 20 chunks a second, as in many relayed streams

# (module run with `python -m`, its arguments after the port) per way of serving; `{port}` is filled in.
_SERVE = ["serve", "--no-demo", "--no-metrics", "--log-level", "warning"]
_UVICORN = ["--factory", "--log-level", "warning", "--no-access-log"]
WAYS: dict[str, tuple[str, list[str]]] = {
    SERVE: ("lean_chat", _SERVE),
    f"{SERVE} --workers 2": ("lean_chat", [*_SERVE, "--workers", "2"]),
    f"uvicorn --loop {LOOP}": ("uvicorn", [APP, "--loop", LOOP, *_UVICORN]),
    f"uvicorn --loop {LOOP} --workers 2": ("uvicorn", [APP, "--loop", LOOP, "--workers", "2", *_UVICORN]),
    f"uvicorn {SHIM} --loop {LOOP} (FastAPI app)": ("uvicorn", [SHIM, "--loop", LOOP, *_UVICORN]),
}
CONTRAST = "uvicorn on its own loop (uvloop; no --loop)"
WAYS_CONTRAST = {CONTRAST: ("uvicorn", [APP, *_UVICORN])}


def _serve(bench: Bench, way: str, module: str, args: list[str], upstream: str) -> Pinned:
    """Start one way of serving on the server core, with a fresh SQLite file and the upstream's key."""
    port = free_port()
    sqlite = os.path.join(bench.scratch, f"crowd-{uuid.uuid4().hex[:8]}.sqlite3")
    argv = [*args, "--port", str(port)]
    if module == "lean_chat":
        argv += ["--sqlite-path", sqlite]
    env = {
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_BASE_URL": upstream,
        "FASTAPI_AI_CHAT_SQLITE_PATH": sqlite,
        "LEAN_CHAT_METRICS": "0",
    }
    return Pinned(bench.cores, bench.cores.server, module, argv, port, env)


async def _healthy(port: int, timeout: float = 30.0) -> None:
    """Wait until `/healthz` answers 200 (workers start after the supervisor listens)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n")
            head = await reader.read(12)
            writer.close()
            if head.startswith(b"HTTP/1.1 200"):
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"port {port} did not answer /healthz within {timeout:.0f} s")


def _loads(size: CrowdSize) -> tuple[StreamLoad, StreamLoad, StreamLoad]:
    """Relayed streams (gpt-4.1 from the upstream), mock streams, and the upstream read directly."""
    seconds = size.relayed_chunks * INTERVAL_MS / 1000.0
    relayed = StreamLoad(lambda user: chat_body(user, model="gpt-4.1"), size.relayed_chunks, seconds, ramp=size.ramp)
    mock = {"tokenDelayMs": 50, "targetChars": size.mock_chars}
    mocked = StreamLoad(
        lambda user: chat_body(user, mock=mock, model="mock-crowd"),
        size.mock_chars // 2,
        size.mock_chars / 40.0,
        ramp=size.ramp,
    )
    direct = StreamLoad(
        lambda user: chat_body(user, model="gpt-4.1"), size.relayed_chunks, seconds, b'"content":"', size.ramp
    )
    return relayed, mocked, direct


async def crowd(bench: Bench) -> dict[str, Any]:
    """Per way of serving: a relayed crowd, then a mock crowd, on a fresh server; then the upstream alone."""
    size = SIZES[bench.plan.name]
    relayed, mocked, direct = _loads(size)
    ways = {**WAYS, **(WAYS_CONTRAST if size.contrast else {})}
    results: dict[str, Any] = {"size": size.__dict__, "ways": {}}
    with bench.upstream(size.relayed_chunks, trickle_ms=INTERVAL_MS) as upstream:
        base = f"http://127.0.0.1:{upstream.port}/v1"
        for way, (module, args) in ways.items():
            bench.log(f"crowd: {way}")
            with _serve(bench, way, module, args, base) as server:
                await _healthy(server.port)
                await asyncio.sleep(2.0 if "--workers" in args else 0.5)  # every worker up, the loop settled
                tag = f"c{len(results['ways'])}"
                relay = await _probe(bench, server, size.relayed, f"{tag}r", way, relayed, upstream)
                await asyncio.sleep(1.0)
                mock = await _probe(bench, server, size.mock, f"{tag}m", way, mocked)
            results["ways"][way] = {"relayed": relay, "mock": mock}
            await asyncio.sleep(1.0)
        bench.log(f"crowd: the upstream read directly, {size.relayed} streams")
        results["apparatus"] = await _probe(bench, upstream, size.relayed, "cup", "upstream", direct)
    return results


def _line(probe: dict[str, Any]) -> str:
    """All done, first-token p99 and gap p99 of one crowd; the server's CPU and memory (every worker's, summed)."""
    per_stream = (probe["rssPeak"] - probe["rssBefore"]) / max(1, probe["streams"]) / 1024
    return (
        f"{probe['ok']}/{probe['streams']} done, first token p99 {probe['p99FirstTokenMs']:.0f} ms, "
        f"gap p99 {probe['p99GapMs']:.0f} ms, server CPU {probe['serverCpu']:.2f} of a core, "
        f"{per_stream:.1f} KB RSS per stream"
    )


def crowd_figures(crowd: dict[str, Any]) -> list[Figure]:
    """Per way of serving: relayed first-token p99 over `lean-chat serve`'s (all done in both crowds to be met)."""
    ways = crowd["ways"]
    serve_p99 = ways[SERVE]["relayed"]["p99FirstTokenMs"]
    apparatus = crowd["apparatus"]
    out = []
    for way, probes in ways.items():
        relay, mock = probes["relayed"], probes["mock"]
        ratio = relay["p99FirstTokenMs"] / serve_p99 if serve_p99 else 0.0
        all_done = relay["ok"] == relay["streams"] and mock["ok"] == mock["streams"]
        # Below the first-token criterion of every probe, the ratio of two small tails is noise (small crowds).
        close = ratio <= WITHIN or relay["p99FirstTokenMs"] <= FIRST_TOKEN_P99_MS
        context = f"relayed: {_line(relay)}; mock: {_line(mock)}"
        if way == SERVE:
            context += (
                f"; the upstream read directly (no server): first token p99 {apparatus['p99FirstTokenMs']:.0f} ms, "
                f"gap p99 {apparatus['p99GapMs']:.0f} ms"
            )
        out.append(
            Figure(
                "crowd",
                f"{way}: relayed first-token p99 / {SERVE}'s ({relay['streams']} streams started together)",
                ratio,
                "x",
                f"<= {WITHIN} (or p99 <= {FIRST_TOKEN_P99_MS:.0f} ms), all done" if way != CONTRAST else "",
                (close and all_done) if way != CONTRAST else None,
                context,
            )
        )
    return out


CROWD_SCENARIOS = {"crowd": crowd}
