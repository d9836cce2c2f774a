"""A SQLite history file read straight with sqlite3, on a connection of its own beside the running app."""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec

__all__ = ["stored_rows"]


def stored_rows(path: str, conversation_id: str) -> list[tuple[str, str, Any]]:
    """(role, content, meta) of a conversation's stored messages, oldest first (meta decoded, or None)."""
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT role, content, meta FROM lc_messages WHERE conversation_id = ? ORDER BY idx", (conversation_id,)
        ).fetchall()
    db.close()
    return [(str(r), str(c), msgspec.json.decode(m) if m else None) for r, c, m in rows]
