"""Bulk import through POST /v1/responses/batch (1,000 per request), responses/s.

    .venv/bin/python -m benchmarks.bulk [--batches 30] [--parallel 2] [--role up|api] [--postgres URL]

Every batch holds new responses; after the run the script counts the rows stored and the
``response.received`` events logged, and fails unless both match what was acknowledged.
With --postgres the server uses that (existing, preferably empty) database.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx

from benchmarks.common import NPSLOOP, Server, create_key, free_port, npsloop_env, scratch_dir


def batch(offset: int) -> dict:
    comments = ["Support took days to answer", "Great product, easy to set up", "Too expensive", "", "Crashes a lot"]
    return {
        "responses": [
            {
                "score": (offset + i) % 11,
                "comment": comments[i % len(comments)] or None,
                "customer": {"id": f"cust-{offset + i}", "segment": "smb"},
                "external_id": f"import-{offset + i}",
                "survey": {"touchpoint": "renewal", "kind": "relationship", "channel": "email"},
            }
            for i in range(1000)
        ]
    }


async def run(base_url: str, key: str, batches: int, parallel: int) -> tuple[int, float]:
    bodies = [batch(n * 1000) for n in range(batches)]
    accepted = 0
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
        queue = list(bodies)
        started = time.perf_counter()

        async def worker() -> None:
            nonlocal accepted
            while queue:
                body = queue.pop()
                reply = await client.post("/v1/responses/batch", json=body)
                reply.raise_for_status()
                accepted += reply.json()["accepted"]

        await asyncio.gather(*(worker() for _ in range(parallel)))
        return accepted, time.perf_counter() - started


async def stored(env: dict[str, str]) -> tuple[int, int]:
    """(responses, response.received events) in the server's database."""
    from sqlalchemy import func, select

    from npsloop.services.ingest.models import Response
    from npsloop.shared.db import Database
    from npsloop.shared.models import EventLogEntry
    from npsloop.shared.settings import Settings

    settings = Settings(data_dir=env["NPSLOOP_DATA_DIR"], database_url=env.get("NPSLOOP_DATABASE_URL"))
    db = Database(settings.resolved_database_url)
    try:
        async with db.sessions() as session:
            return (
                await session.scalar(select(func.count()).select_from(Response)),
                await session.scalar(select(func.count()).select_from(EventLogEntry)),
            )
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument(
        "--role",
        choices=["up", "api"],
        default="api",
        help="api: the API alone (consumers would run elsewhere); up: everything in one process",
    )
    parser.add_argument("--postgres", help="PostgreSQL URL (the database must exist); default: SQLite")
    args = parser.parse_args()
    work = scratch_dir("bench-bulk-")
    env = npsloop_env(work / "data", **({"NPSLOOP_DATABASE_URL": args.postgres} if args.postgres else {}))
    key = create_key(env, work)
    port = free_port()
    command = (
        [*NPSLOOP, "up", "--port", str(port)] if args.role == "up" else [*NPSLOOP, "serve", "api", "--port", str(port)]
    )
    server = Server(command, env=env, cwd=work, ready_url=f"http://127.0.0.1:{port}/readyz")
    try:
        accepted, seconds = asyncio.run(run(f"http://127.0.0.1:{port}", key, args.batches, args.parallel))
    finally:
        server.stop()
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"bulk import ({args.role}, {backend}): {accepted} responses in {seconds:.2f} s = "
        f"{accepted / seconds:,.0f} responses/s"
    )
    responses, logged = asyncio.run(stored(env))
    print(f"  stored {responses} responses, {logged} events in the log (acknowledged {accepted})")
    if responses < accepted or logged < accepted:
        raise SystemExit("fewer rows stored than acknowledged")


if __name__ == "__main__":
    main()
