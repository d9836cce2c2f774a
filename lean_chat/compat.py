"""Drop-in for fastapi-ai-chat: `from lean_chat.compat import create_app` gives a FastAPI app served by lean_chat.

A public re-export of the FastAPI shim (`fastapi_shim.py`); needs the `fastapi` extra. The top-level
`compat/` folder is something else: the conformance kit comparing lean_chat with the reference package.
"""

from __future__ import annotations

from .fastapi_shim import create_app, create_app_from_env, wrap_in_fastapi

__all__ = ["create_app", "create_app_from_env", "wrap_in_fastapi"]
