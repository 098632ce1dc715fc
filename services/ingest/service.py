"""Accepting responses: de-duplicate, store, and append ``response.received`` — atomically.

Everything goes through :func:`decide` and :func:`write` (:func:`accept` and
:func:`accept_drafts` put them in transactions), which handle a whole group of submissions
with a constant number of queries: the group-commit writer (single POSTs) and the batch
endpoint share them, so both have the same rules. Callers :func:`draft` the group first,
outside the transaction, so the write slot is held only for what needs the database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.ingest import repository
from npsloop.services.ingest.models import Response
from npsloop.services.ingest.schemas import ResponseIn
from npsloop.shared import events, outbox
from npsloop.shared.clock import Clock
from npsloop.shared.db import BulkInsert, Database, json_text, stored_datetime
from npsloop.shared.ids import uuid7s
from npsloop.shared.jsontext import compact_json
from npsloop.shared.outbox import Entry
from npsloop.shared.problems import Conflict, NotFound, Problem, Unauthorized


@dataclass(frozen=True)
class Accepted:
    id: str
    duplicate: bool


@dataclass(frozen=True)
class Submission:
    payload: ResponseIn
    source: str
    idempotency_key: str | None = None
    # The API key it came with, when that key was authenticated from the in-process cache:
    # accept_drafts checks the key is still unrevoked in the same transaction as the write.
    key_id: str | None = None


def request_fingerprint(payload: ResponseIn) -> str:
    canonical = json.dumps(payload.model_dump(mode="json", exclude_none=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _survey(row: dict[str, Any]) -> dict[str, Any]:
    return {"touchpoint": row["touchpoint"], "kind": row["survey_kind"], "channel": row["survey_channel"]}


def response_data(response: Response | dict[str, Any], *, received_at: str | None = None) -> dict[str, Any]:
    """The response as events and the API show it (from a model or a row about to be inserted).

    ``received_at``: the row's ``received_at`` already formatted (bulk writers format a
    group's shared timestamp once).
    """
    row = response if isinstance(response, dict) else {c: getattr(response, c) for c in _COLUMNS}
    received = received_at or row["received_at"].isoformat()
    return {
        "id": row["id"],
        "score": row["score"],
        "comment": row["comment"],
        "customer": row["customer"],
        "survey": _survey(row),
        "lifecycle_stage": row["lifecycle_stage"],
        "properties": row["properties"],
        "responded_at": received if row["responded_at"] is row["received_at"] else row["responded_at"].isoformat(),
        "received_at": received,
        "external_id": row["external_id"],
        "history": row["history"],
    }


_COLUMNS = (
    "id",
    "score",
    "comment",
    "customer",
    "touchpoint",
    "survey_kind",
    "survey_channel",
    "lifecycle_stage",
    "properties",
    "responded_at",
    "received_at",
    "external_id",
    "history",
)

_STORED = (
    "id",
    "source",
    "external_id",
    "idempotency_key",
    "request_hash",
    "score",
    "comment",
    "customer_id",
    "customer",
    "account_id",
    "segment",
    "touchpoint",
    "survey_kind",
    "survey_channel",
    "lifecycle_stage",
    "properties",
    "responded_at",
    "received_at",
    "history",
)
_INSERT = BulkInsert(Response.__table__, _STORED)


def _new_row(submission: Submission, response_id: str, now: datetime) -> dict[str, Any]:
    payload = submission.payload
    customer = payload.customer
    survey = payload.survey
    return {
        "id": response_id,
        "source": submission.source,
        "external_id": payload.external_id,
        "idempotency_key": submission.idempotency_key,
        # Only a repeated Idempotency-Key is compared with the first request's body, so
        # a request without one needs no fingerprint (computing it is a third of a row's cost).
        "request_hash": request_fingerprint(payload) if submission.idempotency_key else "",
        "score": payload.score,
        "comment": payload.comment,
        "customer_id": customer.id,
        "customer": customer.model_dump(exclude_none=True),
        "account_id": customer.account_id,
        "segment": customer.segment,
        "touchpoint": survey.touchpoint,
        "survey_kind": survey.kind,
        "survey_channel": survey.channel,
        "lifecycle_stage": payload.lifecycle_stage,
        "properties": payload.properties,
        "responded_at": payload.responded_at or now,
        "received_at": now,
        "history": payload.history,
    }


@dataclass
class Draft:
    """A submission's row, driver values and ``response.received`` event, in case it is new.

    Building these is most of a new response's cost and needs no database, so callers
    draft a group (:func:`draft`) before they take the write slot: concurrent batch
    requests draft theirs while another one holds the slot and commits. Whether a draft is stored is decided in the
    transaction (:func:`accept_drafts`); the values and event are built on first use, and
    again if the row changed after they were built (a comment merged in). Everything the
    decision needs is in the row, so drafts built in another process (``npsloop import``'s
    reading process) are decided and written here as they are.
    """

    row: dict[str, Any]
    event_id: str
    # The API key the submission came with, when authenticated from the in-process cache
    # (checked unrevoked in the write's transaction); None for imports and known keys.
    key_id: str | None = None
    values: tuple[Any, ...] | None = None
    entry: Entry | None = None

    def driver_values(self, dialect: str, stored_now: Any) -> tuple[Any, ...]:
        """The row as the insert hands it to the driver."""
        r = self.row
        return (
            r["id"],
            r["source"],
            r["external_id"],
            r["idempotency_key"],
            r["request_hash"],
            r["score"],
            r["comment"],
            r["customer_id"],
            json_text(r["customer"]),
            r["account_id"],
            r["segment"],
            r["touchpoint"],
            r["survey_kind"],
            r["survey_channel"],
            r["lifecycle_stage"],
            json_text(r["properties"]),
            stored_now if r["responded_at"] is r["received_at"] else stored_datetime(r["responded_at"], dialect),
            stored_now,
            r["history"],
        )

    def event_entry(self, time_json: str, received_at: str) -> Entry:
        """The row's ``response.received`` event as the event log stores it."""
        r = self.row
        return (
            self.event_id,
            _RECEIVED_TOPIC,
            events.RESPONSE_RECEIVED,
            r["customer_id"],
            events.envelope_json(
                events.RESPONSE_RECEIVED,
                event_id=self.event_id,
                key=r["customer_id"],
                subject=r["id"],
                data=response_data(r, received_at=received_at),
                time_json=time_json,
            ),
        )

    def forget_built(self) -> None:
        self.values = self.entry = None


