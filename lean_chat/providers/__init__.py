"""Model providers: the mock, and the real ones (OpenAI, Anthropic, Gemini) over one shared HTTP client."""

from __future__ import annotations

from typing import Any

import httpx

from ..config import Settings
from .anthropic import AnthropicProvider
from .base import Provider
from .gemini import GeminiProvider
from .http_provider import HTTPProvider
from .openai import OpenAIProvider
from .retry import RetryPolicy

__all__ = ["build_providers"]


def build_providers(settings: Settings, client: httpx.AsyncClient) -> dict[str, Provider]:
    """The configured real providers by routing name (a provider without a key is left out)."""
    s = settings
    # Per provider: its class, key, base URL, retries (count, base delay, max delay) and own options.
    table: list[tuple[type[HTTPProvider], str | None, str, tuple[int, int, int], dict[str, Any]]] = [
        (
            OpenAIProvider,
            s.openai_api_key,
            s.openai_base_url,
            (s.openai_max_retries, s.openai_retry_base_delay_ms, s.openai_retry_max_delay_ms),
            {"include_usage": s.openai_include_usage},
        ),
        (
            AnthropicProvider,
            s.anthropic_api_key,
            s.anthropic_base_url,
            (s.anthropic_max_retries, s.anthropic_retry_base_delay_ms, s.anthropic_retry_max_delay_ms),
            {"max_tokens": s.anthropic_max_tokens},
        ),
        (
            GeminiProvider,
            s.gemini_api_key,
            s.gemini_base_url,
            (s.gemini_max_retries, s.gemini_retry_base_delay_ms, s.gemini_retry_max_delay_ms),
            {},
        ),
    ]
    providers: dict[str, Provider] = {}
    for kind, api_key, base_url, (retries, base_delay_ms, max_delay_ms), options in table:
        if api_key and api_key.strip():
            providers[kind.name] = kind(
                client,
                api_key=api_key,
                base_url=base_url,
                policy=RetryPolicy(retries, base_delay_ms, max_delay_ms, s.retry_after_cap_seconds),
                request_timeout=s.request_timeout_seconds,
                max_line_bytes=s.max_upstream_line_bytes,
                **options,
            )
    return providers
