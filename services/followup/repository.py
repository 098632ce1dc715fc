"""Queries on tasks, their audit trail and referral requests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.followup.models import ReferralRequest, Task, TaskEvent


async def get(session: AsyncSession, task_id: str) -> Task | None:
    return await session.get(Task, task_id)


async def get_by_response(session: AsyncSession, response_id: str) -> Task | None:
    return await session.scalar(select(Task).where(Task.response_id == response_id))


async def events_of(session: AsyncSession, task_id: str) -> list[TaskEvent]:
    return list((await session.scalars(select(TaskEvent).where(TaskEvent.task_id == task_id).order_by(TaskEvent.id))).all())


async def search(session: AsyncSession, *, status: str | None = None, assignee: str | None = None,
                 team: str | None = None, breached: bool | None = None, customer_id: str | None = None,
                 due_before: datetime | None = None, due_after: datetime | None = None,
                 limit: int = 100, after_id: tuple[datetime, str] | None = None) -> list[Task]:
    query: Select[tuple[Task]] = select(Task)
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
    return list((await session.scalars(query.order_by(Task.warn_at).limit(limit).with_for_update(skip_locked=True))).all())


async def due_for_breach(session: AsyncSession, now: datetime, limit: int = 500) -> list[Task]:
    query = select(Task).where(Task.status == "open", Task.breached_at.is_(None), Task.due_at <= now)
    return list((await session.scalars(query.order_by(Task.due_at).limit(limit).with_for_update(skip_locked=True))).all())


async def referral_since(session: AsyncSession, customer_id: str, since: datetime) -> ReferralRequest | None:
    query = select(ReferralRequest).where(ReferralRequest.customer_id == customer_id, ReferralRequest.requested_at > since)
    return await session.scalar(query.limit(1))


async def referral_for_response(session: AsyncSession, response_id: str) -> ReferralRequest | None:
    return await session.scalar(select(ReferralRequest).where(ReferralRequest.response_id == response_id))
