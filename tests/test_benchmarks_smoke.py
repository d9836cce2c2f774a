"""The benchmark suite's smoke run: a tiny burst against every target gives a well-formed report (no speed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"lean_chat", "reference", "floor-batch", "floor-token"}


def test_smoke_run_writes_markdown_json_and_png(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    report = json.loads((tmp_path / "latest.json").read_text())
    assert report["plan"] == "smoke"
    assert report["machine"]["cores"] >= 1
    by_target = report["results"]["burst"]["clients"]["2"]
    assert set(by_target) == TARGETS
    for name, summary in by_target.items():
        # Every counted reply was checked: tokens present, exactly one done; none was malformed.
        assert summary["responses"] > 0, name
        assert summary["bad"] == 0, name
        assert summary["tokensPerSecond"] > 0, name
    assert report["results"]["burst"]["tokensPerReply"]["lean_chat"] > 50
    figures = report["figures"]
    assert {f["figure"] for f in figures} >= {"2 clients: lean_chat / reference"}
    assert all(f["value"] > 0 and f["met"] in (True, False, None) for f in figures)

    table = (tmp_path / "latest.md").read_text()
    assert "| scenario | figure | value | target | met | context |" in table
    assert "2 clients: lean_chat / reference" in table
    assert (tmp_path / "latest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
