"""Conversation storage: the Store protocol, history in memory, and history in SQLite."""

from __future__ import annotations

__all__: list[str] = []
