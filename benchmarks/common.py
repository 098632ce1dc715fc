"""Shared pieces of the benchmark scripts: start servers, run wrk, read its figures."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
NPSLOOP = [str(Path(sys.executable).parent / "npsloop")]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout}s")


def with_children(pid: int) -> list[int]:
    """A process and the processes it started (``npsloop up``'s delivery process)."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid, *(int(child) for child in children)]


def cpu_seconds(pid: int) -> dict[int, float]:
    """CPU time (user + system) of a process and of each of its children, by pid."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for p in with_children(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        found[p] = (int(fields[11]) + int(fields[12])) / ticks
    return found


def postgres_cpu_seconds() -> float:
    """CPU time of the local PostgreSQL server: every ``postgres`` process, and what its
    ended children (backends of closed connections) left in the postmaster's account."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        name, fields = text[text.index("(") + 1 : text.rindex(")")], text.rsplit(")", 1)[1].split()
        if name != "postgres":
            continue
        total += int(fields[11]) + int(fields[12])
        parent = Path(f"/proc/{fields[1]}/comm")
        if not parent.exists() or parent.read_text().strip() != "postgres":  # the postmaster
            total += int(fields[13]) + int(fields[14])
    return total / ticks


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    total = 0
    for p in with_children(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total / 1024


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    errors: int

    def line(self) -> str:
        return (
            f"{self.requests_per_second:9.0f} req/s  p50 {self.p50_ms:6.1f} ms  p99 {self.p99_ms:6.1f} ms  "
            f"({self.requests} requests, {self.non_2xx} non-2xx, {self.errors} socket errors)"
        )


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(
    url: str,
    *,
    connections: int,
    seconds: int,
    script: Path,
    env: dict[str, str] | None = None,
    threads: int = 2,
    rate: int | None = None,
) -> WrkResult:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: run ./scripts/setup-system-packages (Debian package wrk)")
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    # A fresh run id per run: the script builds unique Idempotency-Keys from it.
    run_env = {**os.environ, "NPSLOOP_BENCH_RUN": uuid.uuid4().hex[:12], **(env or {})}
    done = subprocess.run(command, capture_output=True, text=True, env=run_env, timeout=seconds + 60)
    out = done.stdout
    if "Requests/sec" not in out or "50%" not in out:
        raise RuntimeError(f"wrk produced no figures:\n{out}\n{done.stderr}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    errors = (
        sum(int(x) for x in m.groups())
        if (m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out))
        else 0
    )
    return WrkResult(rps, p50, p99, total, non_2xx, errors)


class Server:
    """A server process started for one measurement and stopped after it."""

    def __init__(self, command: list[str], *, env: dict[str, str], cwd: Path, ready_url: str | None) -> None:
        self.log = open(Path(cwd) / "server.log", "ab")
        self.process = subprocess.Popen(command, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT)
        if ready_url is not None:
            wait_http(ready_url)
        else:  # a worker role serves no HTTP: give it time to start, and check it did not exit
            time.sleep(3)
            if self.process.poll() is not None:
                raise RuntimeError(f"{command} exited with {self.process.returncode}; see {cwd}/server.log")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def npsloop_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NPSLOOP_")}
    env.update(
        {
            "NPSLOOP_DATA_DIR": str(data_dir),
            "NPSLOOP_LOG_FORMAT": "json",
            "NPSLOOP_LOG_LEVEL": "WARNING",
            # The per-key rate limit would measure itself; benchmarks measure capacity.
            "NPSLOOP_RATE_LIMIT_PER_SECOND": "1000000",
            "NPSLOOP_RATE_LIMIT_BURST": "1000000",
        }
    )
    env.update(extra)
    return env


def create_key(env: dict[str, str], cwd: Path) -> str:
    out = subprocess.run(
        [*NPSLOOP, "keys", "create", "--name", "bench", "--scopes", "admin"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.strip().splitlines()[-1]


def scratch_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
