"""A harness that runs the same bus contract tests against every transport.

Each transport provides: publish (through the outbox, the only way services publish),
run a subscription until a condition holds, and rewind a consumer group to the start
(to simulate a redelivery). Kafka adds its own harness next to this one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select, update

from npsloop.shared import events, outbox
from npsloop.shared.bus.contract import Subscription
from npsloop.shared.bus.dblog import DatabaseLogTransport
from npsloop.shared.bus.processing import EventProcessor
from npsloop.shared.clock import ManualClock
from npsloop.shared.db import Database
from npsloop.shared.models import ConsumerPosition
from tests.shared.bus.kafka_harness import KafkaHarness, kafka_bootstrap  # noqa: F401 (fixture)

test_metadata = MetaData()
# A table only these tests use: the visible "effect" of a handler.
effects = Table(
    "bus_test_effects",
    test_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("consumer", String(100)),
    Column("event_id", String(64)),
    Column("key", String(100)),
    Column("seq", Integer),
)


class DatabaseLogHarness:
    name = "database"

    def __init__(self, db: Database, clock: ManualClock, max_attempts: int = 3) -> None:
        self.db = db
        self.clock = clock
        self.processor = EventProcessor(db, clock, max_attempts=max_attempts, retry_base_seconds=0.0)
        self.transport = DatabaseLogTransport(db, clock, self.processor, poll_interval=0.02)

    async def publish(self, *evts: events.CloudEvent) -> None:
        async with self.db.unit_of_work() as session:
            await outbox.append(session, *evts, clock=self.clock)

    async def rewind(self, consumer: str) -> None:
        async with self.db.unit_of_work() as session:
            await session.execute(
                update(ConsumerPosition).where(ConsumerPosition.consumer == consumer).values(position=0)
            )

    async def close(self) -> None:
        pass


async def run_until(
    harness, subscription: Subscription, condition: Callable[[], asyncio.Future[bool]], timeout: float = 20.0
) -> None:
    """Run the subscription on the harness's transport until ``condition()`` is true."""
    stop = asyncio.Event()
    task = asyncio.create_task(harness.transport.run(subscription, stop))
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not await condition():
            if task.done():
                task.result()
                raise AssertionError("consumer stopped early")
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def effect_rows(db: Database, consumer: str) -> list[tuple[str, str, int]]:
    async with db.sessions() as session:
        rows = await session.execute(
            select(effects.c.event_id, effects.c.key, effects.c.seq)
            .where(effects.c.consumer == consumer)
            .order_by(effects.c.id)
        )
        return [tuple(r) for r in rows.all()]


async def effect_count(db: Database, consumer: str) -> int:
    async with db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(effects).where(effects.c.consumer == consumer))


# The Kafka harness asks for its broker inside the fixture, so the mark goes on the parameter.
HARNESSES = ["database", pytest.param("kafka", marks=pytest.mark.kafka)]


@pytest.fixture(params=HARNESSES)
async def bus(request: pytest.FixtureRequest, database_url: str, clock: ManualClock) -> AsyncIterator[object]:
    db = Database(database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(test_metadata.create_all)
    if request.param == "database":
        harness = DatabaseLogHarness(db, clock)
    elif request.param == "kafka":
        if request.getfixturevalue("backend") == "sqlite":
            await db.dispose()
            pytest.skip(
                "Kafka harness runs on PostgreSQL (the scaled deployment); the consumer code is the same on "
                "SQLite and the relay's SQLite path has its own test in test_kafka_relay.py"
            )
        harness = KafkaHarness(db, clock, request.getfixturevalue("kafka_bootstrap"))
    else:  # pragma: no cover - other transports register here
        raise AssertionError(request.param)
    yield harness
    await harness.close()
    async with db.engine.begin() as conn:
        await conn.run_sync(test_metadata.drop_all)
    await db.dispose()


@pytest.fixture
async def sqlite_db(backend: str, database_url: str) -> AsyncIterator[Database]:
    """The test database with the effects table, for tests of SQLite's single write slot
    (skipped on PostgreSQL, which has no such slot)."""
    if backend != "sqlite":
        pytest.skip("only SQLite has a single write slot shared out in the process")
    db = Database(database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(test_metadata.create_all)
    yield db
    await db.dispose()
