"""`python -m benchmarks.metrics_cost`: server CPU per token with metrics off and on, in one run.

The many-streams probe (mock replies at 20 tokens/s) and the many-relayed-streams probe (a trickling upstream)
run at a fixed number of streams against two lean_chat servers on the server core, one with `metrics` off and
one with it on, alternately (off, on, off, on...), and scrape `/metrics` once after each probe of the second.
The figure is the ratio of the medians of server CPU per token, on/off; the issue's bound is 1.03.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import time
from typing import Any

from .loadgen import Connection
from .scenarios import LEAN, PLANS, Bench, StreamLoad, _mock_load, _probe, _relayed_load

__all__ = ["main"]

_START = time.perf_counter()


def _log(line: str) -> None:
    """Progress on stderr, with the time since start."""
    print(f"[{time.perf_counter() - _START:6.1f}s] {line}", file=sys.stderr, flush=True)


async def _scrape(port: int) -> int:
    """One `GET /metrics` (its size in bytes)."""
    connection = await Connection.open(port)
    try:
        reply = await connection.fetch(b"GET /metrics HTTP/1.1\r\nhost: bench\r\n\r\n")
    finally:
        connection.close()
    return reply.body_bytes


async def _pairs(bench: Bench, load: StreamLoad, streams: int, rounds: int, upstream: Any = None) -> dict[str, Any]:
    """Alternate probes on a metrics-off and a metrics-on server; per-token server CPU of each."""
    options: dict[str, Any] = {"upstream": f"http://127.0.0.1:{upstream.port}/v1"} if upstream else {}
    per_token: dict[str, list[float]] = {"off": [], "on": []}
    probes: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    off = bench.server(LEAN, **options, env={"LEAN_CHAT_METRICS": "0"})
    on = bench.server(LEAN, **options, env={"LEAN_CHAT_METRICS": "1"})
    try:
        for name, server in (("off", off), ("on", on)):  # warm both up
            await _probe(bench, server, min(100, streams), f"w{name}", LEAN, load, upstream)
        for round_ in range(rounds):
            for name, server in (("off", off), ("on", on)) if round_ % 2 == 0 else (("on", on), ("off", off)):
                probe = await _probe(bench, server, streams, f"{name}{round_}", LEAN, load, upstream)
                probes[name].append(probe)
                per_token[name].append(probe["serverCpuPerTokenUs"])
                if name == "on":
                    _log(f"  scrape: {await _scrape(server.port)} bytes")
                await asyncio.sleep(1.0)
    finally:
        off.stop()
        on.stop()
    medians = {name: statistics.median(values) for name, values in per_token.items()}
    ratio = medians["on"] / medians["off"] if medians["off"] else 0.0
    _log(f"  server cpu/token: off {medians['off']:.2f} us, on {medians['on']:.2f} us, ratio {ratio:.3f}")
    return {"streams": streams, "perTokenUs": per_token, "medians": medians, "ratio": ratio, "probes": probes}


async def _run(bench: Bench, streams: int, relayed: int, rounds: int) -> dict[str, Any]:
    """Both probes."""
    plan = bench.plan
    results: dict[str, Any] = {}
    _log(f"many streams: {streams} mock streams, {rounds} rounds")
    results["many_streams"] = await _pairs(bench, _mock_load(plan), streams, rounds)
    _log(f"many relayed streams: {relayed} streams, {rounds} rounds")
    with bench.upstream(plan.relayed_chunks, trickle_ms=plan.relayed_interval_ms) as upstream:
        results["many_relayed_streams"] = await _pairs(bench, _relayed_load(plan, LEAN), relayed, rounds, upstream)
    return results


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.metrics_cost", description=__doc__)
    parser.add_argument("--streams", type=int, default=1000, help="mock streams per probe")
    parser.add_argument("--relayed", type=int, default=500, help="relayed streams per probe")
    parser.add_argument("--rounds", type=int, default=4, help="probes per server and scenario")
    parser.add_argument("--plan", default="quick", choices=sorted(PLANS))
    args = parser.parse_args(argv)
    bench = Bench(PLANS[args.plan], _log)
    bench.cores.pin_self()
    import uvloop

    try:
        results = uvloop.run(_run(bench, args.streams, args.relayed, args.rounds))
    finally:
        shutil.rmtree(bench.scratch, ignore_errors=True)
    for name, result in results.items():
        medians = result["medians"]
        print(
            f"{name}: {result['streams']} streams, server CPU per token off {medians['off']:.2f} us, "
            f"on {medians['on']:.2f} us: on/off {result['ratio']:.3f} "
            f"(per probe off {[round(v, 2) for v in result['perTokenUs']['off']]}, "
            f"on {[round(v, 2) for v in result['perTokenUs']['on']]})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
