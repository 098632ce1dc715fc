"""When a database-log consumer reads: on commits to its own topics, without losing one that
lands while it handles a group, and not after every commit of every other stage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.shared import events, outbox
from npsloop.shared.bus.contract import Subscription
from npsloop.shared.bus.dblog import DatabaseLogTransport
from npsloop.shared.bus.processing import EventProcessor
from npsloop.shared.clock import ManualClock
from npsloop.shared.db import Database
from tests.shared.bus.conftest import effect_count, effects, test_metadata

# Far longer than any wait below: whatever is handled in time was woken, not polled for.
POLL_SECONDS = 60.0


def _event(event_type: str, seq: int) -> events.CloudEvent:
    return events.new_event(
        event_type, key=f"k{seq}", subject=f"s{seq}", data={"seq": seq}, time=datetime(2026, 1, 1, tzinfo=UTC)
    )


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(test_metadata.create_all)
    yield db
    async with db.engine.begin() as conn:
        await conn.run_sync(test_metadata.drop_all)
    await db.dispose()


def _transport(db: Database, clock: ManualClock) -> DatabaseLogTransport:
    processor = EventProcessor(db, clock, max_attempts=3, retry_base_seconds=0.0)
    return DatabaseLogTransport(db, clock, processor, poll_interval=POLL_SECONDS)


async def _publish(db: Database, clock: ManualClock, *evts: events.CloudEvent) -> None:
    async with db.unit_of_work() as session:
        await outbox.append(session, *evts, clock=clock)


async def _eventually(condition, seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "not handled in time: the consumer was not woken"
        await asyncio.sleep(0.02)


async def test_an_event_committed_while_the_consumer_handles_a_group_is_handled_at_once(db, clock):
    """The handler of the first event starts the commit of the second, which lands while the
    consumer is busy with its group (on SQLite: as soon as the group's transaction lets go of
    the write slot); that commit's wake-up must not be lost."""
    transport = _transport(db, clock)
    publishing: list[asyncio.Task] = []

    async def handle(session: AsyncSession, event: events.CloudEvent) -> None:
        await session.execute(insert(effects).values(consumer="chain", event_id=event.id, seq=event.data["seq"]))
        if event.data["seq"] == 1:
            publishing.append(asyncio.create_task(_publish(db, clock, _event(events.RESPONSE_RECEIVED, 2))))
            await asyncio.sleep(0.1)  # still in the group's transaction

    stop = asyncio.Event()
    subscription = Subscription(consumer="chain", topics=(events.TOPIC_RESPONSES,), handler=handle)
    running = asyncio.create_task(transport.run(subscription, stop))
    try:
        await asyncio.sleep(0.2)  # waiting for its topic by now
        await _publish(db, clock, _event(events.RESPONSE_RECEIVED, 1))
        await _eventually(lambda: _count_is(db, "chain", 2))
    finally:
        stop.set()
        await asyncio.wait_for(running, 15)


async def _count_is(db: Database, consumer: str, expected: int) -> bool:
    return await effect_count(db, consumer) == expected


async def test_a_consumer_does_not_read_the_log_for_commits_to_other_topics(db, clock):
    transport = _transport(db, clock)

    async def handle(session: AsyncSession, event: events.CloudEvent) -> None:
        await session.execute(insert(effects).values(consumer="followups", event_id=event.id, seq=event.data["seq"]))

    reads: list[str] = []

    def count_log_reads(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM event_log" in statement:
            reads.append(statement)

    sa_event.listen(db.engine.sync_engine, "before_cursor_execute", count_log_reads)
    stop = asyncio.Event()
    subscription = Subscription(consumer="followups", topics=(events.TOPIC_FOLLOWUPS,), handler=handle)
    running = asyncio.create_task(transport.run(subscription, stop))
    try:
        await _eventually(lambda: _any(reads))  # its first look, at start
        await asyncio.sleep(0.2)
        before = len(reads)
        for seq in range(5):  # another stage's topic: responses
            await _publish(db, clock, _event(events.RESPONSE_RECEIVED, seq))
        await asyncio.sleep(0.5)
        assert len(reads) == before, "woken by commits to a topic it does not consume"
        await _publish(db, clock, _event(events.FOLLOWUP_OPENED, 10))
        await _eventually(lambda: _count_is(db, "followups", 1))
        # One read found the event (less than a batch): no second, empty read after it.
        await asyncio.sleep(0.3)
        assert len(reads) == before + 1
    finally:
        stop.set()
        await asyncio.wait_for(running, 15)
        sa_event.remove(db.engine.sync_engine, "before_cursor_execute", count_log_reads)


async def _any(items: list) -> bool:
    return bool(items)
