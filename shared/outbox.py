"""Transactional outbox: events are rows written in the caller's transaction.

Nothing is published directly. If the unit of work rolls back, its events vanish with it;
if it commits, they are in the log and will reach every consumer.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import Clock
from shared.db import BulkInsert, stored_datetime
from shared.events import CloudEvent
from shared.models import EventLogEntry

# Any constant works: it only has to be the same for every writer of the log.
_LOG_APPEND_LOCK = 7_302_215_771
_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
_INSERT = BulkInsert(EventLogEntry.__table__, ("event_id", "topic", "type", "key", "envelope", "created_at"))

# An event ready for the log: (event_id, topic, type, partition key, envelope JSON).
Entry = tuple[str, str, str, str, str]


async def append(session: AsyncSession, *events: CloudEvent, clock: Clock) -> None:
    """Add events to the log inside the caller's transaction."""
    await append_entries(session, [(e.id, e.topic, e.type, e.partitionkey, e.to_json()) for e in events], clock=clock)


async def append_entries(session: AsyncSession, entries: list[Entry], *, clock: Clock) -> None:
    """Add already-serialised events (see ``events.envelope_json``) to the log.

    On PostgreSQL, a transaction-scoped advisory lock makes log positions commit in the
    order they were assigned, so a consumer reading ``position > n`` never skips a row
    that commits late. SQLite already serialises writers.
    """
    if not entries:
        return
    # Straight to the driver: the hot paths append hundreds of events at once and
    # should not pay per-row bind processing.
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        await conn.execute(_LOCK, {"k": _LOG_APPEND_LOCK})
    created_at = stored_datetime(clock.now(), conn.dialect.name)
    await _INSERT.run(conn, [(*entry, created_at) for entry in entries])
    session.info["events_appended"] = True
