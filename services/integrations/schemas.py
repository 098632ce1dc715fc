"""What Formbricks sends to a webhook, and what npsloop answers.

The shape is Formbricks' own (its pipeline posts ``{webhookId, event, data}`` where
``data`` is the response with a summary of its survey); fields npsloop does not read are
kept, not refused, so a newer Formbricks with more fields still gets through.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EVENTS = ("responseCreated", "responseUpdated", "responseFinished")
TEST_EVENT = "testEndpoint"  # what Formbricks sends when a webhook is created or tested


class FormbricksContact(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = None
    userId: str | None = None


class FormbricksResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, max_length=200)
    surveyId: str = Field(min_length=1)
    finished: bool = False
    createdAt: datetime | None = None
    updatedAt: datetime | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    contact: FormbricksContact | None = None
    contactAttributes: dict[str, Any] | None = None
    meta: dict[str, Any] | None = None


class FormbricksWebhook(BaseModel):
    """The webhook's body."""

    model_config = ConfigDict(extra="allow")

    webhookId: str | None = None
    event: str
    data: FormbricksResponse | None = None


class FormbricksAck(BaseModel):
    status: Literal["accepted", "ignored"]
    id: str | None = Field(None, description="The npsloop response the answer went to (when accepted).")
    duplicate: bool | None = Field(None, description="True when an earlier event already stored this answer.")
    reason: str | None = Field(None, description="Why nothing was stored (when ignored).")
