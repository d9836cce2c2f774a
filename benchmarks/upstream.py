"""A fake OpenAI upstream: answers every POST with a chat-completions SSE stream of N chunks.

Written at once by default; with `--trickle-ms MS`, one chunk per stream every MS milliseconds, all streams
paced by one timer (a tick every `TICK` seconds writes the chunks that are due), so that the upstream
itself costs little next to the server it feeds. With `--tool-calls`, a request that offers tools and carries no
tool results yet is answered with a step of two tool calls instead (`tool_call_events`): a tool loop's first step.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
from collections.abc import Callable

__all__ = [
    "TOOL_CALLS",
    "Ticker",
    "TrickleProtocol",
    "UpstreamProtocol",
    "completion_events",
    "completion_stream",
    "main",
    "tool_call_events",
    "wants_tool_calls",
]

TICK = 0.005

WORDS = ("stream", "token", "relay", "frame", "reply", "chunk", "model", "socket")
# The tool step's calls (benchmarks/serve.py's bench tools), each streamed as its id and name, then 3 argument pieces.
TOOL_CALLS = (("lookup", '{"key":"alpha"}'), ("add", '{"a":2,"b":3}'))


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


def tool_call_events() -> list[bytes]:
    """The events of a streamed step of two tool calls (`delta.tool_calls` fragments), finished `tool_calls`."""
    head = '{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4.1",'
    head += '"system_fingerprint":"fp_bench","choices":[{"index":0,"delta":'
    tail = ',"logprobs":null,"finish_reason":%s}]}'
    deltas: list[dict[str, object]] = []
    for index, (name, args) in enumerate(TOOL_CALLS):
        first = {
            "index": index,
            "id": f"call_bench{index}",
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        deltas.append(
            {"role": "assistant", "content": None, "tool_calls": [first]} if index == 0 else {"tool_calls": [first]}
        )
        size = -(-len(args) // 3)
        for start in range(0, len(args), size):
            piece = {"index": index, "function": {"arguments": args[start : start + size]}}
            deltas.append({"tool_calls": [piece]})
    lines = ["data: " + head + json.dumps(d, separators=(",", ":")) + tail % "null" + "\n\n" for d in deltas]
    usage = {"prompt_tokens": 40, "completion_tokens": 30, "total_tokens": 70}
    last = "data: " + head + "{}" + tail % '"tool_calls"' + "\n\n"
    last += 'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4.1",'
    last += '"choices":[],"usage":' + json.dumps(usage, separators=(",", ":")) + "}\n\ndata: [DONE]\n\n"
    return [line.encode() for line in lines] + [last.encode()]


def wants_tool_calls(body: bytes) -> bool:
    """True for a first step of a tool loop: the request offers tools and holds no tool results yet."""
    return b'"tools":' in body and b'"role":"tool"' not in body


def _chunked(events: list[bytes]) -> bytes:
    """A whole response of these events, chunked."""
    body = b"".join(events)
    return _HEAD + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive connection: reads each request (headers and content-length body) and writes the response."""

    def __init__(self, response: bytes, tool_response: bytes = b"") -> None:
        self.response = response
        self.tool_response = tool_response  # with --tool-calls: the answer to a tool loop's first step
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        """Answer every complete request in the buffer."""
        for body in self.requests(data):
            assert self.transport is not None
            tools = self.tool_response and wants_tool_calls(body)
            self.transport.write(self.tool_response if tools else self.response)

    def requests(self, data: bytes) -> list[bytes]:
        """The body of each request completed by this read."""
        done: list[bytes] = []
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
            done.append(bytes(self.buffer[end + 4 : end + 4 + length]))
            del self.buffer[: end + 4 + length]


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

    def __init__(self, ticker: Ticker, tool_ticker: Ticker | None = None) -> None:
        super().__init__(b"")
        self.ticker = ticker
        self.tool_ticker = tool_ticker

    def data_received(self, data: bytes) -> None:
        """Start a paced reply for every complete request."""
        for body in self.requests(data):
            assert self.transport is not None
            if self.tool_ticker is not None and wants_tool_calls(body):
                self.tool_ticker.start(self.transport)
            else:
                self.ticker.start(self.transport)


def main() -> None:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.upstream")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=1000)
    parser.add_argument("--cert", default="")
    parser.add_argument("--key", default="")
    parser.add_argument("--trickle-ms", type=float, default=0.0, help="one chunk per stream every MS ms")
    parser.add_argument("--tool-calls", action="store_true", help="answer a tool loop's first step with 2 calls")
    args = parser.parse_args()
    response = _chunked(completion_events(args.chunks))
    tool_response = _chunked(tool_call_events()) if args.tool_calls else b""
    tls = None
    if args.cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.cert, args.key)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        factory: Callable[[], asyncio.Protocol] = lambda: UpstreamProtocol(response, tool_response)  # noqa: E731
        if args.trickle_ms > 0:
            ticker = Ticker(completion_events(args.chunks), args.trickle_ms / 1000.0)
            tool_ticker = Ticker(tool_call_events(), args.trickle_ms / 1000.0) if args.tool_calls else None
            factory = lambda: TrickleProtocol(ticker, tool_ticker)  # noqa: E731
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
