"""TurnRequest is all the engine sees of a stream request: none of its modules imports the HTTP edge (the wire body's
schema, the request ids, the endpoints, auth)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lean_chat

PACKAGE = Path(lean_chat.__file__).parent
ENGINE = [
    "chat.py",
    "streaming.py",
    "detached.py",
    "follow.py",
    "stream_summary.py",
    "turn_request.py",
    "outcomes.py",
    "client_watch.py",
]
EDGE = {"schema", "request_id", "endpoints", "stream_control", "auth", "chat_params", "stream_lane", "app"}


def imported_modules(path: Path) -> set[str]:
    """The lean_chat modules a source file imports (relative imports named from the package)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = (node.module or "").split(".")
            names.add(base[0] if node.level else ".".join(base[1:2]))
            names.update(alias.name for alias in node.names if not node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name.removeprefix("lean_chat.") for alias in node.names)
    return names


@pytest.mark.parametrize("module", [*ENGINE, *(f"providers/{p.name}" for p in (PACKAGE / "providers").glob("*.py"))])
def test_engine_module_never_imports_the_http_edge(module: str) -> None:
    assert not imported_modules(PACKAGE / module) & EDGE
