"""npsloop roles as real operating-system processes, for end-to-end and crash tests.

Each role runs ``python -m npsloop.services.cli serve ROLE`` with its own log file, exactly as a
container would run it, so the tests exercise start-up, configuration and shutdown too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def role_environment(
    *, database_url: str, kafka_bootstrap: str, data_dir: Path, topic_prefix: str, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NPSLOOP_")}
    env.update(
        {
            "NPSLOOP_DATABASE_URL": database_url,
            "NPSLOOP_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "NPSLOOP_KAFKA_TOPIC_PREFIX": topic_prefix,
            "NPSLOOP_KAFKA_SESSION_TIMEOUT_MS": "6000",  # a SIGKILLed consumer's partitions move after 6 s
            "NPSLOOP_DATA_DIR": str(data_dir),
            "NPSLOOP_ENVIRONMENT": "test",
            "NPSLOOP_POLL_INTERVAL_SECONDS": "0.05",
            "NPSLOOP_LOG_FORMAT": "text",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


class RoleProcess:
    """One ``npsloop serve ROLE`` process that can be SIGKILLed and started again."""

    def __init__(self, role: str, env: dict[str, str], log_dir: Path, *, port: int | None = None) -> None:
        self.role = role
        self.env = env
        self.port = port
        self.log_path = log_dir / f"{role}.log"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> RoleProcess:
        args = [sys.executable, "-m", "npsloop.services.cli", "serve", self.role]
        if self.port is not None:
            args += ["--host", "127.0.0.1", "--port", str(self.port)]
        log = open(self.log_path, "a")
        log.write(f"--- start #{self.starts + 1} ---\n")
        log.flush()
        self.process = subprocess.Popen(args, env=self.env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.starts += 1
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, like a machine losing power."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL if it does not exit in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def assert_running(self) -> None:
        assert self.process is not None and self.process.poll() is None, (
            f"{self.role} exited with {self.process and self.process.returncode}:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def wait_ready(self, timeout: float = 60.0) -> str:
        """For the api role: wait until /readyz answers 200; return the base URL."""
        assert self.port is not None
        base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.assert_running()
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    return base
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.role} not ready after {timeout}s:\n{self.log_tail()}")
