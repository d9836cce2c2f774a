"""`lean-chat serve`: run the app under uvicorn with sane defaults."""

from __future__ import annotations

import argparse
import importlib.util
import logging.config
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import uvicorn

from ..config import Settings
from ..metrics import MULTIPROCESS_ENV
from .listener import serve
from .log_format import LOG_FORMATS, uvicorn_log_config

# The app factory uvicorn imports (in each worker, when there are several).
APP = "lean_chat.app:create_app_from_env"
# The event loop (in each worker too): uvloop, accepting every waiting connection each turn (see loop.py).
LOOP = "lean_chat.server.loop:new_event_loop"

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    parser = argparse.ArgumentParser(prog="lean-chat", description="Streaming AI-chat backend.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--sqlite-path", default=None, help='history file ("" keeps history in memory)')
    serve.add_argument(
        "--database-url",
        default=None,
        help="history in PostgreSQL (postgresql://..., the postgres extra), sqlite:///PATH or memory://",
    )
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--no-demo", action="store_true", help="do not serve the demo page at /")
    serve.add_argument(
        "--demo-tools", action="store_true", help="register the demo's example tool (get_weather, made-up forecasts)"
    )
    serve.add_argument("--root-path", default="", help="the prefix a proxy in front strips (e.g. /ai)")
    serve.add_argument(
        "--limit-concurrency",
        type=int,
        default=None,
        help="connections and tasks at once before new requests get 503 (default: LEAN_CHAT_LIMIT_CONCURRENCY or 4096)",
    )
    serve.add_argument(
        "--timeout-keep-alive",
        type=int,
        default=None,
        help="seconds an idle keep-alive connection stays open (default: LEAN_CHAT_TIMEOUT_KEEP_ALIVE_SECONDS or 5)",
    )
    serve.add_argument(
        "--body-timeout",
        type=float,
        default=None,
        help="seconds a request body may take to arrive, then 408 (default: LEAN_CHAT_BODY_TIMEOUT_SECONDS or 30)",
    )
    serve.add_argument(
        "--no-metrics", action="store_true", help="do not serve GET /metrics (on by default when the extra is there)"
    )
    serve.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=None,
        help="json: one JSON object per log line and per finished request (default: LEAN_CHAT_LOG_FORMAT or text)",
    )
    return parser


def _metrics_setting(disabled: bool) -> None:
    """Metrics on unless asked off or set in the environment; off (said in the start-up line) without the extra."""
    if disabled:
        os.environ["LEAN_CHAT_METRICS"] = "0"
    elif "LEAN_CHAT_METRICS" not in os.environ:
        os.environ["LEAN_CHAT_METRICS"] = "1" if importlib.util.find_spec("prometheus_client") else "0"


@contextmanager
def _metric_files(workers: int, metrics: bool) -> Iterator[None]:
    """With several workers and metrics on: a fresh folder for their figures (removed at exit), unless one is set."""
    if workers <= 1 or not metrics or os.environ.get(MULTIPROCESS_ENV):
        yield
        return
    folder = tempfile.mkdtemp(prefix="lean-chat-metrics-")
    os.environ[MULTIPROCESS_ENV] = folder
    try:
        yield
    finally:
        del os.environ[MULTIPROCESS_ENV]
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and run the command."""
    args = _parser().parse_args(argv)
    if args.sqlite_path is not None:
        os.environ["FASTAPI_AI_CHAT_SQLITE_PATH"] = args.sqlite_path
    if args.database_url is not None:
        os.environ["LEAN_CHAT_DATABASE_URL"] = args.database_url
    if not args.no_demo:
        os.environ.setdefault("LEAN_CHAT_SERVE_DEMO_PAGE", "1")
    if args.demo_tools:
        os.environ["LEAN_CHAT_DEMO_TOOLS"] = "1"
    if args.body_timeout is not None:
        os.environ["LEAN_CHAT_BODY_TIMEOUT_SECONDS"] = str(args.body_timeout)
    if args.log_format is not None:
        os.environ["LEAN_CHAT_LOG_FORMAT"] = args.log_format
    _metrics_setting(args.no_metrics)
    settings = Settings.from_env()
    log_config = uvicorn_log_config(settings.log_format, args.log_level)
    logging.config.dictConfig(log_config)
    limit = settings.limit_concurrency if args.limit_concurrency is None else args.limit_concurrency
    keep_alive = settings.timeout_keep_alive_seconds if args.timeout_keep_alive is None else args.timeout_keep_alive
    options: dict[str, Any] = dict(
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        log_config=log_config,
        # The JSON log has its own line per request (with the request id), in place of uvicorn's.
        access_log=settings.log_format != "json",
        loop=LOOP,
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        # A second more than the app's own grace, so running streams end with their error frame before uvicorn
        # cancels them (the setting may be fractional).
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_seconds) + 1,
        root_path=args.root_path,
        # Slow clients: a bounded number of connections, idle ones closed; slow headers need a proxy in front.
        limit_concurrency=limit if limit > 0 else None,
        timeout_keep_alive=keep_alive,
    )
    with _metric_files(args.workers, settings.metrics):
        if args.workers > 1:  # uvicorn's supervisor; each worker's loop accepts every waiting connection (loop.py)
            uvicorn.run(APP, factory=True, workers=args.workers, **options)
            return 0
        return serve(uvicorn.Config(APP, factory=True, **options))
