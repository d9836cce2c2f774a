"""`HTTPProvider._request`: the request httpx would build from the same URL, headers and body, made for less."""

from __future__ import annotations

import httpx
import pytest

from lean_chat.config import Settings
from lean_chat.providers import build_providers
from lean_chat.providers.base import ContextMessage, StreamCall
from lean_chat.providers.client import upstream_client
from lean_chat.providers.http_provider import HTTPProvider

pytestmark = pytest.mark.anyio

MODELS = {"openai": "gpt-4.1", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash"}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("base", ["http://127.0.0.1:9/v1", "https://upstream.example"])
async def test_requests_are_what_httpx_builds_from_the_same_parts(name: str, base: str) -> None:
    settings = Settings(
        openai_api_key="sk-o",
        anthropic_api_key="sk-a",
        gemini_api_key="sk-g",
        openai_base_url=base,
        anthropic_base_url=base,
        gemini_base_url=base,
    )
    async with upstream_client(settings) as client:
        provider = build_providers(settings, client)[name]
        assert isinstance(provider, HTTPProvider)
        for text in ("hi", "a longer question, é and all " * 20):
            call = StreamCall(MODELS[name], [ContextMessage("user", text)])
            body = provider.body(call)
            made = provider._request(call, body)
            url = httpx.URL(provider.endpoint(call))
            if provider.params:
                url = url.copy_merge_params(provider.params)
            expected = httpx.Request(
                "POST",
                url,
                headers=httpx.Headers({**client.headers, **provider.headers}),
                content=body,
                extensions={"timeout": client.timeout.as_dict()},
            )
            assert (made.method, made.url) == (expected.method, expected.url)
            assert made.headers.raw == expected.headers.raw  # the same names, spelling and order
            assert made.content == expected.content == body
            assert await made.aread() == body
            assert made.extensions == expected.extensions
