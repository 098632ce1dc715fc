"""Consumers of one process sharing their turns on SQLite's write slot (run_together).

Each subscription keeps its own guarantees — its own position, idempotency records, log
order — while one transaction carries a group of each, in the order given, so a stage
handles in the same turn what the stage before it wrote.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.shared import events, outbox
from npsloop.shared.bus import dblog
from npsloop.shared.bus.contract import NOT_PREFETCHED, Subscription, lookup, store_prefetched
from npsloop.shared.models import ConsumerPosition, DeadLetter
from tests.shared.bus.conftest import DatabaseLogHarness, effect_rows, effects
from tests.shared.bus.test_contract import make_event

DERIVED = events.RESPONSE_CLASSIFIED  # on its own topic, as a later stage reads it
AT = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def harness(sqlite_db, clock):
    return DatabaseLogHarness(sqlite_db, clock, max_attempts=2)


def stages(harness, *, fail_on: int | None = None) -> list[Subscription]:
    """A first stage that records each response and publishes a derived event, and a second
    stage that records the derived events (failing on ``fail_on``'s sequence number)."""

    async def first(session: AsyncSession, event: events.CloudEvent) -> None:
        seq = event.data["seq"]
        await session.execute(insert(effects).values(consumer="first", event_id=event.id, key="-", seq=seq))
        derived = events.new_event(DERIVED, key=event.partitionkey, subject=event.subject, data={"seq": seq}, time=AT)
        await outbox.append(session, derived, clock=harness.clock)

    async def second(session: AsyncSession, event: events.CloudEvent) -> None:
        if event.data["seq"] == fail_on:
            raise RuntimeError("poison")
        await session.execute(
            insert(effects).values(consumer="second", event_id=event.id, key="-", seq=event.data["seq"])
        )

    return [
        Subscription(consumer="first", topics=(events.TOPIC_RESPONSES,), handler=first),
        Subscription(consumer="second", topics=(events.TOPIC_CLASSIFICATIONS,), handler=second),
    ]


async def handled(harness) -> Counter[str]:
    return Counter({consumer: len(await seqs(harness, consumer)) for consumer in ("first", "second")})


async def seqs(harness, consumer: str) -> list[int]:
    return [seq for _, _, seq in await effect_rows(harness.db, consumer)]


async def test_a_later_stage_handles_in_the_same_turn_what_an_earlier_one_wrote(harness):
    await harness.publish(*[make_event(f"k{i % 3}", i) for i in range(20)])
    subs = stages(harness)

    assert await harness.transport.drain_together(subs) is True

    assert await seqs(harness, "first") == list(range(20))
    assert await seqs(harness, "second") == list(range(20))  # one turn: response → derived → handled
    # Positions moved with the effects: another turn finds nothing, a lone drain neither.
    assert await harness.transport.drain_together(subs) is False
    assert not await harness.transport.drain_once(subs[1])


async def test_a_failing_handler_rolls_the_turn_back_and_the_consumers_go_on_alone(harness):
    await harness.publish(*[make_event("k", i) for i in range(6)])
    subs = stages(harness, fail_on=3)

    assert await harness.transport.drain_together(subs) is None
    assert await seqs(harness, "first") == []  # nothing of the failed turn was kept

    stop = asyncio.Event()
    task = asyncio.create_task(harness.transport.run_together(subs, stop))
    try:
        for _ in range(250):
            async with harness.db.sessions() as session:
                letters = await session.scalar(select(func.count()).select_from(DeadLetter))
            if letters and len(await seqs(harness, "second")) == 5:
                break
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)

    assert await seqs(harness, "first") == list(range(6))  # each once
    assert await seqs(harness, "second") == [0, 1, 2, 4, 5]  # the poison event dead-lettered, the rest in order
    async with harness.db.sessions() as session:
        letter = (await session.scalars(select(DeadLetter))).one()
    assert letter.consumer == "second" and "poison" in letter.error


