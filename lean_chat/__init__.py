"""lean_chat: a fast, sturdy streaming AI-chat backend (raw ASGI on Starlette, SSE, msgspec, SQLite)."""

from __future__ import annotations

from .app import create_app, create_app_from_env
from .config import Settings
from .tools import Tool, ToolContext, ToolError, tool
from .version import __version__

__all__ = ["Settings", "Tool", "ToolContext", "ToolError", "__version__", "create_app", "create_app_from_env", "tool"]
