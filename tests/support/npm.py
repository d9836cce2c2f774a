"""The npm folders of the tests (tests/js, tests/ai_sdk): installed from their lockfiles, and scripts run in them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import needs

__all__ = ["AI_SDK", "JS", "NODE", "npm_ci", "run_node"]

TESTS = Path(__file__).resolve().parents[1]
JS = TESTS / "js"
AI_SDK = TESTS / "ai_sdk"
NODE = shutil.which("node") or "/usr/bin/node"


def npm_ci(folder: Path) -> None:
    """`npm ci` in `folder` when its node_modules is missing or older than the lockfile (a no-op otherwise)."""
    lock = folder / "package-lock.json"
    installed = folder / "node_modules" / ".package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is missing: `bash scripts/system-deps` installs it (Debian's npm package)")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=folder, check=True, capture_output=True, timeout=600)


def run_node(folder: Path, script: str, *args: str, timeout: float = 120) -> Any:
    """Run `node script args...` in `folder` (installed first) and return the JSON it prints."""
    needs("node")
    npm_ci(folder)
    done = subprocess.run(
        [NODE, script, *args], cwd=folder, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"node {script} failed ({done.returncode}):\n{done.stderr}"
    return json.loads(done.stdout)
