"""Queries on stored classifications and people's corrections of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.classifier.models import ClassificationCorrection, StoredClassification
from npsloop.services.ingest.models import Response
from npsloop.shared.bus.contract import NOT_PREFETCHED, lookup, prefetched, store_prefetched


@dataclass(frozen=True)
class EffectiveCorrection:
    """The newest corrected value of each field (None = that field was never corrected)."""

    themes: list[str] | None
    sentiment: str | None
    corrected_by: str
    corrected_at: datetime


# A group's stored rows and corrections, loaded in one query each (shared.bus.contract.prefetched).
ROWS = "classifier.rows"
CORRECTIONS = "classifier.corrections"


async def prefetch(session: AsyncSession, response_ids: Sequence[str]) -> None:
    ids = list(dict.fromkeys(response_ids))
    rows = await get_many(session, ids)
    store_prefetched(session, ROWS, {rid: rows.get(rid) for rid in ids})
    corrections = await effective_corrections(session, ids)
    store_prefetched(session, CORRECTIONS, {rid: corrections.get(rid) for rid in ids})


def remember_row(session: AsyncSession, row: StoredClassification) -> None:
    table = prefetched(session, ROWS)
    if table is not None:
        table[row.response_id] = row


async def get(session: AsyncSession, response_id: str) -> StoredClassification | None:
    found = lookup(session, ROWS, response_id)
    if found is not NOT_PREFETCHED:
        return found  # type: ignore[return-value]
    return await session.get(StoredClassification, response_id)


async def get_many(session: AsyncSession, response_ids: Sequence[str]) -> dict[str, StoredClassification]:
    if not response_ids:
        return {}
    rows = await session.scalars(
        select(StoredClassification).where(StoredClassification.response_id.in_(list(response_ids)))
    )
    return {row.response_id: row for row in rows.all()}


def as_fields(row: StoredClassification) -> dict[str, Any]:
    return {
        "category": row.category,
        "themes": row.themes,
        "sentiment": row.sentiment,
        "sentiment_score": row.sentiment_score,
        "language": row.language,
        "classifier_version": row.classifier_version,
        "classified_at": row.classified_at,
    }


def add_correction(session: AsyncSession, correction: ClassificationCorrection) -> None:
    session.add(correction)


def _merge(rows: Sequence[ClassificationCorrection]) -> EffectiveCorrection | None:
    """Fold corrections oldest first: a later correction of a field replaces an earlier one."""
    if not rows:
        return None
    themes: list[str] | None = None
    sentiment: str | None = None
    for row in rows:
        if row.themes is not None:
            themes = list(row.themes)
        if row.sentiment is not None:
            sentiment = row.sentiment
    return EffectiveCorrection(themes, sentiment, rows[-1].corrected_by, rows[-1].corrected_at)


async def effective_correction(session: AsyncSession, response_id: str) -> EffectiveCorrection | None:
    found = lookup(session, CORRECTIONS, response_id)
    if found is not NOT_PREFETCHED:
        return found  # type: ignore[return-value]
    rows = (
        await session.scalars(
            select(ClassificationCorrection)
            .where(ClassificationCorrection.response_id == response_id)
            .order_by(ClassificationCorrection.id)
        )
    ).all()
    return _merge(rows)


async def effective_corrections(session: AsyncSession, response_ids: Sequence[str]) -> dict[str, EffectiveCorrection]:
    """Corrections of many responses in one query (replay batches)."""
    if not response_ids:
        return {}
    rows = (
        await session.scalars(
            select(ClassificationCorrection)
            .where(ClassificationCorrection.response_id.in_(list(response_ids)))
            .order_by(ClassificationCorrection.id)
        )
    ).all()
    grouped: dict[str, list[ClassificationCorrection]] = {}
    for row in rows:
        grouped.setdefault(row.response_id, []).append(row)
    return {rid: merged for rid, group in grouped.items() if (merged := _merge(group)) is not None}


async def current_classification(session: AsyncSession, response_id: str) -> dict[str, Any] | None:
    """The classification as people should see it: the stored one with corrections applied.

    Stored rows already carry corrected values (they are applied on every write); the
    correction is applied again here so a correction made before the first
    classification still shows.
    """
    return _as_seen(await get(session, response_id), await effective_correction(session, response_id))


async def current_classifications(session: AsyncSession, response_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``current_classification`` of many responses in two queries; unclassified ones are absent."""
    rows = await get_many(session, response_ids)
    corrections = await effective_corrections(session, response_ids)
    seen = {rid: _as_seen(rows.get(rid), corrections.get(rid)) for rid in response_ids}
    return {rid: fields for rid, fields in seen.items() if fields is not None}


def _as_seen(row: StoredClassification | None, correction: EffectiveCorrection | None) -> dict[str, Any] | None:
    if row is None and correction is None:
        return None
    fields: dict[str, Any] = as_fields(row) if row is not None else {}
    if correction is not None:
        if correction.themes is not None:
            fields["themes"] = [{"id": t, "confidence": 1.0} for t in correction.themes]
        if correction.sentiment is not None and fields.get("sentiment") != correction.sentiment:
            fields["sentiment"] = correction.sentiment
            fields["sentiment_score"] = NOMINAL_SENTIMENT_SCORE[correction.sentiment]
        fields["corrected_by"] = correction.corrected_by
        fields["corrected_at"] = correction.corrected_at
    return fields


# A corrected sentiment has no model score; these keep the score's sign consistent with the label.
NOMINAL_SENTIMENT_SCORE = {"positive": 1.0, "neutral": 0.0, "negative": -1.0}


async def corrected_responses(session: AsyncSession) -> list[tuple[Response, EffectiveCorrection]]:
    """Every corrected response with its effective correction (training data)."""
    rows = (await session.scalars(select(ClassificationCorrection).order_by(ClassificationCorrection.id))).all()
    grouped: dict[str, list[ClassificationCorrection]] = {}
    for row in rows:
        grouped.setdefault(row.response_id, []).append(row)
    if not grouped:
        return []
    responses = {r.id: r for r in (await session.scalars(select(Response).where(Response.id.in_(list(grouped))))).all()}
    return [
        (responses[rid], merged)
        for rid, group in grouped.items()
        if rid in responses and (merged := _merge(group)) is not None
    ]


async def responses_page(
    session: AsyncSession, *, since: datetime | None, after: tuple[datetime, str] | None, limit: int
) -> list[Response]:
    """Stored responses in (received_at, id) order, keyset-paged, optionally from ``since`` on."""
    query = select(Response).order_by(Response.received_at, Response.id).limit(limit)
    if since is not None:
        query = query.where(Response.received_at >= since)
    if after is not None:
        received_at, response_id = after
        query = query.where(
            (Response.received_at > received_at) | ((Response.received_at == received_at) & (Response.id > response_id))
        )
    return list((await session.scalars(query)).all())


async def count_responses(session: AsyncSession, *, since: datetime | None) -> int:
    query = select(func.count()).select_from(Response)
    if since is not None:
        query = query.where(Response.received_at >= since)
    return int(await session.scalar(query) or 0)
