"""`python -m benchmarks.relay_profile`: the relay path's CPU per chunk in-process, and its profile, beside the floor.

The app (lean_chat, or the relay floor) runs in this process on the server core, without a server: N streams are
ASGI calls whose `send` only counts, relaying the trickling OpenAI upstream (its own process on the load core).
Once every stream relays, this thread's CPU time over a window, over the chunks sent in it, is the app's CPU per
relayed chunk (uvicorn's own work per chunk and socket writes excluded: both targets would pay the same); then a
window under cProfile gives Python calls per chunk, which do not depend on how busy the machine is, and where the
time goes. The SQLite thread's work (at each stream's start and end) is not in the window.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from typing import Any

from .processes import Cores, Pinned, free_port
from .scenarios import chat_body
from .serve import build_target

__all__ = ["main"]

INTERVAL_MS = 50.0
_KEPT: list[asyncio.Task[None]] = []  # the app's lifespan task, held for the process's life


class _Streams:
    """N streams as bare ASGI calls: each posts a chat body, then waits; `send` counts body messages."""

    def __init__(self, app: Any, body: bytes) -> None:
        self.app = app
        self.body = body
        self.sent = 0
        self.tasks: list[asyncio.Task[None]] = []

    async def _one(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        given = False
        forever: asyncio.Future[None] = loop.create_future()

        async def receive() -> dict[str, Any]:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": self.body.replace(b"USER", b"u%d" % index), "more_body": False}
            await forever
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                self.sent += 1

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/chat/stream",
            "raw_path": b"/chat/stream",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"bench"), (b"content-type", b"application/json")],
            "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 40000 + index % 20000),
        }
        await self.app(scope, receive, send)

    def start(self, count: int, ramp: float) -> None:
        """Start the streams over `ramp` seconds."""
        loop = asyncio.get_running_loop()
        for index in range(count):
            loop.call_later(index * ramp / count, self._start, index)

    def _start(self, index: int) -> None:
        self.tasks.append(asyncio.get_running_loop().create_task(self._one(index)))


async def _lifespan(app: Any) -> None:
    """Run the app's start-up (its lifespan task is left running)."""
    loop = asyncio.get_running_loop()
    messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started: asyncio.Future[None] = loop.create_future()

    async def send(message: dict[str, Any]) -> None:
        if message["type"].startswith("lifespan.startup") and not started.done():
            started.set_result(None)

    _KEPT.append(loop.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, messages.get, send)))
    messages.put_nowait({"type": "lifespan.startup"})
    await started


async def _measure(args: argparse.Namespace, upstream: str) -> dict[str, Any]:
    """Start the streams, let them settle, then an unprofiled window and a profiled one."""
    sqlite = os.path.join(tempfile.mkdtemp(prefix="lean-relay-profile-"), "chat.sqlite3")
    app = build_target(args.target, sqlite, upstream, "{}")
    await _lifespan(app)
    streams = _Streams(app, chat_body("USER", model="gpt-4.1"))
    streams.start(args.streams, 1.0)
    await asyncio.sleep(1.0 + args.settle)
    sent, cpu = streams.sent, time.thread_time()
    await asyncio.sleep(args.seconds)
    chunks, cpu = streams.sent - sent, time.thread_time() - cpu
    profile = cProfile.Profile()
    sent = streams.sent
    profile.enable()
    await asyncio.sleep(args.seconds)
    profile.disable()
    profiled = streams.sent - sent
    stats = pstats.Stats(profile, stream=io.StringIO())
    calls = sum(entry[1] for entry in stats.stats.values())  # type: ignore[attr-defined]
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats(args.sort).print_stats(args.top)
    return {
        "chunks": chunks,
        "cpuPerChunkUs": cpu / max(1, chunks) * 1e6,
        "callsPerChunk": calls / max(1, profiled),
        "profile": out.getvalue(),
    }


def _serve_one(args: argparse.Namespace) -> None:
    """This process: one target, on the server core (the parent starts one per target and reads its last line)."""
    import uvloop

    cores = Cores()
    if cores.pinned:
        os.sched_setaffinity(0, {cores.server})
    uvloop.run(_measure_and_exit(args))


async def _measure_and_exit(args: argparse.Namespace) -> None:
    """Measure, print, and end the process at once: the streams and the app are left as they are (ending them
    would save every partial reply into a store that is closing)."""
    result = await _measure(args, args.upstream)
    profile = result.pop("profile")
    if args.show_profile:
        print(profile, file=sys.stderr, flush=True)
    print(json.dumps(result), flush=True)
    os._exit(0)


def main() -> None:
    """Parse the arguments; per target, a child process measures (each target starts fresh)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.relay_profile")
    parser.add_argument("--streams", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--settle", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3, help="targets measured alternately this many times")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime", help="the profile's order (pstats: tottime, ncalls, ...)")
    parser.add_argument("--show-profile", action="store_true", help="print each target's profile (stderr)")
    parser.add_argument("--target", default="", help=argparse.SUPPRESS)
    parser.add_argument("--upstream", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.target:
        _serve_one(args)
        return
    import subprocess

    cores = Cores()
    cores.pin_self()
    port = free_port()
    chunks = int((1.0 + args.settle + 2 * args.seconds + 5.0) * 1000 / INTERVAL_MS)
    upstream_args = ["--port", str(port), "--chunks", str(chunks), "--trickle-ms", str(INTERVAL_MS)]
    results: dict[str, list[dict[str, Any]]] = {}
    with Pinned(cores, cores.load, "benchmarks.upstream", upstream_args, port, {}):
        for _ in range(args.rounds):
            for target in ("lean_chat", "floor-relay"):
                argv = [sys.executable, "-m", "benchmarks.relay_profile", "--target", target]
                argv += ["--upstream", f"http://127.0.0.1:{port}/v1", "--streams", str(args.streams)]
                argv += ["--seconds", str(args.seconds), "--settle", str(args.settle), "--top", str(args.top)]
                argv += ["--sort", args.sort]
                if args.show_profile:
                    argv.append("--show-profile")
                done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
                sys.stderr.write(done.stderr)
                result = json.loads(done.stdout.strip().splitlines()[-1])
                results.setdefault(target, []).append(result)
                print(
                    f"{target}: {result['cpuPerChunkUs']:.1f} us a chunk, {result['callsPerChunk']:.1f} Python calls"
                    f" a chunk ({result['chunks']} chunks)",
                    flush=True,
                )
    medians = {target: sorted(r["cpuPerChunkUs"] for r in runs)[len(runs) // 2] for target, runs in results.items()}
    print(
        f"medians: lean_chat {medians['lean_chat']:.1f} us, relay floor {medians['floor-relay']:.1f} us a chunk: "
        f"{medians['lean_chat'] / medians['floor-relay']:.2f}x"
    )


if __name__ == "__main__":
    main()
