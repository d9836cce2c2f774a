"""Registered tools: plain functions with type hints and a docstring, looked up by name."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar, overload

from ..providers.base import ToolSpec
from .schema import ParameterModel, parameter_model

__all__ = ["Tool", "ToolRegistry", "Tools", "as_tool", "registry_of", "tool"]

F = TypeVar("F", bound=Callable[..., Any])

_NAME_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


class Tool:
    """One tool: its function, name, description (the docstring), the Struct of its parameters and their schema."""

    __slots__ = ("description", "fn", "is_async", "model", "name", "spec", "timeout")

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        if not self.name or len(self.name) > 64 or not set(self.name) <= _NAME_OK:
            raise ValueError(f"tool name {self.name!r}: 1 to 64 of A-Z a-z 0-9 _ -")
        self.description = description if description is not None else inspect.cleandoc(fn.__doc__ or "")
        self.is_async = inspect.iscoroutinefunction(fn)
        self.model: ParameterModel = parameter_model(fn, self.name)
        self.timeout = timeout  # seconds; None: the app's tool_timeout_seconds
        self.spec = ToolSpec(self.name, self.description, self.model.schema)

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"


@overload
def tool(fn: F, /) -> F: ...


@overload
def tool(
    *, name: str | None = None, description: str | None = None, timeout: float | None = None
) -> Callable[[F], F]: ...


def tool(
    fn: F | None = None, /, *, name: str | None = None, description: str | None = None, timeout: float | None = None
) -> F | Callable[[F], F]:
    """Mark a function as a tool (`@tool` or `@tool(name=..., timeout=...)`); it stays callable as it was."""

    def mark(func: F) -> F:
        func.__lean_chat_tool__ = Tool(func, name, description, timeout)  # type: ignore[attr-defined]
        return func

    return mark(fn) if fn is not None else mark


def as_tool(item: Tool | Callable[..., Any]) -> Tool:
    """A Tool from a Tool, a function marked with `@tool`, or a plain function."""
    if isinstance(item, Tool):
        return item
    marked = getattr(item, "__lean_chat_tool__", None)
    return marked if isinstance(marked, Tool) else Tool(item)


class ToolRegistry:
    """The app's tools by name (each name once), and the subset a turn may use."""

    def __init__(self, tools: Iterable[Tool | Callable[..., Any]] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for item in tools:
            self.add(item)

    def add(self, item: Tool | Callable[..., Any]) -> Tool:
        """Register a tool; a second one of the same name is an error."""
        made = as_tool(item)
        if made.name in self._tools:
            raise ValueError(f"tool {made.name!r} is registered twice")
        self._tools[made.name] = made
        return made

    def register(self, fn: F) -> F:
        """Register a function as a tool, as a decorator (`@registry.register`); it stays callable as it was."""
        self.add(fn)
        return fn

    def __len__(self) -> int:
        return len(self._tools)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def names(self) -> list[str]:
        """The registered names, in order of registration (the only tool labels metrics carry)."""
        return list(self._tools)

    def get(self, name: str) -> Tool | None:
        """The tool of that name, or None."""
        return self._tools.get(name)

    def allowed(self, names: Sequence[str] | None) -> dict[str, Tool]:
        """The tools a turn may use: all when `names` is None, else those of them that are registered."""
        if names is None:
            return dict(self._tools)
        return {n: self._tools[n] for n in names if n in self._tools}


# What the app factories take as `tools`: nothing, a registry, or functions and Tools.
Tools = ToolRegistry | Iterable[Tool | Callable[..., Any]] | None


def registry_of(tools: Tools) -> ToolRegistry:
    """The registry the factories were given (a new one from functions and Tools; empty for None)."""
    if isinstance(tools, ToolRegistry):
        return tools
    return ToolRegistry(tools or ())
