"""The cost of resumable streams on the hot path: server CPU per token with `params.resume` on and off.

`python -m benchmarks.resume_cost` (a switch of its own, apart from the main suite): N paced mock streams at once
(the many-streams scenario's load), alternating requests without and with `params.resume: true` on the same
server, with the stream hub in memory and then on Redis (127.0.0.1:6379, a key prefix of the run's own, deleted
after). Resume adds an `id:` line per frame and keeps every batch (with Redis: one pipelined XADD per batch).
The figure is the ratio of the medians of server CPU per token (resume / plain); Redis's own CPU is reported
beside it. Ratios within one run; absolute numbers on these shared machines are noise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import uuid
from typing import Any

from .processes import process_cpu_seconds
from .scenarios import LEAN, PLANS, Bench, StreamLoad, _probe

__all__ = ["main"]

REDIS_URL = "redis://127.0.0.1:6379/0"


def _load(chars: int, resume: bool) -> StreamLoad:
    """Mock replies at 20 tokens/s, with or without resume."""
    params: dict[str, Any] = {"mock": {"tokenDelayMs": 50, "targetChars": chars}}
    if resume:
        params["resume"] = True

    def body(user: str) -> bytes:
        request = {"userId": user, "messages": [{"role": "user", "content": "Tell me a story."}], "params": params}
        return json.dumps(request, separators=(",", ":")).encode()

    return StreamLoad(body, chars // 2, chars / 40.0)


def _redis_pid() -> int | None:
    """The local redis-server's process id (to read its CPU), when one runs."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as comm:
                    if comm.read().strip() == "redis-server":
                        return int(entry)
            except OSError:
                continue
    return None


async def _compare(bench: Bench, name: str, streams: int, runs: int, env: dict[str, str]) -> dict[str, Any]:
    """Alternate plain and resumable probes on one server; medians of server CPU per token."""
    chars = bench.plan.stream_chars
    redis_pid = _redis_pid() if env else None
    per_token: dict[str, list[float]] = {"plain": [], "resume": []}
    redis_per_token: list[float] = []
    with bench.servers({LEAN: {"env": env}}) as servers:
        server = servers[LEAN]
        await _probe(bench, server, min(100, streams), f"{name}-warm", LEAN, _load(chars, True))
        for run in range(runs):
            for kind in ("plain", "resume"):
                before = process_cpu_seconds(redis_pid) if redis_pid and kind == "resume" else 0.0
                load = _load(chars, kind == "resume")
                probe = await _probe(bench, server, streams, f"{name}-{kind}{run}", LEAN, load)
                per_token[kind].append(probe["serverCpuPerTokenUs"])
                if redis_pid and kind == "resume":
                    redis_per_token.append((process_cpu_seconds(redis_pid) - before) / max(1, probe["tokens"]) * 1e6)
    plain, resume = statistics.median(per_token["plain"]), statistics.median(per_token["resume"])
    result = {
        "streams": streams,
        "plainUsPerToken": round(plain, 2),
        "resumeUsPerToken": round(resume, 2),
        "ratio": round(resume / plain, 3) if plain else None,
        "runs": per_token,
    }
    if redis_per_token:
        result["redisServerUsPerToken"] = round(statistics.median(redis_per_token), 2)
    bench.log(
        f"resume cost ({name} hub, {streams} streams): plain {plain:.1f} us/token, resume {resume:.1f} us/token, "
        f"ratio {result['ratio']}" + (f", redis-server {result['redisServerUsPerToken']} us/token" if env else "")
    )
    return result


async def _run(bench: Bench, streams: int, runs: int) -> dict[str, Any]:
    """Memory hub, then Redis hub."""
    results = {"memory": await _compare(bench, "memory", streams, runs, {})}
    prefix = f"lc_bench_{uuid.uuid4().hex[:8]}:"
    try:
        env = {"BENCH_REDIS_URL": REDIS_URL, "BENCH_REDIS_PREFIX": prefix}
        results["redis"] = await _compare(bench, "redis", streams, runs, env)
    finally:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        client.close()
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print the figures as JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.resume_cost", description=__doc__)
    parser.add_argument("--streams", type=int, default=1000, help="paced streams at once (default 1000)")
    parser.add_argument("--runs", type=int, default=3, help="probes of each kind, alternating (default 3)")
    args = parser.parse_args(argv)
    bench = Bench(PLANS["quick"], lambda line: print(line, flush=True))
    bench.cores.pin_self()
    import uvloop

    try:
        results = uvloop.run(_run(bench, args.streams, args.runs))
    finally:
        shutil.rmtree(bench.scratch, ignore_errors=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