_RECEIVED_TOPIC = events.EVENT_TOPICS[events.RESPONSE_RECEIVED]


@dataclass
class Drafts:
    now: datetime
    dialect: str
    items: list[Draft]

    def build(self, drafts: list[Draft]) -> tuple[list[tuple[Any, ...]], list[Entry]]:
        """Values and event of each of ``drafts``, building those not built yet (the group's
        timestamps formatted once)."""
        entries = self.build_events(drafts)
        stored_now = stored_datetime(self.now, self.dialect)
        values = []
        for item in drafts:
            if item.values is None:
                item.values = item.driver_values(self.dialect, stored_now)
            values.append(item.values)
        return values, entries

    def build_events(self, drafts: list[Draft]) -> list[Entry]:
        """The event of each of ``drafts``, building those it has none of yet (half of what
        :meth:`build` builds; a reading process builds these)."""
        time_json, received_at = events.envelope_time(self.now), self.now.isoformat()
        entries = []
        for item in drafts:
            if item.entry is None:
                item.entry = item.event_entry(time_json, received_at)
            entries.append(item.entry)
        return entries


def _identity(row: dict[str, Any]) -> tuple[tuple[str, str] | None, tuple[str, str] | None]:
    """(source, Idempotency-Key) and (source, external_id): what makes two submissions the same."""
    key, external_id = row["idempotency_key"], row["external_id"]
    return (
        (row["source"], key) if key else None,
        (row["source"], external_id) if external_id else None,
    )


def draft(submissions: list[Submission], *, now: datetime, dialect: str, build: bool = True) -> Drafts:
    """Rows and events for ``submissions``, built outside any transaction.

    A repeat of an earlier submission of the same group is not built: it is stored only
    in the rare case its first turns out to conflict, and is built then. ``build=False``
    leaves every row's values and event to :func:`build_firsts` (a reading process sends
    the rows, a fifth of the bytes, and the storing process builds the rest).
    """
    items = [
        Draft(_new_row(s, response_id, now), event_id, s.key_id)
        for s, response_id, event_id in zip(submissions, uuid7s(len(submissions)), uuid7s(len(submissions)))
    ]
    drafts = Drafts(now, dialect, items)
    if build:
        build_firsts(drafts)
    return drafts


