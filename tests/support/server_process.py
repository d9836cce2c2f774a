"""`lean-chat serve` as a real subprocess on a loopback port: start-up, signals, and everything it printed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.support.live_server import free_port

__all__ = ["ServerProcess", "environment", "serving"]

# The child starts without any lean_chat or provider setting of ours: a test names what it wants.
_SETTING_PREFIXES = ("LEAN_CHAT_", "FASTAPI_AI_CHAT_")
_SETTING_SUFFIXES = ("_API_KEY", "_BASE_URL", "_SQLITE_PATH")
_SETTING_NAMES = frozenset({"PROMETHEUS_MULTIPROC_DIR"})


def environment(**extra: str) -> dict[str, str]:
    """The child's environment: ours without lean_chat or provider settings, plus `extra`, output unbuffered."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_SETTING_PREFIXES) and not k.endswith(_SETTING_SUFFIXES) and k not in _SETTING_NAMES
    }
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ServerProcess:
    """One `python -m lean_chat serve --port P ...` process; its output goes to a log file the test can read.

    `sqlite_path` and `log_level` become their options unless None; `args` follow them. `command` replaces
    the whole command line (it must serve on `port`); `new_session` gives the server its own process group,
    killed whole on stop. Without a `log_path` the output goes to a temporary file, read into memory and
    removed when the process stops.
    """

    def __init__(
        self,
        sqlite_path: str | None,
        log_path: Path | None = None,
        env: Mapping[str, str] | None = None,
        log_level: str | None = "info",
        *,
        args: Sequence[str] = ("--no-demo",),
        cwd: Path | None = None,
        port: int | None = None,
        command: Sequence[str] | None = None,
        new_session: bool = False,
    ) -> None:
        self.port = port if port is not None else free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.new_session = new_session
        if command is None:
            command = [sys.executable, "-m", "lean_chat", "serve", "--port", str(self.port)]
            if sqlite_path is not None:
                command += ["--sqlite-path", sqlite_path]
            if log_level is not None:
                command += ["--log-level", log_level]
            command += args
        self._temporary = log_path is None
        if log_path is None:
            handle, name = tempfile.mkstemp(prefix="lean-chat-serve-", suffix=".log")
            os.close(handle)
            log_path = Path(name)
        self.log_path = log_path
        self._kept: str | None = None
        self._log_file = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=environment(**(env or {})),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
        )

    def wait_ready(self, timeout: float = 20.0) -> ServerProcess:
        """Block until `/healthz` answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.output()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not become ready: {self.output()[-2000:]}")

    def signal(self, sig: int) -> None:
        """Send a signal to the server process."""
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit and return its code."""
        return self.process.wait(timeout)

    def interrupt(self) -> int:
        """Send SIGINT (Ctrl-C) and return the exit code."""
        self.signal(signal.SIGINT)
        return self.wait(20)

    def stop(self) -> None:
        """Kill the process if it still runs, and close the log (a temporary one is read, then removed)."""
        if self.process.poll() is None:
            if self.new_session:
                os.killpg(self.process.pid, signal.SIGKILL)
            else:
                self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        if not self._log_file.closed:
            self._log_file.close()
            if self._temporary:
                self._kept = self.output()
                self.log_path.unlink(missing_ok=True)

    def output(self) -> str:
        """Everything the server printed so far."""
        if self._kept is not None:
            return self._kept
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    @property
    def log(self) -> str:
        """The whole output so far (the same as `output()`)."""
        return self.output()

    @property
    def lines(self) -> list[str]:
        """The output's lines so far."""
        return self.output().splitlines()

    def __enter__(self) -> ServerProcess:
        try:
            return self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: Any) -> None:
        self.stop()


@contextlib.contextmanager
def serving(folder: Path, *args: str, env: Mapping[str, str]) -> Iterator[ServerProcess]:
    """`python -m lean_chat serve --port P ARGS...` run in `folder`, answering; killed afterwards if still running."""
    with ServerProcess(None, None, env, None, args=args, cwd=folder) as server:
        yield server
