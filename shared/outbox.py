"""Transactional outbox: events are rows written in the caller's transaction.

Nothing is published directly. If the unit of work rolls back, its events vanish with it;
if it commits, they are in the log and will reach every consumer.
"""

from __future__ import annotations

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import Clock
from shared.events import CloudEvent
from shared.models import EventLogEntry

# Any constant works: it only has to be the same for every writer of the log.
_LOG_APPEND_LOCK = 7_302_215_771
_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
_INSERT = insert(EventLogEntry.__table__)


async def append(session: AsyncSession, *events: CloudEvent, clock: Clock) -> None:
    """Add events to the log inside the caller's transaction.

    On PostgreSQL, a transaction-scoped advisory lock makes log positions commit in the
    order they were assigned, so a consumer reading ``position > n`` never skips a row
    that commits late. SQLite already serialises writers.
    """
    if not events:
        return
    # Core statements built once, on the session's connection: the hot path appends many
    # events at once and should not pay the ORM's per-statement bookkeeping.
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        await conn.execute(_LOCK, {"k": _LOG_APPEND_LOCK})
    now = clock.now()
    await conn.execute(_INSERT, [
        {"event_id": event.id, "topic": event.topic, "type": event.type, "key": event.partitionkey,
         "envelope": event.to_json(), "created_at": now}
        for event in events
    ])
    session.info["events_appended"] = True
