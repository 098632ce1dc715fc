"""CPU cost of the consumers per event: classifier, follow-up, alerts, webhooks.

    .venv/bin/python -m benchmarks.consumers [--responses 3000] [--database-url URL]

Fills a fresh database (SQLite file by default) with responses through the ingest
service — a mix of detractors, passives and promoters over a few hundred customers —,
then drains each consumer in pipeline order and prints, per consumer, the process CPU
time per event it handled (CPU time, not wall time: another process busy on the same
machine does not change it). A policy with a team round-robin, a webhook channel and a
webhook subscription makes every consumer do its real work.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import textwrap
import time
from pathlib import Path

from sqlalchemy import func, select

from npsloop.services.ingest.schemas import ResponseIn
from npsloop.services.ingest.service import Submission, accept_many
from npsloop.services.migrate import upgrade
from npsloop.services.runtime import Runtime
from npsloop.shared.models import ConsumerPosition, EventLogEntry
from npsloop.shared.settings import Settings

POLICY = """
sla:
  - match: {score: "0-6"}
    due_in: 24h
channels:
  crm: {type: webhook, url: "http://127.0.0.1:9/hook"}
teams:
  cs: {members: [ann, bob, cy]}
routing:
  - match: {}
    team: cs
    channel: crm
    escalate_to: crm
"""

COMMENTS = [
    "The export crashes and support never answered",
    "Fine overall, pricing is a bit high",
    "Love the dashboards, onboarding was quick",
    None,
]


async def fill(runtime: Runtime, n: int) -> None:
    async with runtime.db.unit_of_work() as session:
        from npsloop.services.deliveries.models import WebhookSubscription

        session.add(
            WebhookSubscription(
                id="bench-hook",
                url="http://127.0.0.1:9/sub",
                events=["*"],
                secret="whsec_x",
                description="bench",
                created_at=runtime.clock.now(),
            )
        )
    for start in range(0, n, 500):
        batch = [
            Submission(
                payload=ResponseIn(
                    score=(i * 7) % 11,
                    comment=COMMENTS[i % len(COMMENTS)],
                    customer={"id": f"c{i % 400}", "segment": "smb"},
                    survey={"touchpoint": "support"},
                ),
                source="bench",
            )
            for i in range(start, min(start + 500, n))
        ]
        async with runtime.db.unit_of_work() as session:
            await accept_many(session, batch, clock=runtime.clock)


async def handled(runtime: Runtime, consumer: str) -> int:
    """Events of the log the consumer has moved past (its idempotency records would miss
    the webhook fan-out, which keeps none)."""
    async with runtime.db.sessions() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(EventLogEntry)
                .join(
                    ConsumerPosition,
                    (ConsumerPosition.topic == EventLogEntry.topic)
                    & (EventLogEntry.position <= ConsumerPosition.position),
                )
                .where(ConsumerPosition.consumer == consumer)
            )
            or 0
        )


async def main(responses: int, database_url: str | None) -> None:
    work = Path(tempfile.mkdtemp(prefix="npsloop-consumers-"))
    (work / "policy.yaml").write_text(textwrap.dedent(POLICY))
    url = database_url or f"sqlite+aiosqlite:///{work / 'bench.db'}"
    settings = Settings(
        database_url=url,
        data_dir=work / "data",
        policy_file=work / "policy.yaml",
        environment="test",
        allow_private_webhook_urls=True,
    )
    runtime = Runtime.build(settings)
    await upgrade(runtime.db)
    await fill(runtime, responses)
    subs = runtime.subscriptions()
    order = ["classifier", "followup", "alerts", "webhooks"]
    total_cpu, total_events = 0.0, 0
    print(f"{responses} responses, {url.split(':')[0]}")
    for name in order:
        for sub in (s for s in subs if s.consumer == name):
            before = await handled(runtime, name)
            cpu, wall = time.process_time(), time.perf_counter()
            while await runtime.transport.drain_once(sub):
                pass
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            count = await handled(runtime, name) - before
            total_cpu += cpu
            total_events += count
            print(
                f"{name:<11} {count:>6} events  {cpu * 1000 / max(count, 1):6.2f} ms CPU/event"
                f"  ({wall * 1000 / max(count, 1):6.2f} ms wall/event)"
            )
    print(f"all consumers: {total_cpu * 1000 / responses:6.2f} ms CPU per response")
    await runtime.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--responses", type=int, default=3000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.responses, args.database_url))
