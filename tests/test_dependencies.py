"""What `pyproject.toml` requires of every install is what the package imports."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imported_by_the_package() -> set[str]:
    """The top-level names of every module imported somewhere in lean_chat/."""
    names: set[str] = set()
    for path in (ROOT / "lean_chat").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return names


def test_every_required_dependency_is_imported_by_the_package() -> None:
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    modules = {re.split(r"[\[<>=~!; ]", requirement, maxsplit=1)[0].replace("-", "_") for requirement in required}
    assert modules  # the names were read
    assert modules - _imported_by_the_package() == set()