def build_firsts(drafts: Drafts) -> None:
    """Builds the values and event of each draft that is not a repeat of an earlier one in the group."""
    seen: set[tuple[str, str]] = set()
    firsts = []
    for item in drafts.items:
        identities = [i for i in _identity(item.row) if i is not None]
        if not seen.intersection(identities):
            firsts.append(item)
        seen.update(identities)
    drafts.build(firsts)


async def accept_many(
    session: AsyncSession, submissions: list[Submission], *, clock: Clock
) -> list[Accepted | Problem]:
    """Draft and accept ``submissions`` in the caller's transaction (see :func:`accept_drafts`)."""
    conn = await session.connection()
    return await accept_drafts(session, draft(submissions, now=clock.now(), dialect=conn.dialect.name), clock=clock)


async def accept_drafts(session: AsyncSession, drafts: Drafts, *, clock: Clock) -> list[Accepted | Problem]:
    """Store each submission once per (source, Idempotency-Key) and per (source, external_id),
    in the caller's transaction: :func:`decide`, then :func:`write`."""
    decision = await decide(session, drafts)
    await write(session, drafts, decision, clock=clock)
    return decision.results


async def accept(db: Database, drafts: Drafts, *, clock: Clock) -> list[Accepted | Problem]:
    """:func:`accept_drafts` in transactions of its own, as few round trips as it can.

    On PostgreSQL a group that only adds responses — almost every one — takes two
    statements, each its own transaction: the lookups, then the insert of rows and events
    (one statement: atomic on its own). No BEGIN or COMMIT round trips; reads see what
    other transactions committed, as they would under READ COMMITTED, and a key inserted
    meanwhile by another writer fails the insert on its unique index as before. A late
    comment is an update plus an event, so such a group writes in a ``unit_of_work``.
    """
    if db.is_sqlite:
        async with db.unit_of_work(urgent=True) as session:
            return await accept_drafts(session, drafts, clock=clock)
    async with db.statement_transactions() as session:
        decision = await decide(session, drafts)
        if not decision.late_comments:
            await write(session, drafts, decision, clock=clock)
            return decision.results
    async with db.unit_of_work(urgent=True) as session:
        await write(session, drafts, decision, clock=clock)
    return decision.results


@dataclass
class Decision:
    """What :func:`decide` found for a group: each submission's answer and what to write."""

    results: list[Accepted | Problem]
    new: list[Draft]
    late_comments: list[tuple[str, str]]  # (response id, comment) to add to earlier responses


async def decide(session: AsyncSession, drafts: Drafts) -> Decision:
    """Each submission's outcome, from the rows stored before and the group's own order; writes nothing.

    Per submission: a new id, the first id of an earlier identical request (nothing
    written), or a Problem (an Idempotency-Key reused for a different body is 409; a
    submission whose ``key_id`` is unknown or revoked by now is 401 and writes nothing).
    Repeating an ``external_id`` with a comment the first request lacked adds that
    comment — the score-first, comment-later flow.
    """
    items = drafts.items
    identities = [_identity(item.row) for item in items]
    earlier_by_key, active_keys = await repository.find_by_idempotency_keys(
        session, {key for key, _ in identities if key}, {i.key_id for i in items if i.key_id}
    )
    earlier_by_external = await repository.find_by_external_ids(
        session, {external for _, external in identities if external}
    )
    new: list[Draft] = []
    pending_by_key: dict[tuple[str, str], Draft] = {}
    pending_by_external: dict[tuple[str, str], Draft] = {}
    late_comments: list[tuple[str, str]] = []
    results: list[Accepted | Problem] = []

    for item, (key, external) in zip(items, identities):
        # An item's own row is unchanged until it is decided (only earlier items, once
        # pending, take in a later comment), so it still says what was submitted.
        row = item.row
        if item.key_id and item.key_id not in active_keys:
            results.append(Unauthorized("the API key is unknown or revoked"))
            continue
        if key and (key in earlier_by_key or key in pending_by_key):
            first = earlier_by_key.get(key) or pending_by_key[key].row
            if first["request_hash"] != row["request_hash"]:
                results.append(Conflict("this Idempotency-Key was already used with a different request body"))
            else:
                results.append(Accepted(first["id"], duplicate=True))
            continue
        if external and (external in earlier_by_external or external in pending_by_external):
            if external in pending_by_external:
                pending = pending_by_external[external]
                first = pending.row
                if row["comment"] and not first["comment"]:
                    first["comment"] = row["comment"]
                    pending.forget_built()
            else:
                first = earlier_by_external[external]
                if row["comment"] and not first["comment"]:
                    late_comments.append((first["id"], row["comment"]))
            results.append(Accepted(first["id"], duplicate=True))
            continue
        new.append(item)
        if key:
            pending_by_key[key] = item
        if external:
            pending_by_external[external] = item
        results.append(Accepted(item.row["id"], duplicate=False))
    return Decision(results, new, late_comments)


