"""What the customer endpoints answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from npsloop.services.followup.schemas import EligibilityOut, OutcomeOut, TaskOut

Category = Literal["promoter", "passive", "detractor"]


class CustomerResponseOut(BaseModel):
    id: str
    score: int
    category: Category
    comment: str | None
    themes: list[dict[str, Any]] = Field(default_factory=list)
    sentiment: str | None = None
    touchpoint: str | None = None
    survey: dict[str, Any] = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)
    responded_at: datetime
    received_at: datetime
    classified_at: datetime | None = None


class ReferralRequestOut(BaseModel):
    id: str
    response_id: str
    requested_at: datetime


class CustomerOut(BaseModel):
    """The latest identity and account, then everything known about the customer, newest first."""

    customer_id: str
    customer: dict[str, Any] = Field(description="The identity from the newest response (email, name, …).")
    account_id: str | None
    segment: str | None
    category: Category | None = Field(description="From the newest classified answer.")
    responses: list[CustomerResponseOut]
    tasks: list[TaskOut]
    business_outcomes: list[OutcomeOut]
    referral_requests: list[ReferralRequestOut]
    eligibility: EligibilityOut


class CustomerMatch(BaseModel):
    customer_id: str
    name: str | None
    email: str | None
    account_id: str | None
    last_responded_at: datetime


class CustomerMatches(BaseModel):
    customers: list[CustomerMatch]
