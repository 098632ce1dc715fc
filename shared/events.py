"""CloudEvents 1.0 envelopes and npsloop's versioned event types."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from npsloop.shared.ids import new_id
from npsloop.shared.jsontext import compact_json

SOURCE = "/npsloop"

RESPONSE_RECEIVED = "npsloop.response.received.v1"
RESPONSE_UPDATED = "npsloop.response.updated.v1"  # a late comment
RESPONSE_CLASSIFIED = "npsloop.response.classified.v1"
FOLLOWUP_OPENED = "npsloop.followup.opened.v1"
FOLLOWUP_ACKNOWLEDGED = "npsloop.followup.acknowledged.v1"
FOLLOWUP_RESOLVED = "npsloop.followup.resolved.v1"
FOLLOWUP_SLA_WARNING = "npsloop.followup.sla_warning.v1"
FOLLOWUP_SLA_BREACHED = "npsloop.followup.sla_breached.v1"
REFERRAL_REQUESTED = "npsloop.referral.requested.v1"
CUSTOMER_SEGMENT_CHANGED = "npsloop.customer.segment_changed.v1"
FOLLOWUP_REASSIGNED = "npsloop.followup.reassigned.v1"
REVIEW_REQUESTED = "npsloop.review.requested.v1"
FOLLOWUP_DIGEST = "npsloop.followup.digest.v1"
FOLLOWUP_CUSTOMER_MESSAGED = "npsloop.followup.customer_messaged.v1"  # closing the loop with the customer

# Topic of each event type. Kafka topics carry these names (prefix configurable); the
# database log stores the same name so both transports route identically.
TOPIC_RESPONSES = "responses"
TOPIC_CLASSIFICATIONS = "classifications"
TOPIC_FOLLOWUPS = "followups"

EVENT_TOPICS: dict[str, str] = {
    RESPONSE_RECEIVED: TOPIC_RESPONSES,
    RESPONSE_UPDATED: TOPIC_RESPONSES,
    RESPONSE_CLASSIFIED: TOPIC_CLASSIFICATIONS,
    FOLLOWUP_OPENED: TOPIC_FOLLOWUPS,
    FOLLOWUP_ACKNOWLEDGED: TOPIC_FOLLOWUPS,
    FOLLOWUP_RESOLVED: TOPIC_FOLLOWUPS,
    FOLLOWUP_SLA_WARNING: TOPIC_FOLLOWUPS,
    FOLLOWUP_SLA_BREACHED: TOPIC_FOLLOWUPS,
    REFERRAL_REQUESTED: TOPIC_FOLLOWUPS,
    CUSTOMER_SEGMENT_CHANGED: TOPIC_FOLLOWUPS,
    FOLLOWUP_REASSIGNED: TOPIC_FOLLOWUPS,
    REVIEW_REQUESTED: TOPIC_FOLLOWUPS,
    FOLLOWUP_DIGEST: TOPIC_FOLLOWUPS,
    FOLLOWUP_CUSTOMER_MESSAGED: TOPIC_FOLLOWUPS,
}
EVENT_TYPES = tuple(EVENT_TOPICS)


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 structured-mode JSON envelope.

    ``partitionkey`` (the CloudEvents partitioning extension) is the customer id: the
    Kafka message key and the unit of ordering on both transports.
    """

    model_config = ConfigDict(extra="allow")

    specversion: str = "1.0"
    id: str = Field(default_factory=new_id)
    source: str = SOURCE
    type: str
    time: datetime
    subject: str | None = None
    datacontenttype: str = "application/json"
    partitionkey: str
    data: dict[str, Any]

    @property
    def topic(self) -> str:
        return EVENT_TOPICS[self.type]

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> CloudEvent:
        return cls.model_validate_json(raw)


_TIME = TypeAdapter(datetime)


def envelope_time(time: datetime) -> str:
    """``time`` as :meth:`CloudEvent.to_json` writes it (computed once per group by bulk writers)."""
    return _TIME.dump_python(time, mode="json")


def envelope_json(
    event_type: str, *, event_id: str, key: str, subject: str, data: dict[str, Any], time_json: str
) -> str:
    """The JSON of ``new_event(...).to_json()`` without building the model.

    For bulk writers (a thousand events per request): the field order and values are the
    model's (``tests/shared/test_bulk_writes.py`` checks they parse to the same event), but
    no model is validated and serialised per event. ``data`` must already be JSON types.
    """
    return compact_json(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": SOURCE,
            "type": event_type,
            "time": time_json,
            "subject": subject,
            "datacontenttype": "application/json",
            "partitionkey": key,
            "data": data,
        }
    )


def topic_of(event_type: str) -> str:
    topic = EVENT_TOPICS.get(event_type)
    if topic is None:
        raise ValueError(f"unknown event type {event_type!r}")
    return topic


def new_event(event_type: str, *, key: str, subject: str | None, data: dict[str, Any], time: datetime) -> CloudEvent:
    topic_of(event_type)  # refuses an unknown type
    return CloudEvent(type=event_type, partitionkey=key, subject=subject, data=data, time=time)
