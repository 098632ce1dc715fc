"""Follow-up rules: a task for every detractor, referral requests for promoters.

Every state change writes a task event (the audit trail) and, where other software cares,
an outbox event in the same transaction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.followup import customers, outcomes, repository, routing
from npsloop.services.followup.eligibility import Eligibility, eligibility
from npsloop.services.followup.models import BusinessOutcome, ReferralRequest, Task, TaskEvent
from npsloop.shared import events, outbox, row_buffer
from npsloop.shared.clock import Clock
from npsloop.shared.ids import new_id
from npsloop.shared.observability import metrics
from npsloop.shared.policy import Policy
from npsloop.shared.problems import Conflict, NotFound, UnprocessableContent

SYSTEM_ACTOR = "npsloop"


def task_data(task: Task) -> dict[str, Any]:
    return {
        "task_id": task.id,
        "response_id": task.response_id,
        "customer": task.customer,
        "score": task.score,
        "comment": task.comment,
        "themes": task.themes,
        "status": task.status,
        "assignee": task.assignee,
        "team": task.team,
        "channel": task.channel,
        "escalation_channel": task.escalation_channel,
        "received_at": task.received_at.isoformat(),
        "due_at": task.due_at.isoformat(),
        "acknowledged_at": task.acknowledged_at.isoformat() if task.acknowledged_at else None,
        "resolved_at": task.resolved_at.isoformat() if task.resolved_at else None,
        "outcome": task.outcome,
        "breached_at": task.breached_at.isoformat() if task.breached_at else None,
    }


def facts_of(response: dict[str, Any]) -> dict[str, Any]:
    """What policy rules may match on."""
    survey = response.get("survey") or {}
    return {
        "score": response["score"],
        "segment": (response.get("customer") or {}).get("segment"),
        "lifecycle_stage": response.get("lifecycle_stage"),
        "touchpoint": survey.get("touchpoint"),
        "survey_kind": survey.get("kind"),
        "channel": survey.get("channel"),
        "properties": response.get("properties") or {},
        "customer": response.get("customer") or {},
    }


async def emit_task_event(session: AsyncSession, event_type: str, task: Task, now: datetime, clock: Clock) -> None:
    await outbox.emit(
        session, event_type, key=task.customer_id, subject=task.id, data=task_data(task), time=now, clock=clock
    )


def record_task_event(
    session: AsyncSession,
    task: Task,
    kind: str,
    now: datetime,
    *,
    actor: str = SYSTEM_ACTOR,
    note: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    row_buffer.add(session, TaskEvent, task_id=task.id, type=kind, actor=actor, note=note, data=data or {}, at=now)


async def consider_response(session: AsyncSession, classified: dict[str, Any], *, policy: Policy, clock: Clock) -> None:
    """Apply the follow-up rules to one ``response.classified`` event's data.

    Safe to run again for the same response (re-classification, late comment): a
    detractor never gets a second task, a promoter never a second referral request.
    History past its SLA is left alone (:func:`closed_before_arrival`).
    """
    response, classification = classified["response"], classified["classification"]
    if closed_before_arrival(response, policy=policy):
        return
    category = classification.get("category")
    if category in ("promoter", "passive", "detractor"):
        await customers.note_answer(session, response, category, policy=policy, clock=clock)
    if category == "detractor":
        existing = await repository.get_by_response(session, response["id"])
        if existing is None:
            await open_task(session, response, classification, policy=policy, clock=clock)
        elif (existing.comment, existing.themes) != (response.get("comment"), classification.get("themes") or []):
            existing.comment = response.get("comment")
            existing.themes = classification.get("themes") or []
            record_task_event(session, existing, "response_updated", clock.now(), data={"themes": existing.themes})
    elif category == "promoter":
        await request_referral(session, response, policy=policy, clock=clock)


def closed_before_arrival(response: dict[str, Any], *, policy: Policy) -> bool:
    """An answer imported as history whose SLA, counted from ``responded_at``, had run out
    when it arrived: it stays in NPS and trends, but no one is asked to follow it up (no
    task, referral or review request, segment event or recovery) and it does not replace
    the customer's newer category."""
    if not response.get("history"):
        return False
    responded_at = datetime.fromisoformat(response["responded_at"])
    return responded_at + policy.sla_for(facts_of(response)) <= datetime.fromisoformat(response["received_at"])


