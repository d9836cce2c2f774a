"""Settings: every knob of lean_chat, from keyword arguments or the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["DEFAULT_SQLITE_PATH", "Settings"]

DEFAULT_SQLITE_PATH = "./chat_history.sqlite3"

# Environment variables per setting; the first one set (non-empty) wins.
_ENV_NAMES: dict[str, tuple[str, ...]] = {
    "openai_api_key": ("OPENAI_API_KEY", "FASTAPI_AI_CHAT_OPENAI_API_KEY"),
    "anthropic_api_key": ("ANTHROPIC_API_KEY", "FASTAPI_AI_CHAT_ANTHROPIC_API_KEY"),
    "gemini_api_key": ("GEMINI_API_KEY", "FASTAPI_AI_CHAT_GEMINI_API_KEY"),
    "openai_base_url": ("OPENAI_BASE_URL", "FASTAPI_AI_CHAT_OPENAI_BASE_URL"),
    "anthropic_base_url": ("ANTHROPIC_BASE_URL", "FASTAPI_AI_CHAT_ANTHROPIC_BASE_URL"),
    "gemini_base_url": ("GEMINI_BASE_URL", "FASTAPI_AI_CHAT_GEMINI_BASE_URL"),
    "sqlite_path": ("FASTAPI_AI_CHAT_SQLITE_PATH", "LEAN_CHAT_SQLITE_PATH"),
    "cors_allow_origins": ("LEAN_CHAT_CORS_ORIGINS", "LEAN_CHAT_CORS_ALLOW_ORIGINS"),
    "openai_max_retries": ("FASTAPI_AI_CHAT_OPENAI_MAX_RETRIES", "LEAN_CHAT_OPENAI_MAX_RETRIES"),
    "openai_retry_base_delay_ms": (
        "FASTAPI_AI_CHAT_OPENAI_RETRY_BASE_DELAY_MS",
        "LEAN_CHAT_OPENAI_RETRY_BASE_DELAY_MS",
    ),
    "openai_retry_max_delay_ms": ("FASTAPI_AI_CHAT_OPENAI_RETRY_MAX_DELAY_MS", "LEAN_CHAT_OPENAI_RETRY_MAX_DELAY_MS"),
    "anthropic_max_retries": ("LEAN_CHAT_ANTHROPIC_MAX_RETRIES",),
    "anthropic_retry_base_delay_ms": ("LEAN_CHAT_ANTHROPIC_RETRY_BASE_DELAY_MS",),
    "anthropic_retry_max_delay_ms": ("LEAN_CHAT_ANTHROPIC_RETRY_MAX_DELAY_MS",),
    "gemini_max_retries": ("FASTAPI_AI_CHAT_GEMINI_MAX_RETRIES", "LEAN_CHAT_GEMINI_MAX_RETRIES"),
    "gemini_retry_base_delay_ms": (
        "FASTAPI_AI_CHAT_GEMINI_RETRY_BASE_DELAY_MS",
        "LEAN_CHAT_GEMINI_RETRY_BASE_DELAY_MS",
    ),
    "gemini_retry_max_delay_ms": ("FASTAPI_AI_CHAT_GEMINI_RETRY_MAX_DELAY_MS", "LEAN_CHAT_GEMINI_RETRY_MAX_DELAY_MS"),
}


@dataclass
class Settings:
    """Every setting of a lean_chat app; unset values fall back to the documented defaults."""

    openai_api_key: str | None = field(default=None, repr=False)
    anthropic_api_key: str | None = field(default=None, repr=False)
    gemini_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str = "https://api.openai.com/v1"
    anthropic_base_url: str = "https://api.anthropic.com/v1"
    gemini_base_url: str = "https://generativelanguage.googleapis.com/v1beta"
    # None: FASTAPI_AI_CHAT_SQLITE_PATH or ./chat_history.sqlite3; "" keeps history in memory only.
    sqlite_path: str | None = None
    # postgresql://user@host:port/db (the `postgres` extra), sqlite:///path or memory://; when set, it wins over
    # sqlite_path. See docs/running-several-instances.md.
    database_url: str | None = field(default=None, repr=False)
    # The PostgreSQL connection pool per process; statement cache 0 behind pgbouncer in transaction mode.
    database_pool_min_size: int = 2
    database_pool_max_size: int = 10
    database_statement_cache_size: int = 100
    # PostgreSQL's synchronous_commit for lean_chat's sessions. "off" (the default) matches SQLite's WAL mode with
    # synchronous=NORMAL: a crash of lean_chat loses no committed write, a crash of the database server (or a
    # power cut) may lose the last few, never consistency; "on" flushes every commit (an fsync per write).
    database_synchronous_commit: str = "off"
    # How long a store operation may wait for a connection or an answer before the request fails (503/error).
    database_timeout_seconds: float = 5.0
    cors_allow_origins: list[str] | None = None
    default_model: str = "gpt-4.1"
    heartbeat_seconds: float = 15.0
    max_body_bytes: int = 1024 * 1024
    # A request body still arriving after this long is refused with 408 and the connection closed (0: no limit).
    body_timeout_seconds: float = 30.0
    # A write the client has not taken after this long ends the stream (0 waits forever).
    send_timeout_seconds: float = 30.0
    max_conversations_limit: int = 500
    # Limits on what one request may ask for (422 past them); concurrent streams per user (429 past it, 0 off).
    max_messages_per_request: int = 1000
    max_message_chars: int = 200_000
    max_streams_per_user: int = 20
    # What one turn sends upstream: the newest messages within this many characters (every system message
    # kept, the newest message always); 0 sends the whole conversation.
    max_context_chars: int = 400_000
    # Bearer keys of trusted backends (comma-separated in LEAN_CHAT_API_KEYS); empty: no authentication.
    api_keys: list[str] = field(default_factory=list, repr=False)
    # On SIGTERM, running streams may finish for this long; then they end with an `error` frame, saved partial.
    shutdown_grace_seconds: float = 10.0
    # `lean-chat serve` (uvicorn): connections and tasks at once before new requests get 503 (one per open
    # stream, as the upstream pool's `max_connections`), and how long an idle keep-alive connection stays open.
    limit_concurrency: int = 4096
    timeout_keep_alive_seconds: int = 5
    # Upstream HTTP.
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 120.0
    request_timeout_seconds: float = 600.0
    # The upstream pool: at most this many connections; a stream that finds it full waits at most
    # pool_timeout_seconds, then ends with an `error` frame; idle ones are kept alive this long.
    max_connections: int = 4096
    pool_timeout_seconds: float = 10.0
    keepalive_expiry_seconds: float = 30.0
    # "lean": lean_chat's HTTP/1.1 transport (asyncio + httptools); "httpx": httpx's own. HTTP/2 or a proxy
    # in the environment always uses httpx's own.
    upstream_transport: str = "lean"
    http2: bool = False
    # An upstream line (or one event's data) longer than this ends the stream with an `error` frame.
    max_upstream_line_bytes: int = 1024 * 1024
    openai_include_usage: bool = True
    anthropic_max_tokens: int = 1024
    openai_max_retries: int = 2
    openai_retry_base_delay_ms: int = 500
    openai_retry_max_delay_ms: int = 8000
    anthropic_max_retries: int = 2
    anthropic_retry_base_delay_ms: int = 500
    anthropic_retry_max_delay_ms: int = 8000
    gemini_max_retries: int = 2
    gemini_retry_base_delay_ms: int = 500
    gemini_retry_max_delay_ms: int = 8000
    retry_after_cap_seconds: float = 30.0
    # No model named and the default provider fails before its first token (or has no key): the mock answers,
    # with a warning logged. Off: the stream ends with an `error` frame instead.
    mock_fallback: bool = True
    # The tool loop (docs/wire.md "Tools and reasoning"): steps per turn (a request may ask for fewer), calls run per
    # step (the ones past it are answered `too_many_tool_calls`), a tool's time, and its result's JSON size.
    max_steps: int = 5
    max_tool_calls_per_step: int = 16
    tool_timeout_seconds: float = 30.0
    max_tool_result_bytes: int = 65536
    # Register the demo's example tool (tools/demo.py) beside the app's own (`lean-chat serve --demo-tools`).
    demo_tools: bool = False
    # Serve the demo page at "/" (the command line turns it on; the library leaves it off).
    serve_demo_page: bool = False
    # Resumable streams and Stop (docs/resume.md). Redis (the `redis` extra) shares them across instances.
    redis_url: str = field(default="", repr=False)
    redis_prefix: str = "lean_chat:"
    redis_max_connections: int = 100  # past it, a command waits (5 s at most) for a free connection
    # A resumable reply goes on this long with no reader; an ended one can be replayed this long.
    resume_grace_seconds: float = 60.0
    resume_ttl_seconds: float = 600.0
    # A producer's lease: when its instance dies, readers get `interrupted` this long after its last renewal.
    resume_lease_seconds: float = 3.0
    # Kept batches per stream (one per network read of the upstream); the oldest are dropped past it.
    resume_max_batches: int = 10_000
    # `GET /metrics` in the Prometheus text format (needs the `metrics` extra; `lean-chat serve` turns it on).
    metrics: bool = False
    # Model names kept as metric labels: these, the default, then those a real provider served, up to the count.
    metrics_models: list[str] = field(default_factory=list)
    metrics_max_models: int = 50
    # "text", or "json": one JSON object per log line, and one line per finished request or stream.
    log_format: str = "text"
    extra: dict[str, Any] = field(default_factory=dict)

    def resolved_sqlite_path(self) -> str:
        """The SQLite file to use, or "" when persistence is disabled."""
        if self.sqlite_path is not None:
            return self.sqlite_path.strip() if self.sqlite_path.strip() else ""
        return os.environ.get("FASTAPI_AI_CHAT_SQLITE_PATH", DEFAULT_SQLITE_PATH)

    def configured_providers(self) -> list[str]:
        """Names of the real providers that have an API key."""
        keys = {"openai": self.openai_api_key, "anthropic": self.anthropic_api_key, "gemini": self.gemini_api_key}
        return [name for name, key in keys.items() if key and key.strip()]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings read from the environment (WIRE.md names, then LEAN_CHAT_*), then overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            names = _ENV_NAMES.get(f.name, (f"LEAN_CHAT_{f.name.upper()}",))
            for name in names:
                raw = env.get(name)
                if raw is None or (raw.strip() == "" and f.name != "sqlite_path"):
                    continue
                values[f.name] = _parse(f.name, raw, f.type)
                break
        values.update(overrides)
        return cls(**values)


def _parse(name: str, raw: str, annotation: object) -> Any:
    """Turn one environment string into the setting's type."""
    kind = str(annotation)
    text = raw.strip()
    try:
        if kind.startswith("bool"):
            return text.lower() in ("1", "true", "yes", "on")
        if kind.startswith("int"):
            return int(text)
        if kind.startswith("float"):
            return float(text)
    except ValueError:
        raise ValueError(f"setting {name}: cannot read {text!r} as {kind}") from None
    if kind.startswith("list"):
        return [part.strip() for part in text.split(",") if part.strip()]
    return raw if name == "sqlite_path" else text
