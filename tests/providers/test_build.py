"""`build_providers`: one provider per configured key, all sharing the app's one HTTP client."""

from __future__ import annotations

import httpx
import pytest

from lean_chat.config import Settings
from lean_chat.providers import build_providers
from lean_chat.providers.anthropic import AnthropicProvider
from lean_chat.providers.gemini import GeminiProvider
from lean_chat.providers.http_provider import HTTPProvider
from lean_chat.providers.openai import OpenAIProvider

pytestmark = pytest.mark.anyio


async def test_only_providers_with_a_key_are_built() -> None:
    async with httpx.AsyncClient() as client:
        assert build_providers(Settings(), client) == {}
        assert build_providers(Settings(openai_api_key="  ", gemini_api_key=""), client) == {}
        built = build_providers(Settings(anthropic_api_key="k1", gemini_api_key="k2"), client)
    assert sorted(built) == ["anthropic", "gemini"]
    assert isinstance(built["anthropic"], AnthropicProvider) and isinstance(built["gemini"], GeminiProvider)


async def test_providers_share_the_client_and_take_their_settings() -> None:
    settings = Settings(
        openai_api_key=" sk-1 ",
        anthropic_api_key="k2",
        gemini_api_key="k3",
        openai_base_url="http://vllm.local:8000/v1/",
        openai_max_retries=5,
        openai_retry_base_delay_ms=10,
        openai_retry_max_delay_ms=20,
        anthropic_max_retries=0,
        retry_after_cap_seconds=3.0,
        anthropic_max_tokens=77,
        openai_include_usage=False,
    )
    async with httpx.AsyncClient() as client:
        built = build_providers(settings, client)
    openai, anthropic = built["openai"], built["anthropic"]
    assert isinstance(openai, OpenAIProvider) and isinstance(anthropic, AnthropicProvider)
    assert all(isinstance(p, HTTPProvider) and p.client is client for p in built.values())
    assert openai.url == "http://vllm.local:8000/v1/chat/completions"
    assert openai.headers["authorization"] == "Bearer sk-1"
    assert (openai.policy.max_retries, openai.policy.base_delay_ms, openai.policy.max_delay_ms) == (5, 10, 20)
    assert openai.policy.retry_after_cap_seconds == 3.0
    assert openai.include_usage is False
    assert anthropic.policy.max_retries == 0 and anthropic.max_tokens == 77
