"""The part of consuming that is the same for every transport.

Each transport fetches events and moves its own position; this module runs the handler
inside one transaction with the idempotency record, retries, and dead-letters.
"""

from __future__ import annotations

import asyncio
import logging
import random
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.shared import outbox, row_buffer
from npsloop.shared.bus.contract import Subscription
from npsloop.shared.clock import Clock
from npsloop.shared.db import Database, among
from npsloop.shared.events import CloudEvent
from npsloop.shared.models import DeadLetter, ProcessedEvent
from npsloop.shared.observability import metrics

log = logging.getLogger("npsloop.bus")


def event_ids(event: CloudEvent) -> dict[str, str]:
    """The ids a log line about ``event`` carries: its own and, when it is about one, the response's."""
    data = event.data if isinstance(event.data, dict) else {}
    response_id = data.get("response_id") or (data.get("response") or {}).get("id")
    if response_id is None and event.type.startswith("npsloop.response."):
        response_id = data.get("id") or event.subject
    return {"event_id": event.id, "response_id": response_id} if response_id else {"event_id": event.id}


# Runs inside the handler's transaction (the database log moves its position there).
PositionWriter = Callable[[AsyncSession], Awaitable[None]]
# Runs inside the handlers' transaction, first: returns the events to hand them, same order
# and length (the service that erases customers takes erased data out of events in flight).
Screen = Callable[[AsyncSession, list[CloudEvent]], Awaitable[list[CloudEvent]]]


def _start_batching(session: AsyncSession) -> None:
    """Handlers' new rows and events wait for :func:`_write_batched`: one insert per table, not per event."""
    row_buffer.start(session)
    outbox.defer(session)


def _record_processed(session: AsyncSession, subscription: Subscription, event: CloudEvent, now: datetime) -> None:
    """The idempotency record, written with the handler's effects."""
    row_buffer.add(session, ProcessedEvent, consumer=subscription.consumer, event_id=event.id, processed_at=now)


async def _processed_among(session: AsyncSession, subscription: Subscription, events: list[CloudEvent]) -> set[str]:
    """Which of ``events`` the subscription's consumer has an idempotency record of."""
    query = select(ProcessedEvent.event_id).where(
        ProcessedEvent.consumer == subscription.consumer,
        among(session, ProcessedEvent.event_id, [e.id for e in events]),
    )
    return set((await session.scalars(query)).all())


def count_handled(subscription: Subscription, handled: list[CloudEvent]) -> None:
    """The handled-events counter, once the transaction that handled them has committed."""
    for event_type, count in Counter(event.type for event in handled).items():
        metrics.events_handled.labels(consumer=subscription.consumer, type=event_type).inc(count)


async def _write_batched(session: AsyncSession) -> None:
    """Write what the handlers batched, before the transaction's own bookkeeping commits with it."""
    await row_buffer.flush(session)
    await outbox.flush_deferred(session)


