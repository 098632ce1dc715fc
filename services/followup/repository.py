"""Queries on tasks, their audit trail and referral requests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import cast

from sqlalchemy import Select, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.followup.models import (
    BusinessOutcome,
    CustomerCategory,
    DigestSent,
    Recovery,
    ReferralRequest,
    RoutingCursor,
    SurveySend,
    Task,
    TaskEvent,
)
from npsloop.shared import row_buffer
from npsloop.shared.bus.contract import NOT_PREFETCHED, lookup, prefetched, store_prefetched
from npsloop.shared.db import among


async def get(session: AsyncSession, task_id: str, *, lock: bool = False) -> Task | None:
    """``lock``: FOR UPDATE, for a change built on what is read (it then waits for an erasure
    of the customer in progress, and reads the erased row)."""
    return await session.get(Task, task_id, with_for_update=lock)


async def get_by_response(session: AsyncSession, response_id: str) -> Task | None:
    found = lookup(session, TASK_BY_RESPONSE, response_id)
    if found is not NOT_PREFETCHED:
        return found  # type: ignore[return-value]
    return await session.scalar(select(Task).where(Task.response_id == response_id))


# What a group of ``response.classified`` events needs, loaded in one query each (see
# shared.bus.contract.prefetched); the single-event functions here read these tables.
TASK_BY_RESPONSE = "followup.task_by_response"
CATEGORY = "followup.customer_category"
RESOLVED_UNMEASURED = "followup.resolved_unmeasured"
REFERRAL_BY_RESPONSE = "followup.referral_by_response"
LAST_REFERRAL_AT = "followup.last_referral_at"
ROUTING_CURSOR = "followup.routing_cursor"


async def prefetch_for_responses(session: AsyncSession, response_ids: list[str], customer_ids: list[str]) -> None:
    response_ids, customer_ids = sorted(set(response_ids)), sorted(set(customer_ids))
    tasks = dict.fromkeys(response_ids)
    for task in (await session.scalars(select(Task).where(among(session, Task.response_id, response_ids)))).all():
        tasks[task.response_id] = task
    store_prefetched(session, TASK_BY_RESPONSE, tasks)
    # Plain rows, not ORM objects: note_answer changes most of them, and the group writes
    # those changes in one executemany (shared.row_buffer.changed).
    categories: dict[str, row_buffer.LoadedRow | None] = dict.fromkeys(customer_ids)
    table = CustomerCategory.__table__
    query = (
        select(table)
        .where(among(session, table.c.customer_id, customer_ids))
        .order_by(table.c.customer_id)
        .with_for_update()
    )
    for mapping in (await session.execute(query)).mappings():
        categories[mapping["customer_id"]] = row_buffer.loaded(mapping)
    store_prefetched(session, CATEGORY, categories)
    resolved: dict[str, list[Task]] = {c: [] for c in customer_ids}
    query = (
        select(Task)
        .where(
            among(session, Task.customer_id, customer_ids),
            Task.status == "resolved",
            Task.id.not_in(select(Recovery.task_id)),
        )
        .order_by(Task.resolved_at)
    )
    for task in (await session.scalars(query)).all():
        resolved[task.customer_id].append(task)
    store_prefetched(session, RESOLVED_UNMEASURED, resolved)
    referrals = dict.fromkeys(response_ids)
    last_referral = dict.fromkeys(customer_ids)
    query = select(ReferralRequest).where(
        among(session, ReferralRequest.customer_id, customer_ids)
        | among(session, ReferralRequest.response_id, response_ids)
    )
    for row in (await session.scalars(query)).all():
        if row.response_id in referrals:
            referrals[row.response_id] = row
        if row.customer_id in last_referral:
            last = last_referral[row.customer_id]
            last_referral[row.customer_id] = row.requested_at if last is None else max(last, row.requested_at)
    store_prefetched(session, REFERRAL_BY_RESPONSE, referrals)
    store_prefetched(session, LAST_REFERRAL_AT, last_referral)
    store_prefetched(session, ROUTING_CURSOR, {})  # filled by the first task of each team


def remember(session: AsyncSession, name: str, key: object, value: object) -> None:
    """Keep a prefetched table true after a write (no-op outside a prefetched group)."""
    table = prefetched(session, name)
    if table is not None:
        table[key] = value


async def events_of(session: AsyncSession, task_id: str) -> list[TaskEvent]:
    return list(
        (await session.scalars(select(TaskEvent).where(TaskEvent.task_id == task_id).order_by(TaskEvent.id))).all()
    )


async def search(
    session: AsyncSession,
    *,
    status: str | None = None,
    assignee: str | None = None,
    team: str | None = None,
    breached: bool | None = None,
    customer_id: str | None = None,
    due_before: datetime | None = None,
    due_after: datetime | None = None,
    limit: int = 100,
    after_id: tuple[datetime, str] | None = None,
) -> list[Task]:
    query: Select[Task] = select(Task)
    if status:
        query = query.where(Task.status == status)
    if assignee:
        query = query.where(Task.assignee == assignee)
    if team:
        query = query.where(Task.team == team)
    if breached is not None:
        query = query.where(Task.breached_at.is_not(None) if breached else Task.breached_at.is_(None))
    if customer_id:
        query = query.where(Task.customer_id == customer_id)
    if due_before:
        query = query.where(Task.due_at < due_before)
    if due_after:
        query = query.where(Task.due_at >= due_after)
    if after_id:
        opened_at, task_id = after_id
        query = query.where((Task.opened_at > opened_at) | ((Task.opened_at == opened_at) & (Task.id > task_id)))
    query = query.order_by(Task.opened_at, Task.id).limit(limit)
    return list((await session.scalars(query)).all())


async def due_for_warning(session: AsyncSession, now: datetime, limit: int = 500) -> list[Task]:
    query = select(Task).where(Task.status == "open", Task.warned_at.is_(None), Task.warn_at <= now)
    return list(
        (await session.scalars(query.order_by(Task.warn_at).limit(limit).with_for_update(skip_locked=True))).all()
    )


async def due_for_breach(session: AsyncSession, now: datetime, limit: int = 500) -> list[Task]:
    query = select(Task).where(Task.status == "open", Task.breached_at.is_(None), Task.due_at <= now)
    return list(
        (await session.scalars(query.order_by(Task.due_at).limit(limit).with_for_update(skip_locked=True))).all()
    )


async def referral_since(session: AsyncSession, customer_id: str, since: datetime) -> ReferralRequest | datetime | None:
    """A referral request of the customer after ``since`` (from a prefetch: its time), else None."""
    last = lookup(session, LAST_REFERRAL_AT, customer_id)
    if last is not NOT_PREFETCHED:
        return last if last is not None and last > since else None  # type: ignore[return-value,operator]
    query = select(ReferralRequest).where(
        ReferralRequest.customer_id == customer_id, ReferralRequest.requested_at > since
    )
    return await session.scalar(query.limit(1))


async def referral_for_response(session: AsyncSession, response_id: str) -> ReferralRequest | None:
    found = lookup(session, REFERRAL_BY_RESPONSE, response_id)
    if found is not NOT_PREFETCHED:
        return found  # type: ignore[return-value]
    return await session.scalar(select(ReferralRequest).where(ReferralRequest.response_id == response_id))


async def routing_cursor(session: AsyncSession, team: str) -> RoutingCursor | None:
    found = lookup(session, ROUTING_CURSOR, team)
    if found is not NOT_PREFETCHED:
        return found  # type: ignore[return-value]  # locked by the group's first read
    query = select(RoutingCursor).where(RoutingCursor.team == team).with_for_update()
    return await session.scalar(query)


async def customer_category(session: AsyncSession, customer_id: str) -> CustomerCategory | None:
    found = lookup(session, CATEGORY, customer_id)
    if found is not NOT_PREFETCHED:
        return found  # type: ignore[return-value]
    query = select(CustomerCategory).where(CustomerCategory.customer_id == customer_id).with_for_update()
    return await session.scalar(query)


async def resolved_awaiting_answer(
    session: AsyncSession, customer_id: str, answered_at: datetime, response_id: str
) -> list[Task]:
    """Resolved tasks of the customer, resolved by ``answered_at``, whose next answer is not yet recorded."""
    found = lookup(session, RESOLVED_UNMEASURED, customer_id)
    if found is not NOT_PREFETCHED:
        tasks = cast("list[Task]", found)  # prefetch_for_responses stores each customer's list
        return [
            t
            for t in tasks
            if t.resolved_at is not None and t.resolved_at <= answered_at and t.response_id != response_id
        ]
    measured = select(Recovery.task_id)
    query = select(Task).where(
        Task.customer_id == customer_id,
        Task.status == "resolved",
        Task.resolved_at <= answered_at,
        Task.response_id != response_id,
        Task.id.not_in(measured),
    )
    return list((await session.scalars(query.order_by(Task.resolved_at))).all())


async def recoveries(
    session: AsyncSession, *, since: datetime | None, until: datetime | None, team: str | None
) -> list[Recovery]:
    query = select(Recovery)
    if since:
        query = query.where(Recovery.answered_at >= since)
    if until:
        query = query.where(Recovery.answered_at < until)
    if team:
        query = query.where(Recovery.team == team)
    return list((await session.scalars(query.order_by(Recovery.answered_at))).all())


async def recovery_counts(session: AsyncSession, *, since: datetime) -> tuple[int, int]:
    """(measured, recovered) over next answers since ``since``: one aggregate row for /metrics."""
    measured, recovered = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(case((Recovery.recovered, 1), else_=0)), 0)).where(
                Recovery.answered_at >= since
            )
        )
    ).one()
    return int(measured), int(recovered)


async def resolved_count(
    session: AsyncSession, *, since: datetime | None, until: datetime | None, team: str | None
) -> int:
    query = select(func.count()).select_from(Task).where(Task.status == "resolved")
    if since:
        query = query.where(Task.resolved_at >= since)
    if until:
        query = query.where(Task.resolved_at < until)
    if team:
        query = query.where(Task.team == team)
    return int(await session.scalar(query) or 0)


async def digest_sent(session: AsyncSession, team: str, period_end: datetime) -> bool:
    query = select(DigestSent.team).where(DigestSent.team == team, DigestSent.period_end == period_end)
    return await session.scalar(query) is not None


async def team_counts(session: AsyncSession, team: str, start: datetime, end: datetime) -> dict[str, int]:
    async def count(*conditions) -> int:
        return int(
            await session.scalar(select(func.count()).select_from(Task).where(Task.team == team, *conditions)) or 0
        )

    return {
        "new_detractors": await count(Task.opened_at >= start, Task.opened_at < end),
        "breaches": await count(Task.breached_at >= start, Task.breached_at < end),
        "open_tasks": await count(Task.status != "resolved"),
        "resolved": await count(Task.resolved_at >= start, Task.resolved_at < end),
    }


async def last_sent_at(
    session: AsyncSession, *, customer_id: str | None = None, account_id: str | None = None
) -> datetime | None:
    column = SurveySend.customer_id if customer_id is not None else SurveySend.account_id
    return await session.scalar(select(func.max(SurveySend.sent_at)).where(column == (customer_id or account_id)))


async def last_sent_account_id(session: AsyncSession, customer_id: str) -> str | None:
    """The account of the latest survey send reported for the customer that named one."""
    return await session.scalar(
        select(SurveySend.account_id)
        .where(SurveySend.customer_id == customer_id, SurveySend.account_id.is_not(None))
        .order_by(SurveySend.sent_at.desc())
        .limit(1)
    )


async def business_outcomes(
    session: AsyncSession, *, customer_id: str | None, account_id: str | None, limit: int
) -> list[BusinessOutcome]:
    query = select(BusinessOutcome)
    if customer_id:
        query = query.where(BusinessOutcome.customer_id == customer_id)
    if account_id:
        query = query.where(BusinessOutcome.account_id == account_id)
    query = query.order_by(BusinessOutcome.occurred_on.desc(), BusinessOutcome.recorded_at.desc()).limit(limit)
    return list((await session.scalars(query)).all())


async def referral_requests_of(session: AsyncSession, customer_id: str, *, limit: int) -> list[ReferralRequest]:
    query = (
        select(ReferralRequest)
        .where(ReferralRequest.customer_id == customer_id)
        .order_by(ReferralRequest.requested_at.desc())
        .limit(limit)
    )
    return list((await session.scalars(query)).all())


# --- reads for analytics and /metrics ------------------------------------------------


def _received_in(query: Select, start: datetime | None, end: datetime | None) -> Select:
    if start is not None:
        query = query.where(Task.received_at >= start)
    if end is not None:
        query = query.where(Task.received_at < end)
    return query


async def tasks_page(
    session: AsyncSession,
    *,
    start: datetime | None,
    end: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Task]:
    """One keyset page of tasks whose response was received in [start, end)."""
    query = _received_in(select(Task), start, end)
    if after is not None:
        query = query.where((Task.received_at > after[0]) | and_(Task.received_at == after[0], Task.id > after[1]))
    return list((await session.scalars(query.order_by(Task.received_at, Task.id).limit(limit))).all())


async def tasks_received(session: AsyncSession, *, start: datetime, end: datetime) -> list[Task]:
    query = _received_in(select(Task), start, end)
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


async def business_outcomes_between(session: AsyncSession, *, start: date, end: date) -> list[BusinessOutcome]:
    """Outcomes that occurred on a day in [start, end]."""
    query = select(BusinessOutcome).where(BusinessOutcome.occurred_on >= start, BusinessOutcome.occurred_on <= end)
    return list((await session.scalars(query)).all())


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def open_tasks_by_team(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(Task.team, func.count()).where(Task.status != "resolved").group_by(Task.team))
    return {team or "unassigned": count for team, count in rows.all()}
