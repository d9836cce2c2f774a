"""Label values for metrics: only values our code chooses, or a bounded set of model names; never client text."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["OTHER", "OUTCOMES", "ModelLabels", "code_label", "error_type_label", "provider_label"]

OTHER = "other"
# How a stream ended: its reply complete, an `error` frame, the client left, the server ended it (shutdown, stop),
# or the client stopped reading for longer than the send timeout.
OUTCOMES = ("done", "error", "client_gone", "stopped", "stalled_client")
PROVIDERS = frozenset({"openai", "anthropic", "gemini", "mock"})

_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,99}")
_CODE = re.compile(r"[a-z][a-z0-9_]{0,47}")
_ERROR_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.]{0,47}")


def provider_label(name: str) -> str:
    """A provider's routing name, or `other`."""
    return name if name in PROVIDERS else OTHER


def code_label(code: str | None) -> str:
    """An `error` frame's code (our own snake_case names), `""` for none, or `other`."""
    if not code:
        return ""
    return code if _CODE.fullmatch(code) else OTHER


def error_type_label(error_type: str | None) -> str:
    """An upstream failure's type (an HTTP status or a transport error's class name), or `other`."""
    if not error_type:
        return OTHER
    return error_type if _ERROR_TYPE.fullmatch(error_type) else OTHER


class ModelLabels:
    """Model names as label values: the configured ones, then those a real provider served, up to `limit`.

    A name a client asks for becomes a label value only once a real upstream has streamed a reply for it (so it
    is a model that exists), and only until `limit` names are known; every other name is `other`. Names the
    mock serves are all `mock`.
    """

    def __init__(self, limit: int, configured: Iterable[str] = ()) -> None:
        self.known: set[str] = {name for name in configured if _MODEL.fullmatch(name)}
        self.limit = max(limit, len(self.known))

    def label(self, model: str) -> str:
        """The label value for a model name asked for."""
        if model in self.known:
            return model
        if model[:4].lower() == "mock":
            return "mock"
        return OTHER

    def learn(self, model: str) -> None:
        """Note a model a real provider served (kept while fewer than `limit` names are known)."""
        if len(self.known) < self.limit and model not in self.known and _MODEL.fullmatch(model):
            self.known.add(model)
