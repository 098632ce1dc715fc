"""Read-only queries behind analytics, exports and the ops gauges."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.classifier.models import StoredClassification
from npsloop.services.followup.models import BusinessOutcome, Task
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


async def tasks_page(
    session: AsyncSession, *, start: datetime | None, end: datetime | None, after: tuple[datetime, str] | None
) -> list[Task]:
    """One keyset page of tasks whose response was received in [start, end)."""
    query = _period(select(Task), Task.received_at, start, end)
    if after is not None:
        query = query.where((Task.received_at > after[0]) | and_(Task.received_at == after[0], Task.id > after[1]))
    return list((await session.scalars(query.order_by(Task.received_at, Task.id).limit(PAGE))).all())


async def tasks_received(session: AsyncSession, *, start: datetime, end: datetime) -> list[Task]:
    query = _period(select(Task), Task.received_at, start, end)
    return list((await session.scalars(query.order_by(Task.received_at, Task.id))).all())


async def unresolved_tasks(session: AsyncSession) -> list[Task]:
    return list((await session.scalars(select(Task).where(Task.status != "resolved"))).all())


async def business_outcomes_of(
    session: AsyncSession, *, customer_ids: Sequence[str], account_ids: Sequence[str]
) -> list[BusinessOutcome]:
    """Outcomes recorded for any of these customers or accounts."""
    found: dict[str, BusinessOutcome] = {}
    for column, ids in ((BusinessOutcome.customer_id, customer_ids), (BusinessOutcome.account_id, account_ids)):
        for chunk in _chunks(list(ids)):
            for row in (await session.scalars(select(BusinessOutcome).where(column.in_(chunk)))).all():
                found[row.id] = row
    return list(found.values())


async def property_names(session: AsyncSession, *, start: datetime, end: datetime, sample: int) -> dict[str, int]:
    """How many of the period's newest ``sample`` responses carry each property name."""
    query = _period(select(Response.properties), Response.responded_at, start, end)
    query = query.order_by(Response.responded_at.desc()).limit(sample)
    counts: dict[str, int] = {}
    for (properties,) in (await session.execute(query)).all():
        for name in properties or {}:
            counts[name] = counts.get(name, 0) + 1
    return counts


async def business_outcomes_between(session: AsyncSession, *, start: date, end: date) -> list[BusinessOutcome]:
    """Outcomes that occurred on a day in [start, end]."""
    query = select(BusinessOutcome).where(BusinessOutcome.occurred_on >= start, BusinessOutcome.occurred_on <= end)
    return list((await session.scalars(query)).all())


async def answers_of(
    session: AsyncSession, *, customer_ids: Sequence[str], account_ids: Sequence[str], before: datetime
) -> list[tuple[str, str | None, int, datetime]]:
    """``(customer_id, account_id, score, responded_at)`` of these customers' or accounts' answers before ``before``."""
    found: dict[tuple[str, datetime, int], tuple[str, str | None, int, datetime]] = {}
    for column, ids in ((Response.customer_id, customer_ids), (Response.account_id, account_ids)):
        for chunk in _chunks(list(ids)):
            query = select(Response.customer_id, Response.account_id, Response.score, Response.responded_at).where(
                column.in_(chunk), Response.responded_at < before
            )
            for customer_id, account_id, score, responded_at in (await session.execute(query)).all():
                found[customer_id, responded_at, score] = (customer_id, account_id, score, responded_at)
    return list(found.values())


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# --- ops gauges (read at scrape time so every process reports the same truth) ---------


async def open_tasks_by_team(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(Task.team, func.count()).where(Task.status != "resolved").group_by(Task.team))
    return {team or "unassigned": count for team, count in rows.all()}


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
