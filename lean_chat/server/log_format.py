"""Log lines as JSON (`LEAN_CHAT_LOG_FORMAT=json`) or text, configured keys redacted in both.

JSON: every record becomes `{"time", "level", "logger", "message", ...}`, client text escaped; a record with a
`fields` mapping (the line per finished request) adds those keys. Text keeps uvicorn's formats, each line
redacted once formatted (uvicorn's access line holds the path and query string as the client sent them).
`uvicorn_log_config` hands the formatters to uvicorn's loggers and the root, in every worker process.
"""

from __future__ import annotations

import copy
import importlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from uvicorn.config import LOGGING_CONFIG

from ..config import Settings
from ..redaction import redact

__all__ = [
    "LOG_FORMATS",
    "JSONFormatter",
    "RedactingFormatter",
    "configured_secrets",
    "redacting",
    "uvicorn_log_config",
]

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(levelname)s:     %(message)s"
_encode = msgspec.json.Encoder().encode


def configured_secrets(settings: Settings) -> list[str]:
    """Every key in the settings (provider keys and the API keys), longest first."""
    keys = [settings.openai_api_key, settings.anthropic_api_key, settings.gemini_api_key, *settings.api_keys]
    return sorted({key.strip() for key in keys if key and key.strip()}, key=len, reverse=True)


class JSONFormatter(logging.Formatter):
    """Formats each record as one JSON object on one line; configured keys are replaced by `[redacted]`."""

    def __init__(self, secrets: Sequence[str] | None = None) -> None:
        super().__init__()
        self.secrets = list(secrets) if secrets is not None else configured_secrets(Settings.from_env())

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        data: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": self._redact(record.getMessage()),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            for key, value in fields.items():
                data[key] = self._redact(value) if isinstance(value, str) else value
        if record.exc_info:
            data["exception"] = self._redact(self.formatException(record.exc_info))
        try:
            return _encode(data).decode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from client text
            return json.dumps(data, ensure_ascii=True, default=str)

    def _redact(self, text: str) -> str:
        """The text with every configured key replaced."""
        return redact(text, self.secrets)


class RedactingFormatter(logging.Formatter):
    """Another formatter's lines with every configured key replaced by `[redacted]` (the text log format)."""

    def __init__(self, inner: logging.Formatter, secrets: Sequence[str] | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.secrets = list(secrets) if secrets is not None else configured_secrets(Settings.from_env())

    def format(self, record: logging.LogRecord) -> str:
        """The inner formatter's line, redacted."""
        return redact(self.inner.format(record), self.secrets)


def redacting(inner: str, **options: Any) -> RedactingFormatter:
    """For `dictConfig`: the formatter class at the dotted path `inner`, made with `options`, then redacted."""
    module, _, name = inner.rpartition(".")
    return RedactingFormatter(getattr(importlib.import_module(module), name)(**options))


def _timestamp(created: float) -> str:
    """UTC ISO-8601 with milliseconds."""
    seconds = int(created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int((created - seconds) * 1000):03d}Z"


def uvicorn_log_config(log_format: str, level: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` for uvicorn's loggers and the root (so lean_chat's), run by each worker.

    Text keeps uvicorn's own formats and gives the root lean_chat's, each redacted; JSON gives every logger the
    JSON formatter.
    """
    level = level.upper()
    if log_format != "json":
        config = copy.deepcopy(LOGGING_CONFIG)
        for formatter in config["formatters"].values():
            formatter["inner"] = formatter.pop("()")
            formatter["()"] = "lean_chat.server.log_format.redacting"
        config["formatters"]["lean_chat"] = {
            "()": "lean_chat.server.log_format.redacting",
            "inner": "logging.Formatter",
            "fmt": TEXT_FORMAT,
        }
        config["handlers"]["lean_chat"] = {
            "class": "logging.StreamHandler",
            "formatter": "lean_chat",
            "stream": "ext://sys.stderr",
        }
        config["root"] = {"handlers": ["lean_chat"], "level": level}
        return config
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "lean_chat.server.log_format.JSONFormatter"}},
        "handlers": {"json": handler},
        "loggers": {
            "uvicorn": {"handlers": ["json"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["json"], "level": level, "propagate": False},
        },
        "root": {"handlers": ["json"], "level": level},
    }
