"""The scenarios: each starts its servers pinned to the server core and drives them from the load core."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import ssl
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .loadgen import EVENT_ENDS, Connection, Ends, GapHistogram, Reply, http_request, percentile
from .processes import Cores, Pinned, free_port

__all__ = ["PLANS", "Bench", "Plan", "SCENARIOS"]

LEAN = "lean_chat"
REFERENCE = "reference"
FLOOR_BATCH = "floor-batch"
FLOOR_TOKEN = "floor-token"
FLOOR_PACED = "floor-paced"
FLOOR_RELAY = "floor-relay"

PROMPT = "Explain server-sent events in a few paragraphs."


@dataclass(frozen=True)
class Plan:
    """How big each scenario is (the full run, --quick, or the smoke test's tiny run)."""

    name: str
    runs: int
    burst_seconds: float
    burst_clients: tuple[int, ...]
    burst_chars: int
    relay_chunks: int
    relay_clients: int
    relay_seconds: float
    stream_chars: int
    stream_ramp: float
    stream_start: int
    stream_max: int
    stream_refine: int
    memory_floor: bool
    reference_start: int
    conversation_turns: int
    stall_streams: int
    stall_turns: int
    latency_requests: int
    relayed_chunks: int
    relayed_interval_ms: float
    relayed_ramp: float
    relayed_start: int
    relayed_reference_start: int
    relayed_max: int
    relayed_refine: int
    relay_client_streams: int
    scenarios: tuple[str, ...]


ALL = (
    "burst",
    "relay",
    "many_streams",
    "many_relayed_streams",
    "relay_clients",
    "long_conversation",
    "loop_stalls",
    "added_latency",
    "crowd",  # benchmarks/crowd.py: every way of serving
)

PLANS = {
    "full": Plan(
        name="full",
        runs=5,
        burst_seconds=3.0,
        burst_clients=(10, 50),
        burst_chars=2600,
        relay_chunks=1000,
        relay_clients=10,
        relay_seconds=3.0,
        stream_chars=1200,
        stream_ramp=3.0,
        stream_start=1000,
        stream_max=8000,
        stream_refine=3,
        memory_floor=True,
        reference_start=500,
        conversation_turns=1000,
        stall_streams=200,
        stall_turns=1000,
        latency_requests=400,
        relayed_chunks=100,
        relayed_interval_ms=50.0,
        relayed_ramp=1.0,
        relayed_start=1000,
        relayed_reference_start=250,
        relayed_max=8000,
        relayed_refine=3,
        relay_client_streams=1000,
        scenarios=ALL,
    ),
    # Sized to end within 3 minutes with room to spare on a shared 2-core machine: streams of a few seconds,
    # no refining between the last N that passed and the first that failed, memory read off the first probe.
    "quick": Plan(
        name="quick",
        runs=3,
        burst_seconds=0.5,
        burst_clients=(10, 50),
        burst_chars=2600,
        relay_chunks=1000,
        relay_clients=10,
        relay_seconds=0.5,
        stream_chars=250,  # the mock's shortest reply: about 120 tokens, 6 s at 20 tokens/s
        stream_ramp=1.0,
        stream_start=1000,
        stream_max=8000,
        stream_refine=0,
        memory_floor=False,
        reference_start=250,
        conversation_turns=200,
        stall_streams=200,
        stall_turns=150,
        latency_requests=100,
        relayed_chunks=40,
        relayed_interval_ms=50.0,
        relayed_ramp=1.0,
        relayed_start=1000,
        relayed_reference_start=31,
        relayed_max=4000,
        relayed_refine=0,
        relay_client_streams=500,
        scenarios=ALL,
    ),
    "smoke": Plan(
        name="smoke",
        runs=1,
        burst_seconds=0.3,
        burst_clients=(2,),
        burst_chars=600,
        relay_chunks=50,
        relay_clients=2,
        relay_seconds=0.3,
        stream_chars=250,
        stream_ramp=0.2,
        stream_start=20,
        stream_max=20,
        stream_refine=0,
        memory_floor=False,
        reference_start=20,
        conversation_turns=6,
        stall_streams=5,
        stall_turns=6,
        latency_requests=5,
        relayed_chunks=5,
        relayed_interval_ms=20.0,
        relayed_ramp=0.1,
        relayed_start=5,
        relayed_reference_start=5,
        relayed_max=5,
        relayed_refine=0,
        relay_client_streams=5,
        scenarios=("burst",),
    ),
}


def chat_body(
    user: str,
    prompt: str = PROMPT,
    *,
    mock: dict[str, Any] | None = None,
    model: str | None = None,
    conversation: str | None = None,
) -> bytes:
    """A `/chat/stream` request body."""
    params: dict[str, Any] = {}
    if mock is not None:
        params["mock"] = mock
    if model is not None:
        params["model"] = model
    if conversation is not None:
        params["conversationId"] = conversation
    body = {"userId": user, "messages": [{"role": "user", "content": prompt}], "params": params}
    return json.dumps(body, separators=(",", ":")).encode()


def stream_request(body: bytes) -> bytes:
    """The HTTP request for a chat stream."""
    return http_request("/chat/stream", body)


def median(values: list[float]) -> float:
    """The median, 0 for nothing."""
    return statistics.median(values) if values else 0.0


class Meter:
    """CPU use of the load generator (this process), the server and the upstream over one measured window."""

    def __init__(self, server: Pinned | None = None, upstream: Pinned | None = None) -> None:
        self.server = server
        self.upstream = upstream
        self.wall = time.perf_counter()
        self.load = time.process_time()
        self.server_cpu = server.cpu_seconds() if server else 0.0
        self.upstream_cpu = upstream.cpu_seconds() if upstream else 0.0

    def read(self) -> dict[str, float]:
        """Core shares (1.0 is one whole core) since the meter was made."""
        wall = max(1e-9, time.perf_counter() - self.wall)
        shares = {"seconds": wall, "loadCpu": (time.process_time() - self.load) / wall}
        if self.server:
            shares["serverCpu"] = (self.server.cpu_seconds() - self.server_cpu) / wall
        if self.upstream:
            shares["upstreamCpu"] = (self.upstream.cpu_seconds() - self.upstream_cpu) / wall
        return shares


class Bench:
    """Shared machinery of a run: cores, a scratch folder, servers and upstreams started on demand."""

    def __init__(self, plan: Plan, log: Callable[[str], None], profile_to: str = "") -> None:
        self.plan = plan
        self.profile_to = profile_to
        self.log = log
        self.cores = Cores()
        self.scratch = tempfile.mkdtemp(prefix="lean-bench-")
        self.load_cpu_peak = 0.0

    def note_load(self, shares: dict[str, float], target: str = LEAN) -> None:
        """Remember the busiest the load generator has been while measuring lean_chat or the reference."""
        if target in (LEAN, REFERENCE):
            self.load_cpu_peak = max(self.load_cpu_peak, shares.get("loadCpu", 0.0))

    def server(
        self,
        target: str,
        *,
        upstream: str = "",
        floor_request: bytes = b"{}",
        watch_loop: bool = False,
        env: dict[str, str] | None = None,
    ) -> Pinned:
        """Start a target under uvicorn on the server core, with a fresh SQLite file."""
        port = free_port()
        sqlite = os.path.join(self.scratch, f"{target}-{uuid.uuid4().hex[:8]}.sqlite3")
        args = [target, "--port", str(port), "--sqlite-path", sqlite, "--upstream", upstream]
        args += ["--floor-request", floor_request.decode()]
        if watch_loop:
            args.append("--watch-loop")
        profile = ""
        if self.profile_to and target == LEAN:
            os.makedirs(self.profile_to, exist_ok=True)
            profile = os.path.join(self.profile_to, f"{target}-{port}.txt")
        return Pinned(self.cores, self.cores.server, "benchmarks.serve", args, port, env or {}, profile)

    def upstream(self, chunks: int, cert: str = "", key: str = "", trickle_ms: float = 0.0) -> Pinned:
        """Start the fake OpenAI upstream on the load core (its chunks all at once, or one per `trickle_ms`)."""
        port = free_port()
        args = ["--port", str(port), "--chunks", str(chunks)]
        if trickle_ms:
            args += ["--trickle-ms", str(trickle_ms)]
        if cert:
            args += ["--cert", cert, "--key", key]
        return Pinned(self.cores, self.cores.load, "benchmarks.upstream", args, port, {})

    @contextlib.contextmanager
    def servers(self, targets: dict[str, dict[str, Any]]) -> Iterator[dict[str, Pinned]]:
        """Several targets at once (idle ones cost nothing), stopped together."""
        started: dict[str, Pinned] = {}
        try:
            for name, options in targets.items():
                started[name] = self.server(name, **options)
            yield started
        finally:
            for process in started.values():
                process.stop()


# ---------------------------------------------------------------------------------------------------------------
# burst and relay: tokens/s with C keep-alive clients, each sending its next request when the last one ends


async def _closed_loop(
    port: int, clients: int, seconds: float, body_for: Callable[[int, int], bytes], server: Pinned | None
) -> dict[str, float]:
    """Drive `clients` connections for `seconds`; count tokens of well-formed replies only."""
    connections = [await Connection.open(port) for _ in range(clients)]
    totals = {"tokens": 0.0, "responses": 0.0, "bad": 0.0}
    meter = Meter(server)
    deadline = time.perf_counter() + seconds

    async def client(index: int) -> None:
        connection = connections[index]
        count = 0
        while time.perf_counter() < deadline:
            reply = await connection.fetch(stream_request(body_for(index, count)))
            count += 1
            if reply.ok:
                totals["tokens"] += reply.tokens
                totals["responses"] += 1
            else:
                totals["bad"] += 1
                if not reply.complete:
                    connection.close()
                    connection = connections[index] = await Connection.open(port)

    await asyncio.gather(*(client(i) for i in range(clients)))
    shares = meter.read()
    for connection in connections:
        connection.close()
    shares.update(totals)
    shares["tokensPerSecond"] = totals["tokens"] / shares["seconds"]
    return shares


def _summarize(runs: list[dict[str, float]]) -> dict[str, Any]:
    """Median tokens/s over runs, with the runs and CPU shares kept for context."""
    return {
        "tokensPerSecond": median([r["tokensPerSecond"] for r in runs]),
        "loadCpu": max(r["loadCpu"] for r in runs),
        "serverCpu": median([r.get("serverCpu", 0.0) for r in runs]),
        "upstreamCpu": median([r.get("upstreamCpu", 0.0) for r in runs]),
        "bad": sum(r["bad"] for r in runs),
        "responses": sum(r["responses"] for r in runs),
        "runs": [round(r["tokensPerSecond"], 1) for r in runs],
    }


async def burst(bench: Bench) -> dict[str, Any]:
    """Mock replies with no delay (~1,200 tokens each): tokens/s at 10 and 50 clients."""
    plan = bench.plan
    mock = {"tokenDelayMs": 0, "targetChars": plan.burst_chars}
    floor_request = chat_body("floor", mock=mock)
    targets = {LEAN: {}, REFERENCE: {}, FLOOR_BATCH: {"floor_request": floor_request}}
    targets[FLOOR_TOKEN] = {"floor_request": floor_request}
    results: dict[str, Any] = {"clients": {}, "tokensPerReply": {}}
    with bench.servers(targets) as servers:
        for name, server in servers.items():
            warm = await _closed_loop(server.port, 2, 0.3, lambda i, n: chat_body(f"w{i}-{n}", mock=mock), server)
            if not warm["responses"]:
                raise RuntimeError(f"burst: {name} gave no well-formed reply")
            results["tokensPerReply"][name] = round(warm["tokens"] / warm["responses"])
        for clients in plan.burst_clients:
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
            for run in range(plan.runs):
                for name, server in servers.items():

                    def body_for(i: int, n: int, run: int = run, clients: int = clients) -> bytes:
                        return chat_body(f"b{clients}-{run}-{i}-{n}", mock=mock)

                    shares = await _closed_loop(server.port, clients, plan.burst_seconds, body_for, server)
                    bench.note_load(shares, name)
                    runs[name].append(shares)
            summary = {name: _summarize(values) for name, values in runs.items()}
            results["clients"][str(clients)] = summary
            bench.log(
                f"burst {clients} clients: "
                + ", ".join(f"{name} {s['tokensPerSecond']:,.0f} tok/s" for name, s in summary.items())
            )
    return results


async def relay(bench: Bench) -> dict[str, Any]:
    """A fake OpenAI upstream streaming 1,000 chunks at once: tokens/s relayed."""
    plan = bench.plan
    results: dict[str, Any] = {"chunks": plan.relay_chunks, "clients": plan.relay_clients}
    with bench.upstream(plan.relay_chunks) as upstream:
        url = f"http://127.0.0.1:{upstream.port}/v1"
        with bench.servers({LEAN: {"upstream": url}, REFERENCE: {"upstream": url}}) as servers:
            for name, server in servers.items():
                warm = await _closed_loop(server.port, 1, 0.3, lambda i, n: chat_body(f"w{n}", model="gpt-4.1"), None)
                if not warm["responses"]:
                    raise RuntimeError(f"relay: {name} relayed no well-formed reply")
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
            for run in range(plan.runs):
                for name, server in servers.items():
                    meter_upstream = upstream.cpu_seconds()

                    def body_for(i: int, n: int, run: int = run) -> bytes:
                        return chat_body(f"r{run}-{i}-{n}", model="gpt-4.1")

                    shares = await _closed_loop(server.port, plan.relay_clients, plan.relay_seconds, body_for, server)
                    shares["upstreamCpu"] = (upstream.cpu_seconds() - meter_upstream) / shares["seconds"]
                    bench.note_load(shares, name)
                    runs[name].append(shares)
            results["targets"] = {name: _summarize(values) for name, values in runs.items()}
    bench.log("relay: " + ", ".join(f"{n} {s['tokensPerSecond']:,.0f} tok/s" for n, s in results["targets"].items()))
    return results


# ---------------------------------------------------------------------------------------------------------------
# many streams and memory: N paced streams at once (the mock's, or relayed from a trickling upstream)

FIRST_TOKEN_P99_MS = 250.0
GAP_P99_MS = 75.0
RELAYED_TARGET = 1500  # issue 11: the largest N of relayed streams on one core


@dataclass(frozen=True)
class StreamLoad:
    """What one probe's streams ask for: the request body per stream, the token marker, their pace and length."""

    body: Callable[[str], bytes]
    tokens: int
    seconds: float
    marker: bytes = b"event: token\n"
    ramp: float = 1.0
    # A chat stream ends with one `done`; the upstream read directly ends with OpenAI's `data: [DONE]` instead.
    chat: bool = True
    path: str = "/chat/stream"
    ends: Ends = EVENT_ENDS  # how its frames and its end look (the AI SDK dialect's: UI_ENDS)


def _mock_load(plan: Plan) -> StreamLoad:
    """Mock replies at 20 tokens/s."""
    mock = {"tokenDelayMs": 50, "targetChars": plan.stream_chars}
    return StreamLoad(lambda user: chat_body(user, mock=mock), plan.stream_chars // 2, plan.stream_chars / 40.0)


def _relayed_load(plan: Plan, target: str) -> StreamLoad:
    """`gpt-4.1` relayed from the trickling upstream (the relay floor relays its raw chunks)."""
    marker = b'"content":"' if target == FLOOR_RELAY else b"event: token\n"
    seconds = plan.relayed_chunks * plan.relayed_interval_ms / 1000.0
    return StreamLoad(
        lambda user: chat_body(user, model="gpt-4.1"), plan.relayed_chunks, seconds, marker, plan.relayed_ramp
    )


async def _probe(
    bench: Bench,
    server: Pinned,
    streams: int,
    tag: str,
    target: str,
    load: StreamLoad,
    upstream: Pinned | None = None,
    judged: bool = True,
) -> dict[str, Any]:
    """N streams started over the ramp; pass when all end with done, first-token p99 <= 250 ms, gap p99 <= 75 ms.

    `judged=False` (a memory probe): its line gives no PASS/FAIL, since no figure of the report reads it so.
    """
    gaps = GapHistogram()
    ramp = load.ramp
    peak = {"rss": 0}
    connections: list[Connection] = []

    async def one(index: int) -> Reply:
        await asyncio.sleep(index * ramp / streams)
        try:
            connection = await Connection.open(server.port, gaps=gaps, token_marker=load.marker, ends=load.ends)
        except OSError:
            return Reply()
        connections.append(connection)
        reply = await connection.fetch(http_request(load.path, load.body(f"{tag}-{index}")))
        connection.close()
        return reply

    async def sample() -> None:
        while True:
            peak["rss"] = max(peak["rss"], server.rss_bytes())
            await asyncio.sleep(0.2)

    before = server.rss_bytes()
    meter = Meter(server, upstream)
    sampler = asyncio.get_running_loop().create_task(sample())
    tasks = [asyncio.get_running_loop().create_task(one(i)) for i in range(streams)]
    limit = ramp + load.seconds * 2.0 + 10.0
    done, pending = await asyncio.wait(tasks, timeout=limit)
    for connection in connections:
        connection.close()
    if pending:
        await asyncio.wait(pending, timeout=5)
    sampler.cancel()
    shares = meter.read()
    bench.note_load(shares, target)
    replies = [t.result() for t in tasks if t.done() and not t.cancelled()]
    good = sum(1 for r in replies if _well_formed(r, load.chat))
    tokens = sum(r.tokens for r in replies)
    first = [r.ttft * 1000.0 for r in replies if r.tokens]
    result = {
        "streams": streams,
        "ok": good,
        "p50FirstTokenMs": round(percentile(first, 50), 1),
        "p99FirstTokenMs": round(percentile(first, 99), 1),
        "withoutTokens": streams - len(first),
        "p50GapMs": gaps.percentile_ms(50),
        "p99GapMs": gaps.percentile_ms(99),
        "largestGapMs": round(gaps.largest * 1000.0, 1),
        "rssBefore": before,
        "rssPeak": peak["rss"],
        "loadCpu": shares["loadCpu"],
        "serverCpu": shares.get("serverCpu", 0.0),
        "upstreamCpu": shares.get("upstreamCpu", 0.0),
        "tokens": tokens,
        "serverCpuPerTokenUs": shares.get("serverCpu", 0.0) * shares["seconds"] / max(1, tokens) * 1e6,
    }
    result["passed"] = (
        good == streams and result["p99FirstTokenMs"] <= FIRST_TOKEN_P99_MS and result["p99GapMs"] <= GAP_P99_MS
    )
    bench.log(
        f"  {tag}: {streams} streams: {good} ok, first token p50/p99 {result['p50FirstTokenMs']:.0f}/"
        f"{result['p99FirstTokenMs']:.0f} ms, gap p50/p99 {result['p50GapMs']:.0f}/{result['p99GapMs']:.0f} ms, "
        f"load cpu {shares['loadCpu']:.2f}, upstream cpu {result['upstreamCpu']:.2f}, "
        f"server cpu {result['serverCpu']:.2f} ({result['serverCpuPerTokenUs']:.1f} us/token)"
        + ((" PASS" if result["passed"] else " FAIL") if judged else "")
    )
    return result


def _well_formed(reply: Reply, chat: bool) -> bool:
    """A chat stream: `Reply.ok`; the upstream's own stream: complete, 200, tokens, no error (it has no `done`)."""
    if chat:
        return reply.ok
    return reply.complete and reply.status == 200 and reply.tokens > 0 and reply.errors == 0


async def _largest(
    bench: Bench,
    name: str,
    start: int,
    load: StreamLoad,
    stop_at: int,
    refine: int,
    options: dict[str, Any],
    upstream: Pinned | None = None,
) -> dict[str, Any]:
    """Double N while it passes (halve it while nothing has), then halve the gap between last pass and first failure."""
    probes: list[dict[str, Any]] = []
    passed, failed = 0, 0
    with bench.servers({name: options}) as servers:
        server = servers[name]
        n = start
        while True:
            probe = await _probe(bench, server, n, f"{name[:3]}{len(probes)}", name, load, upstream)
            probes.append(probe)
            await asyncio.sleep(1.0)
            if probe["passed"]:
                passed = n
                if n >= stop_at or (failed and n * 2 >= failed):  # the next N up has failed already
                    break
                n = min(stop_at, n * 2)
            else:
                failed = n
                if passed or n <= 50:
                    break
                n = n // 2  # nothing passed yet: look below the start
        for _ in range(refine):
            if not failed or failed - passed <= max(100, failed // 10):
                break
            n = (passed + failed) // 2 // 50 * 50 if failed > 100 else (passed + failed) // 2
            probe = await _probe(bench, server, n, f"{name[:3]}{len(probes)}", name, load, upstream)
            probes.append(probe)
            await asyncio.sleep(1.0)
            if probe["passed"]:
                passed = n
            else:
                failed = n
    return {"largest": passed, "firstFailure": failed, "probes": probes}


async def _memory(
    bench: Bench, name: str, streams: int, load: StreamLoad, options: dict[str, Any], upstream: Pinned | None = None
) -> dict[str, Any]:
    """Server RSS per open stream at N streams, on a fresh server warmed up with a few streams."""
    with bench.servers({name: options}) as servers:
        server = servers[name]
        await _probe(bench, server, min(100, streams), f"{name[:3]}w", name, load, upstream, judged=False)
        probe = await _probe(bench, server, streams, f"{name[:3]}m", name, load, upstream, judged=False)
    per_stream = (probe["rssPeak"] - probe["rssBefore"]) / max(1, streams)
    return {"streams": streams, "rssBefore": probe["rssBefore"], "rssPeak": probe["rssPeak"], "perStream": per_stream}


def _first_probe_memory(target: dict[str, Any]) -> dict[str, Any]:
    """RSS per stream of a target's first probe, on a fresh server (later probes reuse what the allocator kept)."""
    probe = target["probes"][0]
    per_stream = (probe["rssPeak"] - probe["rssBefore"]) / max(1, probe["streams"])
    return {"streams": probe["streams"], "perStream": per_stream, "firstProbe": True}


async def many_streams(bench: Bench) -> dict[str, Any]:
    """The largest N of 20 tokens/s mock streams meeting the criteria; then RSS per stream at that N."""
    plan = bench.plan
    load = _mock_load(plan)
    results: dict[str, Any] = {"targets": {}, "memory": {}, "streamChars": plan.stream_chars}
    floor_request = chat_body("floor", mock={"tokenDelayMs": 50, "targetChars": plan.stream_chars})
    for name, start in ((LEAN, plan.stream_start), (REFERENCE, plan.reference_start), (FLOOR_PACED, plan.stream_start)):
        bench.log(f"many streams: {name}")
        options = {"floor_request": floor_request} if name.startswith("floor") else {}
        results["targets"][name] = await _largest(
            bench, name, start, load, plan.stream_max, plan.stream_refine, options
        )
    for name in (LEAN, REFERENCE, FLOOR_PACED) if plan.memory_floor else (LEAN, REFERENCE):
        target = results["targets"][name]
        if plan.memory_floor:
            streams = target["largest"] or target["firstFailure"]
            options = {"floor_request": floor_request} if name.startswith("floor") else {}
            results["memory"][name] = await _memory(bench, name, streams, load, options)
        else:
            results["memory"][name] = _first_probe_memory(target)
        memory = results["memory"][name]
        bench.log(f"memory: {name} at {memory['streams']} streams: {memory['perStream'] / 1024:.1f} KB/stream")
    return results


async def many_relayed_streams(bench: Bench) -> dict[str, Any]:
    """The largest N of streams relayed from an upstream trickling 20 chunks/s, meeting the criteria; RSS per stream."""
    plan = bench.plan
    results: dict[str, Any] = {
        "targets": {},
        "memory": {},
        "chunks": plan.relayed_chunks,
        "intervalMs": plan.relayed_interval_ms,
    }
    with bench.upstream(plan.relayed_chunks, trickle_ms=plan.relayed_interval_ms) as upstream:
        options = {"upstream": f"http://127.0.0.1:{upstream.port}/v1"}
        starts = (
            (LEAN, plan.relayed_start),
            (REFERENCE, plan.relayed_reference_start),
            (FLOOR_RELAY, plan.relayed_start),
        )
        for name, start in starts:
            bench.log(f"many relayed streams: {name}")
            load = _relayed_load(plan, name)
            results["targets"][name] = await _largest(
                bench, name, start, load, plan.relayed_max, plan.relayed_refine, options, upstream
            )
        # The measuring apparatus alone: the load generator reading the upstream directly, no server between.
        # When it misses the gap or first-token criterion by itself, no target can be judged at that N here.
        streams = max(RELAYED_TARGET, results["targets"][LEAN]["firstFailure"])
        bench.log(f"many relayed streams: the upstream read directly, {streams} streams")
        direct = dataclasses.replace(_relayed_load(plan, FLOOR_RELAY), chat=False)
        results["apparatus"] = await _probe(bench, upstream, streams, "upstream", "upstream", direct, None)
        for name, _ in starts:
            target = results["targets"][name]
            streams = target["largest"] or target["firstFailure"]
            if plan.memory_floor:
                load = _relayed_load(plan, name)
                results["memory"][name] = await _memory(bench, name, streams, load, options, upstream)
            else:
                results["memory"][name] = _first_probe_memory(target)
                streams = results["memory"][name]["streams"]
            per_stream_kb = results["memory"][name]["perStream"] / 1024
            bench.log(f"memory: {name} at {streams} relayed streams: {per_stream_kb:.1f} KB/stream")
    return results


async def relay_clients(bench: Bench) -> dict[str, Any]:
    """The HTTP client alone on the server core: N trickled streams, first byte and CPU per upstream chunk."""
    plan = bench.plan
    results: dict[str, Any] = {"streams": plan.relay_client_streams, "chunks": plan.relayed_chunks, "clients": {}}
    with bench.upstream(plan.relayed_chunks, trickle_ms=plan.relayed_interval_ms) as upstream:
        for name in ("lean", "httpx", "aiohttp-transport", "aiohttp"):
            argv = [sys.executable, "-m", "benchmarks.clients", "--port", str(upstream.port)]
            argv += ["--streams", str(plan.relay_client_streams), "--client", name]
            argv += ["--events", str(plan.relayed_chunks + 1), "--ramp", str(plan.relayed_ramp)]
            process = await asyncio.create_subprocess_exec(
                *bench.cores.command(bench.cores.server, argv), stdout=asyncio.subprocess.PIPE
            )
            meter = Meter(None, upstream)
            out, _ = await process.communicate()
            figures = json.loads(out.decode().strip().splitlines()[-1])
            figures["upstreamCpu"] = meter.read().get("upstreamCpu", 0.0)
            results["clients"][name] = figures
            if not figures.get("missing"):
                bench.log(
                    f"relay clients {name}: first byte p50 {figures['firstByteP50Ms']:.0f} ms, "
                    f"{figures['cpuPerChunkUs']:.1f} us CPU per upstream chunk, {figures['failures']} failures"
                )
    return results


# ---------------------------------------------------------------------------------------------------------------
# long conversation and loop stalls


async def _conversation(port: int, turns: int, tag: str) -> list[float]:
    """Seconds per turn of one conversation, one new user message per turn (mock, no delay)."""
    connection = await Connection.open(port)
    times: list[float] = []
    mock = {"tokenDelayMs": 0}
    try:
        for turn in range(turns):
            body = chat_body(f"{tag}-user", f"Turn {turn}: tell me more.", mock=mock, conversation=f"{tag}-conv")
            reply = await connection.fetch(stream_request(body))
            if not reply.ok:
                raise RuntimeError(f"long conversation: turn {turn} was not a well-formed stream")
            times.append(reply.seconds)
    finally:
        connection.close()
    return times


def _growth(times: list[float]) -> dict[str, Any]:
    """Median turn time of the first and last windows, and their ratio."""
    window = max(3, len(times) // 20)
    first, last = median(times[:window]), median(times[-window:])
    step = max(1, len(times) // 50)
    return {
        "turns": len(times),
        "window": window,
        "firstMs": first * 1000.0,
        "lastMs": last * 1000.0,
        "growth": last / first if first else 0.0,
        "curveMs": [round(median(times[i : i + step]) * 1000.0, 3) for i in range(0, len(times), step)],
    }


async def long_conversation(bench: Bench) -> dict[str, Any]:
    """1,000 turns of one conversation: the time of a turn at the end over its time at the start."""
    results: dict[str, Any] = {}
    with bench.servers({LEAN: {}, REFERENCE: {}}) as servers:
        for name, server in servers.items():
            meter = Meter(server)
            times = await _conversation(server.port, bench.plan.conversation_turns, f"long{name[:3]}")
            shares = meter.read()
            bench.note_load(shares)
            results[name] = _growth(times) | {"loadCpu": shares["loadCpu"]}
            bench.log(
                f"long conversation {name}: {results[name]['firstMs']:.2f} ms -> {results[name]['lastMs']:.2f} ms "
                f"({results[name]['growth']:.2f}x)"
            )
    return results


async def _stats(port: int, reset: bool = False) -> dict[str, Any]:
    """The served process's stats (RSS, largest loop stall)."""
    connection = await Connection.open(port, keep_body=True)
    path = "/__bench__/stats?reset=1" if reset else "/__bench__/stats"
    reply = await connection.fetch(f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n".encode())
    connection.close()
    stats: dict[str, Any] = json.loads(bytes(reply.body))
    return stats


@contextlib.asynccontextmanager
async def _background_streams(port: int, count: int, chars: int) -> AsyncIterator[list[int]]:
    """`count` clients streaming 20 tokens/s replies back to back until the block ends; yields [good, bad, tokens]."""
    stop = asyncio.Event()
    tally = [0, 0, 0]
    connections: list[Connection] = []

    async def client(index: int) -> None:
        await asyncio.sleep(index * 0.005)
        connection = await Connection.open(port)
        connections.append(connection)
        n = 0
        while not stop.is_set():
            body = chat_body(f"bg{index}-{n}", mock={"tokenDelayMs": 50, "targetChars": chars})
            reply = await connection.fetch(stream_request(body))
            n += 1
            tally[2] += reply.tokens
            if stop.is_set():
                break
            tally[0 if reply.ok else 1] += 1
            if not reply.complete:
                return

    tasks = [asyncio.get_running_loop().create_task(client(i)) for i in range(count)]
    await asyncio.sleep(count * 0.005 + 0.5)
    try:
        yield tally
    finally:
        stop.set()
        for connection in connections:
            connection.close()
        await asyncio.wait(tasks, timeout=5)


async def loop_stalls(bench: Bench) -> dict[str, Any]:
    """The largest event-loop stall inside the server while the long conversation runs beside 200 streams."""
    plan = bench.plan
    results: dict[str, Any] = {"streams": plan.stall_streams, "turns": plan.stall_turns}
    with bench.servers({LEAN: {"watch_loop": True}, REFERENCE: {"watch_loop": True}}) as servers:
        for name, server in servers.items():
            async with _background_streams(server.port, plan.stall_streams, 600) as tally:
                idle = await _stats(server.port, reset=True)
                meter = Meter(server)
                times = await _conversation(server.port, plan.stall_turns, f"stall{name[:3]}")
                stats = await _stats(server.port)
                shares = meter.read()
            bench.note_load(shares)
            results[name] = {
                "largestStallMs": stats["largestStallMs"],
                "largestLatenessMs": stats["largestLatenessMs"],
                "largestLoopThreadStallMs": stats.get("largestLoopThreadStallMs"),
                "gcPauses": stats.get("gcPauses"),
                "gcLargestMs": stats.get("gcLargestMs"),
                "largestStallBeforeMs": idle["largestStallMs"],
                "backgroundStreams": {"ok": tally[0], "bad": tally[1], "tokens": tally[2]},
                "turnGrowth": _growth(times)["growth"],
                "loadCpu": shares["loadCpu"],
                "serverCpu": shares.get("serverCpu", 0.0),
            }
            bench.log(
                f"loop stalls {name}: largest {stats['largestStallMs']:.2f} ms "
                f"(loop thread's own CPU {stats.get('largestLoopThreadStallMs', 0.0):.2f} ms, "
                f"wall-clock lateness {stats['largestLatenessMs']:.2f} ms)"
            )
    return results


# ---------------------------------------------------------------------------------------------------------------
# added latency through a TLS upstream


def direct_upstream_request() -> bytes:
    """The chat-completions POST the added-latency scenarios send straight to the fake upstream."""
    body = json.dumps({"model": "gpt-4.1", "messages": [{"role": "user", "content": PROMPT}], "stream": True}).encode()
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer sk-bench\r\n"
        b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body
    )


async def added_latency(bench: Bench) -> dict[str, Any]:
    """Time to first token through the server minus straight from the (TLS) upstream, request by request."""
    from .tls import make_loopback_ca

    plan = bench.plan
    ca, cert, key = make_loopback_ca(bench.scratch)
    context = ssl.create_default_context(cafile=ca)
    results: dict[str, Any] = {}
    upstream_request = direct_upstream_request()
    with bench.upstream(20, cert, key) as upstream:
        url = f"https://127.0.0.1:{upstream.port}/v1"
        env = {"SSL_CERT_FILE": ca}
        options = {"upstream": url, "env": env}
        with bench.servers({LEAN: options, REFERENCE: options}) as servers:
            for name, server in servers.items():
                direct = await Connection.open(upstream.port, tls=context, token_marker=b"data: {")
                through = await Connection.open(server.port)
                meter = Meter(server)
                pairs: list[tuple[float, float]] = []
                for index in range(plan.latency_requests + 10):
                    straight = await direct.fetch(upstream_request)
                    served = await through.fetch(stream_request(chat_body(f"lat{index}", model="gpt-4.1")))
                    if not (straight.complete and straight.tokens and served.ok):
                        raise RuntimeError(f"added latency: {name} request {index} was not well-formed")
                    if index >= 10:
                        pairs.append((straight.ttft, served.ttft))
                shares = meter.read()
                bench.note_load(shares)
                direct.close()
                through.close()
                added = [(s - d) * 1000.0 for d, s in pairs]
                results[name] = {
                    "medianMs": median(added),
                    "p99Ms": percentile(added, 99),
                    "directMedianMs": median([d * 1000.0 for d, _ in pairs]),
                    "servedMedianMs": median([s * 1000.0 for _, s in pairs]),
                    "requests": len(pairs),
                    "serverCpuPerRequestMs": shares.get("serverCpu", 0.0) * shares["seconds"] / (len(pairs) + 10) * 1e3,
                    "loadCpu": shares["loadCpu"],
                }
                bench.log(
                    f"added latency {name}: median {results[name]['medianMs']:.3f} ms, "
                    f"p99 {results[name]['p99Ms']:.3f} ms, server CPU {results[name]['serverCpuPerRequestMs']:.2f} ms "
                    "per request"
                )
    return results


SCENARIOS = {
    "burst": burst,
    "relay": relay,
    "many_streams": many_streams,
    "many_relayed_streams": many_relayed_streams,
    "relay_clients": relay_clients,
    "long_conversation": long_conversation,
    "loop_stalls": loop_stalls,
    "added_latency": added_latency,
}