async def prefetch(session: AsyncSession, classified: list[events.CloudEvent]) -> None:
    """What :func:`consider_response` reads, for a whole group of ``response.classified`` events."""
    responses = [event.data["response"] for event in classified]
    customer_ids = [c["id"] for r in responses if (c := r.get("customer")) and c.get("id") is not None]
    await repository.prefetch_for_responses(session, [r["id"] for r in responses], customer_ids)


async def open_task(
    session: AsyncSession, response: dict[str, Any], classification: dict[str, Any], *, policy: Policy, clock: Clock
) -> Task:
    now = clock.now()
    received_at = datetime.fromisoformat(response["received_at"])
    facts = facts_of(response)
    sla = policy.sla_for(facts)
    routed = policy.route(facts)
    customer = response.get("customer") or {}
    clock_hours = routed.business_hours
    due_at = clock_hours.add(received_at, sla) if clock_hours else received_at + sla
    warn_at = (
        clock_hours.add(received_at, sla * policy.sla_warning_at)
        if clock_hours
        else received_at + sla * policy.sla_warning_at
    )
    # Inserted with the group's other tasks, before their audit rows (row_buffer orders tables by foreign keys).
    task = row_buffer.add(
        session,
        Task,
        id=new_id(),
        response_id=response["id"],
        customer_id=customer["id"],
        customer=customer,
        account_id=customer.get("account_id"),
        segment=customer.get("segment"),
        score=response["score"],
        comment=response.get("comment"),
        themes=classification.get("themes") or [],
        status="open",
        assignee=await routing.assignee_for(session, routed, facts),
        team=routed.team,
        channel=routed.channel,
        escalation_channel=routed.escalate_to,
        received_at=received_at,
        opened_at=now,
        due_at=due_at,
        warn_at=warn_at,
    )
    repository.remember(session, repository.TASK_BY_RESPONSE, task.response_id, task)
    record_task_event(
        session,
        task,
        "opened",
        now,
        data={
            "due_at": task.due_at.isoformat(),
            "sla_seconds": sla.total_seconds(),
            "business_hours": clock_hours.model_dump() if clock_hours else None,
        },
    )
    await emit_task_event(session, events.FOLLOWUP_OPENED, task, now, clock)
    metrics.tasks_opened.inc()
    return task


async def request_referral(
    session: AsyncSession, response: dict[str, Any], *, policy: Policy, clock: Clock
) -> ReferralRequest | None:
    """Ask a promoter for a referral, at most once per ``throttle.referral_every``."""
    now = clock.now()
    customer_id = response["customer"]["id"]
    if await repository.referral_for_response(session, response["id"]) is not None:
        return None
    if not policy.referrals.enabled:
        return None
    if await repository.referral_since(session, customer_id, now - policy.throttle.referral_every) is not None:
        return None
    facts = facts_of(response)
    routed = policy.route(facts)
    owner = await routing.owner_from(routed, facts)
    referral = row_buffer.add(
        session,
        ReferralRequest,
        id=new_id(),
        response_id=response["id"],
        customer_id=customer_id,
        requested_at=now,
    )
    repository.remember(session, repository.REFERRAL_BY_RESPONSE, referral.response_id, referral)
    repository.remember(session, repository.LAST_REFERRAL_AT, customer_id, now)
    await outbox.emit(
        session,
        events.REFERRAL_REQUESTED,
        key=customer_id,
        subject=referral.id,
        time=now,
        data={
            "referral_id": referral.id,
            "response_id": response["id"],
            "customer": response["customer"],
            "score": response["score"],
            "comment": response.get("comment"),
            "owner": owner,
            "team": routed.team,
            "channel": policy.referrals.channel or routed.channel,
        },
        clock=clock,
    )
    return referral


