"""Registering tools: the schema from type hints, the description from the docstring, the ways to register."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
import pytest

from lean_chat import Tool, ToolContext, tool
from lean_chat.tools import ToolRegistry
from lean_chat.tools.registry import registry_of


class Place(msgspec.Struct):
    """Where."""

    city: str
    country: str = "FR"


async def plan(
    place: Place, days: int, mode: Literal["train", "car"] = "train", note: str | None = None, *, ctx: ToolContext
) -> dict[str, Any]:
    """Plan a trip.

    Longer text stays in the description.
    """
    return {}


def test_the_schema_comes_from_the_signature_and_the_description_from_the_docstring() -> None:
    made = Tool(plan)
    assert made.name == "plan" and made.description == "Plan a trip.\n\nLonger text stays in the description."
    schema = made.spec.parameters
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert schema["required"] == ["place", "days"]
    assert set(schema["properties"]) == {"place", "days", "mode", "note"}  # the context is no parameter
    assert schema["properties"]["days"] == {"type": "integer"}
    assert schema["properties"]["mode"] == {"enum": ["car", "train"], "default": "train"}
    assert schema["properties"]["place"] == {"$ref": "#/$defs/Place"}
    assert schema["$defs"]["Place"]["required"] == ["city"]
    assert made.model.context_name == "ctx" and made.is_async


def test_a_tool_without_parameters_has_an_empty_object_schema() -> None:
    def now() -> str:
        """The time."""
        return "noon"

    made = Tool(now)
    assert made.spec.parameters == {"type": "object", "properties": {}, "required": [], "additionalProperties": False}
    assert not made.is_async


def test_the_decorator_and_the_registry_register_the_same_way() -> None:
    @tool
    async def one(x: int) -> int:
        """One."""
        return x

    @tool(name="second", description="Named apart.", timeout=2.5)
    def two(y: str) -> str:
        """Ignored."""
        return y

    registry = ToolRegistry([one, two])

    @registry.register
    async def three() -> None:
        """Three."""

    assert registry.names() == ["one", "second", "three"]
    second = registry.get("second")
    assert second is not None and second.description == "Named apart." and second.timeout == 2.5
    assert two("z") == "z"  # still the function it was
    assert registry.allowed(["three", "ghost"]) == {"three": registry.get("three")}
    assert registry.allowed(None).keys() == {"one", "second", "three"}
    assert registry_of(registry) is registry and len(registry_of(None)) == 0


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f(x): ...", "needs a type hint"),
        ("def f(*args: int) -> None: ...", "not supported"),
        ("def f(x: int, /) -> None: ...", "positional-only"),
        ("class C: ...\ndef f(x: C) -> None: ...", "no JSON Schema"),
    ],
)
def test_signatures_that_cannot_be_tools_are_refused_at_registration(source: str, message: str) -> None:
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    with pytest.raises(TypeError, match=message):
        Tool(namespace["f"])


def test_names_are_checked_and_registered_once() -> None:
    async def ok() -> None:
        """Fine."""

    with pytest.raises(ValueError, match="1 to 64"):
        Tool(ok, name="has space")
    with pytest.raises(ValueError, match="registered twice"):
        ToolRegistry([ok, ok])
