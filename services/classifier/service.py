"""Classify a response, keep the result, and announce it with ``response.classified``."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.classifier import repository
from services.classifier.model import Classifier
from services.classifier.models import StoredClassification
from shared import events, outbox
from shared.clock import Clock
from shared.observability import metrics


async def classify_response(session: AsyncSession, response: dict[str, Any], *, classifier: Classifier,
                            clock: Clock) -> StoredClassification:
    """Classify ``response`` (the event's data), upsert its classification, emit the event."""
    result = classifier.classify(response.get("comment"), response.get("score")).as_dict()
    now = clock.now()
    row = await repository.get(session, response["id"])
    if row is None:
        row = StoredClassification(response_id=response["id"])
        session.add(row)
    row.classifier_version = result["classifier_version"]
    row.category = result["category"]
    row.themes = result["themes"]
    row.sentiment = result["sentiment"]
    row.sentiment_score = result["sentiment_score"]
    row.language = result["language"]
    row.classified_at = now
    classified = events.new_event(
        events.RESPONSE_CLASSIFIED, key=response["customer"]["id"], subject=response["id"], time=now,
        data={"response": response, "classification": {**result, "classified_at": now.isoformat()}},
    )
    await outbox.append(session, classified, clock=clock)
    metrics.responses_classified.inc()
    return row