async def write(session: AsyncSession, drafts: Drafts, decision: Decision, *, clock: Clock) -> None:
    """Store what :func:`decide` found new (rows and their events in one statement), then the late comments."""
    if decision.new:
        values, entries = drafts.build(decision.new)
        await outbox.append_entries(session, entries, clock=clock, along=(_INSERT, values))
    for response_id, comment in decision.late_comments:
        await add_comment(session, response_id, comment, clock=clock)


async def store_batch(
    db: Database, source: str, key_id: str | None, payloads: list[ResponseIn], *, clock: Clock
) -> list[Accepted | Problem]:
    """One ``/v1/responses/batch`` request's valid items, stored atomically (:func:`accept`).

    Urgent on SQLite's write slot (the client is waiting, like a single POST's). With
    ``key_id`` the key's revocation is checked right before the write, for callers that
    authenticated it from the in-process cache.
    """
    with db.urgent_writer():
        drafts = draft(
            [Submission(payload, source=source, key_id=key_id) for payload in payloads],
            now=clock.now(),
            dialect=db.engine.dialect.name,
        )
        results = await accept(db, drafts, clock=clock)
    if results and isinstance(results[0], Unauthorized):  # one key for the whole batch: nothing was written
        raise results[0]
    return results


async def store_drafts(db: Database, drafts: Drafts, *, clock: Clock) -> list[Accepted | Problem]:
    """A group :func:`draft` made elsewhere (``npsloop import``'s reading process, with
    ``build=False``), stored as :func:`store_batch` stores one it drafts itself."""
    if drafts.dialect != db.engine.dialect.name:
        raise ValueError(f"drafts made for {drafts.dialect}, stored into {db.engine.dialect.name}")
    with db.urgent_writer():
        build_firsts(drafts)
        return await accept(db, drafts, clock=clock)


def batch_result(
    count: int, outcomes: dict[int, Accepted | Problem], rejected: dict[int, list[dict[str, Any]]]
) -> dict[str, Any]:
    """The BatchResult JSON for ``count`` items, from the stored and the rejected ones.

    Built as plain dicts — as ``BatchResult`` would render it, without a model built and
    validated per item (a thousand per request); the schema in /openapi.json is the model's.
    """
    results: list[dict[str, Any]] = []
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    for index in range(count):
        outcome = outcomes.get(index)
        if outcome is None:
            status, response_id, errors = "rejected", None, rejected[index]
        elif isinstance(outcome, Accepted):
            status, response_id, errors = "duplicate" if outcome.duplicate else "accepted", outcome.id, None
        else:
            status, response_id, errors = (
                "rejected",
                None,
                [{"field": "body", "message": outcome.detail or outcome.title}],
            )
        counts[status] += 1
        results.append({"index": index, "status": status, "id": response_id, "errors": errors})
    return {
        "accepted": counts["accepted"],
        "duplicates": counts["duplicate"],
        "rejected": counts["rejected"],
        "results": results,
    }


async def add_comment(session: AsyncSession, response_id: str, comment: str, *, clock: Clock) -> Response:
    """Attach a late comment; the response is classified again and follow-up reconsidered."""
    response = await repository.get(session, response_id, lock=True)
    if response is None:
        raise NotFound(f"response {response_id} does not exist")
    if response.comment == comment:
        return response
    now = clock.now()
    response.comment = comment
    response.comment_added_at = now
    event = events.new_event(
        events.RESPONSE_UPDATED, key=response.customer_id, subject=response.id, data=response_data(response), time=now
    )
    await outbox.append(session, event, clock=clock)
    return response


async def customer_responses(session: AsyncSession, customer_id: str, *, limit: int = 500) -> list[dict[str, Any]]:
    """The customer's responses as the API shows them (newest first), without classification."""
    return [response_data(row) for row in await repository.of_customer(session, customer_id, limit=limit)]


