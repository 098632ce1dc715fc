"""Task API shapes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from npsloop.shared.clock import Instant

NoteText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)]
OutcomeName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
TaskStatus = Literal["open", "acknowledged", "resolved"]


class TaskEventOut(BaseModel):
    type: str
    actor: str
    note: str | None
    data: dict[str, Any]
    at: datetime


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    response_id: str
    customer_id: str
    customer: dict[str, Any]
    account_id: str | None
    segment: str | None
    score: int
    comment: str | None
    themes: list[dict[str, Any]]
    status: TaskStatus
    assignee: str | None
    team: str | None
    channel: str | None = None
    escalation_channel: str | None = None
    received_at: datetime
    opened_at: datetime
    due_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    outcome: str | None
    warned_at: datetime | None
    breached_at: datetime | None
    breached: bool = False
    sla_met: bool | None = Field(
        None, description="Acknowledged or resolved before due_at; null while still open in time."
    )
    events: list[TaskEventOut] | None = None

    @classmethod
    def of(cls, task: Any, task_events: Sequence[Any] | None = None) -> TaskOut:
        """The API's view of a stored task: SLA state derived, the audit trail when given."""
        out = cls.model_validate(task)
        out.breached = task.breached_at is not None
        first_contact = task.acknowledged_at or task.resolved_at
        out.sla_met = False if out.breached else (first_contact <= task.due_at if first_contact else None)
        if task_events is not None:
            out.events = [
                TaskEventOut(type=e.type, actor=e.actor, note=e.note, data=e.data, at=e.at) for e in task_events
            ]
        return out


class TaskList(BaseModel):
    tasks: list[TaskOut]
    next_cursor: str | None = None


class AcknowledgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: NoteText | None = None


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: NoteText


class CustomerMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    body: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)]


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: OutcomeName = Field(description="contacted, resolved, no_response, churned, or your own")
    note: NoteText | None = None
    customer_message: CustomerMessageIn | None = Field(
        None,
        description="Tell the customer what changed: emailed to the customer's address as a stored, retried"
        " delivery (or only emitted as npsloop.followup.customer_messaged.v1 when the policy's"
        " customer_messages.send_via is 'event'). 422 when the customer has no email or was erased.",
    )


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ReassignIn(BaseModel):
    """Give ``assignee`` (null to put the task back in the team queue), ``team``, ``channel``, or several."""

    model_config = ConfigDict(extra="forbid")
    assignee: Name | None = None
    team: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None = None
    channel: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None = None
    note: NoteText | None = None


class EligibilityOut(BaseModel):
    eligible: bool
    next_eligible_at: datetime | None
    reason: Literal["never_surveyed", "throttle_elapsed", "recently_responded", "recently_surveyed"]
    last_response_at: datetime | None = None
    last_sent_at: datetime | None = None


class SurveySentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: Name | None = None
    account_id: Name | None = None
    channel: Literal["email", "web", "in_app", "sms"] | None = None
    touchpoint: Annotated[str, StringConstraints(max_length=100)] | None = None
    sent_at: Instant | None = None


class SurveySentOut(BaseModel):
    customer_id: str | None
    account_id: str | None
    sent_at: datetime
    next_eligible_at: datetime


MAX_REVENUE = 1e12


class OutcomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: Name | None = None
    account_id: Name | None = None
    outcome: Literal["churned", "renewed", "expanded", "contracted"]
    # Bounded so that sums over any number of outcomes stay finite numbers: an unbounded
    # float let two outcomes of 1e308 make a report's revenue infinite, which JSON writes as null.
    revenue: float | None = Field(
        None,
        ge=-MAX_REVENUE,
        le=MAX_REVENUE,
        allow_inf_nan=False,
        description="Revenue involved (e.g. ARR renewed, lost or added); at most a trillion either way.",
    )
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    occurred_on: date | None = Field(None, description="Defaults to today (UTC).")
    note: NoteText | None = None


class OutcomeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    customer_id: str | None
    account_id: str | None
    outcome: str
    revenue: float | None
    currency: str | None
    occurred_on: date
    note: str | None
    recorded_by: str
    recorded_at: datetime


class OutcomeList(BaseModel):
    outcomes: list[OutcomeOut]


class RecoveryOut(BaseModel):
    resolved_tasks: int
    measured: int = Field(description="Resolved detractor tasks whose customer answered again.")
    recovered: int = Field(description="Of those, next answer passive or promoter.")
    recovery_rate: float | None = Field(description="recovered / measured; null before anyone answered again.")
    by_outcome: dict[str, dict[str, float | int | None]]
    by_next_category: dict[str, int]
