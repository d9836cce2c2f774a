"""Taking back a cancellation the app sent itself (a watcher's, a deadline's) once it has been handled.

Python 3.11 counts a task's pending cancellations (`Task.cancelling`; `asyncio.timeout` and task groups read the
count), so a handled one must be taken back with `Task.uncancel`. Python 3.10 counts none: nothing to take back.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["take_back_cancel"]


def take_back_cancel(task: asyncio.Task[Any]) -> int:
    """Take back one cancellation of `task`; how many are still pending (always 0 before Python 3.11)."""
    uncancel = getattr(task, "uncancel", None)
    return 0 if uncancel is None else int(uncancel())
