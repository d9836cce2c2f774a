"""The collector's freeze, shared by every app in the process: held while any app runs, undone by the last to stop.

`gc.freeze()` moves every object alive into a permanent generation that full collections skip: what an app makes
at start-up lives as long as it does, and walking it all would stall every open stream for tens of milliseconds.
The freeze is one per process, so apps count their holds here instead of undoing each other's.

While held, full collections are also rarer (`FULL_EVERY` young-and-middle collections instead of Python's 10):
each one walks every open stream's objects (about 80 ms at 1,500 relayed streams) and, on the relay path,
frees nothing that reference counting and the younger collections have not already freed.
"""

from __future__ import annotations

import gc
import threading

__all__ = ["FULL_EVERY", "hold", "holders", "release"]

# Middle-generation collections between two full ones (Python's default is 10).
FULL_EVERY = 100

_lock = threading.Lock()
_holders = 0
_thresholds: tuple[int, int, int] | None = None  # the collector's own, restored by the last release


def hold() -> None:
    """An app starts: freeze everything alive now (objects made since an earlier hold join the freeze)."""
    global _holders, _thresholds
    with _lock:
        _holders += 1
        gc.freeze()
        if _thresholds is None:
            _thresholds = gc.get_threshold()
            gc.set_threshold(_thresholds[0], _thresholds[1], max(_thresholds[2], FULL_EVERY))


def release() -> None:
    """An app stops: unfreeze, unless another app still holds the freeze."""
    global _holders, _thresholds
    with _lock:
        if _holders == 0:
            raise RuntimeError("gc_freeze.release() without a hold")
        _holders -= 1
        if _holders == 0:
            gc.unfreeze()
            if _thresholds is not None:
                gc.set_threshold(*_thresholds)
                _thresholds = None


def holders() -> int:
    """How many apps hold the freeze now."""
    return _holders
