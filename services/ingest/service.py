"""Accepting responses: de-duplicate, store, and append ``response.received`` — one transaction."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest import repository
from services.ingest.models import Response
from services.ingest.schemas import ResponseIn
from shared import events, outbox
from shared.clock import Clock
from shared.problems import Conflict, NotFound


@dataclass(frozen=True)
class Accepted:
    id: str
    duplicate: bool


def request_fingerprint(payload: ResponseIn) -> str:
    canonical = json.dumps(payload.model_dump(mode="json", exclude_none=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def response_data(response: Response) -> dict[str, Any]:
    """The response as events and the API show it."""
    return {
        "id": response.id,
        "score": response.score,
        "comment": response.comment,
        "customer": response.customer,
        "survey": {"touchpoint": response.touchpoint, "kind": response.survey_kind, "channel": response.survey_channel},
        "lifecycle_stage": response.lifecycle_stage,
        "properties": response.properties,
        "responded_at": response.responded_at.isoformat(),
        "received_at": response.received_at.isoformat(),
        "external_id": response.external_id,
    }


async def accept_response(session: AsyncSession, payload: ResponseIn, *, source: str, idempotency_key: str | None,
                          clock: Clock) -> Accepted:
    """Store a response once per (source, Idempotency-Key) and per (source, external_id).

    A repeat returns the first id and writes nothing. Repeating an ``external_id`` with a
    comment the first request lacked adds that comment (the score-first, comment-later
    flow). Reusing an Idempotency-Key for a different body is a 409.
    """
    fingerprint = request_fingerprint(payload)
    if idempotency_key:
        earlier = await repository.find_by_idempotency_key(session, source, idempotency_key)
        if earlier is not None:
            if earlier.request_hash != fingerprint:
                raise Conflict("this Idempotency-Key was already used with a different request body")
            return Accepted(earlier.id, duplicate=True)
    if payload.external_id:
        earlier = await repository.find_by_external_id(session, source, payload.external_id)
        if earlier is not None:
            if payload.comment and not earlier.comment:
                await add_comment(session, earlier.id, payload.comment, clock=clock)
            return Accepted(earlier.id, duplicate=True)

    now = clock.now()
    customer = payload.customer.model_dump(exclude_none=True)
    response = Response(
        id=str(uuid.uuid4()),
        source=source,
        external_id=payload.external_id,
        idempotency_key=idempotency_key,
        request_hash=fingerprint,
        score=payload.score,
        comment=payload.comment,
        customer_id=payload.customer.id,
        customer=customer,
        account_id=payload.customer.account_id,
        segment=payload.customer.segment,
        touchpoint=payload.survey.touchpoint,
        survey_kind=payload.survey.kind,
        survey_channel=payload.survey.channel,
        lifecycle_stage=payload.lifecycle_stage,
        properties=payload.properties,
        responded_at=payload.responded_at or now,
        received_at=now,
    )
    session.add(response)
    await outbox.append(session, _received_event(response, now), clock=clock)
    return Accepted(response.id, duplicate=False)


async def add_comment(session: AsyncSession, response_id: str, comment: str, *, clock: Clock) -> Response:
    """Attach a late comment; the response is classified again and follow-up reconsidered."""
    response = await repository.get(session, response_id)
    if response is None:
        raise NotFound(f"response {response_id} does not exist")
    if response.comment == comment:
        return response
    now = clock.now()
    response.comment = comment
    response.comment_added_at = now
    event = events.new_event(events.RESPONSE_UPDATED, key=response.customer_id, subject=response.id,
                             data=response_data(response), time=now)
    await outbox.append(session, event, clock=clock)
    return response


def _received_event(response: Response, now) -> events.CloudEvent:
    return events.new_event(events.RESPONSE_RECEIVED, key=response.customer_id, subject=response.id,
                            data=response_data(response), time=now)
