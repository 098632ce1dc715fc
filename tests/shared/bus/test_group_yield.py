"""A consumer group gives SQLite's write slot to a waiting ingest writer, losing nothing.

Consumers handle up to GROUP_SIZE events per transaction. If a client-facing (urgent)
writer starts waiting for the single write slot midway, the group commits what it has
handled and lets that writer in; the rest of the group follows in the next transaction.
Every event's effect still happens exactly once and in log order.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.shared import events
from npsloop.shared.bus.contract import Subscription
from npsloop.shared.bus.dblog import GROUP_SIZE
from npsloop.shared.db import WriterQueue
from tests.shared.bus.conftest import DatabaseLogHarness, effect_rows, effects
from tests.shared.bus.test_contract import make_event


@pytest.fixture
def harness(sqlite_db, clock):
    return DatabaseLogHarness(sqlite_db, clock)


async def test_a_group_commits_early_when_ingest_waits_and_the_rest_follows_exactly_once(harness, monkeypatch):
    # Past its minimum turn (tests/shared/test_writer_queue.py), at once here.
    monkeypatch.setattr(WriterQueue, "BACKGROUND_MIN_TURN", 0.0)
    db = harness.db
    count = 40
    assert count <= GROUP_SIZE  # one group would take all of them
    await harness.publish(*[make_event(f"k{i % 3}", i) for i in range(count)])
    urgent: list[asyncio.Task] = []

    async def ingest_like_write() -> None:
        async with db.unit_of_work(urgent=True) as session:
            await session.execute(insert(effects).values(consumer="c", event_id="ingest", key="-", seq=-1))

    async def handler(session: AsyncSession, event: events.CloudEvent) -> None:
        await session.execute(
            insert(effects).values(consumer="c", event_id=event.id, key=event.partitionkey, seq=event.data["seq"])
        )
        if event.data["seq"] == 4:
            urgent.append(asyncio.create_task(ingest_like_write()))
            await asyncio.sleep(0)  # it starts and waits for the write slot we hold

    sub = Subscription(consumer="c", topics=(events.TOPIC_RESPONSES,), handler=handler)
    while await harness.transport.drain_once(sub):
        pass
    await asyncio.wait_for(urgent[0], 5)

    seqs = [seq for _, _, seq in await effect_rows(db, "c")]
    # The waiting writer got in right after the fifth event, not after the fortieth.
    assert seqs == [0, 1, 2, 3, 4, -1, *range(5, count)]
    # Nothing handled twice on a second pass: the position moved with each commit.
    assert not await harness.transport.drain_once(sub)


async def test_prefetch_runs_once_per_group_with_the_events_to_handle_and_handlers_see_its_table(harness):
    from npsloop.shared.bus.contract import NOT_PREFETCHED, lookup, store_prefetched

    db = harness.db
    await harness.publish(*[make_event(f"k{i % 3}", i) for i in range(10)])
    calls: list[list[int]] = []
    found: list[object] = []

    async def prefetch(session: AsyncSession, group: list[events.CloudEvent]) -> None:
        calls.append([e.data["seq"] for e in group])
        store_prefetched(session, "seqs", {e.id: e.data["seq"] for e in group})

    async def handler(session: AsyncSession, event: events.CloudEvent) -> None:
        found.append(lookup(session, "seqs", event.id))
        await session.execute(
            insert(effects).values(consumer="p", event_id=event.id, key=event.partitionkey, seq=event.data["seq"])
        )

    sub = Subscription(consumer="p", topics=(events.TOPIC_RESPONSES,), handler=handler, prefetch=prefetch)
    while await harness.transport.drain_once(sub):
        pass
    assert calls == [list(range(10))]
    assert found == list(range(10))
    assert [seq for _, _, seq in await effect_rows(db, "p")] == list(range(10))

    # One event on its own (the per-event path) has no prefetched table: handlers query.
    await harness.publish(make_event("k0", 10))
    while await harness.transport.drain_once(sub):
        pass
    assert calls == [list(range(10))] and found[-1] is NOT_PREFETCHED


async def test_after_a_group_cut_short_the_next_group_prepares_about_what_one_turn_handled(harness, monkeypatch):
    # A cut group's unhandled events were screened and prefetched for nothing; the next
    # group is sized to the turn that was cut (and grows again when a group is not cut).
    monkeypatch.setattr(WriterQueue, "BACKGROUND_MIN_TURN", 0.0)
    db = harness.db
    count = 60
    await harness.publish(*[make_event(f"k{i % 3}", i) for i in range(count)])
    prefetched: list[int] = []
    urgent: list[asyncio.Task] = []

    async def ingest_like_write() -> None:
        async with db.unit_of_work(urgent=True) as session:
            await session.execute(insert(effects).values(consumer="g", event_id="ingest", key="-", seq=-1))

    async def prefetch(session: AsyncSession, group: list[events.CloudEvent]) -> None:
        prefetched.append(len(group))

    async def handler(session: AsyncSession, event: events.CloudEvent) -> None:
        await session.execute(
            insert(effects).values(consumer="g", event_id=event.id, key=event.partitionkey, seq=event.data["seq"])
        )
        if event.data["seq"] == 5:
            urgent.append(asyncio.create_task(ingest_like_write()))
            await asyncio.sleep(0)

    sub = Subscription(consumer="g", topics=(events.TOPIC_RESPONSES,), handler=handler, prefetch=prefetch)
    while await harness.transport.drain_once(sub):
        pass
    await asyncio.wait_for(urgent[0], 5)
    # 60 offered, 6 handled; then 9 (6 and half again), 18, 27 as the groups run uncut.
    assert prefetched == [60, 9, 18, 27]
    seqs = [seq for _, _, seq in await effect_rows(db, "g")]
    assert seqs == [0, 1, 2, 3, 4, 5, -1, *range(6, count)]
