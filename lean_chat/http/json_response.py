"""The JSON response of every non-streaming answer, encoded by msgspec."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from starlette.responses import Response

__all__ = ["JSON"]

_encode = msgspec.json.Encoder().encode


class JSON(Response):
    """A JSON response encoded by msgspec."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Encode the content (lone surrogates echoed from a bad request are written as `\\ud800` escapes)."""
        try:
            return _encode(content)
        except UnicodeEncodeError:
            return json.dumps(msgspec.to_builtins(content), ensure_ascii=True).encode()
