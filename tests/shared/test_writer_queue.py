"""SQLite's single write slot: who gets it next (shared.db.WriterQueue)."""

from __future__ import annotations

import asyncio

from npsloop.shared.db import WriterQueue


async def _writer(queue: WriterQueue, name: str, order: list[str], *, urgent: bool, hold: float = 0.0) -> None:
    async with queue.turn(urgent=urgent):
        order.append(name)
        await asyncio.sleep(hold)


async def test_an_urgent_writer_goes_before_background_writers_that_queued_earlier():
    queue, order = WriterQueue(), []
    first = asyncio.create_task(_writer(queue, "ingest-1", order, urgent=True, hold=0.02))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(_writer(queue, f"consumer-{i}", order, urgent=False)) for i in range(2)]
    await asyncio.sleep(0.005)
    late = asyncio.create_task(_writer(queue, "ingest-2", order, urgent=True))
    await asyncio.gather(first, late, *waiting)
    assert order == ["ingest-1", "ingest-2", "consumer-0", "consumer-1"]


async def test_background_writers_wait_while_an_urgent_writer_prepares_its_rows():
    queue, order = WriterQueue(), []
    with queue.announce():  # ingest drafting its group, not in the slot yet
        consumer = asyncio.create_task(_writer(queue, "consumer", order, urgent=False))
        await asyncio.sleep(0.01)
        assert order == [] and queue.urgent_waiting
        await _writer(queue, "ingest", order, urgent=True)
    await consumer
    assert order == ["ingest", "consumer"]


async def test_a_free_slot_goes_to_a_background_writer_only_after_ingest_had_its_turn_to_continue():
    queue, order = WriterQueue(), []
    consumer = None

    async def ingest_two_groups() -> None:
        nonlocal consumer
        async with queue.turn(urgent=True):
            order.append("group-1")
            consumer = asyncio.create_task(_writer(queue, "consumer", order, urgent=False))
            await asyncio.sleep(0)
        # No await between the two groups: the next group starts before the loop turns.
        async with queue.turn(urgent=True):
            order.append("group-2")

    await ingest_two_groups()
    await consumer
    assert order == ["group-1", "group-2", "consumer"]


async def test_under_endless_ingest_a_background_writer_still_gets_a_bounded_turn(monkeypatch):
    monkeypatch.setattr(WriterQueue, "BACKGROUND_MAX_WAIT", 0.05)
    queue, order, stop = WriterQueue(), [], asyncio.Event()
    seen_urgent_waiting: list[bool] = []

    async def endless_ingest() -> None:
        while not stop.is_set():
            async with queue.turn(urgent=True):
                await asyncio.sleep(0.002)

    async def consumer() -> None:
        async with queue.turn(urgent=False):
            order.append("consumer")
            seen_urgent_waiting.append(queue.urgent_waiting)  # its protected turn: not asked to stop yet

    ingest = [asyncio.create_task(endless_ingest()) for _ in range(2)]
    await asyncio.sleep(0.01)
    async with asyncio.timeout(5):
        await consumer()
    stop.set()
    await asyncio.gather(*ingest)
    assert order == ["consumer"] and seen_urgent_waiting == [False]


async def test_a_cancelled_waiter_does_not_keep_the_slot_from_others():
    queue, order = WriterQueue(), []
    holder = asyncio.create_task(_writer(queue, "holder", order, urgent=True, hold=0.01))
    await asyncio.sleep(0)
    doomed = asyncio.create_task(_writer(queue, "doomed", order, urgent=True))
    after = asyncio.create_task(_writer(queue, "after", order, urgent=False))
    await asyncio.sleep(0)
    doomed.cancel()
    async with asyncio.timeout(5):
        await asyncio.gather(holder, after)
    assert order == ["holder", "after"]


async def test_a_background_turn_is_asked_to_end_only_after_its_minimum_time(monkeypatch):
    monkeypatch.setattr(WriterQueue, "BACKGROUND_MIN_TURN", 0.05)
    queue, order, asked = WriterQueue(), [], []
    async with queue.turn(urgent=False):
        ingest = asyncio.create_task(_writer(queue, "ingest", order, urgent=True))
        await asyncio.sleep(0)
        asked.append(queue.urgent_waiting)  # a consumer checks between events: keep going
        await asyncio.sleep(0.06)
        asked.append(queue.urgent_waiting)  # its minimum turn is over: commit and let ingest in
    await ingest
    assert asked == [False, True] and order == ["ingest"]