class EventProcessor:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        max_attempts: int,
        retry_base_seconds: float,
        screen: Screen | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.max_attempts = max_attempts
        self.retry_base_seconds = retry_base_seconds
        self.screen = screen

    async def handle(
        self, subscription: Subscription, event: CloudEvent, *, topic: str, write_position: PositionWriter | None = None
    ) -> str:
        """Process one event to a final outcome: "handled", "skipped" or "dead_lettered".

        Returns only once the outcome (and ``write_position``) is committed; transient
        database errors on the bookkeeping itself propagate so the transport retries the
        same event rather than moving past it.
        """
        last_error = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                return await self._attempt(subscription, event, write_position)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a handler failure of any kind is retried, then dead-lettered
                last_error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                log.warning(
                    "handler failed",
                    extra={
                        "consumer": subscription.consumer,
                        **event_ids(event),
                        "event_type": event.type,
                        "attempt": attempt,
                        "error": last_error,
                    },
                )
                if attempt < self.max_attempts:
                    delay = self.retry_base_seconds * (2 ** (attempt - 1))
                    await asyncio.sleep(delay * (0.5 + random.random() / 2))
        await self._dead_letter(subscription, event, topic=topic, error=last_error, write_position=write_position)
        return "dead_lettered"

    async def handle_group(
        self,
        subscription: Subscription,
        group: list[CloudEvent],
        *,
        write_position: Callable[[int], PositionWriter] | None = None,
    ) -> int | None:
        """Handle several events in ONE transaction (one commit, one disk flush).

        Returns how many events, from the start of ``group``, were handled and committed
        (``write_position(i)`` gives the position writer for "done up to index i"). The
        group ends early when a client-facing writer waits for the database's single
        write slot (see Database.urgent_writer_waiting): a consumer holding it for a whole
        group would add that group's time to a request's latency; the rest of the group
        is simply handled in the next transaction.

        The processor's ``screen``, if any, runs first with the events the group will
        handle and may replace them. The subscription's ``prefetch``, if any, runs next
        with them, so the handlers find in ``session.info`` what they would otherwise query
        one event at a time. The rows and events the handlers add are written when they
        are done, one statement per table (shared.row_buffer, shared.outbox), in the
        same transaction.

        All or nothing: if any handler fails the transaction rolls back and None is
        returned — the caller then takes the events one by one through :meth:`handle`,
        which retries and dead-letters. The guarantees per event are unchanged.
        """
        try:
            async with self.db.unit_of_work() as session:
                done, handled = await self.handle_group_in(
                    session, subscription, group, write_position=write_position, may_stop=self.db.urgent_writer_waiting
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info(
                "group failed; handling its events one by one",
                extra={"consumer": subscription.consumer, "size": len(group), "error": repr(exc)},
            )
            return None
        count_handled(subscription, handled)
        return done

    async def handle_group_in(
        self,
        session: AsyncSession,
        subscription: Subscription,
        group: list[CloudEvent],
        *,
        write_position: Callable[[int], PositionWriter] | None,
        may_stop: Callable[[], bool],
    ) -> tuple[int, list[CloudEvent]]:
        """:meth:`handle_group`'s work inside a transaction the caller owns and commits.

        Returns how many events from the start of ``group`` were handled (the group ends
        early once ``may_stop()``) and the events handed to the handler, for
        :func:`count_handled` once the transaction has committed. Raises whatever a
        handler raises; the caller rolls back."""
        seen = set() if subscription.idempotent else await _processed_among(session, subscription, group)
        todo = {e.id: e for e in group if e.id not in seen and subscription.wants(e.type)}
        if todo and self.screen is not None:
            screened = {e.id: e for e in await self.screen(session, list(todo.values()))}
            group = [screened.get(e.id, e) for e in group]
            todo = {event_id: screened[event_id] for event_id in todo}
        if subscription.prefetch is not None and todo:
            await subscription.prefetch(session, list(todo.values()))
        handled: list[CloudEvent] = []
        done = 0
        _start_batching(session)
        for event in group:
            done += 1
            if event.id in seen or not subscription.wants(event.type):
                continue
            await subscription.handler(session, event)
            handled.append(event)
            seen.add(event.id)  # the same event twice in one group is handled once
            if done < len(group) and may_stop():
                break
            # Database calls may complete without suspending (inline SQLite):
            # let requests progress between events of a long group.
            await asyncio.sleep(0)
        now = self.clock.now()
        for event in handled if not subscription.idempotent else ():
            _record_processed(session, subscription, event, now)
        await _write_batched(session)
        if write_position is not None:
            await write_position(done - 1)(session)
        return done, handled

    async def _attempt(
        self, subscription: Subscription, event: CloudEvent, write_position: PositionWriter | None
    ) -> str:
        async with self.db.unit_of_work() as session:
            seen = not subscription.idempotent and bool(await _processed_among(session, subscription, [event]))
            if not seen and subscription.wants(event.type):
                if self.screen is not None:
                    (event,) = await self.screen(session, [event])
                _start_batching(session)
                await subscription.handler(session, event)
                if not subscription.idempotent:
                    _record_processed(session, subscription, event, self.clock.now())
                await _write_batched(session)
            if write_position is not None:
                await write_position(session)
        if seen:
            return "skipped"
        if subscription.wants(event.type):
            metrics.events_handled.labels(consumer=subscription.consumer, type=event.type).inc()
            return "handled"
        return "skipped"

    async def _dead_letter(
        self,
        subscription: Subscription,
        event: CloudEvent,
        *,
        topic: str,
        error: str,
        write_position: PositionWriter | None,
    ) -> None:
        async with self.db.unit_of_work() as session:
            session.add(
                DeadLetter(
                    consumer=subscription.consumer,
                    event_id=event.id,
                    topic=topic,
                    type=event.type,
                    envelope=event.to_json(),
                    error=error[:4000],
                    attempts=self.max_attempts,
                    created_at=self.clock.now(),
                )
            )
            if write_position is not None:
                await write_position(session)
        metrics.dead_letters_written.labels(consumer=subscription.consumer).inc()
        log.error(
            "event dead-lettered",
            extra={"consumer": subscription.consumer, **event_ids(event), "event_type": event.type, "error": error},
        )


async def redrive(db: Database, processor: EventProcessor, subscription: Subscription, dead_letter_id: int) -> str:
    """Run a dead-lettered event through its handler again; mark it redriven on success."""
    async with db.unit_of_work() as session:
        row = await session.get(DeadLetter, dead_letter_id)
        if row is None:
            raise LookupError(f"dead letter {dead_letter_id} not found")
        event = CloudEvent.from_json(row.envelope)

    async def mark(session: AsyncSession) -> None:
        letter = await session.get(DeadLetter, dead_letter_id)
        if letter is not None:
            letter.redriven_at = processor.clock.now()

    try:
        return await processor._attempt(subscription, event, mark)
    except IntegrityError:
        return "skipped"
