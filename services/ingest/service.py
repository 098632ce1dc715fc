"""Accepting responses: de-duplicate, store, and append ``response.received`` — one transaction.

Everything goes through :func:`accept_many`, which handles a whole group of submissions
with a constant number of queries: the group-commit writer (single POSTs) and the batch
endpoint share it, so both have the same rules.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest import repository
from services.ingest.models import Response
from services.ingest.schemas import ResponseIn
from shared import events, outbox
from shared.clock import Clock
from shared.problems import Conflict, NotFound, Problem


@dataclass(frozen=True)
class Accepted:
    id: str
    duplicate: bool


@dataclass(frozen=True)
class Submission:
    payload: ResponseIn
    source: str
    idempotency_key: str | None = None


def request_fingerprint(payload: ResponseIn) -> str:
    canonical = json.dumps(payload.model_dump(mode="json", exclude_none=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _survey(row: dict[str, Any]) -> dict[str, Any]:
    return {"touchpoint": row["touchpoint"], "kind": row["survey_kind"], "channel": row["survey_channel"]}


def response_data(response: Response | dict[str, Any]) -> dict[str, Any]:
    """The response as events and the API show it (from a model or a row about to be inserted)."""
    row = response if isinstance(response, dict) else {c: getattr(response, c) for c in _COLUMNS}
    return {
        "id": row["id"], "score": row["score"], "comment": row["comment"], "customer": row["customer"],
        "survey": _survey(row), "lifecycle_stage": row["lifecycle_stage"], "properties": row["properties"],
        "responded_at": row["responded_at"].isoformat(), "received_at": row["received_at"].isoformat(),
        "external_id": row["external_id"],
    }


_INSERT = insert(Response.__table__)

_COLUMNS = ("id", "score", "comment", "customer", "touchpoint", "survey_kind", "survey_channel", "lifecycle_stage",
            "properties", "responded_at", "received_at", "external_id")


def _new_row(submission: Submission, now: datetime) -> dict[str, Any]:
    payload = submission.payload
    return {
        "id": str(uuid.uuid4()), "source": submission.source, "external_id": payload.external_id,
        "idempotency_key": submission.idempotency_key, "request_hash": request_fingerprint(payload),
        "score": payload.score, "comment": payload.comment, "customer_id": payload.customer.id,
        "customer": payload.customer.model_dump(exclude_none=True), "account_id": payload.customer.account_id,
        "segment": payload.customer.segment, "touchpoint": payload.survey.touchpoint,
        "survey_kind": payload.survey.kind, "survey_channel": payload.survey.channel,
        "lifecycle_stage": payload.lifecycle_stage, "properties": payload.properties,
        "responded_at": payload.responded_at or now, "received_at": now, "comment_added_at": None,
    }


async def accept_many(session: AsyncSession, submissions: list[Submission], *,
                      clock: Clock) -> list[Accepted | Problem]:
    """Store each submission once per (source, Idempotency-Key) and per (source, external_id).

    Returns, per submission, what it got: a new id, the first id of an earlier identical
    request (nothing written), or a Problem (an Idempotency-Key reused for a different
    body is 409). Repeating an ``external_id`` with a comment the first request lacked adds
    that comment — the score-first, comment-later flow.
    """
    now = clock.now()
    earlier_by_key = await repository.find_by_idempotency_keys(
        session, {(s.source, s.idempotency_key) for s in submissions if s.idempotency_key})
    earlier_by_external = await repository.find_by_external_ids(
        session, {(s.source, s.payload.external_id) for s in submissions if s.payload.external_id})
    new_rows: list[dict[str, Any]] = []
    pending_by_key: dict[tuple[str, str], dict[str, Any]] = {}
    pending_by_external: dict[tuple[str, str], dict[str, Any]] = {}
    late_comments: list[tuple[str, str]] = []
    results: list[Accepted | Problem] = []

    for submission in submissions:
        payload = submission.payload
        key = (submission.source, submission.idempotency_key) if submission.idempotency_key else None
        external = (submission.source, payload.external_id) if payload.external_id else None
        if key and (key in earlier_by_key or key in pending_by_key):
            first = earlier_by_key.get(key) or pending_by_key[key]
            if first["request_hash"] != request_fingerprint(payload):
                results.append(Conflict("this Idempotency-Key was already used with a different request body"))
            else:
                results.append(Accepted(first["id"], duplicate=True))
            continue
        if external and (external in earlier_by_external or external in pending_by_external):
            if external in pending_by_external:
                first = pending_by_external[external]
                if payload.comment and not first["comment"]:
                    first["comment"] = payload.comment
            else:
                first = earlier_by_external[external]
                if payload.comment and not first["comment"]:
                    late_comments.append((first["id"], payload.comment))
            results.append(Accepted(first["id"], duplicate=True))
            continue
        row = _new_row(submission, now)
        new_rows.append(row)
        if key:
            pending_by_key[key] = row
        if external:
            pending_by_external[external] = row
        results.append(Accepted(row["id"], duplicate=False))

    if new_rows:
        # Core on the session's connection: no ORM bookkeeping per row or per statement.
        await (await session.connection()).execute(_INSERT, new_rows)
        await outbox.append(session, *(
            events.new_event(events.RESPONSE_RECEIVED, key=row["customer_id"], subject=row["id"],
                             data=response_data(row), time=now)
            for row in new_rows), clock=clock)
    for response_id, comment in late_comments:
        await add_comment(session, response_id, comment, clock=clock)
    return results


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
