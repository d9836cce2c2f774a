"""The HTTP client alone: N streams from the trickling upstream in one process; first byte, CPU per upstream chunk.

`python -m benchmarks.clients --port P --streams N --client NAME` prints one JSON line. Clients: `httpx` (its
own transport, httpcore), `lean` (httpx over lean_chat's transport), `aiohttp-transport` (httpx over
httpx-aiohttp's AiohttpTransport) and `aiohttp` (aiohttp alone); the last two only when installed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["CLIENTS", "main"]

CLIENTS = ("httpx", "lean", "aiohttp-transport", "aiohttp")
BODY = b'{"model":"gpt-4.1","messages":[{"role":"user","content":"hi"}],"stream":true}'
HEADERS = {"authorization": "Bearer sk-bench", "content-type": "application/json"}


def _available(name: str) -> bool:
    """Whether the client's packages are installed."""
    try:
        if name == "aiohttp-transport":
            import httpx_aiohttp  # noqa: F401
        if name in ("aiohttp", "aiohttp-transport"):
            import aiohttp  # noqa: F401
    except ImportError:
        return False
    return True


async def _run(name: str, url: str, streams: int, ramp: float, events: int) -> dict[str, Any]:
    """Start the streams over the ramp; count chunks; time first bytes; CPU of the whole run."""
    firsts: list[float] = []
    chunks = [0]
    failures = [0]

    stream: Callable[[float], Awaitable[None]]
    closer: Callable[[], Awaitable[None]]
    if name == "aiohttp":
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

        async def stream(sent: float) -> None:
            async with session.post(url, data=BODY, headers=HEADERS) as response:
                first = True
                async for _ in response.content.iter_any():
                    if first:
                        firsts.append(time.perf_counter() - sent)
                        first = False
                    chunks[0] += 1

        closer = session.close
    else:
        import httpx

        from lean_chat.config import Settings
        from lean_chat.providers.client import upstream_client

        if name == "aiohttp-transport":
            import aiohttp
            from httpx_aiohttp import AiohttpTransport

            transport = AiohttpTransport(client=aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)))
            client = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(600.0))
        else:
            client = upstream_client(Settings(upstream_transport="httpx" if name == "httpx" else "lean"))

        async def stream(sent: float) -> None:
            request = client.build_request("POST", url, headers=HEADERS, content=BODY)
            response = await client.send(request, stream=True)
            try:
                first = True
                async for _ in response.aiter_bytes():
                    if first:
                        firsts.append(time.perf_counter() - sent)
                        first = False
                    chunks[0] += 1
            finally:
                await response.aclose()

        closer = client.aclose

    async def one(index: int) -> None:
        await asyncio.sleep(index * ramp / streams)
        try:
            await stream(time.perf_counter())
        except Exception:
            failures[0] += 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(streams)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await closer()
    firsts.sort()
    return {
        "client": name,
        "streams": streams,
        "failures": failures[0],
        "reads": chunks[0],
        "firstByteP50Ms": round(firsts[len(firsts) // 2] * 1000.0, 2) if firsts else 0.0,
        "firstByteP99Ms": round(firsts[min(len(firsts) - 1, int(len(firsts) * 0.99))] * 1000.0, 2) if firsts else 0.0,
        "cpuSeconds": round(cpu, 3),
        "upstreamChunks": streams * events,
        "cpuPerChunkUs": round(cpu / max(1, streams * events) * 1e6, 2),
        "seconds": round(wall, 2),
    }


def main() -> None:
    """Parse the arguments, run one client, print its figures as JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.clients")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--ramp", type=float, default=1.0)
    parser.add_argument("--client", choices=CLIENTS, required=True)
    parser.add_argument("--events", type=int, default=101, help="chunks the upstream sends per stream")
    args = parser.parse_args()
    if not _available(args.client):
        print(json.dumps({"client": args.client, "missing": True}))
        return
    import uvloop

    url = f"http://127.0.0.1:{args.port}/v1/chat/completions"
    print(json.dumps(uvloop.run(_run(args.client, url, args.streams, args.ramp, args.events))))


if __name__ == "__main__":
    main()
