"""The demo page: one static HTML file where a person chats with the server and watches the reply stream in."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["demo_page", "demo_page_html"]


@lru_cache(maxsize=1)
def demo_page_html() -> bytes:
    """The page's bytes, read once from the package."""
    return resources.files("lean_chat").joinpath("static", "index.html").read_bytes()


async def demo_page(request: Request) -> Response:
    """`GET /`: the demo page (served only when `Settings.serve_demo_page` is on)."""
    return Response(demo_page_html(), media_type="text/html; charset=utf-8", headers={"cache-control": "no-cache"})
