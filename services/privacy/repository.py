"""Queries over every table that can hold a customer's data. The only place privacy queries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.deliveries.models import Delivery, DeliveryAttempt
from npsloop.services.followup.models import (
    BusinessOutcome,
    CustomerCategory,
    Recovery,
    ReferralRequest,
    SurveySend,
    Task,
    TaskEvent,
)
from npsloop.services.ingest.models import Response
from npsloop.services.privacy.models import ErasureRecord
from npsloop.shared.models import DeadLetter, EventLogEntry

# Rows are rewritten in chunks so an IN (...) list never grows past what SQLite accepts.
CHUNK = 500


def chunks(items: Sequence[str], size: int = CHUNK):
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


async def responses_of(session: AsyncSession, customer_id: str) -> list[Response]:
    return list((await session.scalars(select(Response).where(Response.customer_id == customer_id))).all())


async def tasks_of(session: AsyncSession, customer_id: str) -> list[Task]:
    return list((await session.scalars(select(Task).where(Task.customer_id == customer_id))).all())


async def task_events_of(session: AsyncSession, task_ids: Sequence[str]) -> list[TaskEvent]:
    rows: list[TaskEvent] = []
    for part in chunks(task_ids):
        rows += (await session.scalars(select(TaskEvent).where(TaskEvent.task_id.in_(part)))).all()
    return rows


async def log_entries_keyed(session: AsyncSession, keys: Sequence[str]) -> list[EventLogEntry]:
    """Every event of these partition keys (the customer id is the key of all its events)."""
    rows: list[EventLogEntry] = []
    for part in chunks(keys):
        rows += (await session.scalars(select(EventLogEntry).where(EventLogEntry.key.in_(part)))).all()
    return rows


async def dead_letters_of(session: AsyncSession, event_ids: Sequence[str]) -> list[DeadLetter]:
    rows: list[DeadLetter] = []
    for part in chunks(event_ids):
        rows += (await session.scalars(select(DeadLetter).where(DeadLetter.event_id.in_(part)))).all()
    return rows


async def deliveries_of(session: AsyncSession, event_ids: Sequence[str]) -> list[Delivery]:
    rows: list[Delivery] = []
    for part in chunks(event_ids):
        rows += (await session.scalars(select(Delivery).where(Delivery.event_id.in_(part)))).all()
    return rows


async def forget_attempt_bodies(session: AsyncSession, delivery_ids: Sequence[str]) -> None:
    """Receivers may echo what they were sent; their answers go too."""
    for part in chunks(delivery_ids):
        await session.execute(
            update(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(part)).values(response_body=None)
        )


async def delete_customer_rows(session: AsyncSession, customer_id: str) -> dict[str, int]:
    """Rows that exist only to remember something about this customer: deleted outright."""
    counts = {}
    for name, model in (
        ("referral_requests", ReferralRequest),
        ("customer_categories", CustomerCategory),
        ("survey_sends", SurveySend),
    ):
        result = await session.execute(delete(model).where(model.customer_id == customer_id))
        counts[name] = cast(CursorResult, result).rowcount or 0  # DML answers a CursorResult
    return counts


async def pseudonymise_customer_rows(session: AsyncSession, customer_id: str, pseudonym: str) -> dict[str, int]:
    """Rows that feed aggregates (recovery rate, outcomes): kept, unlinked from the person."""
    recoveries = await session.execute(
        update(Recovery).where(Recovery.customer_id == customer_id).values(customer_id=pseudonym)
    )
    outcomes = await session.execute(
        update(BusinessOutcome)
        .where(BusinessOutcome.customer_id == customer_id)
        .values(customer_id=pseudonym, note=None)
    )
    return {
        "recoveries": cast(CursorResult, recoveries).rowcount or 0,  # DML answers a CursorResult
        "business_outcomes": cast(CursorResult, outcomes).rowcount or 0,
    }


async def erasures_of(session: AsyncSession, customer_id_sha256: str) -> list[ErasureRecord]:
    query = select(ErasureRecord).where(ErasureRecord.customer_id_sha256 == customer_id_sha256)
    return list((await session.scalars(query.order_by(ErasureRecord.erased_at))).all())


async def responses_with_comments_before(session: AsyncSession, cutoff: datetime, limit: int) -> list[Response]:
    query = (
        select(Response)
        .where(Response.received_at < cutoff, Response.comment.is_not(None))
        .order_by(Response.received_at)
        .limit(limit)
    )
    return list((await session.scalars(query)).all())


async def tasks_of_responses(session: AsyncSession, response_ids: Sequence[str]) -> list[Task]:
    rows: list[Task] = []
    for part in chunks(response_ids):
        rows += (await session.scalars(select(Task).where(Task.response_id.in_(part)))).all()
    return rows
