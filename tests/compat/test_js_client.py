"""The stream client written the way ai-chat-kit's hook reads SSE: served to the demo page, run under Node."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from compat.node import CLIENT, NODE, node_stream
from lean_chat import create_app
from tests.support.apps import in_process
from tests.support.frames import check_grammar, parse_frames
from tests.support.live_server import LiveServer

ROOT = Path(__file__).resolve().parents[2]
SERVED_CLIENT = ROOT / "lean_chat" / "http" / "static" / "client.mjs"


def _expected(body: dict[str, Any]) -> list[Any]:
    """The frames lean_chat sends for this request (read in-process, with Python's own parser)."""

    async def read() -> bytes:
        async with in_process(sqlite_path="") as http:
            return (await http.post("/chat/stream", json=body)).content

    return parse_frames(asyncio.run(read()))


@pytest.mark.node
def test_the_client_reads_a_live_stream_with_pings_between_tokens(live_server: Callable[..., LiveServer]) -> None:
    body = {
        "userId": "node",
        "messages": [{"role": "user", "content": 'Grüße 👩🏽‍💻 "quotes" back\\slash'}],
        "params": {"mock": {"targetChars": 250, "tokenDelayMs": 10}},
    }
    server = live_server(create_app(sqlite_path="", heartbeat_seconds=0.005))
    stats = node_stream(f"{server.url}/chat/stream", body)
    frames = _expected({**body, "params": {"mock": {"targetChars": 250, "tokenDelayMs": 0}}})
    done = check_grammar(frames)
    assert stats["status"] == 200
    assert stats["error"] is None
    assert stats["tokens"] == [f.data["token"] for f in frames if f.event == "token"]
    assert "".join(stats["tokens"]) == stats["done"]["message"]["content"]
    assert stats["done"] == done.data
    assert stats["comments"] >= 1


class Chopper:
    """A server that sends fixed SSE bytes in small writes, cutting frames, separators and UTF-8 characters."""

    def __init__(self, body: bytes, size: int) -> None:
        self.body = body
        self.size = size

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Serve the body, one small write at a time."""
        if scope["type"] != "http":
            return
        headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for start in range(0, len(self.body), self.size):
            await send({"type": "http.response.body", "body": self.body[start : start + self.size], "more_body": True})
            await asyncio.sleep(0.002)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


@pytest.mark.node
def test_the_client_copes_with_frames_cut_across_reads(live_server: Callable[..., LiveServer]) -> None:
    body = {
        "userId": "cut",
        "messages": [{"role": "user", "content": 'naïve café 東京 🚀🚀 "q" \\ end'}],
        "params": {"mock": {"targetChars": 250, "tokenDelayMs": 0}},
    }
    frames = _expected(body)
    wire = b"".join(f.raw.encode() + b"\n\n" + (b": ping\n\n" if i % 5 == 0 else b"") for i, f in enumerate(frames))
    assert "🚀".encode() in wire
    server = live_server(Chopper(wire, 9), lifespan="off")
    stats = node_stream(server.url, body)
    assert stats["cutReads"] > 10, stats["reads"]
    assert stats["comments"] == len(range(0, len(frames), 5))
    assert stats["tokens"] == [f.data["token"] for f in frames if f.event == "token"]
    assert stats["done"] == frames[-1].data


@pytest.mark.node
def test_the_client_reports_errors(live_server: Callable[..., LiveServer]) -> None:
    server = live_server(create_app(sqlite_path=""))
    no_key = node_stream(
        f"{server.url}/chat/stream", {"userId": "e", "messages": [], "params": {"model": "claude-3-5-sonnet"}}
    )
    assert no_key["status"] == 200 and no_key["done"] is None and no_key["tokens"] == []
    assert no_key["error"]["message"] == "Provider 'anthropic' is not configured (missing API key)."
    invalid = node_stream(f"{server.url}/chat/stream", {"userId": "", "messages": []})
    assert invalid["status"] == 422
    assert json.loads(invalid["error"]["detail"])["detail"][0]["loc"] == ["body", "userId"]


def test_the_demo_page_loads_the_served_client() -> None:
    async def fetch() -> tuple[str, httpx.Response, int]:
        async with in_process(sqlite_path="", serve_demo_page=True) as http:
            page = (await http.get("/")).text
            match = re.search(r'await import\(new URL\("([^"]+)", base\)\)', page)
            assert match is not None, "the page imports no client"
            client = await http.get(http.base_url.join(match.group(1)))
        async with in_process(sqlite_path="") as http:
            off = (await http.get("/static/client.mjs")).status_code
        return page, client, off

    page, client, off = asyncio.run(fetch())
    assert "function streamChat" not in page and "streamChat(api(" in page
    assert client.status_code == 200
    assert client.headers["content-type"] == "text/javascript; charset=utf-8"
    assert client.content == SERVED_CLIENT.read_bytes()
    assert "response.body.getReader()" in client.text and "new TextDecoder()" in client.text
    assert off == 404


@pytest.mark.node
def test_node_runs_the_very_client_the_page_loads() -> None:
    script = (
        f"import * as cli from {json.dumps(CLIENT.as_uri())};\n"
        f"import * as served from {json.dumps(SERVED_CLIENT.as_uri())};\n"
        "console.log(JSON.stringify([cli.streamChat === served.streamChat, cli.parseFrame === served.parseFrame]));"
    )
    result = subprocess.run([NODE, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [True, True]
    assert "function streamChat" not in CLIENT.read_text(encoding="utf-8")


@pytest.mark.node
def test_the_client_parses_frames_like_the_python_reader() -> None:
    script = (
        "import { parseFrame } from " + json.dumps(CLIENT.as_uri()) + ";\n"
        'const frames = ["event: token\\ndata: {\\"type\\":\\"token\\",\\"token\\":\\"a\\\\nb\\"}", ": ping",'
        ' "event: done\\ndata: {\\"x\\":\\n" + "data: 1}", "event: token\\ndata: {\\"token\\":\\"c\\"}\\nid: 7"];\n'
        "console.log(JSON.stringify(frames.map(parseFrame)));"
    )
    result = subprocess.run([NODE, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"event": "token", "data": {"type": "token", "token": "a\nb"}, "comment": None, "comments": 0, "id": None},
        {"event": None, "data": None, "comment": "ping", "comments": 1, "id": None},
        {"event": "done", "data": {"x": 1}, "comment": None, "comments": 0, "id": None},
        {"event": "token", "data": {"token": "c"}, "comment": None, "comments": 0, "id": "7"},  # resumable streams
    ]
