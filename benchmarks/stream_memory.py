"""`python -m benchmarks.stream_memory`: where the memory of an open stream goes, per target, by type and by site.

Each target (lean_chat and its floor, for mock streams and for relayed ones) runs as its own server on the server
core, served as `lean-chat serve` serves (`lean_chat.listener`). After a few warm-up streams the server takes a
census (a full collection, RSS, `gc.get_objects()` by type with `sys.getsizeof`, and with `--trace` a
`tracemalloc` snapshot); N streams are then started within a second, and mid-stream it takes a second census. The
differences over N are the bytes of one open stream: RSS (untraced run), traced bytes by allocation site (traced
run: tracemalloc's own bookkeeping inflates RSS, so the RSS figure comes from the untraced run), and live objects
by type. Streams are long (10 s) so that every one is open at the second census. `--compare BEFORE AFTER` reads two
`--json` files (of two trees) and tabulates what each byte of a stream is, by group.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
import time
import tracemalloc
import types
import urllib.request
import uuid
from collections import Counter
from typing import Any

from .loadgen import Connection, Reply
from .processes import Cores, Pinned, free_port
from .scenarios import chat_body, stream_request

__all__ = ["main"]

CENSUS_PATH = "/__bench__/census"
INTERVAL_MS = 50.0
CHUNKS = 200  # relayed chunks per stream: 10 s at 20/s
MOCK_CHARS = 400  # the mock's reply: about 200 tokens, 10 s at 20 tokens/s
# (label, server target, relayed)
TARGETS = {
    "lean_chat mock": ("lean_chat", False),
    "mock floor": ("floor-paced", False),
    "lean_chat relay": ("lean_chat", True),
    "relay floor": ("floor-relay", True),
}


# What each byte of an open stream is: the census's types in a few groups (the gc-tracked objects' own sizes), and the
# rest of RSS (strings, bytes and numbers, which the collector does not track; libuv's handles; the allocator's slack).
GROUPS = (
    ("coroutine frames and generators", ("coroutine", "async_generator", "generator", "contextlib.")),
    (
        "tasks (each with its context and its entry in asyncio's registry)",
        ("_asyncio.Task", "_contextvars.", "weakref.R"),
    ),
    (
        "futures, timers and callbacks",
        ("_asyncio.Future", "uvloop.loop.UVTimer", "uvloop.loop.TimerHandle", "method", "builtin_", "function", "cell"),
    ),
    (
        "the connection: uvicorn's protocol, request cycle and events; uvloop's transport; httptools",
        ("collections.deque", "uvloop.", "httptools.", "uvicorn.", "asyncio.locks.Event", "socket.", "weakref.K"),
    ),
    ("the upstream request: httpx's objects, lean_chat's transport", ("httpx.", "lean_chat.providers.transport.")),
    (
        "lean_chat's own objects (turn, stream, request, hub entry, parser)",
        ("lean_chat.", "starlette.", "asyncio.", "_"),
    ),
    ("lists, dicts, tuples, sets", ("list", "dict", "tuple", "set")),
)
REST = "not tracked by the collector (strings, bytes, libuv handles) and the allocator's slack"


def groups(result: dict[str, Any]) -> dict[str, float]:
    """Bytes per stream by group (each type in the first group one of whose prefixes it starts with), and the rest."""
    out = dict.fromkeys([name for name, _ in GROUPS], 0.0)
    for kind, (_, size) in result["types"].items():
        if kind == "coroutine benchmarks/stream_memory.py:Census.__call__":
            continue  # the census's own wrapper: no part of any target
        group = next((name for name, prefixes in GROUPS if kind.startswith(prefixes)), GROUPS[-2][0])
        out[group] += size
    out[REST] = result["rss"] - sum(out.values())
    return out


def compare(before: dict[str, Any], after: dict[str, Any]) -> str:
    """A markdown table: bytes per stream by group, per target, before and after."""
    labels = [label for label in TARGETS if label in after]
    head = "| what (bytes per open stream) | " + " | ".join(
        f"{label} before | after" if label in before else label for label in labels
    )
    lines = [head + " |", "|---" * (1 + sum(2 if label in before else 1 for label in labels)) + "|"]
    rows = [("RSS per stream", lambda r: r["rss"])] + [
        (name, lambda r, name=name: groups(r)[name]) for name in [*(name for name, _ in GROUPS), REST]
    ]
    for name, value in rows:
        cells = []
        for label in labels:
            if label in before:
                cells.append(f"{value(before[label]['plain']):,.0f}")
            cells.append(f"{value(after[label]['plain']):,.0f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _rss() -> int:
    """This process's resident memory."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Census:
    """Wraps the app under test: `GET /__bench__/census` collects, then reports memory by type (and by site)."""

    def __init__(self, app: Any, frames: int) -> None:
        self.app = app
        self.frames = frames
        self.base: tracemalloc.Snapshot | None = None
        if frames:
            tracemalloc.start(frames)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Answer the census path; pass everything else through."""
        if scope["type"] == "http" and scope["path"] == CENSUS_PATH:
            body = json.dumps(self.take(scope.get("query_string", b"") == b"base")).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)

    def take(self, base: bool) -> dict[str, Any]:
        """RSS, live objects by type (count, shallow bytes), and traced bytes by site against the base census."""
        gc.collect()
        counts: Counter[str] = Counter()
        sizes: Counter[str] = Counter()
        for obj in gc.get_objects():
            name = _kind(obj)
            counts[name] += 1
            sizes[name] += sys.getsizeof(obj)
        result: dict[str, Any] = {
            "rss": _rss(),
            "blocks": sys.getallocatedblocks(),
            "types": {name: [counts[name], sizes[name]] for name in counts},
        }
        if self.frames:
            snapshot = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)]
            )
            result["traced"] = sum(stat.size for stat in snapshot.statistics("filename"))
            if base:
                self.base = snapshot
            elif self.base is not None:
                key = "traceback" if self.frames > 1 else "lineno"
                result["sites"] = [
                    [_site(stat.traceback), stat.size_diff, stat.count_diff]
                    for stat in snapshot.compare_to(self.base, key)[:60]
                ]
        return result


def _kind(obj: object) -> str:
    """A type's name; for coroutines and generators, the function's too (which frames a stream keeps)."""
    kind = type(obj)
    name = f"{kind.__module__}.{kind.__qualname__}" if kind.__module__ != "builtins" else kind.__qualname__
    code = getattr(obj, "cr_code", None) or getattr(obj, "ag_code", None) or getattr(obj, "gi_code", None)
    if isinstance(code, types.CodeType):
        name += f" {code.co_filename.rsplit('/', 2)[-2]}/{code.co_filename.rsplit('/', 1)[-1]}:{code.co_qualname}"
    return name


def _site(traceback: tracemalloc.Traceback) -> str:
    """`package/module.py:line` for each frame of an allocation site (innermost first)."""
    parts = []
    for frame in traceback:
        path = frame.filename
        for marker in ("site-packages/", "lib/python3.11/", "/wt-mem/", "/main/"):
            if marker in path:
                path = path.split(marker, 1)[1]
                break
        parts.append(f"{path}:{frame.lineno}")
    return " < ".join(parts)


def _serve(args: argparse.Namespace) -> None:
    """The server process: a benchmark target behind the census, served as `lean-chat serve` serves."""
    import uvicorn

    from lean_chat.server.listener import serve

    from .serve import build_target

    app = Census(build_target(args.serve, args.sqlite_path, args.upstream, args.floor_request), args.trace)
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
    serve(config)


def _census(port: int, base: bool = False) -> dict[str, Any]:
    """Ask the server for a census."""
    url = f"http://127.0.0.1:{port}{CENSUS_PATH}" + ("?base" if base else "")
    with urllib.request.urlopen(url, timeout=120) as answer:
        result: dict[str, Any] = json.loads(answer.read())
        return result


async def _streams(
    port: int, bodies: list[bytes], ramp: float, hold: float, marker: bytes
) -> tuple[dict[str, Any], list[Reply]]:
    """Start the streams over `ramp` seconds; after `hold` more, take the census; then let them end."""
    count = len(bodies)
    connections: list[Connection] = []

    async def one(index: int) -> Reply:
        await asyncio.sleep(index * ramp / count)
        connection = await Connection.open(port, token_marker=marker)
        connections.append(connection)
        reply = await connection.fetch(stream_request(bodies[index]))
        connection.close()
        return reply

    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(one(i)) for i in range(count)]
    await asyncio.sleep(ramp + hold)
    census = await loop.run_in_executor(None, _census, port)
    open_then = sum(1 for task in tasks if not task.done())
    census["openStreams"] = open_then
    done, pending = await asyncio.wait(tasks, timeout=60)
    for connection in connections:
        connection.close()
    replies = [task.result() for task in done if not task.cancelled() and task.exception() is None]
    return census, replies


def _per_stream(base: dict[str, Any], during: dict[str, Any], streams: int) -> dict[str, Any]:
    """The census differences over the number of streams."""
    types = {}
    for name, (count, size) in during["types"].items():
        before = base["types"].get(name, [0, 0])
        if count != before[0] or size != before[1]:
            types[name] = [(count - before[0]) / streams, (size - before[1]) / streams]
    result: dict[str, Any] = {
        "streams": streams,
        "rss": (during["rss"] - base["rss"]) / streams,
        "blocks": (during["blocks"] - base["blocks"]) / streams,
        "objects": sum(count for count, _ in types.values()),
        "objectBytes": sum(size for _, size in types.values()),
        "types": dict(sorted(types.items(), key=lambda item: -item[1][1])),
    }
    if "traced" in during:
        result["traced"] = (during["traced"] - base["traced"]) / streams
        result["sites"] = [[site, size / streams, count / streams] for site, size, count in during.get("sites", [])]
    return result


async def _measure(
    cores: Cores, scratch: str, label: str, streams: int, upstream_port: int, trace: int
) -> dict[str, Any]:
    """One target, one pass (traced or not): census before and during N open streams."""
    target, relayed = TARGETS[label]
    mock = {"tokenDelayMs": int(INTERVAL_MS), "targetChars": MOCK_CHARS}
    body = chat_body("floor", mock=mock)
    port = free_port()
    upstream = f"http://127.0.0.1:{upstream_port}/v1" if relayed else ""
    sqlite = os.path.join(scratch, f"{target}-{uuid.uuid4().hex[:8]}.sqlite3")
    args = ["--serve", target, "--port", str(port), "--sqlite-path", sqlite, "--upstream", upstream]
    args += ["--floor-request", body.decode(), "--trace", str(trace)]
    with Pinned(cores, cores.server, "benchmarks.stream_memory", args, port, {}):

        def bodies(tag: str, count: int) -> list[bytes]:
            if relayed:
                return [chat_body(f"{tag}-{i}", model="gpt-4.1") for i in range(count)]
            return [chat_body(f"{tag}-{i}", mock=mock) for i in range(count)]

        # Warm-up: a few whole streams, so that the first census sees every lazy import and cache filled.
        # The relay floor relays the upstream's own events: its tokens are counted by their content field.
        marker = b'"content":"' if target == "floor-relay" else b"event: token\n"
        await _streams(port, bodies("w", 20), 0.2, 0.0, marker)
        await asyncio.sleep(0.5)
        base = await asyncio.get_running_loop().run_in_executor(None, _census, port, True)
        during, replies = await _streams(port, bodies("m", streams), 1.0, 2.0, marker)
    result = _per_stream(base, during, streams)
    result["openAtCensus"] = during["openStreams"]
    # The relay floor's stream ends with its own `done` frame after the upstream's events, so `ok` holds for all.
    result["ok"] = sum(1 for reply in replies if reply.ok)
    return result


def _report(label: str, plain: dict[str, Any], traced: dict[str, Any] | None, top: int) -> str:
    """One target's lines."""
    lines = [
        f"## {label}: {plain['streams']} streams ({plain['openAtCensus']} open at the census, {plain['ok']} ok)",
        f"RSS {plain['rss'] / 1024:.1f} KB/stream; allocated blocks {plain['blocks']:.0f}/stream; "
        f"gc-tracked objects {plain['objects']:.1f}/stream, {plain['objectBytes']:.0f} bytes (shallow)",
        "",
        "| type (gc-tracked) | objects/stream | bytes/stream |",
        "|---|---|---|",
    ]
    for name, (count, size) in list(plain["types"].items())[:top]:
        if abs(size) >= 8 or abs(count) >= 0.05:
            lines.append(f"| {name} | {count:.2f} | {size:.0f} |")
    if traced is not None:
        lines += [
            "",
            f"traced (tracemalloc) {traced['traced']:.0f} bytes/stream",
            "",
            "| allocation site | bytes/stream | blocks/stream |",
            "|---|---|---|",
        ]
        for site, size, count in traced["sites"][:top]:
            lines.append(f"| {site} | {size:.0f} | {count:.2f} |")
    return "\n".join(lines)


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    """Every chosen target: an untraced pass (RSS, types), then a traced one (sites)."""
    cores = Cores()
    cores.pin_self()
    scratch = tempfile.mkdtemp(prefix="lean-memory-")
    labels = [label.strip() for label in args.targets.split(",")] if args.targets else list(TARGETS)
    results: dict[str, Any] = {}
    upstream_port = free_port()
    upstream_args = ["--port", str(upstream_port), "--chunks", str(CHUNKS), "--trickle-ms", str(INTERVAL_MS)]
    with Pinned(cores, cores.load, "benchmarks.upstream", upstream_args, upstream_port, {}):
        for label in labels:
            print(f"[{time.strftime('%H:%M:%S')}] {label}", file=sys.stderr, flush=True)
            plain = await _measure(cores, scratch, label, args.streams, upstream_port, 0)
            traced = None
            if args.frames:
                traced = await _measure(cores, scratch, label, args.streams, upstream_port, args.frames)
            results[label] = {"plain": plain, "traced": traced}
            print(_report(label, plain, traced, args.top) + "\n", flush=True)
    return results


def main() -> None:
    """Parse the arguments; serve (the child) or measure (the parent)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stream_memory")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--targets", default="", help=f"comma-separated, of: {', '.join(TARGETS)}")
    parser.add_argument("--frames", type=int, default=1, help="tracemalloc frames per site (0: no traced pass)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--json", default="", help="write every figure to this file")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"), help="two --json files: a table by group")
    # The server process's own arguments.
    parser.add_argument("--serve", default="", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--sqlite-path", default="", help=argparse.SUPPRESS)
    parser.add_argument("--upstream", default="", help=argparse.SUPPRESS)
    parser.add_argument("--floor-request", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--trace", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args)
        return
    if args.compare:
        with open(args.compare[0]) as before, open(args.compare[1]) as after:
            print(compare(json.load(before), json.load(after)))
        return
    results = asyncio.run(_run(args))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)


if __name__ == "__main__":
    main()
