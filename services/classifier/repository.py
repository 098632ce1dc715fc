"""Queries on stored classifications and people's corrections of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.classifier.models import ClassificationCorrection, StoredClassification
from npsloop.shared.bus.contract import NOT_PREFETCHED, lookup, prefetched, store_prefetched
from npsloop.shared.db import among


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
        select(StoredClassification).where(among(session, StoredClassification.response_id, response_ids))
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
            .where(among(session, ClassificationCorrection.response_id, response_ids))
            .order_by(ClassificationCorrection.id)
        )
    ).all()
    grouped: dict[str, list[ClassificationCorrection]] = {}
    for row in rows:
        grouped.setdefault(row.response_id, []).append(row)
    return {rid: merged for rid, group in grouped.items() if (merged := _merge(group)) is not None}


# A corrected sentiment has no model score; these keep the score's sign consistent with the label.
NOMINAL_SENTIMENT_SCORE = {"positive": 1.0, "neutral": 0.0, "negative": -1.0}


async def all_effective_corrections(session: AsyncSession) -> dict[str, EffectiveCorrection]:
    """Every corrected response's effective correction, in the order they were first corrected."""
    rows = (await session.scalars(select(ClassificationCorrection).order_by(ClassificationCorrection.id))).all()
    grouped: dict[str, list[ClassificationCorrection]] = {}
    for row in rows:
        grouped.setdefault(row.response_id, []).append(row)
    return {rid: merged for rid, group in grouped.items() if (merged := _merge(group)) is not None}


async def count_corrections_since(session: AsyncSession, since: datetime | None) -> int:
    """How many corrections were made after the second ``since`` names (all when None): the
    retrain trigger's count. A version's name keeps whole seconds, so a correction within the
    second it was read in counts as learnt."""
    query = select(func.count()).select_from(ClassificationCorrection)
    if since is not None:
        query = query.where(ClassificationCorrection.corrected_at >= since + timedelta(seconds=1))
    return int(await session.scalar(query) or 0)
