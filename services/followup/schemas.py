"""Task API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

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
    received_at: datetime
    opened_at: datetime
    due_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    outcome: str | None
    warned_at: datetime | None
    breached_at: datetime | None
    breached: bool = False
    events: list[TaskEventOut] | None = None


class TaskList(BaseModel):
    tasks: list[TaskOut]
    next_cursor: str | None = None


class AcknowledgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: NoteText | None = None


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: NoteText


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: OutcomeName = Field(description="contacted, resolved, no_response, churned, or your own")
    note: NoteText | None = None
