"""`python -m benchmarks [--quick]`: run the suite and write latest.{md,json,png} (the full run's are committed)."""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import sys
import time
from typing import Any

from .crowd import CROWD_SCENARIOS
from .postgres import POSTGRES_SCENARIOS
from .report import machine, markdown, write_report
from .scenarios import PLANS, SCENARIOS, Bench

__all__ = ["main"]

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
# Where --quick and --smoke write unless told: ignored by git, so a quick look never replaces the committed figures.
QUICK_RESULTS = os.path.join(RESULTS, "quick")


def _log(line: str) -> None:
    """Progress on stderr, with the time since start."""
    print(f"[{time.perf_counter() - _START:6.1f}s] {line}", file=sys.stderr, flush=True)


_START = time.perf_counter()
SCENARIOS.update(POSTGRES_SCENARIOS)  # opt-in, not in the default plans: --only postgres
SCENARIOS.update(CROWD_SCENARIOS)  # in the full and quick plans (it needs the report's Figure, hence here)


async def _run(bench: Bench, names: list[str]) -> dict[str, Any]:
    """Run the chosen scenarios one after another."""
    results: dict[str, Any] = {}
    for name in names:
        _log(f"scenario {name}")
        results[name] = await SCENARIOS[name](bench)
    return results


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run, write the report."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="smaller scenarios, under 3 minutes; written to benchmarks/results/quick/"
    )
    parser.add_argument("--smoke", action="store_true", help="a tiny burst only (for the test suite)")
    parser.add_argument("--only", default="", help="comma-separated scenarios: " + ", ".join(SCENARIOS))
    parser.add_argument(
        "--out",
        default=None,
        help="folder for latest.md/.json/.png (default: benchmarks/results/, or benchmarks/results/quick/ with "
        "--quick or --smoke, which git ignores)",
    )
    parser.add_argument(
        "--profile", default="", help="folder for py-spy profiles (raw stacks) of each lean_chat server"
    )
    args = parser.parse_args(argv)
    plan = PLANS["smoke" if args.smoke else "quick" if args.quick else "full"]
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(plan.scenarios)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    bench = Bench(plan, _log, os.path.abspath(args.profile) if args.profile else "")
    bench.cores.pin_self()
    import uvloop

    started = datetime.datetime.now(datetime.UTC)
    try:
        results = uvloop.run(_run(bench, names))
    finally:
        shutil.rmtree(bench.scratch, ignore_errors=True)
    report: dict[str, Any] = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "plan": plan.name,
        "runs": plan.runs,
        "command": "python -m benchmarks" + (" --quick" if args.quick else " --smoke" if args.smoke else ""),
        "machine": machine(),
        "pinned": bench.cores.pinned,
        "loadCpuPeak": bench.load_cpu_peak,
        "seconds": round(time.perf_counter() - _START, 1),
        "results": results,
    }
    out = args.out or (QUICK_RESULTS if args.quick or args.smoke else RESULTS)
    paths = write_report(out, report)
    print(markdown(report))
    _log(f"wrote {paths['md']}, {paths['json']}, {paths['png']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
