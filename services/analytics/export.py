"""CSV exports of responses (with their classification) and of tasks, streamed page by page.

Each page is read in its own short session, so a long download never holds a
transaction (or a SQLite lock) open while a slow client reads.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from npsloop.services.analytics import repository
from npsloop.services.analytics.nps import category_of
from npsloop.services.classifier import service as classifier
from npsloop.services.followup import service as followup
from npsloop.shared.db import Database

RESPONSE_COLUMNS = (
    "id",
    "responded_at",
    "received_at",
    "score",
    "category",
    "comment",
    "customer_id",
    "customer_email",
    "customer_name",
    "account_id",
    "segment",
    "touchpoint",
    "survey_kind",
    "survey_channel",
    "lifecycle_stage",
    "properties",
    "external_id",
    "themes",
    "sentiment",
    "sentiment_score",
    "language",
    "classifier_version",
    "classified_at",
    "corrected",
)
TASK_COLUMNS = (
    "id",
    "response_id",
    "customer_id",
    "account_id",
    "segment",
    "score",
    "comment",
    "themes",
    "status",
    "assignee",
    "team",
    "received_at",
    "opened_at",
    "due_at",
    "warned_at",
    "breached_at",
    "acknowledged_at",
    "resolved_at",
    "outcome",
    "acknowledged_within_sla",
)
# Spreadsheet apps run a cell that starts with these as a formula: customer comments must not.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([_cell(v) for v in values])
    return buffer.getvalue()


async def response_rows(db: Database, *, start: datetime | None, end: datetime | None) -> AsyncIterator[str]:
    yield _line(list(RESPONSE_COLUMNS))
    after: tuple[datetime, str] | None = None
    while True:
        async with db.sessions() as session:
            page = await repository.responses_with_classification(session, start=start, end=end, after=after)
            current = await classifier.effective_corrections(session, [r.id for r, _ in page])
        if not page:
            return
        for response, stored in page:
            yield _line(_response_values(response, stored, current.get(response.id)))
        after = (page[-1][0].responded_at, page[-1][0].id)


def _response_values(response: Any, stored: Any, correction: Any) -> list[Any]:
    customer = response.customer or {}
    themes = [t["id"] for t in (stored.themes if stored else []) or [] if isinstance(t, dict)]
    sentiment = stored.sentiment if stored else None
    if correction is not None:
        themes = list(correction.themes) if correction.themes is not None else themes
        sentiment = correction.sentiment or sentiment
    return [
        response.id,
        response.responded_at,
        response.received_at,
        response.score,
        category_of(response.score),
        response.comment,
        response.customer_id,
        customer.get("email"),
        customer.get("name"),
        response.account_id,
        response.segment,
        response.touchpoint,
        response.survey_kind,
        response.survey_channel,
        response.lifecycle_stage,
        response.properties or {},
        response.external_id,
        ";".join(themes),
        sentiment,
        stored.sentiment_score if stored else None,
        stored.language if stored else None,
        stored.classifier_version if stored else None,
        stored.classified_at if stored else None,
        "true" if correction is not None else "false",
    ]


async def task_rows(db: Database, *, start: datetime | None, end: datetime | None) -> AsyncIterator[str]:
    yield _line(list(TASK_COLUMNS))
    after: tuple[datetime, str] | None = None
    while True:
        async with db.sessions() as session:
            page = await followup.tasks_page(session, start=start, end=end, after=after, limit=repository.PAGE)
        if not page:
            return
        for task in page:
            within = None if task.acknowledged_at is None else task.acknowledged_at <= task.due_at
            yield _line(
                [
                    task.id,
                    task.response_id,
                    task.customer_id,
                    task.account_id,
                    task.segment,
                    task.score,
                    task.comment,
                    ";".join(t.get("id", "") for t in task.themes or [] if isinstance(t, dict)),
                    task.status,
                    task.assignee,
                    task.team,
                    task.received_at,
                    task.opened_at,
                    task.due_at,
                    task.warned_at,
                    task.breached_at,
                    task.acknowledged_at,
                    task.resolved_at,
                    task.outcome,
                    "" if within is None else str(within).lower(),
                ]
            )
        after = (page[-1].received_at, page[-1].id)
