"""The context windows of long conversations, kept per process between turns, within bounds of count and size."""

from __future__ import annotations

from collections import OrderedDict

from .history import ContextWindow

__all__ = ["WindowCache"]


class WindowCache:
    """Windows kept least recently used first; none shorter than `min_messages` or over a quarter of the size."""

    def __init__(self, min_messages: int, max_windows: int = 256, max_chars: int = 32 * 1024 * 1024) -> None:
        self.min_messages = min_messages
        self.max_windows = max_windows
        self.max_chars = max_chars
        self._windows: OrderedDict[str, ContextWindow] = OrderedDict()
        self._chars = 0

    def get(self, conversation_id: str) -> ContextWindow | None:
        """The kept window, left in place."""
        return self._windows.get(conversation_id)

    def take(self, conversation_id: str) -> ContextWindow | None:
        """The kept window, taken out (to be extended and kept again)."""
        window = self._windows.pop(conversation_id, None)
        if window is not None:
            self._chars -= window.chars
        return window

    def keep(self, conversation_id: str, window: ContextWindow) -> None:
        """Keep a window (most recently used last), dropping the oldest past the bounds."""
        self.take(conversation_id)
        if window.count < self.min_messages or window.chars > self.max_chars // 4:
            return
        self._windows[conversation_id] = window
        self._chars += window.chars
        while len(self._windows) > self.max_windows or self._chars > self.max_chars:
            _, dropped = self._windows.popitem(last=False)
            self._chars -= dropped.chars

    def forget(self, conversation_id: str) -> None:
        """Drop a conversation's window."""
        self.take(conversation_id)
