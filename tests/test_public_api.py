"""The public surface: one sorted `__all__`, every module declaring its own, and no FastAPI/pydantic on import."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import lean_chat


def test_all_is_sorted_and_exact() -> None:
    assert lean_chat.__all__ == sorted(lean_chat.__all__)
    assert lean_chat.__all__ == [
        "Settings",
        "Tool",
        "ToolContext",
        "ToolError",
        "__version__",
        "create_app",
        "create_app_from_env",
        "tool",
    ]
    for name in lean_chat.__all__:
        assert getattr(lean_chat, name) is not None


def test_every_module_declares_all() -> None:
    names = [m.name for m in pkgutil.walk_packages(lean_chat.__path__, "lean_chat.")]
    assert "lean_chat.app" in names and "lean_chat.store.sqlite" in names
    for name in names:
        if name.endswith("__main__") or name == "lean_chat.compat":
            continue
        module = importlib.import_module(name)
        exported = getattr(module, "__all__", None)
        assert isinstance(exported, list), f"{name} has no __all__"
        for item in exported:
            assert hasattr(module, item), f"{name}.__all__ names a missing {item}"


def test_import_pulls_in_neither_fastapi_nor_pydantic() -> None:
    code = (
        "import sys, lean_chat, lean_chat.app, lean_chat.server.cli\n"
        "app = lean_chat.create_app(sqlite_path='')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'pydantic', 'pydantic_core')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_create_app_takes_the_reference_keywords() -> None:
    app = lean_chat.create_app(
        openai_api_key=None, anthropic_api_key=None, gemini_api_key=None, sqlite_path="", cors_allow_origins=["*"]
    )
    assert callable(app)


def test_version_matches_the_distribution() -> None:
    from importlib.metadata import version

    assert lean_chat.__version__ == version("lean-chat")
