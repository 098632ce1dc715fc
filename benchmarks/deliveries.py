"""CPU cost of the delivery worker per delivery: lease, sign, send, record.

    .venv/bin/python -m benchmarks.deliveries [--deliveries 3000] [--database-url URL] [--profile]

Fills a fresh database (SQLite file by default) with pending deliveries — half to a webhook
subscription, half to a Slack channel of the policy — aimed at a receiver in its own process
(benchmarks/alert_receiver.py), then lets one delivery worker send them all and prints the
worker's CPU time per delivery (process CPU time, so a busy machine changes it little) and
the wall-clock rate. ``--profile`` prints where the CPU went (cProfile, top functions).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from benchmarks.common import ROOT, free_port
from npsloop.services.deliveries.models import Delivery, WebhookSubscription
from npsloop.services.deliveries.scheduled import DeliveryWorker
from npsloop.services.migrate import upgrade
from npsloop.shared.clock import SystemClock
from npsloop.shared.db import Database
from npsloop.shared.policy import load_policy
from npsloop.shared.settings import Settings


def _slack_body(n: int) -> str:
    return (
        '{"text": "Detractor", "blocks": [{"type": "section", "fields": ['
        f'{{"type": "mrkdwn", "text": "*Customer*\\ncust-{n}"}}]}}]}}'
    )


def _webhook_envelope(n: int) -> str:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "type": "npsloop.followup.opened.v1",
            "source": "bench",
            "data": {"response_id": f"r-{n}", "task_id": f"t-{n}"},
        }
    )


async def fill(db: Database, n: int, hook_url: str, now) -> None:
    async with db.unit_of_work() as session:
        subscription_id = str(uuid.uuid4())
        session.add(
            WebhookSubscription(
                id=subscription_id,
                url=hook_url,
                events=["*"],
                secret="whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                created_at=now,
            )
        )
        await session.flush()
        for i in range(n):
            to_slack = i % 2 == 1
            session.add(
                Delivery(
                    id=str(uuid.uuid4()),
                    subscription_id=None if to_slack else subscription_id,
                    channel="team-slack" if to_slack else None,
                    channel_type="slack" if to_slack else None,
                    target=hook_url.replace("/alerts", "/slack") if to_slack else None,
                    event_id=str(uuid.uuid4()),
                    event_type="npsloop.followup.opened.v1",
                    envelope=_slack_body(i) if to_slack else _webhook_envelope(i),
                    status="pending",
                    attempts=0,
                    created_at=now,
                    next_attempt_at=now,
                )
            )


async def delivered(db: Database) -> int:
    async with db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "delivered"))


async def main(count: int, database_url: str | None, profile: bool, per_destination: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-deliveries-"))
    url = database_url or f"sqlite+aiosqlite:///{work / 'npsloop.db'}"
    port = free_port()
    receiver = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is measured
        [sys.executable, "-m", "benchmarks.alert_receiver", str(port), str(work / "alerts.log")], cwd=ROOT
    )
    policy_file = work / "policy.yaml"
    policy_file.write_text(f'channels:\n  team-slack: {{type: slack, url: "http://127.0.0.1:{port}/slack"}}\n')
    db = Database(url)
    try:
        await upgrade(db)
        clock = SystemClock()
        await fill(db, count, f"http://127.0.0.1:{port}/alerts", clock.now())
        await asyncio.sleep(0.5)  # the receiver is listening by now
        settings = Settings(allow_private_webhook_urls=True, policy_file=policy_file)
        worker = DeliveryWorker(
            db,
            clock,
            timeout=10,
            max_age=timedelta(hours=1),
            allow_private=True,
            settings=settings,
            policy=load_policy(policy_file),
            per_destination=per_destination,
        )
        stop = asyncio.Event()
        profiler = cProfile.Profile() if profile else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        run = asyncio.create_task(worker.run(stop, 0.05))
        while await delivered(db) < count:
            await asyncio.sleep(0.05)
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        stop.set()
        await run
        await worker.close()
        done = await delivered(db)
    finally:
        await db.dispose()
        receiver.terminate()
    backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(
        f"delivery worker ({backend}): {done} of {count} deliveries in {wall:.2f} s ({done / wall:,.0f}/s), "
        f"CPU {1000 * cpu / max(done, 1):.3f} ms per delivery (incl. polling for the count)"
    )
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats("npsloop", 30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=3000)
    parser.add_argument("--database-url", help="postgresql+asyncpg://… (default: a SQLite file)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--per-destination", type=int, default=Settings().delivery_concurrency_per_destination)
    args = parser.parse_args()
    asyncio.run(main(args.deliveries, args.database_url, args.profile, args.per_destination))
