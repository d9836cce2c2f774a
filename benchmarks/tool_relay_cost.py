"""`python -m benchmarks.tool_relay_cost`: the server's own cost of a relayed tool turn beside the plain relay.

One lean_chat server on the server core (`BENCH_TOOLS=1`: two tools registered, `benchmarks/serve.py`), in front
of the fake OpenAI upstream trickling 20 chunks/s with `--tool-calls` (`benchmarks/upstream.py`). Two probes of N
streams alternate on it: plain relayed replies (`params.tools: []`, one step), and tool turns (the upstream's first
step streams two tool calls as `delta.tool_calls` fragments, the server runs both, and the second step relays the
same reply as the plain one; the client opts in to the `tools` events). The figures are the medians of the
server's CPU per stream and per step, and the ratio tool turn / plain relay of each (the mock's tool loop:
`benchmarks/tool_loop_cost.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import time
from typing import Any

from .processes import Pinned, free_port
from .scenarios import LEAN, PLANS, PROMPT, Bench, StreamLoad, _probe
from .tool_loop_cost import summary

__all__ = ["main", "relay_body"]

_START = time.perf_counter()


def _log(line: str) -> None:
    """Progress on stderr, with the time since start."""
    print(f"[{time.perf_counter() - _START:6.1f}s] {line}", file=sys.stderr, flush=True)


def relay_body(user: str, tools: bool) -> bytes:
    """A relayed stream's body: plain (no tools offered), or a tool turn (every tool offered, `tools` events)."""
    params: dict[str, Any] = {"model": "gpt-4.1"}
    if tools:
        params["events"] = ["tools"]
    else:
        params["tools"] = []
    body = {"userId": user, "messages": [{"role": "user", "content": PROMPT}], "params": params}
    return json.dumps(body, separators=(",", ":")).encode()


def _upstream(bench: Bench) -> Pinned:
    """The trickling upstream on the load core, answering a tool loop's first step with two calls."""
    plan = bench.plan
    port = free_port()
    args = ["--port", str(port), "--chunks", str(plan.relayed_chunks), "--trickle-ms", str(plan.relayed_interval_ms)]
    return Pinned(bench.cores, bench.cores.load, "benchmarks.upstream", [*args, "--tool-calls"], port, {})


async def _run(bench: Bench, streams: int, rounds: int) -> dict[str, Any]:
    """Alternate plain and tool probes on one server; CPU per stream and per step of each."""
    plan = bench.plan
    seconds = plan.relayed_chunks * plan.relayed_interval_ms / 1000.0
    loads = {
        "plain": StreamLoad(lambda user: relay_body(user, False), plan.relayed_chunks, seconds),
        # The tool step's 8 events come first, at the same pace.
        "tools": StreamLoad(lambda user: relay_body(user, True), plan.relayed_chunks, seconds + 0.5),
    }
    steps = {"plain": 1, "tools": 2}
    per_stream: dict[str, list[float]] = {"plain": [], "tools": []}
    probes: dict[str, list[dict[str, Any]]] = {"plain": [], "tools": []}
    with _upstream(bench) as upstream:
        server = bench.server(LEAN, upstream=f"http://127.0.0.1:{upstream.port}/v1", env={"BENCH_TOOLS": "1"})
        try:
            # A tool turn's first token waits for its tool step: the first-token criterion does not judge it.
            for name in ("plain", "tools"):  # warm up
                await _probe(bench, server, min(50, streams), f"w{name}", LEAN, loads[name], upstream, name == "plain")
            for round_ in range(rounds):
                for name in ("plain", "tools") if round_ % 2 == 0 else ("tools", "plain"):
                    tag, load = f"{name}{round_}", loads[name]
                    probe = await _probe(bench, server, streams, tag, LEAN, load, upstream, name == "plain")
                    probes[name].append(probe)
                    cpu_seconds = probe["serverCpuPerTokenUs"] * probe["tokens"] / 1e6
                    per_stream[name].append(cpu_seconds / max(1, probe["ok"]) * 1e3)
                    await asyncio.sleep(1.0)
        finally:
            server.stop()
    return summary(streams, per_stream, probes, steps)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tool_relay_cost", description=__doc__)
    parser.add_argument("--streams", type=int, default=300, help="relayed streams per probe")
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
        f"relayed tool loop: {result['streams']} streams; server CPU per stream plain relay {stream_ms['plain']:.3f} "
        f"ms, tool turn (2 steps, 2 calls) {stream_ms['tools']:.3f} ms: {result['ratio']:.2f}x; per step plain "
        f"{step_ms['plain']:.3f} ms, tool turn {step_ms['tools']:.3f} ms: {result['stepRatio']:.2f}x; the loop's "
        f"extra per turn {result['extraMs']:.3f} ms "
        f"(per probe plain {[round(v, 3) for v in result['perStreamMs']['plain']]}, "
        f"tools {[round(v, 3) for v in result['perStreamMs']['tools']]})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
