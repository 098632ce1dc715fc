"""The ``data`` of every event type, as typed models: the one source of truth for consumers.

``asyncapi.yaml`` is generated from these models (``python -m npsloop.shared.asyncapi``),
and the test suite validates every event npsloop writes against that document, so an
emitter that adds, drops or retypes a field fails the tests instead of surprising a
consumer. The emitters themselves build plain dicts (the hot paths write thousands of
events a second and cannot afford a model per event); the models describe those dicts.

Fields a consumer may meet as ``null`` after a GDPR erasure (comment, name, email) are
nullable here for that reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from npsloop.shared import events

Score = Annotated[int, Field(ge=0, le=10, description="The answer to 'how likely…', 0-10.")]
Category = Literal["promoter", "passive", "detractor"]
Instant = Annotated[datetime, Field(description="ISO 8601 with a UTC offset.")]
PropertyValue = str | int | float | bool | None


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Customer(_Data):
    """Who answered, as the product app sent it. After an erasure only a pseudonymous id
    and the account fields are left."""

    id: str = Field(description="The product app's customer id; also the Kafka key of the customer's events.")
    email: str | None = None
    name: str | None = None
    account_id: str | None = None
    segment: str | None = None


class Survey(_Data):
    touchpoint: str | None = Field(description="Where the survey was asked, e.g. onboarding, support, renewal.")
    kind: Literal["transactional", "relationship"] | None
    channel: Literal["email", "web", "in_app", "sms"] | None


class Theme(_Data):
    id: str = Field(description="A theme id of the policy's taxonomy, e.g. pricing.")
    confidence: float = Field(ge=0, le=1)


class Response(_Data):
    """A survey response as stored: what ``POST /v1/responses`` accepted."""

    id: str
    score: Score
    comment: str | None
    customer: Customer
    survey: Survey
    lifecycle_stage: Literal["prospect", "new_customer", "renewal", "advocate", "loss"] | None
    properties: dict[str, PropertyValue] = Field(description="Free key/values: product, team, region, plan…")
    responded_at: Instant
    received_at: Instant
    external_id: str | None
    history: bool = Field(
        False,
        description="Imported history: follow-up skips an answer whose SLA had already run out when it arrived.",
    )


class Classification(_Data):
    category: Category | None = Field(description="From the score: 9-10 promoter, 7-8 passive, 0-6 detractor.")
    themes: list[Theme]
    sentiment: Literal["positive", "neutral", "negative"]
    sentiment_score: float = Field(ge=-1, le=1)
    language: str = Field(description="ISO 639-1, or und when unknown.")
    classifier_version: str
    classified_at: Instant
    corrected_by: str | None = Field(None, description="Present when a person corrected the tags.")
    corrected_at: Instant | None = Field(None, description="Present when a person corrected the tags.")


class ResponseClassified(_Data):
    response: Response
    classification: Classification


class FollowUpTask(_Data):
    """A detractor's follow-up task as it stands after the change the event announces."""

    task_id: str
    response_id: str
    customer: Customer
    score: Score
    comment: str | None
    themes: list[Theme]
    status: Literal["open", "acknowledged", "resolved"]
    assignee: str | None
    team: str | None
    channel: str | None = Field(description="The policy channel alerts about this task go to.")
    escalation_channel: str | None = Field(description="Where an SLA breach is escalated.")
    received_at: Instant
    due_at: Instant = Field(description="When the SLA ends.")
    acknowledged_at: Instant | None
    resolved_at: Instant | None
    outcome: str | None = Field(description="contacted, resolved, no_response, churned, or the organisation's own.")
    breached_at: Instant | None


class ReferralRequested(_Data):
    referral_id: str
    response_id: str
    customer: Customer
    score: Score
    comment: str | None
    owner: str | None = Field(description="The account owner routing named, if any.")
    team: str | None
    channel: str | None


class SegmentChanged(_Data):
    """A customer entered or left the passives (for nurture campaigns)."""

    customer: Customer
    segment: Category
    previous_segment: Category | None
    response_id: str
    score: Score


class ReviewRequested(_Data):
    """Offered to every respondent when the policy enables it (never by category)."""

    customer: Customer
    response_id: str
    review_url: str
    channel: str | None


class Digest(_Data):
    """A team's summary of one digest period."""

    team: str
    channel: str
    period_start: Instant
    period_end: Instant
    new_detractors: int = Field(ge=0)
    breaches: int = Field(ge=0)
    open_tasks: int = Field(ge=0)
    resolved: int = Field(ge=0)
    responses: int = Field(ge=0)
    nps: float | None = Field(ge=-100, le=100, description="Of the period's responses; null when there were none.")
    link: str


class CustomerMessaged(FollowUpTask):
    """A person's message to the customer on resolving the task: npsloop emails it, or a CRM
    that listens to this event sends it (policy ``customer_messages.send_via``)."""

    to: str = Field(description="The customer's email address.")
    subject: str
    body: str
    sent_by: str = Field(description="The API key's name that resolved the task.")


# Each event type's data, and what it announces (the AsyncAPI message summaries).
DATA_MODELS: dict[str, tuple[type[BaseModel], str]] = {
    events.RESPONSE_RECEIVED: (Response, "A survey response was accepted."),
    events.RESPONSE_UPDATED: (Response, "A comment arrived after the score; the response is classified again."),
    events.RESPONSE_CLASSIFIED: (
        ResponseClassified,
        "A response was classified (again, after a correction or replay).",
    ),
    events.FOLLOWUP_OPENED: (FollowUpTask, "A detractor's follow-up task was opened."),
    events.FOLLOWUP_ACKNOWLEDGED: (FollowUpTask, "Someone took the task on."),
    events.FOLLOWUP_RESOLVED: (FollowUpTask, "The task was resolved with an outcome."),
    events.FOLLOWUP_SLA_WARNING: (FollowUpTask, "The task is not acknowledged and most of its SLA has passed."),
    events.FOLLOWUP_SLA_BREACHED: (FollowUpTask, "Nobody acknowledged the task before its SLA ended."),
    events.FOLLOWUP_REASSIGNED: (FollowUpTask, "The task has a new assignee or team."),
    events.REFERRAL_REQUESTED: (ReferralRequested, "A promoter's owner is asked to request a referral."),
    events.CUSTOMER_SEGMENT_CHANGED: (SegmentChanged, "A customer entered or left the passive segment."),
    events.REVIEW_REQUESTED: (ReviewRequested, "A respondent is offered a public review request."),
    events.FOLLOWUP_DIGEST: (Digest, "A team's periodic digest."),
    events.FOLLOWUP_CUSTOMER_MESSAGED: (CustomerMessaged, "The customer is told what changed, on resolve."),
}