async def test_each_consumer_gets_its_share_of_a_turn_when_ingest_waits(harness, monkeypatch):
    """With a client-facing writer waiting and no time share, each subscription handles one
    event per turn: an earlier stage never takes a whole turn from a later one, and the
    waiting writer gets the slot right after that turn."""
    monkeypatch.setattr(dblog, "SHARED_TURN_SHARE", 0.0)
    await harness.publish(*[make_event("k", i) for i in range(4)])
    urgent: list[asyncio.Task] = []

    async def ingest_like_write() -> None:
        async with harness.db.unit_of_work(urgent=True) as session:
            await session.execute(insert(effects).values(consumer="ingest", event_id="-", key="-", seq=-1))

    subs = stages(harness)
    first = subs[0].handler

    async def first_starting_ingest(session: AsyncSession, event: events.CloudEvent) -> None:
        await first(session, event)
        if not urgent:
            urgent.append(asyncio.create_task(ingest_like_write()))
            await asyncio.sleep(0)  # it starts and waits for the write slot this turn holds

    subs[0] = dataclasses.replace(subs[0], handler=first_starting_ingest)
    assert await harness.transport.drain_together(subs) is True
    assert await handled(harness) == Counter({"first": 1, "second": 1})
    await asyncio.wait_for(urgent[0], 5)
    assert len(await effect_rows(harness.db, "ingest")) == 1

    while await harness.transport.drain_together(subs):
        pass
    assert await seqs(harness, "first") == list(range(4))
    assert await seqs(harness, "second") == list(range(4))


async def test_a_consumer_never_sees_another_consumers_prefetched_tables(harness):
    await harness.publish(*[make_event("k", i) for i in range(3)])
    seen: list[object] = []

    async def prefetch(session: AsyncSession, evts: list[events.CloudEvent]) -> None:
        store_prefetched(session, "customers", {"k": "first's row"})

    async def first(session: AsyncSession, event: events.CloudEvent) -> None:
        seen.append(("first", lookup(session, "customers", "k")))
        derived = events.new_event(DERIVED, key="k", subject=event.subject, data={"seq": event.data["seq"]}, time=AT)
        await outbox.append(session, derived, clock=harness.clock)

    async def second(session: AsyncSession, event: events.CloudEvent) -> None:
        seen.append(("second", lookup(session, "customers", "k")))

    subs = [
        Subscription(consumer="first", topics=(events.TOPIC_RESPONSES,), handler=first, prefetch=prefetch),
        Subscription(consumer="second", topics=(events.TOPIC_CLASSIFICATIONS,), handler=second),
    ]
    assert await harness.transport.drain_together(subs)
    assert seen == [("first", "first's row")] * 3 + [("second", NOT_PREFETCHED)] * 3


class Sharer:
    """A writer that rides at the end of shared turns, as the delivery worker does in ``up``."""

    def __init__(self, harness, *, wants: bool = True) -> None:
        self.harness, self.wants = harness, wants
        self.seen_in_turn: list[int] = []
        self.ended: list[bool] = []

    def wants_turn(self, session: AsyncSession) -> bool:
        return self.wants

    async def book_in(self, session: AsyncSession):
        # It sees what the stages wrote in this transaction, and writes in it too.
        rows = await session.execute(select(func.count()).select_from(effects).where(effects.c.consumer == "second"))
        self.seen_in_turn.append(rows.scalar_one())
        await session.execute(insert(effects).values(consumer="sharer", event_id="-", key="-", seq=0))
        return self.ended.append


async def test_a_sharer_books_at_the_end_of_the_turn_in_the_same_commit(harness):
    await harness.publish(*[make_event("k", i) for i in range(3)])
    sharer = Sharer(harness)

    assert await harness.transport.drain_together(stages(harness), also=sharer)

    assert sharer.seen_in_turn == [3] and sharer.ended == [True]
    assert len(await effect_rows(harness.db, "sharer")) == 1
    idle = Sharer(harness, wants=False)
    await harness.transport.drain_together(stages(harness), also=idle)
    assert idle.seen_in_turn == [] and idle.ended == []  # nothing to book: no work added to the turn


async def test_a_sharer_hears_when_the_turn_it_booked_in_rolled_back(harness):
    await harness.publish(*[make_event("k", i) for i in range(3)])
    sharer = Sharer(harness)

    async def failing(session: AsyncSession, event: events.CloudEvent) -> None:
        raise RuntimeError("poison")

    subs = [*stages(harness), Subscription(consumer="third", topics=(events.TOPIC_RESPONSES,), handler=failing)]
    # The third stage fails before the sharer's turn comes: nothing booked, nothing to undo.
    assert await harness.transport.drain_together(subs, also=sharer) is None
    assert sharer.ended == []

    class FailingAtCommit(Sharer):
        async def book_in(self, session: AsyncSession):
            ended = await super().book_in(session)
            # A row the commit's flush cannot write (the position row exists): the turn fails
            # after the sharer has booked.
            session.add(ConsumerPosition(consumer="first", topic=events.TOPIC_RESPONSES, position=0, updated_at=AT))
            return ended

    late = FailingAtCommit(harness)
    assert await harness.transport.drain_together(stages(harness), also=late) is None
    assert late.ended == [False]  # its bookkeeping rolled back with the turn: it keeps what it took
    assert await effect_rows(harness.db, "sharer") == []
