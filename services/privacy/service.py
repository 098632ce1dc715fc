"""Erasure of one customer everywhere their data is, and the comment retention purge.

Both rewrite the copies too (event log/outbox, dead letters, delivery envelopes and
receivers' answers), because a comment erased from ``responses`` but still in an event
envelope is not erased. Neither commits: the caller's unit of work makes the whole
erasure one transaction, so a failure leaves nothing half-erased.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.deliveries.models import Delivery
from npsloop.services.privacy import repository
from npsloop.services.privacy.models import ErasureRecord
from npsloop.services.privacy.scrub import Scrubber
from npsloop.shared.bus import processing
from npsloop.shared.clock import Clock
from npsloop.shared.events import CloudEvent
from npsloop.shared.ids import new_id
from npsloop.shared.models import DeadLetter, EventLogEntry

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
    but under a random pseudonym, so they cannot be linked back by anyone without database
    access. Comments, notes, contact details and the customer id itself are gone from
    tables and from every stored payload.

    Whatever is in flight: the erasure first waits for consumer transactions holding this
    customer's events, and consumers that start later rename and scrub such events before
    handling them (:func:`screen_events`), so nothing derived from data read before the
    erasure is written after it. Repeating the request is harmless, audited again, and
    finds copies an earlier erasure could not reach (by the pseudonym it gave them).
    """
    await repository.lock_for_erasure(session, customer_id)
    digest = customer_hash(customer_id)
    earlier = [r.pseudonym for r in await repository.erasures_of(session, digest) if r.pseudonym]
    # The same pseudonym on every erasure of one person, so a repeat finds the first one's copies.
    pseudonym = earlier[-1] if earlier else PSEUDONYM_PREFIX + uuid.uuid4().hex
    responses = await repository.responses_of(session, customer_id)
    tasks = await repository.tasks_of(session, customer_id)
    task_events = await repository.task_events_of(session, [t.id for t in tasks])
    entries = await repository.log_entries_keyed(session, [customer_id, *dict.fromkeys(earlier)])
    logged = [e.event_id for e in entries]
    letters = await repository.dead_letters_of(session, logged)
    deliveries = await repository.deliveries_of(session, logged, lock=True)
    secrets = _personal_strings(
        [r.customer for r in responses] + [t.customer for t in tasks],
        [r.comment for r in responses]
        + [t.comment for t in tasks]
        + [e.note for e in task_events]
        + [r.external_id for r in responses],
    )
    # Copies in payloads name what the rows may have lost to an earlier erasure.
    for raw in [e.envelope for e in entries] + [d.envelope for d in letters] + [d.envelope for d in deliveries]:
        secrets |= personal_strings_in(raw, customer_id)
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
    counts |= await _scrub_payloads(session, scrubber, entries, letters, deliveries, rekey_to=pseudonym)

    record = ErasureRecord(
        id=new_id(),
        customer_id_sha256=digest,
        requested_by=requested_by,
        reason=reason,
        pseudonym=pseudonym,
        counts=counts,
        erased_at=clock.now(),
    )
    session.add(record)
    log.info("customer erased", extra={"erasure_id": record.id, **counts})
    return record


async def _scrub_payloads(
    session: AsyncSession,
    scrubber: Scrubber,
    entries: list[EventLogEntry],
    letters: list[DeadLetter],
    deliveries: list[Delivery],
    *,
    rekey_to: str | None,
) -> dict[str, int]:
    changed = 0
    for entry in entries:
        envelope = scrubber.rewrite(entry.envelope)
        if envelope is not None:
            entry.envelope = envelope
            changed += 1
        if rekey_to is not None:
            entry.key = rekey_to
    rewritten_letters = 0
    for letter in letters:
        envelope, error = scrubber.rewrite(letter.envelope), scrubber.text(letter.error)
        if envelope is not None or error != letter.error:
            letter.envelope, letter.error = envelope or letter.envelope, error
            rewritten_letters += 1
    rewritten_deliveries = 0
    for delivery in deliveries:
        envelope = scrubber.rewrite(delivery.envelope)
        if envelope is not None:
            delivery.envelope = envelope
            rewritten_deliveries += 1
    attempts = await repository.forget_attempt_bodies(session, [d.id for d in deliveries])
    return {
        "event_log": changed,
        "dead_letters": rewritten_letters,
        "deliveries": rewritten_deliveries,
        "delivery_attempts": attempts,
    }


