"""The context as the providers take it: system messages joined apart from the conversation."""

from __future__ import annotations

from collections.abc import Sequence

from .base import ContextMessage

__all__ = ["split_system"]


def split_system(messages: Sequence[ContextMessage]) -> tuple[str, list[ContextMessage]]:
    """(system text, user and assistant messages): non-empty system messages joined by a blank line."""
    system = "\n\n".join(m.content.strip() for m in messages if m.role == "system" and m.content.strip())
    return system, [m for m in messages if m.role in ("user", "assistant")]
