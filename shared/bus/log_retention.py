"""Housekeeping for the event log: rows every reader is done with are deleted after a while.

``event_log`` is the outbox in Kafka mode and the log itself in the embedded mode; without
pruning it grows by every event forever. A row may go once it is older than the retention
and nobody needs it any more:

- Kafka mode: the broker acknowledged it (``published_at`` is set). Kafka keeps its own copy
  for the topic's retention.
- Embedded mode: every consumer of its topic has read past it. A consumer that should read
  a topic but has no position row yet (never started) holds the whole topic back, so an
  installation that adds a consumer later still finds the events it needs.

``processed_events`` (the idempotency records) older than the retention go too: a copy of an
event can only come back within a redelivery window of seconds to minutes (an uncommitted
Kafka offset, a re-sent outbox batch), never days later.

Deletes run in bounded batches, each its own short transaction, so ingest is never blocked
behind one long delete on SQLite's single write lock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import and_, delete, or_, select, tuple_

from npsloop.shared.bus.contract import Subscription
from npsloop.shared.clock import Clock
from npsloop.shared.db import Database
from npsloop.shared.models import ConsumerPosition, EventLogEntry, ProcessedEvent

log = logging.getLogger("npsloop.bus.retention")

BATCH = 1000


async def _safe_positions(db: Database, subscriptions: Iterable[Subscription]) -> dict[str, int]:
    """Per logical topic, the highest position every expected consumer has read (embedded mode)."""
    expected: dict[str, set[str]] = {}
    for subscription in subscriptions:
        for topic in subscription.topics:
            expected.setdefault(topic, set()).add(subscription.consumer)
    async with db.sessions() as session:
        rows = (
            await session.execute(select(ConsumerPosition.consumer, ConsumerPosition.topic, ConsumerPosition.position))
        ).all()
    read: dict[str, dict[str, int]] = {}
    for consumer, topic, position in rows:
        read.setdefault(topic, {})[consumer] = position
    safe = {}
    for topic, consumers in expected.items():
        positions = read.get(topic, {})
        if consumers <= positions.keys():
            safe[topic] = min(positions[c] for c in consumers)
    return safe


async def prune_event_log(
    db: Database, *, clock: Clock, retention_days: int, kafka_mode: bool, subscriptions: Iterable[Subscription]
) -> tuple[int, int]:
    """Delete what nobody needs any more; return (event_log rows, processed_events rows) deleted."""
    cutoff = clock.now() - timedelta(days=retention_days)
    if kafka_mode:
        done = and_(EventLogEntry.published_at.is_not(None), EventLogEntry.published_at < cutoff)
    else:
        safe = await _safe_positions(db, subscriptions)
        if not safe:
            return 0, 0
        read_by_all = or_(
            *(
                and_(EventLogEntry.topic == topic, EventLogEntry.position <= position)
                for topic, position in safe.items()
            )
        )
        done = and_(EventLogEntry.created_at < cutoff, read_by_all)
    events = await _delete_in_batches(db, (EventLogEntry.position,), done)
    records = await _delete_in_batches(
        db, (ProcessedEvent.consumer, ProcessedEvent.event_id), ProcessedEvent.processed_at < cutoff
    )
    if events or records:
        log.info(
            "event log pruned", extra={"events": events, "processed_records": records, "retention_days": retention_days}
        )
    return events, records


async def _delete_in_batches(db: Database, key: tuple, condition) -> int:
    """Delete the rows matching ``condition``, at most BATCH per transaction, by their primary key."""
    table = key[0].class_
    total = 0
    while True:
        async with db.unit_of_work() as session:
            keys = [tuple(row) for row in (await session.execute(select(*key).where(condition).limit(BATCH))).all()]
            if keys:
                await session.execute(delete(table).where(tuple_(*key).in_(keys)))
        total += len(keys)
        if len(keys) < BATCH:
            return total
