"""`lean-chat serve` as a real subprocess on a loopback port, for kill and shutdown tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port

__all__ = ["ServerProcess"]


class ServerProcess:
    """One `python -m lean_chat serve` process; its output goes to a log file the test can read."""

    def __init__(
        self, sqlite_path: str, log_path: Path, env: dict[str, str] | None = None, log_level: str = "info"
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        command = [sys.executable, "-m", "lean_chat", "serve", "--port", str(self.port), "--no-demo"]
        command += ["--sqlite-path", sqlite_path, "--log-level", log_level]
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("LEAN_CHAT_", "FASTAPI_AI_CHAT_"))}
        environment.update(env or {})
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, env=environment, stdout=self.log, stderr=subprocess.STDOUT)

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
        raise RuntimeError("server did not become ready")

    def signal(self, sig: int) -> None:
        """Send a signal to the server process."""
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit and return its code."""
        return self.process.wait(timeout)

    def stop(self) -> None:
        """Kill the process if it still runs, and close the log."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.log.close()

    def output(self) -> str:
        """Everything the server printed so far."""
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def __enter__(self) -> ServerProcess:
        return self.wait_ready()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
