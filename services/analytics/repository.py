"""Read-only queries behind analytics, exports and the ops gauges."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.classifier.models import StoredClassification
from npsloop.services.ingest.models import Response
from npsloop.shared.models import ConsumerPosition, DeadLetter, EventLogEntry

PAGE = 1000

# Plain columns that /v1/nps may group or filter by.
RESPONSE_DIMENSIONS = {
    "segment": Response.segment,
    "touchpoint": Response.touchpoint,
    "lifecycle_stage": Response.lifecycle_stage,
    "survey_kind": Response.survey_kind,
}


def _period(query: Select, column: Any, start: datetime | None, end: datetime | None) -> Select:
    if start is not None:
        query = query.where(column >= start)
    if end is not None:
        query = query.where(column < end)
    return query


async def scored_responses(
    session: AsyncSession, *, start: datetime, end: datetime, filters: dict[str, str]
) -> AsyncIterator[Sequence[Any]]:
    """Responses answered in [start, end) with their stored themes, in pages of rows.

    Rows: id, score, segment, touchpoint, lifecycle_stage, survey_kind, properties,
    responded_at, comment, customer_id, account_id, themes (None when not classified yet).
    """
    query = select(
        Response.id,
        Response.score,
        Response.segment,
        Response.touchpoint,
        Response.lifecycle_stage,
        Response.survey_kind,
        Response.properties,
        Response.responded_at,
        Response.comment,
        Response.customer_id,
        Response.account_id,
        StoredClassification.themes,
    ).outerjoin(StoredClassification, StoredClassification.response_id == Response.id)
    query = _period(query, Response.responded_at, start, end)
    for name, value in filters.items():
        query = query.where(RESPONSE_DIMENSIONS[name] == value)
    last: tuple[datetime, str] | None = None
    while True:
        page = query
        if last is not None:
            page = page.where(
                (Response.responded_at > last[0]) | and_(Response.responded_at == last[0], Response.id > last[1])
            )
        rows = (await session.execute(page.order_by(Response.responded_at, Response.id).limit(PAGE))).all()
        if not rows:
            return
        yield rows
        last = (rows[-1].responded_at, rows[-1].id)


async def responses_with_classification(
    session: AsyncSession, *, start: datetime | None, end: datetime | None, after: tuple[datetime, str] | None
) -> list[tuple[Response, StoredClassification | None]]:
    """One keyset page of responses (by responded_at, id) with their classification, for export."""
    query = select(Response, StoredClassification).outerjoin(
        StoredClassification, StoredClassification.response_id == Response.id
    )
    query = _period(query, Response.responded_at, start, end)
    if after is not None:
        query = query.where(
            (Response.responded_at > after[0]) | and_(Response.responded_at == after[0], Response.id > after[1])
        )
    rows = (await session.execute(query.order_by(Response.responded_at, Response.id).limit(PAGE))).all()
    return [(row[0], row[1]) for row in rows]


# --- ops gauges (read at scrape time so every process reports the same truth) ---------


async def consumer_positions(session: AsyncSession) -> list[tuple[str, str, int]]:
    rows = await session.execute(select(ConsumerPosition.consumer, ConsumerPosition.topic, ConsumerPosition.position))
    return [(c, t, p) for c, t, p in rows.all()]


async def events_after(session: AsyncSession, topic: str, position: int) -> int:
    query = (
        select(func.count())
        .select_from(EventLogEntry)
        .where(EventLogEntry.topic == topic, EventLogEntry.position > position)
    )
    return int(await session.scalar(query) or 0)


async def unpublished_events(session: AsyncSession) -> int:
    query = select(func.count()).select_from(EventLogEntry).where(EventLogEntry.published_at.is_(None))
    return int(await session.scalar(query) or 0)


async def pending_dead_letters(session: AsyncSession) -> int:
    query = select(func.count()).select_from(DeadLetter).where(DeadLetter.redriven_at.is_(None))
    return int(await session.scalar(query) or 0)