def personal_strings_in(raw: str | dict[str, Any], customer_id: str) -> set[str]:
    """What a stored payload says about this customer: their contact details, and the comments
    and notes of the objects about them (a response, a task, an event's data)."""
    if isinstance(raw, str):
        try:
            value: Any = json.loads(raw)
        except ValueError:
            return set()
    else:
        value = raw
    found: set[str] = set()

    def walk(item: Any) -> None:
        if isinstance(item, list):
            for element in item:
                walk(element)
        elif isinstance(item, dict):
            customer = item.get("customer")
            if (isinstance(customer, dict) and customer.get("id") == customer_id) or item.get(
                "customer_id"
            ) == customer_id:
                found.update(str(item[k]) for k in ("comment", "note", "external_id") if item.get(k))
            if item.get("id") == customer_id:
                found.update(str(item[k]) for k in ("email", "name", "phone") if item.get(k))
            for element in item.values():
                walk(element)

    walk(value)
    return found


async def screen_events(session: AsyncSession, group: list[CloudEvent]) -> list[CloudEvent]:
    """The events a consumer is about to handle, with erased customers' data taken out.

    Runs in the consumer's transaction, before its handlers (the bus calls it: see
    shared.bus.processing). An event read before its customer's erasure committed still
    names them; handled as it is, it would write the erased data again (a task, a delivery,
    a rendered alert, a new event). Such an event is recognised by its response: the
    response's row no longer belongs to the event's customer. It is handed on renamed to
    the pseudonym and without comments or contact details, so the pipeline still runs (the
    score is still classified and followed up) and writes nothing personal. A response
    received after the erasure still belongs to its customer and passes untouched.
    Returns the group in the same order.
    """
    keys = {event.partitionkey for event in group}
    await repository.lock_against_erasure(session, keys)
    erased = await repository.erased_among(session, [customer_hash(k) for k in keys])
    if not erased:
        return group
    suspects = [event for event in group if customer_hash(event.partitionkey) in erased]
    owners = await repository.response_owners(
        session, [rid for rid in (_response_id(e) for e in suspects) if rid is not None]
    )
    screened: dict[str, CloudEvent] = {}
    for event in suspects:
        response_id = _response_id(event)
        owner = owners.get(response_id) if response_id else None
        if owner == event.partitionkey:
            continue  # new data, sent after the erasure
        pseudonym = owner or erased[customer_hash(event.partitionkey)] or PSEUDONYM_PREFIX + uuid.uuid4().hex
        screened[event.id] = scrub_event(event, pseudonym)
        log.info(
            "event of an erased customer scrubbed before handling", extra={"event_id": event.id, "type": event.type}
        )
    return [screened.get(event.id, event) for event in group]


def scrub_event(event: CloudEvent, pseudonym: str) -> CloudEvent:
    """``event`` renamed to ``pseudonym``, without the comments and contact details it carries."""
    customer_id = event.partitionkey
    envelope = event.model_dump(mode="json", exclude_none=True)
    secrets = personal_strings_in(envelope, customer_id)
    if len(customer_id) >= 6:
        secrets.add(customer_id)
    scrubber = Scrubber(substrings=secrets, customer_id=customer_id, pseudonym=pseudonym, redact_keys=REDACTED_KEYS)
    return CloudEvent.model_validate(scrubber.value(envelope))


def _response_id(event: CloudEvent) -> str | None:
    return processing.event_ids(event).get("response_id")


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
