"""Running compat/client.mjs (the browser-style stream client) under Node from Python."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.support.services import needs

__all__ = ["CLIENT", "NODE", "node_stream"]

CLIENT = Path(__file__).resolve().parent / "client.mjs"
NODE = shutil.which("node") or "/usr/bin/node"


def node_stream(url: str, body: Any) -> dict[str, Any]:
    """POST `body` to `url` with the client under Node; what it saw: status, tokens, done, error, comments, reads."""
    needs("node")
    result = subprocess.run([NODE, str(CLIENT), url, json.dumps(body)], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"node client failed: {result.stderr.strip()}")
    stats: dict[str, Any] = json.loads(result.stdout)
    return stats
