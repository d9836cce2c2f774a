"""Taking back a cancellation the app sent itself (a watcher's, a deadline's) once it has been handled.

A task counts its pending cancellations (`Task.cancelling`; `asyncio.timeout` and task groups read the count), so
a handled one must be taken back with `Task.uncancel`, or a later `asyncio.timeout` in the same task misreads it.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["take_back_cancel"]


def take_back_cancel(task: asyncio.Task[Any]) -> int:
    """Take back one cancellation of `task`; how many are still pending."""
    return task.uncancel()
