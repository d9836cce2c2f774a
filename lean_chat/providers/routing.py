"""Which provider serves a model name."""

from __future__ import annotations

__all__ = ["provider_for_model"]


def provider_for_model(model: str) -> str:
    """`mock`, `gemini`, `anthropic` or `openai`, from the model name's start."""
    name = model.strip().lower()
    if name.startswith("mock"):
        return "mock"
    if name.startswith("gemini"):
        return "gemini"
    if name.startswith("claude"):
        return "anthropic"
    return "openai"
