"""A tool's parameters from its signature: a msgspec Struct that validates untrusted arguments, and its JSON Schema."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, get_type_hints

import msgspec

from .context import ToolContext

__all__ = ["ParameterModel", "parameter_model"]


class ParameterModel(msgspec.Struct, frozen=True):
    """What a tool's signature gives: the Struct of its parameters, its JSON Schema, and the context's name."""

    struct: type[msgspec.Struct]
    schema: dict[str, Any]
    context_name: str | None  # the parameter that receives the ToolContext, when the tool declares one


def _inline(schema: dict[str, Any], components: dict[str, Any], name: str) -> dict[str, Any]:
    """The Struct's own schema at the top, with any nested Structs kept under `$defs`."""
    top = dict(components.pop(name))
    top.pop("title", None)
    if components:
        top["$defs"] = components
    top.setdefault("properties", {})
    top.setdefault("required", [])
    return top


def parameter_model(fn: Callable[..., Any], name: str) -> ParameterModel:
    """The parameters of `fn` (type hints required) as a Struct that refuses unknown fields, and their schema."""
    hints = get_type_hints(fn)
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    context_name: str | None = None
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"tool {name!r}: *args and **kwargs are not supported")
        if param.kind is param.POSITIONAL_ONLY:
            raise TypeError(f"tool {name!r}: positional-only parameters are not supported")
        if param.name not in hints:
            raise TypeError(f"tool {name!r}: parameter {param.name!r} needs a type hint")
        hint = hints[param.name]
        if hint is ToolContext:
            context_name = param.name
            continue
        if param.default is inspect.Parameter.empty:
            fields.append((param.name, hint))
        else:
            fields.append((param.name, hint, param.default))
    struct_name = "".join(part.title() for part in name.split("_")) + "Args"
    struct = msgspec.defstruct(struct_name, fields, forbid_unknown_fields=True, frozen=True)
    try:
        (ref,), components = msgspec.json.schema_components([struct], ref_template="#/$defs/{name}")
    except (TypeError, ValueError) as exc:
        raise TypeError(f"tool {name!r}: a parameter's type has no JSON Schema (msgspec: {exc})") from None
    schema = _inline(ref, components, struct.__name__)
    return ParameterModel(struct, schema, context_name)
