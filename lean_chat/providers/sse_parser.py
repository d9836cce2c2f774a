"""An incremental parser for the server-sent events that upstream providers stream to us."""

from __future__ import annotations

__all__ = ["SSEEvent", "SSEParser"]


class SSEEvent:
    """One dispatched event: its name (`message` when none was given) and its data lines joined by `\\n`."""

    __slots__ = ("data", "event")

    def __init__(self, event: str, data: bytes) -> None:
        self.event = event
        self.data = data

    def __repr__(self) -> str:
        return f"SSEEvent({self.event!r}, {self.data!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SSEEvent) and other.event == self.event and other.data == self.data

    __hash__ = None  # type: ignore[assignment]


class SSEParser:
    """Bytes in by `feed()`, complete events out; lines may be cut anywhere across reads.

    Lines end in `\\n` or `\\r\\n`. Fields are `event:` and `data:` (one optional space after the colon);
    several `data:` lines join with `\\n`; `:` comments, `id:`, `retry:` and unknown fields are ignored.
    A blank line dispatches the event, if it has data.
    """

    __slots__ = ("_data", "_event", "_rest")

    def __init__(self) -> None:
        self._rest = b""
        self._event = ""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """The events completed by this chunk, in order."""
        if self._rest:
            chunk = self._rest + chunk
        if b"\r" in chunk:
            # A CR whose LF is in the next read stays at the end of the rest, and pairs up next time.
            chunk = chunk.replace(b"\r\n", b"\n")
        lines = chunk.split(b"\n")
        self._rest = lines.pop()
        events: list[SSEEvent] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    events.append(SSEEvent(self._event or "message", b"\n".join(data)))
                    data = self._data = []
                self._event = ""
            elif line[:6] == b"data: ":
                data.append(line[6:])
            else:
                self._field(line)
        return events

    def flush(self) -> list[SSEEvent]:
        """At the end of the stream: the last event, if the stream ended without its blank line."""
        rest, self._rest = self._rest, b""
        if rest.endswith(b"\r"):
            rest = rest[:-1]
        if rest:
            self._field(rest)
        if not self._data:
            return []
        event = SSEEvent(self._event or "message", b"\n".join(self._data))
        self._data = []
        self._event = ""
        return [event]

    def _field(self, line: bytes) -> None:
        """Take one non-blank line."""
        if line[0] == 58:  # b":", a comment
            return
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
