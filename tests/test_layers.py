"""The package's layers, read from the source: each folder imports only from the layers below it, never back up.

From the top: the app and its public wrappers; the server process (`server/`); the HTTP edge (`http/`); the turn
engine (`turn/`); the services it drives (`providers/`, `store/`, `hub/`, `metrics/`); and the leaf modules at the
top of the package, which import nothing of lean_chat but each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lean_chat

PACKAGE = Path(lean_chat.__file__).parent
TOP = {"__init__", "__main__", "app", "compat", "fastapi_shim"}
SERVICES = {"providers", "store", "hub", "metrics", "tools"}
LEAVES = {
    "config",
    "headers",
    "bearer",
    "redaction",
    "log_escape",
    "random_ids",
    "scope_keys",
    "frames",
    "refusals",
    "version",
}
# What each layer may import (besides itself and the leaves).
ALLOWED = {
    "server": {"metrics"},
    "http": {"turn", *SERVICES},
    "turn": SERVICES,
    "providers": set(),
    "store": set(),
    "hub": set(),
    "metrics": {"providers", "store"},
    "tools": {"providers"},
    "leaf": set(),
}


def layer_of(module: str) -> str:
    """The layer of a dotted module name below `lean_chat` (e.g. `http.auth` is in `http`)."""
    head = module.split(".")[0]
    if head in TOP:
        return "top"
    if head in LEAVES:
        return "leaf"
    assert head in ALLOWED, f"lean_chat.{module} belongs to no layer: add it to tests/test_layers.py"
    return head


def modules() -> list[tuple[str, Path]]:
    """Every module of the package, as (dotted name below lean_chat, path)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        found.append((".".join(parts), path))
    return found


def imported(module: str, source: str) -> set[str]:
    """The lean_chat modules (dotted, below lean_chat) that a module's source imports, relative imports resolved."""
    package = module.split(".")[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
            elif (node.module or "").startswith("lean_chat"):
                base = []
            else:
                continue
            dotted = [*base, *(part for part in (node.module or "").split(".") if part != "lean_chat" and part)]
            if node.module:
                names.add(".".join(dotted))
            else:  # `from . import x`: x is a module of that package, or a name of its __init__
                for alias in node.names:
                    inner = [*dotted, alias.name]
                    is_module = (PACKAGE.joinpath(*inner).with_suffix(".py")).exists() or PACKAGE.joinpath(
                        *inner
                    ).is_dir()
                    names.add(".".join(inner if is_module else [*dotted, "__init__"]))
        elif isinstance(node, ast.Import):
            names.update(
                alias.name.removeprefix("lean_chat.") for alias in node.names if alias.name.startswith("lean_chat.")
            )
    return names


@pytest.mark.parametrize(("module", "path"), modules(), ids=[name for name, _ in modules()])
def test_each_module_imports_only_its_own_layer_and_those_below(module: str, path: Path) -> None:
    layer = layer_of(module)
    if layer == "top":
        return
    allowed = {layer, "leaf", *ALLOWED[layer]}
    upward = sorted(name for name in imported(module, path.read_text()) if layer_of(name) not in allowed)
    assert not upward, f"lean_chat.{module} ({layer}) imports above or beside its layer: {upward}"


def test_every_top_level_module_is_placed_in_a_layer() -> None:
    loose = {path.stem for path in PACKAGE.glob("*.py")} - TOP - LEAVES
    assert not loose, f"modules at the top of lean_chat/ in no layer: {sorted(loose)}"


def test_the_check_sees_an_upward_import() -> None:
    names = imported(
        "turn.probe", "from ..http.schema import ChatRequest\nfrom . import outcomes\nimport lean_chat.hub"
    )
    assert names == {"http.schema", "turn.outcomes", "hub"}
    assert layer_of("http.schema") not in {"turn", "leaf", *ALLOWED["turn"]}