async def mark_breached(session: AsyncSession, task: Task, now: datetime, clock: Clock) -> None:
    """The one place a task breaches: marked, audited, announced (alerts follow the event)."""
    task.breached_at = now
    if task.warned_at is None:
        task.warned_at = now  # a breach implies the warning; never send it afterwards
    record_task_event(session, task, "sla_breached", now, data={"due_at": task.due_at.isoformat()})
    await emit_task_event(session, events.FOLLOWUP_SLA_BREACHED, task, now, clock)
    metrics.sla_breaches.inc()


async def breach_if_late(session: AsyncSession, task: Task, now: datetime, clock: Clock) -> None:
    """First contact after ``due_at`` that the monitor has not seen yet (it was down) still counts as a breach."""
    if task.breached_at is None and task.acknowledged_at is None and now > task.due_at:
        await mark_breached(session, task, now, clock)


async def _task_or_404(session: AsyncSession, task_id: str) -> Task:
    task = await repository.get(session, task_id, lock=True)
    if task is None:
        raise NotFound(f"task {task_id} does not exist")
    return task


async def acknowledge(session: AsyncSession, task_id: str, *, actor: str, note: str | None, clock: Clock) -> Task:
    """First contact. Acknowledging twice is harmless; a resolved task cannot be."""
    task = await _task_or_404(session, task_id)
    if task.status == "resolved":
        raise Conflict("the task is already resolved")
    if task.status == "acknowledged":
        return task
    now = clock.now()
    await breach_if_late(session, task, now, clock)
    task.status, task.acknowledged_at = "acknowledged", now
    record_task_event(
        session, task, "acknowledged", now, actor=actor, note=note, data={"within_sla": now <= task.due_at}
    )
    await emit_task_event(session, events.FOLLOWUP_ACKNOWLEDGED, task, now, clock)
    return task


async def add_note(session: AsyncSession, task_id: str, *, actor: str, note: str, clock: Clock) -> Task:
    task = await _task_or_404(session, task_id)
    record_task_event(session, task, "note", clock.now(), actor=actor, note=note)
    return task


async def resolve(
    session: AsyncSession,
    task_id: str,
    *,
    actor: str,
    outcome: str,
    note: str | None,
    clock: Clock,
    customer_message: dict[str, str] | None = None,
) -> Task:
    """Resolve with an outcome; a repeat with the same outcome changes nothing and sends nothing.

    ``customer_message`` (``subject``, ``body``) is announced as ``customer_messaged`` in the
    same transaction, so the customer hears once per resolve whatever is retried.
    """
    task = await _task_or_404(session, task_id)
    if task.status == "resolved":
        if task.outcome == outcome:
            return task
        raise Conflict(f"the task is already resolved with outcome '{task.outcome}'")
    email = _customer_email(task) if customer_message is not None else None
    now = clock.now()
    if task.acknowledged_at is None:
        await breach_if_late(session, task, now, clock)
        task.acknowledged_at = now  # resolving is also the first contact
    task.status, task.resolved_at, task.outcome = "resolved", now, outcome
    record_task_event(session, task, "resolved", now, actor=actor, note=note, data={"outcome": outcome})
    await emit_task_event(session, events.FOLLOWUP_RESOLVED, task, now, clock)
    if customer_message is not None and email is not None:
        message = {"to": email, "subject": customer_message["subject"], "body": customer_message["body"]}
        record_task_event(session, task, "customer_messaged", now, actor=actor, note=None, data=message)
        await outbox.emit(
            session,
            events.FOLLOWUP_CUSTOMER_MESSAGED,
            key=task.customer_id,
            subject=task.id,
            time=now,
            clock=clock,
            data={**task_data(task), **message, "sent_by": actor},
        )
    return task


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _customer_email(task: Task) -> str:
    """The address a customer message goes to, or a 422 saying why there is none."""
    email = (task.customer or {}).get("email")
    if not isinstance(email, str) or not _EMAIL.match(email):
        reason = "the customer has no email address, or was erased"
        raise UnprocessableContent(
            f"customer_message: {reason}", errors=[{"field": "customer_message", "message": reason}]
        )
    return email


KEEP = object()  # "leave the assignee as it is" (None means "unassign")


