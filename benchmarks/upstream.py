"""A fake OpenAI upstream: answers every POST with a chat-completions SSE stream of N chunks.

Written at once by default; with `--trickle-ms MS`, one chunk per stream every MS milliseconds, all streams
paced by one timer (a tick every `TICK` seconds writes the chunks that are due), so that the upstream
itself costs little next to the server it feeds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
from collections.abc import Callable

__all__ = ["Ticker", "TrickleProtocol", "UpstreamProtocol", "completion_events", "completion_stream", "main"]

TICK = 0.005

WORDS = ("stream", "token", "relay", "frame", "reply", "chunk", "model", "socket")


def completion_stream(chunks: int) -> bytes:
    """The body OpenAI sends for a streamed chat completion of `chunks` content pieces, with usage and [DONE]."""
    return b"".join(completion_events(chunks))


def completion_events(chunks: int) -> list[bytes]:
    """The events of that body, one per content piece; the last one holds the finish, usage and [DONE] events."""
    head = '{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4.1",'
    head += '"system_fingerprint":"fp_bench","choices":[{"index":0,"delta":'
    tail = ',"logprobs":null,"finish_reason":%s}]}'
    lines = []
    for i in range(chunks):
        delta = {"content": f" {WORDS[i % len(WORDS)]}{i}"}
        if i == 0:
            delta = {"role": "assistant", "content": f"{WORDS[0]}0"}
        lines.append("data: " + head + json.dumps(delta, separators=(",", ":")) + tail % "null" + "\n\n")
    lines.append("data: " + head + "{}" + tail % '"stop"' + "\n\n")
    usage = {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": chunks + 12}
    lines.append(
        'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4.1",'
        '"choices":[],"usage":' + json.dumps(usage, separators=(",", ":")) + "}\n\n"
    )
    lines.append("data: [DONE]\n\n")
    events = [line.encode() for line in lines[:chunks]]
    events.append("".join(lines[chunks:]).encode())
    return events


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive connection: reads each request (headers and content-length body) and writes the response."""

    def __init__(self, response: bytes) -> None:
        self.response = response
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        """Answer every complete request in the buffer."""
        for _ in self.requests(data):
            assert self.transport is not None
            self.transport.write(self.response)

    def requests(self, data: bytes) -> list[None]:
        """One entry per request completed by this read."""
        done: list[None] = []
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return done
            length = 0
            for line in bytes(self.buffer[:end]).split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if len(self.buffer) < end + 4 + length:
                return done
            del self.buffer[: end + 4 + length]
            done.append(None)


_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n"


class _Trickle:
    """One trickling stream: its transport and the index of the chunk it writes next."""

    __slots__ = ("index", "transport")

    def __init__(self, transport: asyncio.Transport, index: int) -> None:
        self.transport = transport
        self.index = index


class Ticker:
    """One timer for every trickling stream: each tick writes the chunks due by then, and schedules the next."""

    def __init__(self, events: list[bytes], interval: float) -> None:
        self.chunks = [b"%x\r\n" % len(event) + event + b"\r\n" for event in events]
        self.chunks[-1] += b"0\r\n\r\n"
        self.period = max(1, round(interval / TICK))
        self.buckets: dict[int, list[_Trickle]] = {}
        self.tick = 0
        self.running = False

    def start(self, transport: asyncio.Transport) -> None:
        """Write the head and first chunk now; the rest one per interval."""
        transport.write(_HEAD + self.chunks[0])
        self.buckets.setdefault(self.tick + self.period, []).append(_Trickle(transport, 1))
        if not self.running:
            self.running = True
            loop = asyncio.get_running_loop()
            self.origin = loop.time() - self.tick * TICK
            loop.call_later(TICK, self._on_tick)

    def _on_tick(self) -> None:
        """Write every chunk that is due (catching up on late ticks), then sleep until the next tick."""
        loop = asyncio.get_running_loop()
        now_tick = int((loop.time() - self.origin) / TICK)
        chunks, last, period = self.chunks, len(self.chunks) - 1, self.period
        while self.tick < now_tick:
            self.tick += 1
            due = self.buckets.pop(self.tick, None)
            if not due:
                continue
            later = self.buckets.setdefault(self.tick + period, [])
            for stream in due:
                transport, index = stream.transport, stream.index
                if transport.is_closing():
                    continue
                transport.write(chunks[index])
                if index != last:
                    stream.index = index + 1
                    later.append(stream)
        if self.buckets:
            loop.call_at(self.origin + (self.tick + 1) * TICK, self._on_tick)
        else:
            self.running = False


class TrickleProtocol(UpstreamProtocol):
    """One keep-alive connection whose replies are paced by the shared ticker."""

    def __init__(self, ticker: Ticker) -> None:
        super().__init__(b"")
        self.ticker = ticker

    def data_received(self, data: bytes) -> None:
        """Start a paced reply for every complete request."""
        for _ in self.requests(data):
            assert self.transport is not None
            self.ticker.start(self.transport)


def main() -> None:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.upstream")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=1000)
    parser.add_argument("--cert", default="")
    parser.add_argument("--key", default="")
    parser.add_argument("--trickle-ms", type=float, default=0.0, help="one chunk per stream every MS ms")
    args = parser.parse_args()
    body = completion_stream(args.chunks)
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n"
    response = head + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    tls = None
    if args.cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.cert, args.key)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        factory: Callable[[], asyncio.Protocol] = lambda: UpstreamProtocol(response)  # noqa: E731
        if args.trickle_ms > 0:
            ticker = Ticker(completion_events(args.chunks), args.trickle_ms / 1000.0)
            factory = lambda: TrickleProtocol(ticker)  # noqa: E731
        server = await loop.create_server(factory, "127.0.0.1", args.port, ssl=tls, backlog=8192)
        async with server:
            await server.serve_forever()

    try:
        import uvloop

        uvloop.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
