"""Queries on stored classifications."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.classifier.models import StoredClassification


async def get(session: AsyncSession, response_id: str) -> StoredClassification | None:
    return await session.get(StoredClassification, response_id)


def as_fields(row: StoredClassification) -> dict[str, Any]:
    return {
        "category": row.category, "themes": row.themes, "sentiment": row.sentiment,
        "sentiment_score": row.sentiment_score, "language": row.language,
        "classifier_version": row.classifier_version, "classified_at": row.classified_at,
    }
