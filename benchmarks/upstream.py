"""A fake OpenAI upstream: answers every POST with a chat-completions SSE stream of N chunks, written at once."""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl

__all__ = ["UpstreamProtocol", "completion_stream", "main"]

WORDS = ("stream", "token", "relay", "frame", "reply", "chunk", "model", "socket")


def completion_stream(chunks: int) -> bytes:
    """The body OpenAI sends for a streamed chat completion of `chunks` content pieces, with usage and [DONE]."""
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
    return "".join(lines).encode()


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
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for line in bytes(self.buffer[:end]).split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if len(self.buffer) < end + 4 + length:
                return
            del self.buffer[: end + 4 + length]
            assert self.transport is not None
            self.transport.write(self.response)


def main() -> None:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.upstream")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=1000)
    parser.add_argument("--cert", default="")
    parser.add_argument("--key", default="")
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
        server = await loop.create_server(
            lambda: UpstreamProtocol(response), "127.0.0.1", args.port, ssl=tls, backlog=4096
        )
        async with server:
            await server.serve_forever()

    try:
        import uvloop

        uvloop.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
