"""Where a consumer stands in the database event log, for tests that check it passed events by."""

from __future__ import annotations

from sqlalchemy import func, select

from npsloop.shared.db import Database
from npsloop.shared.models import ConsumerPosition, EventLogEntry


async def consumer_positions(db: Database, consumer: str) -> dict[str, int]:
    """The consumer's position on each topic it has read."""
    async with db.sessions() as session:
        rows = await session.execute(
            select(ConsumerPosition.topic, ConsumerPosition.position).where(ConsumerPosition.consumer == consumer)
        )
        return {topic: position for topic, position in rows.all()}  # noqa: C416 (Row pairs, typed)


async def log_ends(db: Database) -> dict[str, int]:
    """The last position of each topic that holds events."""
    async with db.sessions() as session:
        rows = await session.execute(
            select(EventLogEntry.topic, func.max(EventLogEntry.position)).group_by(EventLogEntry.topic)
        )
        return {topic: position for topic, position in rows.all()}  # noqa: C416 (Row pairs, typed)
