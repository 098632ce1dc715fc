"""What product apps send and what they get back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from npsloop.shared.clock import checked_instant


def _storable(value: str) -> str:
    # The API's middleware refuses NUL in whole bodies; a batch item is checked here so
    # that one such item is rejected on its own instead of failing the batch.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (\\u0000)")
    return value


Storable = AfterValidator(_storable)
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), Storable]
PropertyValue = Annotated[str, Storable] | int | Annotated[float, Field(allow_inf_nan=False)] | bool | None

TOUCHPOINTS_EXAMPLES = "onboarding, support, renewal, purchase"


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Text200
    email: (
        Annotated[
            str,
            StringConstraints(strip_whitespace=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
            Storable,
        ]
        | None
    ) = None
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), Storable] | None = None
    account_id: Text200 | None = None
    segment: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), Storable] | None = (
        None
    )


class SurveyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    touchpoint: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), Storable] | None
    ) = Field(None, description=f"Where the survey was asked, e.g. {TOUCHPOINTS_EXAMPLES}.")
    kind: Literal["transactional", "relationship"] | None = None
    channel: Literal["email", "web", "in_app", "sms"] | None = None


class ResponseIn(BaseModel):
    """One survey answer. Only ``score`` and ``customer.id`` are required."""

    model_config = ConfigDict(extra="forbid")

    score: Annotated[int, Field(strict=True, ge=0, le=10, description="0-10, the answer to 'how likely…'")]
    comment: Annotated[str, StringConstraints(max_length=10_000), Storable] | None = None
    customer: CustomerIn
    survey: SurveyIn = Field(default_factory=SurveyIn)
    lifecycle_stage: Literal["prospect", "new_customer", "renewal", "advocate", "loss"] | None = None
    properties: dict[Annotated[str, StringConstraints(min_length=1, max_length=100), Storable], PropertyValue] = Field(
        default_factory=dict, max_length=100
    )
    responded_at: datetime | None = None
    external_id: Text200 | None = None
    history: bool = Field(
        False,
        description="True for an answer imported from an earlier tool: when its follow-up window, counted "
        "from responded_at, had already closed on arrival, it is classified and counted but opens no task "
        "and sends no referral or review request.",
    )

    @field_validator("responded_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must include a time zone offset, e.g. 2026-05-01T10:00:00Z")
        return checked_instant(value) if value else None

    @field_validator("comment")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value if value and value.strip() else None


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000), Storable]


class ResponseAccepted(BaseModel):
    id: str
    status: Literal["accepted"] = "accepted"
    duplicate: bool = Field(False, description="True when this repeats an earlier request; nothing new was created.")


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    responses: list[dict[str, Any]] = Field(..., min_length=1, max_length=1000)


class ValidBatchIn(BaseModel):
    """A batch whose every item is a valid ``ResponseIn`` — ``BatchIn``'s rules, parsed in
    one pass from the JSON (services/ingest/fast_path.py). A batch this rejects goes to
    the route, which reports each invalid item on its own."""

    model_config = ConfigDict(extra="forbid")
    responses: list[ResponseIn] = Field(..., min_length=1, max_length=1000)


class BatchItemResult(BaseModel):
    index: int
    status: Literal["accepted", "duplicate", "rejected"]
    id: str | None = None
    errors: list[dict[str, Any]] | None = None


class BatchResult(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    results: list[BatchItemResult]


class ThemeOut(BaseModel):
    id: str
    confidence: float


class ResponseOut(BaseModel):
    id: str
    score: int
    comment: str | None
    customer: dict[str, Any]
    survey: dict[str, Any]
    lifecycle_stage: str | None
    properties: dict[str, Any]
    responded_at: datetime
    received_at: datetime
    external_id: str | None
    history: bool = False
    category: str | None = None
    themes: list[ThemeOut] | None = None
    sentiment: str | None = None
    sentiment_score: float | None = None
    language: str | None = None
    classifier_version: str | None = None
    classified_at: datetime | None = None
