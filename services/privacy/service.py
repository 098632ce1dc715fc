"""Erasure of one customer everywhere their data is, and the comment retention purge.

Both rewrite the copies too (event log/outbox, dead letters, delivery envelopes and
receivers' answers), because a comment erased from ``responses`` but still in an event
envelope is not erased. Neither commits: the caller's unit of work makes the whole
erasure one transaction, so a failure leaves nothing half-erased.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.privacy import repository
from npsloop.services.privacy.models import ErasureRecord
from npsloop.services.privacy.scrub import Scrubber
from npsloop.shared.clock import Clock

log = logging.getLogger("npsloop.privacy")

PSEUDONYM_PREFIX = "erased-"
# Keys whose values are the person's own words or contact details wherever they appear.
REDACTED_KEYS = frozenset({"comment", "note", "email", "name", "phone"})


def customer_hash(customer_id: str) -> str:
    return hashlib.sha256(customer_id.encode()).hexdigest()


def _personal_strings(customers: Iterable[dict[str, Any]], texts: Iterable[str | None]) -> set[str]:
    found = {t for t in texts if t}
    for customer in customers:
        found |= {str(customer[k]) for k in ("email", "name", "phone") if customer.get(k)}
    return found


async def erase_customer(
    session: AsyncSession, customer_id: str, *, requested_by: str, reason: str | None, clock: Clock
) -> ErasureRecord:
    """Erase or irreversibly anonymise everything stored about ``customer_id``; audit it.

    Scores, categories and themes stay (NPS history must not change when a person leaves)
    but under a random pseudonym that is stored nowhere, so they cannot be linked back.
    Comments, notes, contact details and the customer id itself are gone from tables and
    from every stored payload. Repeating the request is harmless and audited again.
    """
    pseudonym = PSEUDONYM_PREFIX + uuid.uuid4().hex
    responses = await repository.responses_of(session, customer_id)
    tasks = await repository.tasks_of(session, customer_id)
    task_events = await repository.task_events_of(session, [t.id for t in tasks])
    secrets = _personal_strings(
        [r.customer for r in responses] + [t.customer for t in tasks],
        [r.comment for r in responses]
        + [t.comment for t in tasks]
        + [e.note for e in task_events]
        + [r.external_id for r in responses],
    )
    if len(customer_id) >= 6:
        secrets.add(customer_id)  # inside rendered alert text; short ids only as whole values
    scrubber = Scrubber(substrings=secrets, customer_id=customer_id, pseudonym=pseudonym, redact_keys=REDACTED_KEYS)

    for response in responses:
        response.customer_id = pseudonym
        response.customer = scrubber.value(response.customer)
        response.comment = None
        response.external_id = None
        response.idempotency_key = None
        # The fingerprint is a hash of the body with the person in it: guessable, so gone.
        response.request_hash = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
        response.properties = scrubber.value(response.properties)
    for task in tasks:
        task.customer_id = pseudonym
        task.customer = scrubber.value(task.customer)
        task.comment = None
    for task_event in task_events:
        task_event.note = None
        task_event.data = scrubber.value(task_event.data)

    counts: dict[str, int] = {"responses": len(responses), "tasks": len(tasks), "task_events": len(task_events)}
    counts |= await repository.delete_customer_rows(session, customer_id)
    counts |= await repository.pseudonymise_customer_rows(session, customer_id, pseudonym)
    counts |= await _scrub_payloads(session, scrubber, keys=[customer_id], rekey_to=pseudonym)

    record = ErasureRecord(
        id=str(uuid.uuid4()),
        customer_id_sha256=customer_hash(customer_id),
        requested_by=requested_by,
        reason=reason,
        counts=counts,
        erased_at=clock.now(),
    )
    session.add(record)
    log.info("customer erased", extra={"erasure_id": record.id, **counts})
    return record


async def _scrub_payloads(
    session: AsyncSession, scrubber: Scrubber, *, keys: list[str], rekey_to: str | None
) -> dict[str, int]:
    entries = await repository.log_entries_keyed(session, keys)
    event_ids = [e.event_id for e in entries]
    changed = 0
    for entry in entries:
        envelope = scrubber.document(entry.envelope)
        if envelope != entry.envelope:
            entry.envelope = envelope
            changed += 1
        if rekey_to is not None:
            entry.key = rekey_to
    letters = 0
    for letter in await repository.dead_letters_of(session, event_ids):
        envelope, error = scrubber.document(letter.envelope), scrubber.text(letter.error)
        if (envelope, error) != (letter.envelope, letter.error):
            letter.envelope, letter.error = envelope, error
            letters += 1
    deliveries = await repository.deliveries_of(session, event_ids)
    for delivery in deliveries:
        delivery.envelope = scrubber.document(delivery.envelope)
    await repository.forget_attempt_bodies(session, [d.id for d in deliveries])
    return {"event_log": changed, "dead_letters": letters, "deliveries": len(deliveries)}


async def purge_comments(session: AsyncSession, *, older_than: datetime, limit: int = 500) -> int:
    """Remove survey comments received before ``older_than`` (and their copies); one batch.

    Returns how many responses lost their comment; call again until it returns 0. Scores,
    categories and themes stay, so NPS and theme trends keep their history.
    """
    responses = await repository.responses_with_comments_before(session, older_than, limit)
    if not responses:
        return 0
    comments = {r.comment for r in responses if r.comment}
    for response in responses:
        response.comment = None
    for task in await repository.tasks_of_responses(session, [r.id for r in responses]):
        if task.comment in comments:
            task.comment = None
    # Only exact copies of the purged comments are touched: a newer comment of the same
    # customer, still within retention, stays in its events.
    scrubber = Scrubber(substrings=comments, replacement="[purged]")
    exact = _ExactComments(comments)
    keys = sorted({r.customer_id for r in responses})
    for entry in await repository.log_entries_keyed(session, keys):
        envelope = scrubber.document(exact.document(entry.envelope))
        if envelope != entry.envelope:
            entry.envelope = envelope
            event_ids = [entry.event_id]
            for letter in await repository.dead_letters_of(session, event_ids):
                letter.envelope = scrubber.document(exact.document(letter.envelope))
            for delivery in await repository.deliveries_of(session, event_ids):
                delivery.envelope = scrubber.document(exact.document(delivery.envelope))
    return len(responses)


class _ExactComments(Scrubber):
    """Sets ``"comment": <one of the purged comments>`` to null instead of a marker."""

    def __init__(self, comments: set[str]) -> None:
        super().__init__()
        self.comments = comments

    def _object(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {k: (None if k == "comment" and v in self.comments else self.value(v)) for k, v in obj.items()}
