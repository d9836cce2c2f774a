"""Model providers: the mock, and the real ones (OpenAI, Anthropic, Gemini) over one shared HTTP client."""

from __future__ import annotations

import httpx

from ..config import Settings
from .base import Provider

__all__ = ["build_providers"]


def build_providers(settings: Settings, client: httpx.AsyncClient) -> dict[str, Provider]:
    """The configured real providers by routing name (a provider without a key is left out)."""
    return {}
