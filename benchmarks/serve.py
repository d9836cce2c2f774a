"""One server under test, as its own process: lean_chat, the reference, or a floor, under uvicorn with uvloop.

lean_chat and the floors listen as `lean-chat serve` does (`lean_chat.server.listener`); the reference as uvicorn does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import time
from typing import Any

import uvicorn

from lean_chat.server import gc_freeze
from lean_chat.server.listener import serve

__all__ = ["BenchHooks", "bench_tools", "build_target", "main"]

STATS_PATH = "/__bench__/stats"


def _rss_bytes() -> int:
    """This process's resident memory."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class BenchHooks:
    """Wraps the app under test: answers `GET /__bench__/stats` and, when asked, watches the event loop for stalls."""

    def __init__(self, app: Any, watch_loop: bool) -> None:
        self.app = app
        self.watch_loop = watch_loop
        self.largest_stall = 0.0
        self.largest_lateness = 0.0
        self.largest_loop_thread_stall = 0.0
        self.gc_pauses = [0, 0, 0]
        self.gc_largest = [0.0, 0.0, 0.0]
        self._gc_started = 0.0
        gc.callbacks.append(self._on_gc)
        self._watcher: asyncio.Task[None] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Serve the stats path, pass everything else through."""
        if self.watch_loop and self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())
        if scope["type"] == "http" and scope["path"] == STATS_PATH:
            stats = {
                "rss": _rss_bytes(),
                "largestStallMs": round(self.largest_stall * 1000.0, 3),
                "largestLatenessMs": round(self.largest_lateness * 1000.0, 3),
                "largestLoopThreadStallMs": round(self.largest_loop_thread_stall * 1000.0, 3),
                "gcPauses": self.gc_pauses,
                "gcLargestMs": [round(pause * 1000.0, 3) for pause in self.gc_largest],
            }
            if b"reset" in scope.get("query_string", b""):
                self.largest_stall = self.largest_lateness = self.largest_loop_thread_stall = 0.0
                self.gc_pauses = [0, 0, 0]
                self.gc_largest = [0.0, 0.0, 0.0]
            body = json.dumps(stats).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        """Count the garbage collector's passes per generation and keep the longest of each."""
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        generation = info["generation"]
        self.gc_pauses[generation] += 1
        self.gc_largest[generation] = max(self.gc_largest[generation], time.perf_counter() - self._gc_started)

    async def _watch(self) -> None:
        """Sleep 1 ms at a time; waking later than that is a stall, counted only as far as this process worked.

        Lateness alone also counts time the process was not running at all (other programs on a shared
        core); the process's CPU time over the same span (all threads, so a worker holding the GIL counts)
        bounds the part of the lateness that the server itself caused; the loop thread's own CPU time
        tells how much of that the event loop ran itself (the rest: other threads, such as SQLite's).
        """
        interval = 0.001
        while True:
            start, cpu, own = time.perf_counter(), time.process_time(), time.thread_time()
            await asyncio.sleep(interval)
            late = time.perf_counter() - start - interval
            if late > self.largest_lateness:
                self.largest_lateness = late
            stall = min(late, time.process_time() - cpu)
            if stall > self.largest_stall:
                self.largest_stall = stall
            loop_thread_stall = min(late, time.thread_time() - own)
            if loop_thread_stall > self.largest_loop_thread_stall:
                self.largest_loop_thread_stall = loop_thread_stall


def bench_tools() -> list[Any]:
    """The tool loop benchmark's tools: a lookup and an addition, both answered at once."""

    async def lookup(key: str) -> dict[str, Any]:
        """A value by key."""
        return {"key": key, "value": len(key)}

    async def add(a: int, b: int) -> int:
        """The sum of two numbers."""
        return a + b

    return [lookup, add]


def build_target(target: str, sqlite_path: str, upstream: str, floor_request: str) -> Any:
    """The ASGI app for a target name."""
    # A key only when there is an upstream: with none, replies without a model go straight to the mock.
    key = "sk-bench" if upstream else None
    if target == "lean_chat":
        from lean_chat import create_app

        # benchmarks/postgres.py runs lean_chat on PostgreSQL through this variable.
        store: dict[str, Any] = {"sqlite_path": sqlite_path, "database_url": os.environ.get("LEAN_CHAT_DATABASE_URL")}
        metrics = os.environ.get("LEAN_CHAT_METRICS", "") == "1"  # benchmarks.metrics_cost turns it on
        # benchmarks/resume_cost.py: the stream hub on Redis when asked for (default: in memory).
        redis_url = os.environ.get("BENCH_REDIS_URL", "")
        hub: dict[str, Any] = {}
        if redis_url:
            hub = {"redis_url": redis_url, "redis_prefix": os.environ.get("BENCH_REDIS_PREFIX", "")}
        # benchmarks/tool_loop_cost.py: two cheap tools for the mock's tool turns.
        tools: dict[str, Any] = {"tools": bench_tools()} if os.environ.get("BENCH_TOOLS", "") == "1" else {}
        if upstream:
            # LEAN_CHAT_UPSTREAM_TRANSPORT=httpx measures httpx's own transport instead of lean_chat's.
            transport = os.environ.get("LEAN_CHAT_UPSTREAM_TRANSPORT", "lean")
            options: dict[str, Any] = {
                "openai_api_key": key,
                "openai_base_url": upstream,
                "upstream_transport": transport,
            }
            return create_app(**store, **hub, **tools, **options, metrics=metrics)
        return create_app(**store, **hub, **tools, metrics=metrics)
    if target == "reference":
        from fastapi_ai_chat import create_app as create_reference

        if upstream:
            os.environ["OPENAI_BASE_URL"] = upstream
        return create_reference(sqlite_path=sqlite_path, openai_api_key=key)
    if target.startswith("floor-"):
        # lean_chat's process-wide collector settings, so that no floor stalls in pauses lean_chat does not have
        # (full collections of every open stream's objects: 60 to 75 ms at 1,000 relayed streams).
        gc_freeze.hold()
    if target == "floor-relay":
        from .floor import RelayFloor

        return RelayFloor(upstream)
    if target.startswith("floor-"):
        from .floor import FloorApp

        request = json.loads(floor_request)
        prompt = request["messages"][-1]["content"]
        knobs = (request.get("params") or {}).get("mock") or {}
        return FloorApp(target.removeprefix("floor-"), prompt, knobs)
    raise SystemExit(f"unknown target {target!r}")


def main() -> None:
    """Parse the arguments and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve")
    parser.add_argument("target")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sqlite-path", default="")
    parser.add_argument("--upstream", default="", help="OpenAI base URL (configures a key)")
    parser.add_argument("--floor-request", default="{}")
    parser.add_argument("--watch-loop", action="store_true")
    args = parser.parse_args()
    app = BenchHooks(build_target(args.target, args.sqlite_path, args.upstream, args.floor_request), args.watch_loop)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        backlog=4096,
        lifespan="auto",
        timeout_keep_alive=60,
    )
    if args.target == "reference":
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn raises the signal it caught again once it has stopped
            uvicorn.Server(config).run()  # as its users run it: uvicorn's own listener
    else:
        serve(config)  # as `lean-chat serve` runs lean_chat: every waiting connection accepted each loop turn


if __name__ == "__main__":
    main()
