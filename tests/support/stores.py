"""The kinds of store that the store tests run on (the `kind` fixture's parameters); PostgreSQL's is marked."""

from __future__ import annotations

import pytest

__all__ = ["PERSISTENT", "STORES"]

_POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)

STORES = [pytest.param("memory"), pytest.param("sqlite"), _POSTGRES]
PERSISTENT = [pytest.param("sqlite"), _POSTGRES]
