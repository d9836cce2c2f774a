"""Running one of the project's modules (`python -m NAME ARGS...`) from the repository's root, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["ROOT", "run_module"]

ROOT = Path(__file__).resolve().parents[2]


def run_module(name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python -m NAME ARGS...` run to its end from the repository's root; it must exit 0."""
    result = subprocess.run(
        [sys.executable, "-m", name, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result
