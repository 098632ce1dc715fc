"""Ingest throughput and latency, as a ratio to a bare FastAPI endpoint, measured in one run.

    .venv/bin/python -m benchmarks.ingest [--seconds 10] [--connections 32] [--rounds 3] [--postgres URL]

Starts the bare endpoint (validation only), `npsloop up` on the embedded default (every
202 durably committed; one process, its default on SQLite) and with its delivery worker in a
second process (``NPSLOOP_DELIVERY_PROCESS=on``),
`npsloop serve api` on SQLite and, with --postgres, the `api`
role on PostgreSQL. Then measures them in turn, ``--rounds`` times: each round measures
every server once, back to back, so a ratio compares figures taken seconds apart — on a
shared machine, load from elsewhere moves all of them together. A server not being
measured is paused (SIGSTOP), so `up`'s consumers catching up on the backlog of one round
do not take CPU from another server's measurement; they run while `up` itself is
measured, as they would in production. Only ever targets 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import (
    NPSLOOP,
    ROOT,
    Server,
    WrkResult,
    create_key,
    free_port,
    npsloop_env,
    rss_mb,
    run_wrk,
    scratch_dir,
    with_children,
)

SCRIPT = ROOT / "benchmarks" / "post_response.lua"


@dataclass
class Target:
    label: str
    server: Server
    url: str
    key: str = ""
    work: Path | None = None
    results: list[WrkResult] = field(default_factory=list)
    rss_idle: float = 0.0
    rss_loaded: float = 0.0
    acknowledged: int = 0  # 2xx answers, warm-ups included

    def pause(self) -> None:
        for pid in with_children(self.server.process.pid):
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in reversed(with_children(self.server.process.pid)):
            os.kill(pid, signal.SIGCONT)

    def measure(self, seconds: int, connections: int, warm_up: bool) -> WrkResult:
        env = {"NPSLOOP_BENCH_KEY": self.key}
        self.resume()
        try:
            if warm_up:
                first = run_wrk(self.url, connections=connections, seconds=2, script=SCRIPT, env=env)
                self.acknowledged += first.requests - first.non_2xx
            result = run_wrk(self.url, connections=connections, seconds=seconds, script=SCRIPT, env=env)
            self.acknowledged += result.requests - result.non_2xx
            self.rss_loaded = max(self.rss_loaded, rss_mb(self.server.process.pid))
        finally:
            self.pause()
        self.results.append(result)
        return result


def start_bare() -> Target:
    port = free_port()
    work = scratch_dir("bench-bare-")
    server = Server(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "benchmarks.bare_app:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=npsloop_env(work, PYTHONPATH=str(ROOT)),
        cwd=work,
        ready_url=f"http://127.0.0.1:{port}/docs",
    )
    return Target("bare FastAPI (validation only)", server, f"http://127.0.0.1:{port}")


def start_npsloop(label: str, *, role: str, database_url: str | None, **env_extra: str) -> Target:
    port = free_port()
    work = scratch_dir("bench-npsloop-")
    extra = {"NPSLOOP_DATABASE_URL": database_url} if database_url else {}
    extra.update(env_extra)
    env = npsloop_env(work / "data", **extra)
    key = create_key(env, work)
    command = [*NPSLOOP, "up", "--port", str(port)] if role == "up" else [*NPSLOOP, "serve", "api", "--port", str(port)]
    server = Server(command, env=env, cwd=work, ready_url=f"http://127.0.0.1:{port}/readyz")
    target = Target(label, server, f"http://127.0.0.1:{port}", key=key, work=work if not database_url else None)
    target.rss_idle = rss_mb(server.process.pid)
    return target


def stored_rows(target: Target) -> int | None:
    if target.work is None:
        return None
    with sqlite3.connect(target.work / "data" / "npsloop.db") as conn:
        return conn.execute("select count(*) from responses").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", help="PostgreSQL URL for the api-role measurement (database must exist)")
    args = parser.parse_args()

    print(
        f"ingest benchmark: {args.connections} connections, {args.seconds} s per measurement, "
        f"{args.rounds} rounds, wrk on 127.0.0.1"
    )
    targets: list[Target] = []
    try:
        for start in (
            start_bare,
            lambda: start_npsloop("npsloop up (SQLite, durable)", role="up", database_url=None),
            lambda: start_npsloop(
                "npsloop up, delivery process on", role="up", database_url=None, NPSLOOP_DELIVERY_PROCESS="on"
            ),
            lambda: start_npsloop("npsloop serve api (SQLite)", role="api", database_url=None),
            *(
                [lambda: start_npsloop("npsloop serve api (PostgreSQL)", role="api", database_url=args.postgres)]
                if args.postgres
                else []
            ),
        ):
            targets.append(start())
            targets[-1].pause()
        base, others = targets[0], targets[1:]
        ratios: dict[str, list[float]] = {t.label: [] for t in others}
        for round_ in range(1, args.rounds + 1):
            reference = base.measure(args.seconds, args.connections, warm_up=round_ == 1)
            print(f"round {round_}  {base.label:<32} {reference.line()}", flush=True)
            for target in others:
                result = target.measure(args.seconds, args.connections, warm_up=round_ == 1)
                ratio = result.requests_per_second / reference.requests_per_second
                ratios[target.label].append(ratio)
                print(f"round {round_}  {target.label:<32} {result.line()}  ratio {ratio:.2f}x", flush=True)
        for target in targets:
            target.resume()
    finally:
        for target in targets:
            target.resume()
            target.server.stop()

    print("\nmedians over the rounds (ratio = median of the per-round ratios)")
    for target in targets:
        rps = statistics.median(r.requests_per_second for r in target.results)
        p50 = statistics.median(r.p50_ms for r in target.results)
        p99 = statistics.median(r.p99_ms for r in target.results)
        worst = max(r.p99_ms for r in target.results)
        failed = sum(r.non_2xx + r.errors for r in target.results)
        ratio = f"  ratio {statistics.median(ratios[target.label]):.2f}x" if target is not base else ""
        print(
            f"{target.label:<32} {rps:9.0f} req/s  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms (worst {worst:.1f}){ratio}"
            f"  non-2xx/errors {failed}"
        )
        if target.work is not None:
            # Every 202 is a committed row; requests still in flight when wrk stops may
            # add rows it never counted, so stored >= acknowledged.
            stored = stored_rows(target)
            verdict = "ok" if stored >= target.acknowledged else "ROWS MISSING"
            print(
                f"  rows stored {stored} >= 202s acknowledged {target.acknowledged}: {verdict}"
                f"   RSS idle {target.rss_idle:.0f} MB, under load {target.rss_loaded:.0f} MB"
            )


if __name__ == "__main__":
    main()
