"""The policy file's ``integrations`` keys: survey tools that send npsloop their answers.

Validated with the rest of the policy at start-up (shared/policy.py); an error names the
key, e.g. ``integrations.formbricks.surveys.<id>.customer_id``.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

# Where a value comes from in Formbricks' response: the contact's user id, one of the
# contact's attributes, or an answer (a hidden field or a question) by its id.
_PATH = re.compile(r"^(contact\.userId|contact\.id|contactAttributes\.[^\s.]+|data\.[^\s.]+)$")
_PATH_HELP = "must be contact.userId, contactAttributes.<name> or data.<hidden field or question id>"

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
PropertyValue = str | int | float | bool


def _path(value: str) -> str:
    if not _PATH.match(value):
        raise ValueError(f"{value!r}: {_PATH_HELP}")
    return value


class FormbricksSurvey(BaseModel):
    """How one Formbricks survey's answers become npsloop responses."""

    model_config = ConfigDict(extra="forbid")

    score_question: NonEmpty  # the id of an NPS (0-10) question
    comment_question: NonEmpty | None = None
    # One place or several, tried in order (e.g. the signed-in user, else a hidden field).
    customer_id: NonEmpty | list[NonEmpty] = "contact.userId"
    customer_email: NonEmpty | None = None
    touchpoint: NonEmpty | None = None
    kind: Literal["transactional", "relationship"] | None = None
    channel: Literal["email", "web", "in_app", "sms"] | None = None
    properties: dict[NonEmpty, PropertyValue] = Field(default_factory=dict)

    @field_validator("customer_id")
    @classmethod
    def _customer_id(cls, value: str | list[str]) -> list[str]:
        paths = [value] if isinstance(value, str) else value
        if not paths:
            raise ValueError(f"needs at least one place; {_PATH_HELP}")
        return [_path(p) for p in paths]

    @field_validator("customer_email")
    @classmethod
    def _customer_email(cls, value: str | None) -> str | None:
        return _path(value) if value is not None else None

    @property
    def customer_id_paths(self) -> list[str]:
        return self.customer_id if isinstance(self.customer_id, list) else [self.customer_id]


class FormbricksIntegration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The webhook's signing secret as Formbricks shows it (Standard Webhooks: whsec_ + base64).
    secret: Annotated[str, StringConstraints(pattern=r"^whsec_[A-Za-z0-9+/=]{16,}$")]
    surveys: dict[NonEmpty, FormbricksSurvey] = Field(default_factory=dict)

    @field_validator("secret")
    @classmethod
    def _decodes(cls, value: str) -> str:
        try:
            _key(value)
        except (binascii.Error, ValueError):
            raise ValueError("must be whsec_ followed by base64, as Formbricks shows the webhook's secret") from None
        return value

    def secret_key(self) -> bytes:
        return _key(self.secret)


def _key(secret: str) -> bytes:
    # Padding may be left off, as Standard Webhooks libraries allow; extra padding is ignored.
    return base64.b64decode(secret.removeprefix("whsec_") + "==")


class Integrations(BaseModel):
    model_config = ConfigDict(extra="forbid")

    formbricks: FormbricksIntegration | None = None
