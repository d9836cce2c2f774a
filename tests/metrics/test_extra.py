"""Without the `metrics` extra: the library names it; `lean-chat serve` runs without metrics and says so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.live_server import free_port
from tests.support.server_process import ServerProcess

# prometheus-client made unimportable, as on an install without the extra.
HIDE = "import sys; sys.modules['prometheus_client'] = None; "


def test_metrics_on_without_the_extra_is_an_import_error_naming_it() -> None:
    code = HIDE + "from lean_chat import create_app; create_app(metrics=True, sqlite_path='')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "ImportError: metrics are on but prometheus-client is not installed: pip install 'lean-chat[metrics]'" in (
        result.stderr
    )
    off = HIDE + "from lean_chat import create_app; create_app(sqlite_path=''); print('ok')"
    assert subprocess.run([sys.executable, "-c", off], capture_output=True, text=True, check=True).stdout == "ok\n"


def test_serve_without_the_extra_runs_and_says_metrics_are_off(tmp_path: Path) -> None:
    port = free_port()
    code = HIDE + f"from lean_chat.server.cli import main; main(['serve', '--port', '{port}', '--sqlite-path', ''])"
    served = ServerProcess(None, port=port, command=[sys.executable, "-c", code], cwd=tmp_path)
    try:
        served.wait_ready()
        assert httpx.get(f"{served.url}/metrics", timeout=5).status_code == 404
        assert served.interrupt() == 0
    finally:
        served.stop()
    ready = next(line for line in served.lines if "lean_chat ready" in line)
    assert "metrics off (pip install 'lean-chat[metrics]' for /metrics)" in ready
