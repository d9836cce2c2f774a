"""The benchmark suite's smoke run: a tiny burst against every target gives a well-formed report (no speed);
where runs other than the full one write; progress lines that agree with the report."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support.modules import ROOT, run_module

TARGETS = {"lean_chat", "reference", "floor-batch", "floor-token"}


def _benchmarks(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m benchmarks ARGS...` run to its end (it must succeed)."""
    return run_module("benchmarks", *args)


def test_smoke_run_writes_markdown_json_and_png(tmp_path: Path) -> None:
    _benchmarks("--smoke", "--out", str(tmp_path))

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


def test_a_run_other_than_the_full_one_leaves_the_committed_results_alone() -> None:
    # A quick run once wrote over the committed benchmarks/results/latest.* and left the tree dirty.
    results = ROOT / "benchmarks" / "results"
    _benchmarks("--smoke")
    assert json.loads((results / "quick" / "latest.json").read_text())["plan"] == "smoke"
    status = subprocess.run(
        ["git", "status", "--porcelain", "--", str(results)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert status.stdout == ""


def test_the_upstream_read_directly_is_not_reported_failing_for_lacking_a_done(tmp_path: Path) -> None:
    # The apparatus probe's line said "0 ok ... FAIL" every time (OpenAI's own stream has no `done` frame) while
    # the report gave its figures as the measurement's floor.
    result = _benchmarks("--smoke", "--only", "many_relayed_streams", "--out", str(tmp_path))
    report = json.loads((tmp_path / "latest.json").read_text())
    apparatus = report["results"]["many_relayed_streams"]["apparatus"]
    assert apparatus["ok"] == apparatus["streams"] > 0
    (line,) = [line for line in result.stderr.splitlines() if "  upstream: " in line]
    assert line.endswith(" PASS" if apparatus["passed"] else " FAIL"), line


def test_the_dialect_cost_run_reads_both_dialects_streams_whole() -> None:
    result = run_module(
        "benchmarks.dialect_cost", "--streams", "20", "--relayed", "20", "--rounds", "1", "--plan", "smoke"
    )
    for scenario in ("many_streams", "many_relayed_streams"):
        assert f"{scenario}: 20 streams, server CPU per token /chat/stream" in result.stdout
    # Every probe's streams, both dialects', ended well (a `done`, or a `finish` chunk, and no error).
    for probe in ("stream0", "ui0"):
        assert result.stderr.count(f"  {probe}: 20 streams: 20 ok") == 2, result.stderr


def test_the_tool_loop_benchmark_reports_cost_per_stream_and_per_step() -> None:
    result = run_module("benchmarks.tool_loop_cost", "--plan", "smoke", "--streams", "5", "--rounds", "1", timeout=180)
    assert "20 ok" not in result.stderr  # the warm-up probes too run 5 streams
    assert "wplain: 5 streams: 5 ok" in result.stderr and "wtools: 5 streams: 5 ok" in result.stderr
    assert "plain0: 5 streams: 5 ok" in result.stderr and "tools0: 5 streams: 5 ok" in result.stderr
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("tool loop: 5 streams; server CPU per stream plain ")
    assert "tool turn (2 steps, 2 calls)" in line and "per step plain" in line


def test_the_relayed_tool_loop_benchmark_reports_cost_per_stream_and_per_step() -> None:
    result = run_module("benchmarks.tool_relay_cost", "--plan", "smoke", "--streams", "5", "--rounds", "1", timeout=180)
    assert "wplain: 5 streams: 5 ok" in result.stderr and "wtools: 5 streams: 5 ok" in result.stderr
    assert "plain0: 5 streams: 5 ok" in result.stderr and "tools0: 5 streams: 5 ok" in result.stderr
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("relayed tool loop: 5 streams; server CPU per stream plain relay ")
    assert "tool turn (2 steps, 2 calls)" in line and "per step plain" in line
