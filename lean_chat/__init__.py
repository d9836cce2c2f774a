"""lean_chat: a fast, sturdy streaming AI-chat backend (raw ASGI on Starlette, SSE, msgspec, SQLite)."""

from __future__ import annotations

from .app import create_app, create_app_from_env
from .config import Settings
from .version import __version__

__all__ = ["Settings", "__version__", "create_app", "create_app_from_env"]
