"""The collector's freeze, shared by every app in the process: held while any app runs, undone by the last to stop.

`gc.freeze()` moves every object alive into a permanent generation that full collections skip: what an app makes
at start-up lives as long as it does, and walking it all would stall every open stream for tens of milliseconds.
The freeze is one per process, so apps count their holds here instead of undoing each other's.
"""

from __future__ import annotations

import gc
import threading

__all__ = ["hold", "holders", "release"]

_lock = threading.Lock()
_holders = 0


def hold() -> None:
    """An app starts: freeze everything alive now (objects made since an earlier hold join the freeze)."""
    global _holders
    with _lock:
        _holders += 1
        gc.freeze()


def release() -> None:
    """An app stops: unfreeze, unless another app still holds the freeze."""
    global _holders
    with _lock:
        if _holders == 0:
            raise RuntimeError("gc_freeze.release() without a hold")
        _holders -= 1
        if _holders == 0:
            gc.unfreeze()


def holders() -> int:
    """How many apps hold the freeze now."""
    return _holders
