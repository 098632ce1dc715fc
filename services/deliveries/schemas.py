"""Webhook subscription and delivery-log shapes, and the alert other services hand to channels."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from npsloop.shared.events import EVENT_TYPES


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl
    # The validator below gives its own message for an unknown type; the enum only tells clients
    # (and the schemathesis run) which strings are accepted, so generated requests can succeed.
    events: list[str] = Field(
        ...,
        min_length=1,
        max_length=50,
        description='Event types, or ["*"] for all.',
        json_schema_extra={"items": {"type": "string", "enum": ["*", *sorted(EVENT_TYPES)]}},
    )
    description: Annotated[str, StringConstraints(max_length=500)] | None = None

    @field_validator("events")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        unknown = [t for t in value if t != "*" and t not in EVENT_TYPES]
        if unknown:
            raise ValueError(f"unknown event type(s): {', '.join(unknown)}")
        return sorted(set(value))


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    url: str
    events: list[str]
    description: str | None
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="whsec_… signing secret; shown only now.")


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class DeliveryAttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    attempted_at: datetime
    status_code: int | None
    response_body: str | None
    error: str | None
    duration_ms: int


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    subscription_id: str | None
    channel: str | None = None  # a policy channel, for alerts (subscription_id is then null)
    event_id: str
    event_type: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    attempt_log: list[DeliveryAttemptOut] = []


class DestinationOut(BaseModel):
    """A destination's backlog and circuit breaker: ``open`` holds its deliveries back until
    ``retry_at``, when one probe is sent (``half_open``); an answer closes it again."""

    model_config = ConfigDict(from_attributes=True)

    kind: str = Field(description="subscription | channel")
    id: str = Field(description="The subscription id or the policy channel name.")
    pending: int
    due: int = Field(description="Pending deliveries due now (held back while the breaker is open).")
    oldest_pending_at: datetime | None
    state: str = Field(description="closed | open | half_open")
    consecutive_failures: int
    retry_at: datetime | None
    last_error: str | None


class DeliveryList(BaseModel):
    deliveries: list[DeliveryOut]
    destinations: list[DestinationOut] = Field(
        default_factory=list, description="Backlog and breaker state of the destinations listed."
    )


@dataclass(frozen=True)
class Alert:
    """What to tell people, independent of the channel that carries it."""

    title: str
    summary: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    comment: str | None = None
    link: str | None = None
    link_label: str = "Open the task"
