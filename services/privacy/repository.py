"""Queries over every table that can hold a customer's data. The only place privacy queries."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import CursorResult, and_, delete, or_, select, text, update
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
from npsloop.shared.db import among
from npsloop.shared.models import DeadLetter, EventLogEntry

# Rows are rewritten in chunks so an IN (...) list never grows past what SQLite accepts.
CHUNK = 500

# PostgreSQL advisory locks (two-int form, so they never meet the outbox's one-bigint lock):
# an erasure holds its customer's bucket exclusively, every consumer transaction holds the
# buckets of its events' customers shared. Buckets, not one lock per customer, so a group
# of a thousand events takes at most this many locks.
_ERASURE_LOCK_SPACE = 1_702_317
ERASURE_LOCK_BUCKETS = 64


def chunks(items: Sequence[str], size: int = CHUNK):
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _bucket(customer_id: str) -> int:
    return int.from_bytes(hashlib.sha256(customer_id.encode()).digest()[:4], "big") % ERASURE_LOCK_BUCKETS


def _is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def lock_for_erasure(session: AsyncSession, customer_id: str) -> None:
    """Wait for consumer transactions holding this customer's events, and keep new ones out until commit.

    SQLite needs nothing: every writer, consumers included, holds the single write slot
    for its whole transaction.
    """
    if _is_postgres(session):
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:space, :bucket)"),
            {"space": _ERASURE_LOCK_SPACE, "bucket": _bucket(customer_id)},
        )


async def lock_against_erasure(session: AsyncSession, customer_ids: Iterable[str]) -> None:
    """In a consumer's transaction: an erasure of these customers either committed before (and
    is visible to the next statement) or waits until this transaction commits."""
    buckets = sorted({_bucket(c) for c in customer_ids})  # one order everywhere: no deadlock
    if buckets and _is_postgres(session):
        await session.execute(
            text("SELECT pg_advisory_xact_lock_shared(:space, b) FROM unnest(CAST(:buckets AS integer[])) AS b"),
            {"space": _ERASURE_LOCK_SPACE, "buckets": buckets},
        )


async def erased_among(session: AsyncSession, customer_id_hashes: Sequence[str]) -> dict[str, str | None]:
    """The hashes among these that were erased, each with its latest pseudonym (None before 0005)."""
    found: dict[str, str | None] = {}
    for part in chunks(sorted(set(customer_id_hashes))):
        query = (
            select(ErasureRecord.customer_id_sha256, ErasureRecord.pseudonym)
            .where(among(session, ErasureRecord.customer_id_sha256, part))
            .order_by(ErasureRecord.erased_at)
        )
        for digest, pseudonym in (await session.execute(query)).all():
            found[digest] = pseudonym or found.get(digest)
    return found


async def response_owners(session: AsyncSession, response_ids: Sequence[str]) -> dict[str, str]:
    """response id -> the customer id its row holds now (a pseudonym once erased)."""
    owners: dict[str, str] = {}
    for part in chunks(sorted(set(response_ids))):
        query = select(Response.id, Response.customer_id).where(Response.id.in_(part))
        owners.update({row.id: row.customer_id for row in (await session.execute(query)).all()})
    return owners


async def responses_of(session: AsyncSession, customer_id: str) -> list[Response]:
    """Locked (FOR UPDATE): a writer that locks one of them first (a late comment) commits
    before this transaction reads on; one that comes later reads the erased row."""
    query = select(Response).where(Response.customer_id == customer_id).with_for_update()
    return list((await session.scalars(query)).all())


async def tasks_of(session: AsyncSession, customer_id: str) -> list[Task]:
    """Locked like :func:`responses_of` (the SLA monitor and task changes lock the tasks they write)."""
    query = select(Task).where(Task.customer_id == customer_id).with_for_update()
    return list((await session.scalars(query)).all())


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


async def deliveries_of(session: AsyncSession, event_ids: Sequence[str], *, lock: bool = False) -> list[Delivery]:
    """``lock``: FOR UPDATE, so a delivery worker recording an attempt of one of them either
    committed before (its attempt is seen) or reads the rewritten envelope after."""
    rows: list[Delivery] = []
    for part in chunks(event_ids):
        query = select(Delivery).where(Delivery.event_id.in_(part))
        rows += (await session.scalars(query.with_for_update() if lock else query)).all()
    return rows


async def forget_attempt_bodies(session: AsyncSession, delivery_ids: Sequence[str]) -> int:
    """Receivers may echo what they were sent; their answers go too. How many were kept."""
    forgotten = 0
    for part in chunks(delivery_ids):
        result = await session.execute(
            update(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_(part), DeliveryAttempt.response_body.is_not(None))
            .values(response_body=None)
        )
        forgotten += cast(CursorResult, result).rowcount or 0
    return forgotten


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


async def recent_erasures(
    session: AsyncSession,
    *,
    limit: int,
    customer_id_sha256: str | None = None,
    after: tuple[datetime, str] | None = None,
) -> list[ErasureRecord]:
    """Newest first (ties by id); ``after``: the (erased_at, id) of the last record of the previous page."""
    query = select(ErasureRecord)
    if customer_id_sha256 is not None:
        query = query.where(ErasureRecord.customer_id_sha256 == customer_id_sha256)
    if after is not None:
        erased_at, erasure_id = after
        query = query.where(
            or_(
                ErasureRecord.erased_at < erased_at,
                and_(ErasureRecord.erased_at == erased_at, ErasureRecord.id > erasure_id),
            )
        )
    query = query.order_by(ErasureRecord.erased_at.desc(), ErasureRecord.id).limit(limit)
    return list((await session.scalars(query)).all())


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
