"""Leasing one destination's deliveries reads that destination's rows, not everyone's: a dead
receiver's backlog of thousands must not make every other destination's lease slower."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, text

from npsloop.services.deliveries import repository
from npsloop.services.deliveries.models import Delivery, WebhookSubscription
from npsloop.shared.db import Database

BACKLOG = 2000
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _subscription(sid: str) -> dict:
    return {"id": sid, "url": f"https://example.test/{sid}", "events": ["*"], "secret": "whsec_x", "created_at": NOW}


def _deliveries(sid: str, count: int) -> list[dict]:
    return [
        {
            "id": f"{sid}-{i:05d}",
            "subscription_id": sid,
            "event_id": f"{sid}-e{i}",
            "event_type": "npsloop.followup.opened.v1",
            "envelope": "{}",
            "status": "pending",
            "attempts": 1,
            "created_at": NOW - timedelta(hours=1),
            "next_attempt_at": NOW - timedelta(minutes=30) + timedelta(seconds=i),
        }
        for i in range(count)
    ]


def _rows_read(plan: object, table: str = "deliveries") -> int:
    """Rows PostgreSQL's executor read from ``table`` (returned or filtered out), from EXPLAIN ANALYZE."""
    total = 0
    stack = [plan[0]["Plan"]]  # type: ignore[index]
    while stack:
        node = stack.pop()
        if node.get("Relation Name") == table:
            total += (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node["Actual Loops"]
        stack += node.get("Plans", [])
    return total


async def test_leasing_a_destination_does_not_read_a_dead_destinations_backlog(database_url, backend):
    db = Database(database_url)
    try:
        async with db.unit_of_work() as session:
            await session.execute(insert(WebhookSubscription), [_subscription("dead"), _subscription("live")])
            await session.execute(insert(Delivery), _deliveries("dead", BACKLOG) + _deliveries("live", 5))
        wanted = [("live", None, 16)]
        async with db.unit_of_work() as session:
            claimed = await repository.claim_due(session, NOW, wanted)
            assert sorted(row.id for row in claimed) == [f"live-{i:05d}" for i in range(5)]
            statement = repository.claim_query(NOW, wanted).compile(
                dialect=session.bind.dialect, compile_kwargs={"literal_binds": True}
            )
            if backend == "sqlite":
                plan = (await session.execute(text(f"EXPLAIN QUERY PLAN {statement}"))).all()
                outer = [row[3] for row in plan if row[1] == 0]  # the top level: what drives the lease
                assert any("deliveries USING" in step and "(id=?)" in step for step in outer), plan
                assert not any("ix_deliveries_status_next_attempt_at" in step for step in outer), plan
            else:
                analyzed = (await session.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}"))).scalar()
                plan = analyzed if isinstance(analyzed, list) else json.loads(analyzed)
                assert _rows_read(plan) < 100, json.dumps(plan)[:2000]
    finally:
        await db.dispose()
