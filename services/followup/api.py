"""HTTP endpoints for the task inbox."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from npsloop.services.followup import repository, service
from npsloop.services.followup.models import Task
from npsloop.services.followup.schemas import (
    AcknowledgeIn,
    NoteIn,
    ReassignIn,
    ResolveIn,
    TaskList,
    TaskOut,
    TaskStatus,
)
from npsloop.shared.auth import Principal
from npsloop.shared.clock import Instant
from npsloop.shared.problems import BadRequest, NotFound, UnprocessableContent, not_found
from npsloop.shared.web import ClockDep, DbDep, require

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])
_RESOLVED = "The task is already resolved"

TaskReader = Annotated[Principal, Depends(require("tasks:read"))]
TaskWriter = Annotated[Principal, Depends(require("tasks:write"))]


def _out(task: Task, task_events=None) -> TaskOut:
    return TaskOut.of(task, task_events)


def _cursor(task: Task) -> str:
    return base64.urlsafe_b64encode(f"{task.opened_at.isoformat()}|{task.id}".encode()).decode()


def _parse_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        opened_at, task_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(opened_at), task_id
    except Exception:
        raise BadRequest(
            "cursor is not one this API returned", errors=[{"field": "cursor", "message": "invalid"}]
        ) from None


@router.get("", response_model=TaskList, responses={400: {"description": "The cursor is not one this API returned"}})
async def list_tasks(
    _: TaskReader,
    db: DbDep,
    status: TaskStatus | None = None,
    assignee: str | None = None,
    team: str | None = None,
    breached: bool | None = None,
    customer_id: str | None = None,
    due_before: Instant | None = None,
    due_after: Instant | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> TaskList:
    after = _parse_cursor(cursor) if cursor else None
    async with db.sessions() as session:
        tasks = await repository.search(
            session,
            status=status,
            assignee=assignee,
            team=team,
            breached=breached,
            customer_id=customer_id,
            due_before=due_before,
            due_after=due_after,
            limit=limit,
            after_id=after,
        )
    next_cursor = _cursor(tasks[-1]) if len(tasks) == limit else None
    return TaskList(tasks=[_out(t) for t in tasks], next_cursor=next_cursor)


@router.get("/{task_id}", response_model=TaskOut, responses=not_found("task"))
async def get_task(task_id: str, _: TaskReader, db: DbDep) -> TaskOut:
    async with db.sessions() as session:
        task = await repository.get(session, task_id)
        if task is None:
            raise NotFound(f"task {task_id} does not exist")
        return _out(task, await repository.events_of(session, task_id))


@router.post(
    "/{task_id}/acknowledge", response_model=TaskOut, responses={**not_found("task"), 409: {"description": _RESOLVED}}
)
async def acknowledge_task(
    task_id: str, principal: TaskWriter, db: DbDep, clock: ClockDep, body: AcknowledgeIn | None = None
) -> TaskOut:
    async with db.unit_of_work() as session:
        task = await service.acknowledge(
            session, task_id, actor=principal.name, note=body.note if body else None, clock=clock
        )
        return _out(task)


@router.post("/{task_id}/notes", response_model=TaskOut, status_code=201, responses=not_found("task"))
async def add_task_note(task_id: str, body: NoteIn, principal: TaskWriter, db: DbDep, clock: ClockDep) -> TaskOut:
    async with db.unit_of_work() as session:
        task = await service.add_note(session, task_id, actor=principal.name, note=body.note, clock=clock)
        return _out(task)


@router.post(
    "/{task_id}/resolve", response_model=TaskOut, responses={**not_found("task"), 409: {"description": _RESOLVED}}
)
async def resolve_task(task_id: str, body: ResolveIn, principal: TaskWriter, db: DbDep, clock: ClockDep) -> TaskOut:
    async with db.unit_of_work() as session:
        task = await service.resolve(
            session,
            task_id,
            actor=principal.name,
            outcome=body.outcome,
            note=body.note,
            clock=clock,
            customer_message=body.customer_message.model_dump() if body.customer_message else None,
        )
        return _out(task)


@router.post(
    "/{task_id}/reassign", response_model=TaskOut, responses={**not_found("task"), 409: {"description": _RESOLVED}}
)
async def reassign_task(
    task_id: str, body: ReassignIn, request: Request, principal: TaskWriter, db: DbDep, clock: ClockDep
) -> TaskOut:
    """Reassign to a person, a team or a channel; kept in the audit trail and alerted on the task's channel."""
    given = body.model_fields_set - {"note"}
    if not given:
        raise UnprocessableContent(
            "give assignee, team or channel", errors=[{"field": "assignee", "message": "required"}]
        )
    channels = request.app.state.runtime.policy.channels
    if body.channel is not None and body.channel not in channels:
        known = ", ".join(sorted(channels)) or "none defined"
        raise UnprocessableContent(
            f"channel: unknown channel {body.channel!r} (policy channels: {known})",
            errors=[{"field": "channel", "message": "not a channel of the policy file"}],
        )
    async with db.unit_of_work() as session:
        task = await service.reassign(
            session,
            task_id,
            actor=principal.name,
            assignee=body.assignee if "assignee" in given else service.KEEP,
            team=body.team,
            channel=body.channel,
            note=body.note,
            clock=clock,
        )
        return _out(task)
