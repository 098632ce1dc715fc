"""The database event log transport (embedded default).

The outbox table is the log. Each consumer group keeps a position per topic and reads
rows above it in position order, so every key's events arrive in the order they were
written. The position moves in the same transaction as the handler's effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Row, Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.shared.bus.contract import Subscription
from npsloop.shared.bus.processing import EventProcessor, PositionWriter, count_handled
from npsloop.shared.clock import Clock
from npsloop.shared.db import Database, events_appended_to
from npsloop.shared.db.write_slot import WriterQueue
from npsloop.shared.events import CloudEvent
from npsloop.shared.models import ConsumerPosition, EventLogEntry

log = logging.getLogger("npsloop.bus.dblog")

BATCH_SIZE = 500
# Events handled per transaction when all goes well; on a failure the group is redone
# event by event, so a poison event only costs its own retries. Large groups mean few
# commits when catching up; they cost ingest nothing, since a group ends early whenever
# a client-facing writer waits for the write slot (EventProcessor.handle_group).
GROUP_SIZE = 200
# A group that was cut short had its events screened and prefetched all the same, and the
# next group screens and prefetches the rest again: under a sustained burst a consumer
# prepared 200 events a turn to handle a few dozen, and a consumer that fell behind spent
# ever more of the loop's time on that. The next group is sized to what the last turn
# handled (with room to grow), down to MIN_GROUP_SIZE; an uncut group doubles the size.
MIN_GROUP_SIZE = 8
# In a shared turn (DatabaseLogTransport.run_together) each subscription may go on this
# long once a client-facing writer waits, as it would in a turn of its own.
SHARED_TURN_SHARE = WriterQueue.BACKGROUND_MIN_TURN


class DatabaseLogTransport:
    name = "database"

    def __init__(self, db: Database, clock: Clock, processor: EventProcessor, *, poll_interval: float) -> None:
        self.db = db
        self.clock = clock
        self.processor = processor
        self.poll_interval = poll_interval
        self._positions_ready: set[tuple[str, str]] = set()
        self._group_sizes: dict[tuple[str, str], int] = {}  # (consumer, topic): events in its next group

    async def check(self) -> None:
        await self.db.ping()

    async def run(self, subscription: Subscription, stop: asyncio.Event) -> None:
        """Consume until ``stop``. Woken by commits that appended to the subscription's own
        topics (of this process, or on PostgreSQL of any), not by every stage's commits; the
        waker stays set for a commit that lands while a group is handled, so a read that
        found less than a batch is not followed by an empty one. Polls every
        ``poll_interval`` all the same: a lost notification costs one interval, never an event."""
        waker = asyncio.Event()
        signals = [self.db.signal(events_appended_to(topic)) for topic in subscription.topics]
        for signal in signals:
            signal.attach(waker)
        stopping = asyncio.create_task(_set_when(stop, waker), name=f"consumer:{subscription.consumer}:stop")
        try:
            while not stop.is_set():
                waker.clear()
                try:
                    _, more = await self._drain(subscription, stop)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("consumer loop error; retrying", extra={"consumer": subscription.consumer})
                    more = False
                    waker.clear()  # not straight back into the error on the next commit
                if not more and not stop.is_set() and not waker.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(waker.wait(), self.poll_interval)
        finally:
            stopping.cancel()
            for signal in signals:
                signal.detach(waker)

    async def run_together(
        self, subscriptions: list[Subscription], stop: asyncio.Event, *, also: TurnSharer | None = None
    ) -> None:
        """Consume for several subscriptions of one process in shared transactions.

        On SQLite every writer takes turns on one write slot, and each consumer's turn paid
        for its own transaction, slot hand-off and disk flush; an event also waited for a
        turn of each stage in the pipeline. One turn for all of them, in the order given,
        pays those once, and a stage handles what an earlier stage wrote in the same turn
        (a detractor's response goes to its alert rows in one commit). A turn in which a
        handler fails is rolled back and each subscription then drains on its own, where
        a failing event is retried and dead-lettered without holding the others back.

        ``also`` (the delivery worker of the same process) does its bookkeeping at the end of
        the turn when it has any, in the same transaction."""
        while not stop.is_set():
            try:
                worked = await self.drain_together(subscriptions, also=also)
                if worked is None:
                    worked = False
                    for subscription in subscriptions:
                        worked = await self.drain_once(subscription, stop) or worked
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "consumer loop error; retrying", extra={"consumer": ",".join(s.consumer for s in subscriptions)}
                )
                worked = False
            if not worked and not stop.is_set():
                await self.db.commit_signal.wait(self.poll_interval)

    async def drain_together(self, subscriptions: list[Subscription], *, also: TurnSharer | None = None) -> bool | None:
        """One transaction in which each subscription handles a group of what waits for it,
        in the order given; True if there was any, None if a handler failed (rolled back)."""
        ended: Callable[[bool], None] | None = None
        for subscription in subscriptions:
            for topic in subscription.topics:
                await self._ensure_position(subscription.consumer, topic)
        worked = False
        counts: list[tuple[Subscription, list[CloudEvent]]] = []
        try:
            async with self.db.unit_of_work() as session:
                for subscription in subscriptions:
                    for topic in subscription.topics:
                        key = (subscription.consumer, topic)
                        size = self._group_sizes.get(key, GROUP_SIZE)
                        position = await self._position(session, subscription.consumer, topic)
                        rows = (await session.execute(_waiting(topic, position, size))).all()
                        if not rows:
                            continue
                        worked = True
                        interest = await subscription.interest(session) if subscription.interest else None
                        kept = _kept(subscription, rows, interest)
                        if kept.events:
                            started = time.monotonic()
                            done, handled = await self.processor.handle_group_in(
                                session,
                                subscription,
                                kept.events,
                                write_position=self._group_position_writer(
                                    subscription.consumer, topic, kept.positions
                                ),
                                may_stop=self._share_used(started),
                            )
                            rows_done = kept.rows_done(done, len(rows))
                            self._group_sizes[key] = _next_group_size(size, len(rows), rows_done)
                            counts.append((subscription, handled))
                        else:  # nothing here for it: only the position moves
                            await self._position_writer(subscription.consumer, topic, rows[-1][0])(session)
                        # The next subscription starts as its own transaction would: ORM
                        # state written out and forgotten, no other subscription's prefetches.
                        await session.flush()
                        session.expunge_all()
                        for name in [k for k in session.info if isinstance(k, tuple) and k[0] == "prefetched"]:
                            del session.info[name]
                if also is not None and also.wants_turn(session):
                    ended = await also.book_in(session)
        except asyncio.CancelledError:
            raise  # the commit may have happened: attempts taken are sent again once their lease ends
        except Exception as exc:
            if ended is not None:
                ended(False)
            log.info(
                "shared turn failed; each consumer drains on its own",
                extra={"consumer": ",".join(s.consumer for s in subscriptions), "error": repr(exc)},
            )
            return None
        if ended is not None:
            ended(True)  # at once, before any other task sees the slot free
        for subscription, handled in counts:
            count_handled(subscription, handled)
        return worked

    def _share_used(self, started: float) -> Callable[[], bool]:
        """A subscription's part of a shared turn ends once a client-facing writer waits and
        the part has run its share."""
        return lambda: self.db.urgent_writer_pending() and time.monotonic() - started >= SHARED_TURN_SHARE

    async def drain_once(self, subscription: Subscription, stop: asyncio.Event | None = None) -> bool:
        """Handle every waiting event once; True if there was any."""
        worked, _ = await self._drain(subscription, stop)
        return worked

    async def _drain(self, subscription: Subscription, stop: asyncio.Event | None) -> tuple[bool, bool]:
        """(whether any event was handled, whether more may be waiting: a read filled its batch)."""
        worked = more = False
        for topic in subscription.topics:
            await self._ensure_position(subscription.consumer, topic)
            async with self.db.sessions() as session:
                position = await self._position(session, subscription.consumer, topic)
                rows = (await session.execute(_waiting(topic, position, BATCH_SIZE))).all()
                interest = await subscription.interest(session) if subscription.interest and rows else None
            more = more or len(rows) >= BATCH_SIZE
            kept = _kept(subscription, rows, interest)
            if rows and not kept.events:  # nothing here for it: only the position moves
                async with self.db.unit_of_work() as session:
                    await self._position_writer(subscription.consumer, topic, rows[-1][0])(session)
                worked = True
                continue
            events, positions = kept.events, kept.positions
            start = 0
            key = (subscription.consumer, topic)
            while start < len(events):
                if stop is not None and stop.is_set():
                    return worked, more
                worked = True
                size = self._group_sizes.get(key, GROUP_SIZE)
                chunk = positions[start : start + size]
                group = events[start : start + size]
                if len(group) > 1:
                    done = await self.processor.handle_group(
                        subscription,
                        group,
                        write_position=self._group_position_writer(subscription.consumer, topic, chunk),
                    )
                    if done is not None:
                        self._group_sizes[key] = _next_group_size(size, len(group), done)
                        start += done  # a group cut short (ingest waiting) goes on from there
                        continue
                start += len(chunk)
                for row_position, event in zip(chunk, group):
                    await self.processor.handle(
                        subscription,
                        event,
                        topic=topic,
                        write_position=self._position_writer(subscription.consumer, topic, row_position),
                    )
        return worked, more

    def _group_position_writer(
        self, consumer: str, topic: str, positions: list[int]
    ) -> Callable[[int], PositionWriter]:
        """A group's ``write_position``: done up to its i-th event stores that event's log position."""
        return lambda i: self._position_writer(consumer, topic, positions[i])

    def _position_writer(self, consumer: str, topic: str, new_position: int) -> PositionWriter:
        async def write(session: AsyncSession) -> None:
            row = await session.get(ConsumerPosition, (consumer, topic))
            assert row is not None, "position row is created before consuming"
            row.position = new_position
            row.updated_at = self.clock.now()

        return write

    async def _position(self, session: AsyncSession, consumer: str, topic: str) -> int:
        value = await session.scalar(
            select(ConsumerPosition.position).where(
                ConsumerPosition.consumer == consumer, ConsumerPosition.topic == topic
            )
        )
        return value or 0

    async def _ensure_position(self, consumer: str, topic: str) -> None:
        if (consumer, topic) in self._positions_ready:
            return
        try:
            async with self.db.unit_of_work() as session:
                if await session.get(ConsumerPosition, (consumer, topic)) is None:
                    session.add(
                        ConsumerPosition(consumer=consumer, topic=topic, position=0, updated_at=self.clock.now())
                    )
        except IntegrityError:
            pass  # another process of the same group created it first
        self._positions_ready.add((consumer, topic))


class TurnSharer(Protocol):
    """A writer of the same process whose bookkeeping rides at the end of a shared turn."""

    def wants_turn(self, session: AsyncSession) -> bool: ...

    async def book_in(self, session: AsyncSession) -> Callable[[bool], None]: ...


async def _set_when(stop: asyncio.Event, waker: asyncio.Event) -> None:
    await stop.wait()
    waker.set()


@dataclass
class _Kept:
    """The rows of a read that a subscription handles: their events, parsed, and log positions.
    The last position is the last row's, so handling the last kept event also moves the
    position past the rows passed over after it."""

    events: list[CloudEvent]
    positions: list[int]
    row_indexes: list[int]  # each kept event's index among the rows read

    def rows_done(self, done: int, rows: int) -> int:
        """Rows behind the position once ``done`` kept events were handled."""
        return rows if done >= len(self.events) else self.row_indexes[done - 1] + 1


def _kept(subscription: Subscription, rows: Sequence[Row[int, str, str]], interest: frozenset[str] | None) -> _Kept:
    """What ``subscription`` handles among ``rows`` (position, type, envelope): events of a
    type it does not take are not even parsed."""
    indexes = [i for i, (_, event_type, _) in enumerate(rows) if subscription.takes(event_type, interest)]
    positions = [rows[i][0] for i in indexes]
    if positions:
        positions[-1] = rows[-1][0]
    return _Kept([CloudEvent.from_json(rows[i][2]) for i in indexes], positions, indexes)


def _waiting(topic: str, position: int, limit: int) -> Select[int, str, str]:
    """The first ``limit`` events of ``topic`` after ``position``, in log order: (position,
    type, envelope)."""
    return (
        select(EventLogEntry.position, EventLogEntry.type, EventLogEntry.envelope)
        .where(EventLogEntry.topic == topic, EventLogEntry.position > position)
        .order_by(EventLogEntry.position)
        .limit(limit)
    )


def _next_group_size(size: int, offered: int, done: int) -> int:
    """The next group's size after a group of ``offered`` events of which ``done`` were handled."""
    if done < offered:  # cut short: about what one turn handles, and half as much again
        return max(MIN_GROUP_SIZE, min(GROUP_SIZE, done + done // 2))
    if offered < size:  # the log had no more: no sign either way
        return size
    return min(GROUP_SIZE, size * 2)
