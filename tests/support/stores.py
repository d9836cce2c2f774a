"""The kinds of store that the store tests run on (the `kind` fixture's parameters)."""

from __future__ import annotations

__all__ = ["PERSISTENT", "STORES"]

STORES = ["memory", "sqlite", "postgres"]
PERSISTENT = ["sqlite", "postgres"]
