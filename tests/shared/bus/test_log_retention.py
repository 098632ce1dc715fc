"""Event-log housekeeping: only rows every reader is done with, and only once they are old."""

from __future__ import annotations

from sqlalchemy import func, select, update

from npsloop.services.classifier.models import StoredClassification
from npsloop.shared.bus.contract import Subscription
from npsloop.shared.bus.log_retention import prune_event_log
from npsloop.shared.models import EventLogEntry, ProcessedEvent
from tests.factories import post_response

RETENTION_DAYS = 7


async def log_rows(runtime) -> dict[str, int]:
    async with runtime.db.sessions() as session:
        rows = (await session.execute(select(EventLogEntry.topic, func.count()).group_by(EventLogEntry.topic))).all()
    return dict(rows)


async def processed_count(runtime) -> int:
    async with runtime.db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(ProcessedEvent))


async def post(client, headers, n: int, tag: str) -> None:
    """``n`` responses, each its own POST and its own customer, every score in turn."""
    for i in range(n):
        await post_response(client, headers, score=i % 11, customer=f"{tag}-{i}", comment="slow app")


async def test_embedded_log_keeps_recent_and_unread_rows_and_prunes_the_rest(client, runtime, make_key, pump, clock):
    headers = await make_key("admin")
    await post(client, headers, 12, "old")
    await pump()
    subscriptions = runtime.subscriptions()
    consumed_topics = {topic for s in subscriptions for topic in s.topics}
    before = await log_rows(runtime)
    assert before.get("responses") == 12

    # Read by everyone but recent: kept.
    assert await prune_event_log(
        runtime.db, clock=clock, retention_days=RETENTION_DAYS, kafka_mode=False, subscriptions=subscriptions
    ) == (0, 0)

    clock.advance(days=RETENTION_DAYS + 1)
    await post(client, headers, 3, "new")  # written now, not yet read by anyone
    records_before = await processed_count(runtime)

    # A consumer that should read `responses` but never started holds that topic back.
    late = Subscription(consumer="late-reader", topics=("responses",), handler=lambda *a: None)
    events, records = await prune_event_log(
        runtime.db, clock=clock, retention_days=RETENTION_DAYS, kafka_mode=False, subscriptions=[*subscriptions, late]
    )
    # Idempotency records are days past any redelivery window: they all go.
    assert records == records_before > 0 and await processed_count(runtime) == 0
    assert (await log_rows(runtime))["responses"] == 15
    assert events == sum(n for topic, n in before.items() if topic in consumed_topics and topic != "responses")

    events, _ = await prune_event_log(
        runtime.db, clock=clock, retention_days=RETENTION_DAYS, kafka_mode=False, subscriptions=subscriptions
    )
    after = await log_rows(runtime)
    assert after["responses"] == 3, "the old rows went; the three unread ones stay"
    assert events == 12
    for topic, n in before.items():
        if topic not in consumed_topics:
            assert after.get(topic) == n, f"{topic} has no reader in this installation; it is kept"

    # The unread rows are still delivered afterwards, and classified.
    await pump()
    async with runtime.db.sessions() as session:
        classified = await session.scalar(select(func.count()).select_from(StoredClassification))
    assert classified == 15


async def test_kafka_mode_prunes_only_published_rows_older_than_the_retention(client, runtime, make_key, clock):
    headers = await make_key("admin")
    await post(client, headers, 10, "k")
    async with runtime.db.unit_of_work() as session:
        positions = (await session.scalars(select(EventLogEntry.position).order_by(EventLogEntry.position))).all()
        await session.execute(
            update(EventLogEntry).where(EventLogEntry.position.in_(positions[:6])).values(published_at=clock.now())
        )
    clock.advance(days=RETENTION_DAYS + 1)
    events, _ = await prune_event_log(
        runtime.db, clock=clock, retention_days=RETENTION_DAYS, kafka_mode=True, subscriptions=[]
    )
    assert events == 6
    async with runtime.db.sessions() as session:
        left = (await session.scalars(select(EventLogEntry.position).order_by(EventLogEntry.position))).all()
        unpublished = await session.scalar(
            select(func.count()).select_from(EventLogEntry).where(EventLogEntry.published_at.is_(None))
        )
    assert left == positions[6:] and unpublished == 4, "never an event the broker has not acknowledged"


async def test_the_retention_role_prunes_the_log_on_its_schedule(client, runtime, make_key, pump, clock):
    import asyncio

    headers = await make_key("admin")
    await post(client, headers, 5, "role")
    await pump()
    clock.advance(days=runtime.settings.event_log_retention_days + 1)
    await runtime.start(("retention",))
    try:
        for _ in range(100):
            if (await log_rows(runtime)).get("responses", 0) == 0:
                break
            await asyncio.sleep(0.05)
    finally:
        await runtime.stop()
    assert (await log_rows(runtime)).get("responses", 0) == 0