async def find_customers(
    session: AsyncSession, *, email: str | None, customer_id: str | None, limit: int = 50
) -> list[dict[str, Any]]:
    """Customers by exact id or by email (case-insensitive), each with their newest identity."""
    if customer_id:
        rows = await repository.of_customer(session, customer_id, limit=1)
    elif email:
        # Emails are stored as sent; the text match narrows, the comparison below decides.
        wanted = email.strip().lower()
        fragment = compact_json({"email": email.strip()})[1:-1]  # '"email":"…"' as stored
        rows = [
            row
            for row in await repository.with_customer_text(session, fragment, limit=1000)
            if str((row.customer or {}).get("email") or "").lower() == wanted
        ]
    else:
        rows = []
    found: dict[str, dict[str, Any]] = {}
    for row in rows:  # newest first: the first row of a customer is their current identity
        if row.customer_id not in found and len(found) < limit:
            customer = row.customer or {}
            found[row.customer_id] = {
                "customer_id": row.customer_id,
                "name": customer.get("name"),
                "email": customer.get("email"),
                "account_id": row.account_id,
                "last_responded_at": row.responded_at,
            }
    return list(found.values())


async def stored_external_ids(session: AsyncSession, source: str, external_ids: set[str]) -> set[str]:
    """Which of ``external_ids`` are already stored for ``source`` (a dry run's duplicates)."""
    found = await repository.find_by_external_ids(session, {(source, e) for e in external_ids})
    return {external for _, external in found}


# --- reads other services ask for (they reach ingest's table only through these) -------


async def find_response(session: AsyncSession, response_id: str) -> dict[str, Any] | None:
    """The response as events and the API show it (:func:`response_data`), or None."""
    response = await repository.get(session, response_id)
    return None if response is None else response_data(response)


async def responses_by_id(session: AsyncSession, response_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Those of ``response_ids`` that exist, as :func:`response_data`, by id."""
    return {r.id: response_data(r) for r in await repository.get_many(session, response_ids)}


async def responses_page(
    session: AsyncSession, *, since: datetime | None, after: dict[str, Any] | None, limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` responses (as :func:`response_data`) in the order they were received,
    from ``since`` on (all when None), after ``after`` (the previous page's last response)."""
    cursor = None if after is None else (datetime.fromisoformat(after["received_at"]), after["id"])
    return [response_data(r) for r in await repository.page(session, since=since, after=cursor, limit=limit)]


async def newest_commented_responses(session: AsyncSession, *, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` of the newest responses that hold a comment (erased ones do not), as
    :func:`response_data`, newest first (the classifier's review queue reads these)."""
    return [response_data(r) for r in await repository.newest_with_comment(session, limit=limit)]


async def count_responses(session: AsyncSession, *, since: datetime | None) -> int:
    """How many responses were received from ``since`` on (all when None)."""
    return await repository.count(session, since=since)


async def score_counts(session: AsyncSession, start: datetime, end: datetime) -> tuple[int, int, int]:
    """(promoters, passives, detractors) among responses received in [start, end)."""
    return await repository.score_counts(session, start, end)


async def last_responded_at(
    session: AsyncSession, *, customer_id: str | None = None, account_id: str | None = None
) -> datetime | None:
    """When the customer (or, without one, the account) last answered, if ever."""
    return await repository.last_responded_at(session, customer_id=customer_id, account_id=account_id)


async def last_account_id(session: AsyncSession, customer_id: str) -> str | None:
    """The account the customer last answered under, if any response named one."""
    return await repository.last_account_id(session, customer_id)


async def answers_of(
    session: AsyncSession, *, customer_ids: Sequence[str], account_ids: Sequence[str], before: datetime
) -> list[tuple[str, str | None, int, datetime]]:
    """``(customer_id, account_id, score, responded_at)`` of every answer before ``before`` by
    these customers or by anyone on these accounts."""
    return await repository.answers_of(session, customer_ids=customer_ids, account_ids=account_ids, before=before)


async def property_names(session: AsyncSession, *, start: datetime, end: datetime, sample: int) -> dict[str, int]:
    """How many of the newest ``sample`` responses answered in [start, end) carry each property name."""
    return await repository.property_names(session, start=start, end=end, sample=sample)
