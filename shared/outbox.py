"""Transactional outbox: events are rows written in the caller's transaction.

Nothing is published directly. If the unit of work rolls back, its events vanish with it;
if it commits, they are in the log and will reach every consumer.

Inside a consumer transaction (see shared.bus.processing) :func:`append` and :func:`emit`
only collect the events, and :func:`flush_deferred` writes them all in one statement when
the handlers are done: one insert per group of events instead of one per event. They
still commit or roll back with the handlers' other writes, in the order appended.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.shared import events
from npsloop.shared.clock import Clock
from npsloop.shared.db import EVENTS_APPENDED, BulkInsert, events_appended_to, signal_on_commit, stored_datetime
from npsloop.shared.events import CloudEvent
from npsloop.shared.ids import new_id
from npsloop.shared.models import EventLogEntry

# Any constant works: it only has to be the same for every writer of the log.
_LOG_APPEND_LOCK = 7_302_215_771
_INSERT = BulkInsert(
    EventLogEntry.__table__,
    ("event_id", "topic", "type", "key", "envelope", "created_at"),
    advisory_lock=_LOG_APPEND_LOCK,
)
_DEFERRED = "outbox.deferred"

# An event ready for the log: (event_id, topic, type, partition key, envelope JSON).
Entry = tuple[str, str, str, str, str]


async def append(session: AsyncSession, *events: CloudEvent, clock: Clock) -> None:
    """Add events to the log inside the caller's transaction."""
    await _add(session, [(e.id, e.topic, e.type, e.partitionkey, e.to_json()) for e in events], clock)


async def emit(
    session: AsyncSession,
    event_type: str,
    *,
    key: str,
    subject: str,
    data: dict[str, Any],
    time: datetime,
    clock: Clock,
) -> str:
    """``append(session, events.new_event(...))`` without building the model; returns the event id.

    The envelope is the model's JSON byte for byte (``events.envelope_json``); ``data``
    must hold JSON types only.
    """
    topic = events.topic_of(event_type)
    event_id = new_id()
    envelope = events.envelope_json(
        event_type, event_id=event_id, key=key, subject=subject, data=data, time_json=events.envelope_time(time)
    )
    await _add(session, [(event_id, topic, event_type, key, envelope)], clock)
    return event_id


async def append_entries(
    session: AsyncSession,
    entries: list[Entry],
    *,
    clock: Clock,
    along: tuple[BulkInsert, list[tuple[Any, ...]]] | None = None,
) -> None:
    """Add already-serialised events (see ``events.envelope_json``) to the log, now.

    ``along``: the rows these events announce, as (BulkInsert, rows): inserted by the same
    statement on PostgreSQL, one round trip for both (see ``BulkInsert.run``).
    """
    if entries:
        now = clock.now()
        await _write(session, [(*entry, now) for entry in entries], along)
    elif along is not None:
        await along[0].run(await session.connection(), along[1])


def defer(session: AsyncSession) -> None:
    """From now on, events appended in this session wait for :func:`flush_deferred`."""
    session.info[_DEFERRED] = []


async def flush_deferred(session: AsyncSession) -> None:
    """Write the events collected since :func:`defer` and stop deferring."""
    rows = session.info.pop(_DEFERRED, None)
    if rows:
        await _write(session, rows)


async def _add(session: AsyncSession, entries: list[Entry], clock: Clock) -> None:
    deferred = session.info.get(_DEFERRED)
    if deferred is None:
        await append_entries(session, entries, clock=clock)
    else:
        now = clock.now()  # the log's created_at is when the event was appended, deferred or not
        deferred.extend((*entry, now) for entry in entries)


async def _write(
    session: AsyncSession,
    rows: list[tuple[str, str, str, str, str, datetime]],
    along: tuple[BulkInsert, list[tuple[Any, ...]]] | None = None,
) -> None:
    """Insert (entry..., created_at) rows.

    On PostgreSQL, a transaction-scoped advisory lock makes log positions commit in the
    order they were assigned, so a consumer reading ``position > n`` never skips a row
    that commits late; the insert statement takes it (``BulkInsert(advisory_lock=)``).
    SQLite already serialises writers.
    """
    # Straight to the driver: the hot paths append hundreds of events at once and
    # should not pay per-row bind processing.
    conn = await session.connection()
    dialect_name = conn.dialect.name
    # The rows of one append share their time: convert each distinct time once.
    stored = {time: stored_datetime(time, dialect_name) for time in {row[5] for row in rows}}
    await _INSERT.run(conn, [(*row[:5], stored[row[5]]) for row in rows], along=along)
    signal_on_commit(session, EVENTS_APPENDED)
    for topic in {row[1] for row in rows}:
        signal_on_commit(session, events_appended_to(topic))
