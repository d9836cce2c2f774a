"""`python -m benchmarks.tool_loop_cost`: the server's own cost of the tool loop beside the plain stream, in one run.

One lean_chat server on the server core, with two tools registered (`BENCH_TOOLS=1`: `benchmarks/serve.py`). Two
probes of N mock streams at 20 tokens/s alternate on it: plain replies (one step), and tool turns whose first step
calls both tools (the mock's `toolCalls`: one step with two tool calls, then the reply in a second step; the client
opts in to the `tools` events). The figures are the medians of the server's CPU per stream and per step, and the
ratio tool turn / plain stream of each. Relayed tool turns (an upstream speaking a provider's tool calls) are left
to the providers' fake upstreams.
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

from .scenarios import LEAN, PLANS, PROMPT, Bench, StreamLoad, _probe

__all__ = ["TOOL_CALLS", "main", "tool_body"]

_START = time.perf_counter()

# The first step's calls: both of the server's bench tools (benchmarks/serve.py), answered at once.
TOOL_CALLS = [{"name": "lookup", "args": {"key": "alpha"}}, {"name": "add", "args": {"a": 2, "b": 3}}]


def _log(line: str) -> None:
    """Progress on stderr, with the time since start."""
    print(f"[{time.perf_counter() - _START:6.1f}s] {line}", file=sys.stderr, flush=True)


def tool_body(user: str, chars: int, tools: bool) -> bytes:
    """A mock stream's body: plain, or a tool turn (two calls in its first step, the `tools` events asked for)."""
    mock: dict[str, Any] = {"tokenDelayMs": 50, "targetChars": chars}
    params: dict[str, Any] = {"mock": mock}
    if tools:
        mock["toolCalls"] = TOOL_CALLS
        params["events"] = ["tools"]
    body = {"userId": user, "messages": [{"role": "user", "content": PROMPT}], "params": params}
    return json.dumps(body, separators=(",", ":")).encode()


async def _run(bench: Bench, streams: int, rounds: int) -> dict[str, Any]:
    """Alternate plain and tool probes on one server; CPU per stream and per step of each."""
    chars = bench.plan.stream_chars
    seconds = chars / 40.0
    loads = {
        "plain": StreamLoad(lambda user: tool_body(user, chars, False), chars // 2, seconds),
        "tools": StreamLoad(lambda user: tool_body(user, chars, True), chars // 2, seconds),
    }
    steps = {"plain": 1, "tools": 2}
    per_stream: dict[str, list[float]] = {"plain": [], "tools": []}
    probes: dict[str, list[dict[str, Any]]] = {"plain": [], "tools": []}
    server = bench.server(LEAN, env={"BENCH_TOOLS": "1"})
    try:
        for name in ("plain", "tools"):  # warm up
            await _probe(bench, server, min(50, streams), f"w{name}", LEAN, loads[name])
        for round_ in range(rounds):
            for name in ("plain", "tools") if round_ % 2 == 0 else ("tools", "plain"):
                probe = await _probe(bench, server, streams, f"{name}{round_}", LEAN, loads[name])
                probes[name].append(probe)
                cpu_seconds = probe["serverCpuPerTokenUs"] * probe["tokens"] / 1e6
                per_stream[name].append(cpu_seconds / max(1, probe["ok"]) * 1e3)
                await asyncio.sleep(1.0)
    finally:
        server.stop()
    return summary(streams, per_stream, probes, steps)


def summary(
    streams: int, per_stream: dict[str, list[float]], probes: dict[str, Any], steps: dict[str, int]
) -> dict[str, Any]:
    """The medians of both kinds' probes, per stream and per step, logged and returned (also tool_relay_cost's)."""
    stream_ms = {name: statistics.median(values) for name, values in per_stream.items()}
    step_ms = {name: stream_ms[name] / steps[name] for name in stream_ms}
    ratio = stream_ms["tools"] / stream_ms["plain"] if stream_ms["plain"] else 0.0
    step_ratio = step_ms["tools"] / step_ms["plain"] if step_ms["plain"] else 0.0
    extra_ms = stream_ms["tools"] - stream_ms["plain"]  # the loop's own: a second step, two calls
    _log(
        f"  server cpu per stream: plain {stream_ms['plain']:.3f} ms, tools {stream_ms['tools']:.3f} ms ({ratio:.2f}x);"
        f" per step: plain {step_ms['plain']:.3f} ms, tools {step_ms['tools']:.3f} ms ({step_ratio:.2f}x);"
        f" the loop's extra per turn {extra_ms:.3f} ms"
    )
    return {
        "streams": streams,
        "perStreamMs": per_stream,
        "streamMs": stream_ms,
        "stepMs": step_ms,
        "ratio": ratio,
        "stepRatio": step_ratio,
        "extraMs": extra_ms,
        "probes": probes,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tool_loop_cost", description=__doc__)
    parser.add_argument("--streams", type=int, default=500, help="mock streams per probe")
    parser.add_argument("--rounds", type=int, default=4, help="probes per kind")
    parser.add_argument("--plan", default="quick", choices=sorted(PLANS))
    args = parser.parse_args(argv)
    bench = Bench(PLANS[args.plan], _log)
    bench.cores.pin_self()
    import uvloop

    try:
        result = uvloop.run(_run(bench, args.streams, args.rounds))
    finally:
        shutil.rmtree(bench.scratch, ignore_errors=True)
    stream_ms, step_ms = result["streamMs"], result["stepMs"]
    print(
        f"tool loop: {result['streams']} streams; server CPU per stream plain {stream_ms['plain']:.3f} ms, "
        f"tool turn (2 steps, 2 calls) {stream_ms['tools']:.3f} ms: {result['ratio']:.2f}x; per step plain "
        f"{step_ms['plain']:.3f} ms, tool turn {step_ms['tools']:.3f} ms: {result['stepRatio']:.2f}x; the loop's "
        f"extra per turn {result['extraMs']:.3f} ms "
        f"(per probe plain {[round(v, 3) for v in result['perStreamMs']['plain']]}, "
        f"tools {[round(v, 3) for v in result['perStreamMs']['tools']]})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
