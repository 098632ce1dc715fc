"""A subscription's ``interest``: events of types its handler cannot act on at the moment are
passed over without being read, and the consumer's position still moves past them.

The webhook fan-out reads every topic but acts only on the types some subscription asked for;
parsing and handling every other event was most of its cost (docs/decisions/0001).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.shared import events
from npsloop.shared.bus.contract import Subscription
from npsloop.shared.db import Database
from npsloop.shared.models import DeadLetter, EventLogEntry
from tests.shared.bus.conftest import DatabaseLogHarness, test_metadata
from tests.support.event_log import consumer_positions, log_ends

AT = datetime(2026, 1, 1, tzinfo=UTC)
RECEIVED, CLASSIFIED = events.RESPONSE_RECEIVED, events.RESPONSE_CLASSIFIED
TOPICS = (events.TOPIC_RESPONSES, events.TOPIC_CLASSIFICATIONS)


@pytest.fixture
async def harness(database_url: str, clock) -> AsyncIterator[DatabaseLogHarness]:
    db = Database(database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(test_metadata.create_all)
    yield DatabaseLogHarness(db, clock)
    async with db.engine.begin() as conn:
        await conn.run_sync(test_metadata.drop_all)
    await db.dispose()


def event(event_type: str, seq: int) -> events.CloudEvent:
    return events.new_event(event_type, key=f"k{seq % 3}", subject=f"s{seq}", data={"seq": seq}, time=AT)


def subscription(seen: list[tuple[str, int]], wanted: list[frozenset[str] | None]) -> Subscription:
    """Records what its handler gets; its interest is ``wanted[0]`` (changed by the test)."""

    async def handler(session: AsyncSession, e: events.CloudEvent) -> None:
        seen.append((e.type, e.data["seq"]))

    async def interest(session: AsyncSession) -> frozenset[str] | None:
        return wanted[0]

    return Subscription(consumer="picky", topics=TOPICS, handler=handler, idempotent=True, interest=interest)


async def drain(harness: DatabaseLogHarness, sub: Subscription, how: str) -> None:
    if how == "alone":
        while await harness.transport.drain_once(sub):
            pass
    else:
        # A second subscription, interested in nothing, makes it a real shared turn.
        other = Subscription(
            consumer="other", topics=(events.TOPIC_RESPONSES,), handler=_nothing, idempotent=True, interest=_none
        )
        while await harness.transport.drain_together([other, sub]):
            pass


async def _nothing(session: AsyncSession, e: events.CloudEvent) -> None:
    raise AssertionError("an event of no interest was handled")


async def _none(session: AsyncSession) -> frozenset[str]:
    return frozenset()


@pytest.mark.parametrize("how", ["alone", "together"])
async def test_only_the_types_of_interest_reach_the_handler_and_the_position_passes_the_rest(harness, how):
    # Interleaved on two topics; the last rows of each topic are of the type nobody wants.
    published = [event(RECEIVED if i % 3 else CLASSIFIED, i) for i in range(30)] + [event(RECEIVED, 30)]
    published += [event(CLASSIFIED, 31), event(RECEIVED, 32)]
    await harness.publish(*published)
    seen: list[tuple[str, int]] = []

    await drain(harness, subscription(seen, [frozenset({CLASSIFIED})]), how)

    assert seen == [(CLASSIFIED, e.data["seq"]) for e in published if e.type == CLASSIFIED]
    assert await consumer_positions(harness.db, "picky") == await log_ends(harness.db)  # past the trailing ones too


@pytest.mark.parametrize("how", ["alone", "together"])
async def test_events_of_no_interest_are_not_even_parsed(harness, how):
    # A row whose envelope would fail to parse: passed over, not retried or dead-lettered.
    async with harness.db.unit_of_work() as session:
        await session.execute(
            insert(EventLogEntry).values(
                event_id="not-json",
                topic=events.TOPIC_RESPONSES,
                type=RECEIVED,
                key="k",
                envelope="{not json",
                created_at=AT,
            )
        )
    await harness.publish(event(CLASSIFIED, 1))
    seen: list[tuple[str, int]] = []

    await drain(harness, subscription(seen, [frozenset({CLASSIFIED})]), how)

    assert seen == [(CLASSIFIED, 1)]
    assert await consumer_positions(harness.db, "picky") == await log_ends(harness.db)
    async with harness.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(DeadLetter)) == 0


@pytest.mark.parametrize("how", ["alone", "together"])
async def test_interest_is_read_at_each_turn(harness, how):
    seen: list[tuple[str, int]] = []
    wanted: list[frozenset[str] | None] = [frozenset()]  # nobody listens yet
    sub = subscription(seen, wanted)
    await harness.publish(event(RECEIVED, 1), event(CLASSIFIED, 2))
    await drain(harness, sub, how)
    assert seen == []
    assert await consumer_positions(harness.db, "picky") == await log_ends(harness.db)

    wanted[0] = None  # now every type
    await harness.publish(event(RECEIVED, 3), event(CLASSIFIED, 4))
    await drain(harness, sub, how)

    assert sorted(seen) == sorted([(RECEIVED, 3), (CLASSIFIED, 4)])  # the earlier ones stay passed over
    assert await consumer_positions(harness.db, "picky") == await log_ends(harness.db)