async def reassign(
    session: AsyncSession,
    task_id: str,
    *,
    actor: str,
    assignee: Any = KEEP,
    team: str | None,
    channel: str | None,
    note: str | None,
    clock: Clock,
) -> Task:
    """Move a task to another owner, team or channel; the audit trail keeps both sides."""
    task = await _task_or_404(session, task_id)
    if task.status == "resolved":
        raise Conflict("the task is already resolved")
    before = {"assignee": task.assignee, "team": task.team, "channel": task.channel}
    if assignee is not KEEP:
        task.assignee = assignee
    task.team = team or task.team
    task.channel = channel or task.channel
    after = {"assignee": task.assignee, "team": task.team, "channel": task.channel}
    if after == before:
        return task
    now = clock.now()
    record_task_event(session, task, "reassigned", now, actor=actor, note=note, data={"from": before, "to": after})
    await emit_task_event(session, events.FOLLOWUP_REASSIGNED, task, now, clock)
    return task


@dataclass(frozen=True)
class CustomerFollowUp:
    """What follow-up knows of one customer: their category now, tasks, outcomes, referrals."""

    category: str | None
    tasks: list[Task]
    business_outcomes: list[BusinessOutcome]
    referral_requests: list[ReferralRequest]
    eligibility: Eligibility


async def customer_followup(
    session: AsyncSession, customer_id: str, *, policy: Policy, clock: Clock, limit: int = 500
) -> CustomerFollowUp:
    current = await repository.customer_category(session, customer_id)
    tasks = await repository.search(session, customer_id=customer_id, limit=limit)
    tasks.sort(key=lambda task: (task.opened_at, task.id), reverse=True)  # newest first, like responses
    return CustomerFollowUp(
        category=current.category if current is not None else None,
        tasks=tasks,
        business_outcomes=await repository.business_outcomes(
            session, customer_id=customer_id, account_id=None, limit=limit
        ),
        referral_requests=await repository.referral_requests_of(session, customer_id, limit=limit),
        eligibility=await eligibility(session, customer_id=customer_id, account_id=None, policy=policy, clock=clock),
    )


# --- reads for analytics and /metrics (other services reach follow-up's tables only here) ---


async def recovery_rate(
    session: AsyncSession, *, since: datetime | None, until: datetime | None, team: str | None
) -> outcomes.RecoveryRate:
    """Resolved detractors whose next answer, received in [since, until), was passive or promoter."""
    return await outcomes.recovery_rate(session, since=since, until=until, team=team)


async def recovery_counts(session: AsyncSession, *, since: datetime) -> tuple[int, int]:
    """(measured, recovered) over next answers received since ``since``, in one query."""
    return await repository.recovery_counts(session, since=since)


async def tasks_page(
    session: AsyncSession,
    *,
    start: datetime | None,
    end: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Task]:
    """Tasks whose response was received in [start, end), keyset-paged by (received_at, id)."""
    return await repository.tasks_page(session, start=start, end=end, after=after, limit=limit)


async def tasks_received(session: AsyncSession, *, start: datetime, end: datetime) -> list[Task]:
    """Every task whose response was received in [start, end)."""
    return await repository.tasks_received(session, start=start, end=end)


async def unresolved_tasks(session: AsyncSession) -> list[Task]:
    return await repository.unresolved_tasks(session)


async def open_tasks_by_team(session: AsyncSession) -> dict[str, int]:
    """Unresolved tasks per team ("unassigned" for none)."""
    return await repository.open_tasks_by_team(session)


async def business_outcomes_of(
    session: AsyncSession, *, customer_ids: Sequence[str], account_ids: Sequence[str]
) -> list[BusinessOutcome]:
    """Outcomes recorded for any of these customers or accounts."""
    return await repository.business_outcomes_of(session, customer_ids=customer_ids, account_ids=account_ids)


async def business_outcomes_between(session: AsyncSession, *, start: date, end: date) -> list[BusinessOutcome]:
    """Outcomes that occurred on a day in [start, end]."""
    return await repository.business_outcomes_between(session, start=start, end=end)
