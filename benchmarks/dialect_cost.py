"""`python -m benchmarks.dialect_cost`: server CPU per token of the AI SDK dialect (`POST /chat/ui`) beside
`POST /chat/stream`, in one run.

The many-streams probe (mock replies at 20 tokens/s) and the many-relayed-streams probe (a trickling upstream) run
at a fixed number of streams against one lean_chat server on the server core, alternately through each dialect
(stream, ui, ui, stream...): the same turns, one a `token` frame per token, the other a `text-delta` chunk. The
figure is the ratio of the medians of server CPU per token, ui/stream; the issue's bound is 1.15.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import time
from typing import Any

from .loadgen import UI_ENDS
from .scenarios import LEAN, PLANS, PROMPT, Bench, StreamLoad, _mock_load, _probe, _relayed_load

__all__ = ["main", "ui_load"]

_START = time.perf_counter()


def _log(line: str) -> None:
    """Progress on stderr, with the time since start."""
    print(f"[{time.perf_counter() - _START:6.1f}s] {line}", file=sys.stderr, flush=True)


def ui_load(load: StreamLoad, options: dict[str, Any]) -> StreamLoad:
    """The same streams through `/chat/ui`: a `DefaultChatTransport` body (a new chat per stream) with `options`."""

    def body(user: str) -> bytes:
        message = {"id": "m1", "role": "user", "parts": [{"type": "text", "text": PROMPT}]}
        request = {"id": user, "userId": user, "messages": [message], "trigger": "submit-message", **options}
        return json.dumps(request, separators=(",", ":")).encode()

    marker = b'"type":"text-delta"'
    return StreamLoad(body, load.tokens, load.seconds, marker, load.ramp, True, "/chat/ui", UI_ENDS)


async def _pairs(
    bench: Bench, loads: dict[str, StreamLoad], streams: int, rounds: int, upstream: Any = None
) -> dict[str, Any]:
    """Alternate the two dialects' probes on one server; per-token server CPU of each."""
    options: dict[str, Any] = {"upstream": f"http://127.0.0.1:{upstream.port}/v1"} if upstream else {}
    per_token: dict[str, list[float]] = {name: [] for name in loads}
    probes: dict[str, list[dict[str, Any]]] = {name: [] for name in loads}
    server = bench.server(LEAN, **options)
    try:
        for name, load in loads.items():  # warm up
            await _probe(bench, server, min(100, streams), f"w{name}", LEAN, load, upstream)
        names = list(loads)
        for round_ in range(rounds):
            for name in names if round_ % 2 == 0 else names[::-1]:
                probe = await _probe(bench, server, streams, f"{name}{round_}", LEAN, loads[name], upstream)
                probes[name].append(probe)
                per_token[name].append(probe["serverCpuPerTokenUs"])
                await asyncio.sleep(1.0)
    finally:
        server.stop()
    medians = {name: statistics.median(values) for name, values in per_token.items()}
    ratio = medians["ui"] / medians["stream"] if medians["stream"] else 0.0
    _log(f"  server cpu/token: stream {medians['stream']:.2f} us, ui {medians['ui']:.2f} us, ratio {ratio:.3f}")
    return {"streams": streams, "perTokenUs": per_token, "medians": medians, "ratio": ratio, "probes": probes}


async def _run(bench: Bench, streams: int, relayed: int, rounds: int) -> dict[str, Any]:
    """Both probes."""
    plan = bench.plan
    results: dict[str, Any] = {}
    mock = _mock_load(plan)
    knobs = {"mock": {"tokenDelayMs": 50, "targetChars": plan.stream_chars}}
    _log(f"many streams: {streams} mock streams, {rounds} rounds")
    results["many_streams"] = await _pairs(bench, {"stream": mock, "ui": ui_load(mock, knobs)}, streams, rounds)
    _log(f"many relayed streams: {relayed} streams, {rounds} rounds")
    relayed_load = _relayed_load(plan, LEAN)
    loads = {"stream": relayed_load, "ui": ui_load(relayed_load, {"model": "gpt-4.1"})}
    with bench.upstream(plan.relayed_chunks, trickle_ms=plan.relayed_interval_ms) as upstream:
        results["many_relayed_streams"] = await _pairs(bench, loads, relayed, rounds, upstream)
    return results


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dialect_cost", description=__doc__)
    parser.add_argument("--streams", type=int, default=1000, help="mock streams per probe")
    parser.add_argument("--relayed", type=int, default=500, help="relayed streams per probe")
    parser.add_argument("--rounds", type=int, default=4, help="probes per dialect and scenario")
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
            f"{name}: {result['streams']} streams, server CPU per token /chat/stream {medians['stream']:.2f} us, "
            f"/chat/ui {medians['ui']:.2f} us: ui/stream {result['ratio']:.3f} "
            f"(per probe stream {[round(v, 2) for v in result['perTokenUs']['stream']]}, "
            f"ui {[round(v, 2) for v in result['perTokenUs']['ui']]})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
