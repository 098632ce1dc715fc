"""The bus contract, run against every transport and both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.shared import events, outbox
from npsloop.shared.bus.contract import Subscription
from npsloop.shared.models import DeadLetter, EventLogEntry
from tests.shared.bus.conftest import effect_count, effect_rows, effects, run_until


def make_event(key: str, seq: int) -> events.CloudEvent:
    from datetime import datetime

    return events.new_event(
        events.RESPONSE_RECEIVED,
        key=key,
        subject=f"{key}-{seq}",
        data={"seq": seq},
        time=datetime(2026, 1, 1, tzinfo=UTC),
    )


def recording_handler(consumer: str):
    async def handle(session: AsyncSession, event: events.CloudEvent) -> None:
        await session.execute(
            insert(effects).values(consumer=consumer, event_id=event.id, key=event.partitionkey, seq=event.data["seq"])
        )

    return handle


def subscription(consumer: str, handler) -> Subscription:
    return Subscription(consumer=consumer, topics=(events.TOPIC_RESPONSES,), handler=handler)


async def test_events_of_one_key_are_handled_in_the_order_they_were_written(bus):
    written = [make_event(f"customer-{i % 3}", i) for i in range(60)]
    for chunk in range(0, 60, 7):
        await bus.publish(*written[chunk : chunk + 7])
    sub = subscription("ordering", recording_handler("ordering"))
    await run_until(bus, sub, lambda: _at_least(bus, "ordering", 60))
    rows = await effect_rows(bus.db, "ordering")
    assert len(rows) == 60
    for key in ("customer-0", "customer-1", "customer-2"):
        seqs = [seq for _, k, seq in rows if k == key]
        assert seqs == sorted(seqs) and len(seqs) == 20


async def test_a_failure_between_effect_and_commit_neither_loses_nor_repeats_the_effect(bus):
    await bus.publish(*[make_event("k", i) for i in range(5)])
    failed_once: set[int] = set()
    record = recording_handler("crashy")

    async def crash_after_effect(session: AsyncSession, event: events.CloudEvent) -> None:
        await record(session, event)  # the effect is written…
        if event.data["seq"] in (1, 3) and event.data["seq"] not in failed_once:
            failed_once.add(event.data["seq"])
            raise ConnectionError("process died before commit")  # …and must vanish with the transaction

    await run_until(bus, subscription("crashy", crash_after_effect), lambda: _at_least(bus, "crashy", 5))
    assert [seq for _, _, seq in await effect_rows(bus.db, "crashy")] == [0, 1, 2, 3, 4]
    assert failed_once == {1, 3}


async def test_a_consumer_killed_mid_handler_resumes_without_losing_or_repeating(bus):
    await bus.publish(*[make_event("k", i) for i in range(4)])
    record = recording_handler("killed")
    in_handler = asyncio.Event()

    async def slow_on_two(session: AsyncSession, event: events.CloudEvent) -> None:
        await record(session, event)
        if event.data["seq"] == 2 and not in_handler.is_set():
            in_handler.set()
            await asyncio.sleep(3600)  # killed here, effect written but not committed

    stop = asyncio.Event()
    task = asyncio.create_task(bus.transport.run(subscription("killed", slow_on_two), stop))
    await asyncio.wait_for(in_handler.wait(), 20)
    task.cancel()  # the closest thing to SIGKILL inside one process
    await asyncio.gather(task, return_exceptions=True)
    committed = [seq for _, _, seq in await effect_rows(bus.db, "killed")]
    # A transport may commit events one by one or in groups: what committed is a prefix
    # that stops before the event being handled when the consumer was killed.
    assert committed == list(range(len(committed))) and 2 not in committed

    await run_until(bus, subscription("killed", slow_on_two), lambda: _at_least(bus, "killed", 4))
    assert [seq for _, _, seq in await effect_rows(bus.db, "killed")] == [0, 1, 2, 3]


async def test_a_redelivered_event_is_skipped_by_its_idempotency_record(bus):
    await bus.publish(*[make_event("k", i) for i in range(3)])
    sub = subscription("redelivery", recording_handler("redelivery"))
    await run_until(bus, sub, lambda: _at_least(bus, "redelivery", 3))
    await bus.rewind("redelivery")
    await bus.publish(make_event("k", 3))  # a marker: once it is handled, the replay has passed
    await run_until(bus, sub, lambda: _at_least(bus, "redelivery", 4))
    await asyncio.sleep(0.2)
    assert [seq for _, _, seq in await effect_rows(bus.db, "redelivery")] == [0, 1, 2, 3]


async def test_a_poison_event_is_dead_lettered_with_its_error_and_later_events_flow(bus):
    await bus.publish(*[make_event("k", i) for i in range(4)])
    record = recording_handler("poison")
    calls = {"poison": 0}

    async def fails_on_one(session: AsyncSession, event: events.CloudEvent) -> None:
        if event.data["seq"] == 1:
            calls["poison"] += 1
            raise ValueError("cannot parse this response")
        await record(session, event)

    await run_until(bus, subscription("poison", fails_on_one), lambda: _at_least(bus, "poison", 3))
    assert [seq for _, _, seq in await effect_rows(bus.db, "poison")] == [0, 2, 3]
    async with bus.db.sessions() as session:
        letters = (await session.scalars(select(DeadLetter).where(DeadLetter.consumer == "poison"))).all()
    assert len(letters) == 1
    assert "ValueError: cannot parse this response" in letters[0].error
    assert letters[0].attempts == bus.processor.max_attempts
    # A transport that tries a group first spends one more call before the bounded retries.
    assert bus.processor.max_attempts <= calls["poison"] <= bus.processor.max_attempts + 1
    assert events.CloudEvent.from_json(letters[0].envelope).data == {"seq": 1}


async def test_events_appended_in_a_rolled_back_unit_of_work_never_reach_the_log(bus):
    try:
        async with bus.db.unit_of_work() as session:
            await outbox.append(session, make_event("k", 0), clock=bus.clock)
            raise RuntimeError("the request failed after the append")
    except RuntimeError:
        pass
    async with bus.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(EventLogEntry)) == 0


async def _at_least(bus, consumer: str, n: int) -> bool:
    return await effect_count(bus.db, consumer) >= n
