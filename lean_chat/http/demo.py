"""The demo page: one static HTML file where a person chats with the server and watches the reply stream in."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["CLIENT_PATH", "demo_client", "demo_page", "demo_page_html", "static_bytes"]

# Where the page's stream client is served, relative to the page.
CLIENT_PATH = "/static/client.mjs"


@lru_cache(maxsize=2)
def static_bytes(name: str) -> bytes:
    """A file of the package's `static/` folder, read once."""
    return (resources.files("lean_chat.http") / "static" / name).read_bytes()


def demo_page_html() -> bytes:
    """The page's bytes."""
    return static_bytes("index.html")


async def demo_page(request: Request) -> Response:
    """`GET /`: the demo page (served only when `Settings.serve_demo_page` is on)."""
    return Response(demo_page_html(), media_type="text/html; charset=utf-8", headers={"cache-control": "no-cache"})


async def demo_client(request: Request) -> Response:
    """`GET /static/client.mjs`: the stream client the page imports (a JavaScript module)."""
    body = static_bytes("client.mjs")
    return Response(body, media_type="text/javascript; charset=utf-8", headers={"cache-control": "no-cache"})
