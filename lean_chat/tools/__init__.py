"""Tools: plain Python functions the model may call, registered on the app, run by the turn's tool loop."""

from __future__ import annotations

from .context import ToolContext, ToolError
from .registry import Tool, ToolRegistry, as_tool, tool

__all__ = ["Tool", "ToolContext", "ToolError", "ToolRegistry", "as_tool", "tool"]
