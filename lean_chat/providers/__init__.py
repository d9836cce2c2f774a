"""Model providers: the mock, and the real ones (OpenAI, Anthropic, Gemini) over one shared HTTP client."""

from __future__ import annotations

import httpx

from ..config import Settings
from .anthropic import AnthropicProvider
from .base import Provider
from .gemini import GeminiProvider
from .openai import OpenAIProvider
from .retry import RetryPolicy

__all__ = ["build_providers"]


def build_providers(settings: Settings, client: httpx.AsyncClient) -> dict[str, Provider]:
    """The configured real providers by routing name (a provider without a key is left out)."""
    s = settings
    cap = s.retry_after_cap_seconds
    providers: dict[str, Provider] = {}
    if s.openai_api_key and s.openai_api_key.strip():
        policy = RetryPolicy(s.openai_max_retries, s.openai_retry_base_delay_ms, s.openai_retry_max_delay_ms, cap)
        providers["openai"] = OpenAIProvider(
            client,
            api_key=s.openai_api_key,
            base_url=s.openai_base_url,
            policy=policy,
            include_usage=s.openai_include_usage,
            request_timeout=s.request_timeout_seconds,
        )
    if s.anthropic_api_key and s.anthropic_api_key.strip():
        policy = RetryPolicy(
            s.anthropic_max_retries, s.anthropic_retry_base_delay_ms, s.anthropic_retry_max_delay_ms, cap
        )
        providers["anthropic"] = AnthropicProvider(
            client,
            api_key=s.anthropic_api_key,
            base_url=s.anthropic_base_url,
            policy=policy,
            max_tokens=s.anthropic_max_tokens,
            request_timeout=s.request_timeout_seconds,
        )
    if s.gemini_api_key and s.gemini_api_key.strip():
        policy = RetryPolicy(s.gemini_max_retries, s.gemini_retry_base_delay_ms, s.gemini_retry_max_delay_ms, cap)
        providers["gemini"] = GeminiProvider(
            client,
            api_key=s.gemini_api_key,
            base_url=s.gemini_base_url,
            policy=policy,
            request_timeout=s.request_timeout_seconds,
        )
    return providers
