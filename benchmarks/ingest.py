"""Ingest throughput and latency, as a ratio to a bare FastAPI endpoint, measured in one run.

    .venv/bin/python benchmarks/ingest.py [--seconds 10] [--connections 32] [--postgres URL]

Prints req/s, p50/p99 for: the bare endpoint (validation only), `npsloop up` on the
embedded default (every 202 durably committed), and with --postgres the `api` role on
PostgreSQL. Only ever targets 127.0.0.1.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys

from benchmarks.common import (NPSLOOP, ROOT, Server, create_key, free_port, npsloop_env, rss_mb, run_wrk,
                               scratch_dir)

SCRIPT = ROOT / "benchmarks" / "post_response.lua"


def bare(seconds: int, connections: int):
    port = free_port()
    work = scratch_dir("bench-bare-")
    server = Server([sys.executable, "-m", "uvicorn", "benchmarks.bare_app:app", "--port", str(port), "--log-level",
                     "warning", "--no-access-log"], env=npsloop_env(work, PYTHONPATH=str(ROOT)), cwd=ROOT,
                    ready_url=f"http://127.0.0.1:{port}/docs")
    try:
        run_wrk(f"http://127.0.0.1:{port}", connections=connections, seconds=2, script=SCRIPT)  # warm-up
        return run_wrk(f"http://127.0.0.1:{port}", connections=connections, seconds=seconds, script=SCRIPT)
    finally:
        server.stop()


def npsloop(seconds: int, connections: int, *, role: str, database_url: str | None):
    port = free_port()
    work = scratch_dir("bench-npsloop-")
    extra = {"NPSLOOP_DATABASE_URL": database_url} if database_url else {}
    env = npsloop_env(work / "data", **extra)
    key = create_key(env, work)
    command = [*NPSLOOP, "up", "--port", str(port)] if role == "up" else [*NPSLOOP, "serve", "api", "--port", str(port)]
    server = Server(command, env=env, cwd=work, ready_url=f"http://127.0.0.1:{port}/readyz")
    try:
        idle = rss_mb(server.process.pid)
        wrk_env = {"NPSLOOP_BENCH_KEY": key}
        run_wrk(f"http://127.0.0.1:{port}", connections=connections, seconds=2, script=SCRIPT, env=wrk_env)
        result = run_wrk(f"http://127.0.0.1:{port}", connections=connections, seconds=seconds, script=SCRIPT, env=wrk_env)
        loaded = rss_mb(server.process.pid)
    finally:
        server.stop()
    stored = None
    if not database_url:
        with sqlite3.connect(work / "data" / "npsloop.db") as conn:
            stored = conn.execute("select count(*) from responses").fetchone()[0]
    return result, idle, loaded, stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--postgres", help="PostgreSQL URL for the api-role measurement (database must exist)")
    args = parser.parse_args()

    print(f"ingest benchmark: {args.connections} connections, {args.seconds} s each, wrk on 127.0.0.1")
    base = bare(args.seconds, args.connections)
    print(f"bare FastAPI (validation only)   {base.line()}")
    up, idle, loaded, stored = npsloop(args.seconds, args.connections, role="up", database_url=None)
    print(f"npsloop up (SQLite, durable)     {up.line()}")
    print(f"  ratio {up.requests_per_second / base.requests_per_second:.2f}x   "
          f"rows stored {stored} (acknowledged ≤ {up.requests})   RSS idle {idle:.0f} MB, under load {loaded:.0f} MB")
    api_only, *_ = npsloop(args.seconds, args.connections, role="api", database_url=None)
    print(f"npsloop serve api (SQLite)       {api_only.line()}")
    print(f"  ratio {api_only.requests_per_second / base.requests_per_second:.2f}x   (the API alone; consumers run elsewhere)")
    if args.postgres:
        api, *_ = npsloop(args.seconds, args.connections, role="api", database_url=args.postgres)
        print(f"npsloop serve api (PostgreSQL)   {api.line()}")
        print(f"  ratio {api.requests_per_second / base.requests_per_second:.2f}x")


if __name__ == "__main__":
    main()
