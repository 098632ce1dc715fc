"""Formbricks as the survey front end: verify its webhook, map the answer, store it.

A Formbricks response grows while the respondent answers: ``responseCreated`` may carry
only the score, ``responseUpdated``/``responseFinished`` the comment too. Each event is
stored through the ingest batch path with Formbricks' response id as the external id,
so the first event with a score creates the npsloop response and a later one adds the
comment (the score-first, comment-later flow); repeats store nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from npsloop.services.ingest import service as ingest
from npsloop.services.ingest.schemas import ResponseIn
from npsloop.services.integrations.schemas import EVENTS, FormbricksWebhook
from npsloop.shared.clock import Clock
from npsloop.shared.db import Database
from npsloop.shared.integration_policy import FormbricksIntegration, FormbricksSurvey
from npsloop.shared.problems import Unauthorized, UnprocessableContent

SOURCE = "formbricks"  # the de-duplication namespace of every answer Formbricks sends
TOLERANCE = timedelta(minutes=5)  # Standard Webhooks' advice, and Formbricks' own example


@dataclass(frozen=True)
class Ignored:
    reason: str


def verify_signature(config: FormbricksIntegration, headers: Any, body: bytes, *, now: datetime) -> None:
    """Standard Webhooks: ``webhook-signature`` holds ``v1,<base64 HMAC-SHA256 of id.timestamp.body>``
    (one or more, space-separated) and ``webhook-timestamp`` is within five minutes of now.
    Raises Unauthorized (401) otherwise."""
    msg_id, timestamp, signatures = (headers.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not (msg_id and timestamp and signatures):
        raise Unauthorized("send the webhook-id, webhook-timestamp and webhook-signature headers (Standard Webhooks)")
    if not timestamp.isdigit() or abs(now.timestamp() - int(timestamp)) > TOLERANCE.total_seconds():
        raise Unauthorized("webhook-timestamp is not within five minutes of the server's time")
    digest = hmac.new(config.secret_key(), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    expected = base64.b64encode(digest)
    for signature in signatures.split():
        version, _, value = signature.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return
    raise Unauthorized("webhook-signature does not match the secret in integrations.formbricks.secret")


def response_for(webhook: FormbricksWebhook, config: FormbricksIntegration) -> ResponseIn | Ignored:
    """The npsloop response a webhook carries, or why there is none to store yet.

    Raises UnprocessableContent (422, naming the field) when a mapped survey's answer
    cannot be stored: a score off the 0-10 scale, no customer id where the policy says.
    """
    if webhook.event not in EVENTS:
        return Ignored(f"event {webhook.event!r} is not one npsloop takes ({', '.join(EVENTS)})")
    answer = webhook.data
    if answer is None:
        raise UnprocessableContent("data: the Formbricks response is missing", errors=[_error("data", "required")])
    survey = config.surveys.get(answer.surveyId)
    if survey is None:
        return Ignored(f"survey {answer.surveyId} is not mapped in integrations.formbricks.surveys")
    raw_score = answer.data.get(survey.score_question)
    if raw_score is None or raw_score == "":
        return Ignored(f"no answer to the score question {survey.score_question} yet")
    body: dict[str, Any] = {
        "score": _score(raw_score, f"data.data.{survey.score_question}"),
        "customer": _customer(webhook, survey),
        "external_id": answer.id,
        "survey": {
            k: v
            for k, v in {"touchpoint": survey.touchpoint, "kind": survey.kind, "channel": survey.channel}.items()
            if v
        },
        "properties": dict(survey.properties),
    }
    comment = answer.data.get(survey.comment_question) if survey.comment_question else None
    if isinstance(comment, str) and comment.strip():
        body["comment"] = comment
    if answer.createdAt is not None:
        body["responded_at"] = answer.createdAt
    try:
        return ResponseIn.model_validate(body)
    except ValidationError as exc:
        errors = [_error(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        raise UnprocessableContent("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors) from None


def _score(value: Any, field: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10:
        raise UnprocessableContent(
            f"{field}: {value!r} is not an NPS score (0-10); is score_question an NPS question?",
            errors=[_error(field, "must be a whole number from 0 to 10")],
        )
    return value


def _customer(webhook: FormbricksWebhook, survey: FormbricksSurvey) -> dict[str, Any]:
    customer_id = next((v for v in (_at(webhook, p) for p in survey.customer_id_paths) if v is not None), None)
    if customer_id is None:
        places = " or ".join(survey.customer_id_paths)
        raise UnprocessableContent(
            f"no customer id at {places} (integrations.formbricks.surveys.{webhook.data and webhook.data.surveyId}"
            ".customer_id)",
            errors=[_error(f"data.{survey.customer_id_paths[0]}", "required for this survey")],
        )
    customer = {"id": customer_id}
    email = _at(webhook, survey.customer_email) if survey.customer_email else None
    if email is not None:
        customer["email"] = email
    return customer


def _at(webhook: FormbricksWebhook, path: str) -> str | None:
    """The value at ``contact.userId``, ``contactAttributes.<name>`` or ``data.<id>``, as text."""
    answer = webhook.data
    if answer is None:
        return None
    kind, _, name = path.partition(".")
    if kind == "contact":
        value = getattr(answer.contact, name, None) if answer.contact else None
    elif kind == "contactAttributes":
        value = (answer.contactAttributes or {}).get(name)
    else:
        value = answer.data.get(name)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value).strip() or None


async def store(db: Database, response: ResponseIn, *, clock: Clock) -> ingest.Accepted:
    """Store through the batch path; a second event for the same response adds what it brings."""
    try:
        [result] = await ingest.store_batch(db, SOURCE, None, [response], clock=clock)
    except IntegrityError:
        # Formbricks sends an answer's events within milliseconds of each other; the other
        # one stored this response between our lookup and insert. Nothing of ours was
        # written, and a second pass finds its row.
        [result] = await ingest.store_batch(db, SOURCE, None, [response], clock=clock)
    if not isinstance(result, ingest.Accepted):
        raise result
    return result


def _error(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}
