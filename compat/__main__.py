"""`python -m compat [NAME ...]`: run the conformance scenarios against lean_chat and the reference."""

from __future__ import annotations

import sys
import time

from .kit import running_kit
from .scenarios import SCENARIOS

__all__ = ["main"]


def main(names: list[str]) -> int:
    """Run the named scenarios (all when none are named); print one line each; 1 when any failed."""
    chosen = [s for s in SCENARIOS if not names or s.name in names]
    failed = 0
    with running_kit() as kit:
        for scenario in chosen:
            started = time.perf_counter()
            try:
                kit.check(scenario)
            except AssertionError as error:
                failed += 1
                print(f"FAIL  {scenario.name}: {str(error)[:300]}")
                continue
            label = "DEVIATION" if scenario.why else "same"
            print(f"ok    {scenario.name} ({label}, {time.perf_counter() - started:.2f}s)")
    print(f"{len(chosen) - failed} of {len(chosen)} scenarios passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
