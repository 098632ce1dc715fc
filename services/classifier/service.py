"""Classify a response, keep the result, and announce it with ``response.classified``.

People's corrections win: every write of a classification (first classification, late
comment, replay with a new version, the correction itself) applies the newest corrected
themes and sentiment before it stores the row and emits the event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.classifier import repository
from npsloop.services.classifier.model import Classifier
from npsloop.services.classifier.models import ClassificationCorrection, StoredClassification
from npsloop.services.classifier.repository import NOMINAL_SENTIMENT_SCORE, EffectiveCorrection
from npsloop.services.ingest import repository as response_repository
from npsloop.services.ingest.models import Response
from npsloop.services.ingest.service import response_data
from npsloop.shared import events, outbox, row_buffer
from npsloop.shared.clock import Clock
from npsloop.shared.observability import metrics
from npsloop.shared.problems import NotFound, UnprocessableContent

_UNSET = object()


def apply_correction(result: dict[str, Any], correction: EffectiveCorrection | None) -> dict[str, Any]:
    """``result`` with the corrected fields replaced; the model's other readings kept."""
    if correction is None:
        return result
    result = dict(result)
    if correction.themes is not None:
        result["themes"] = [{"id": t, "confidence": 1.0} for t in correction.themes]
    if correction.sentiment is not None and correction.sentiment != result["sentiment"]:
        result["sentiment"] = correction.sentiment
        result["sentiment_score"] = NOMINAL_SENTIMENT_SCORE[correction.sentiment]
    result["corrected_by"] = correction.corrected_by
    result["corrected_at"] = correction.corrected_at.isoformat()
    return result


async def _store_and_announce(
    session: AsyncSession,
    response: dict[str, Any],
    result: dict[str, Any],
    *,
    row: StoredClassification | None,
    classified_at,
    clock: Clock,
) -> StoredClassification:
    fields = {
        name: result[name]
        for name in ("classifier_version", "category", "themes", "sentiment", "sentiment_score", "language")
    }
    fields["classified_at"] = classified_at
    if row is None:
        row = row_buffer.add(session, StoredClassification, response_id=response["id"], **fields)
        repository.remember_row(session, row)
    else:
        for name, value in fields.items():
            setattr(row, name, value)
    await outbox.emit(
        session,
        events.RESPONSE_CLASSIFIED,
        key=response["customer"]["id"],
        subject=response["id"],
        time=clock.now(),
        data={"response": response, "classification": {**result, "classified_at": classified_at.isoformat()}},
        clock=clock,
    )
    return row


async def classify_response(
    session: AsyncSession,
    response: dict[str, Any],
    *,
    classifier: Classifier,
    clock: Clock,
    row: Any = _UNSET,
    correction: Any = _UNSET,
) -> StoredClassification:
    """Classify ``response`` (the event's data), upsert its classification, emit the event.

    ``row`` and ``correction`` may be passed when the caller already loaded them (replay).
    """
    result = classifier.classify(response.get("comment"), response.get("score")).as_dict()
    if row is _UNSET:
        row = await repository.get(session, response["id"])
    if correction is _UNSET:
        correction = await repository.effective_correction(session, response["id"])
    stored = await _store_and_announce(
        session, response, apply_correction(result, correction), row=row, classified_at=clock.now(), clock=clock
    )
    metrics.responses_classified.inc()
    return stored


async def correct_classification(
    session: AsyncSession,
    response_id: str,
    *,
    themes: list[str] | None,
    sentiment: str | None,
    allowed_themes: Sequence[str],
    actor: str,
    classifier: Classifier,
    clock: Clock,
) -> dict[str, Any]:
    """Record a person's correction, store the corrected classification and announce it again.

    Unknown theme ids are refused (422 naming ``themes``) before anything is written.
    Returns the classification as it now stands.
    """
    if themes is not None:
        unknown = [t for t in themes if t not in allowed_themes]
        if unknown:
            raise UnprocessableContent(
                f"themes: unknown theme id(s) {', '.join(map(repr, unknown))}; the taxonomy has "
                f"{', '.join(allowed_themes)}",
                errors=[{"field": "themes", "message": f"unknown theme id {t!r}"} for t in unknown],
            )
        themes = list(dict.fromkeys(themes))  # a repeated id is one tag
    response = await response_repository.get(session, response_id)
    if response is None:
        raise NotFound(f"response {response_id} does not exist")
    now = clock.now()
    repository.add_correction(
        session,
        ClassificationCorrection(
            response_id=response_id, themes=themes, sentiment=sentiment, corrected_by=actor, corrected_at=now
        ),
    )
    await session.flush()
    correction = await repository.effective_correction(session, response_id)
    data = response_data(response)
    row = await repository.get(session, response_id)
    if row is None:  # corrected before the classifier got to it: classify now so the event is whole
        result = classifier.classify(data.get("comment"), data.get("score")).as_dict()
        classified_at = now
    else:
        result = {**repository.as_fields(row)}
        classified_at = result.pop("classified_at")
    result = apply_correction(result, correction)
    await _store_and_announce(session, data, result, row=row, classified_at=classified_at, clock=clock)
    return {**result, "classified_at": classified_at}


async def reclassify_batch(
    session: AsyncSession, responses: Sequence[Response], *, classifier: Classifier, clock: Clock
) -> int:
    """Re-run ``classifier`` over ``responses`` in the caller's transaction, keeping corrections."""
    ids = [r.id for r in responses]
    if classifier.prepares_batches:
        classifier.prepare([r.comment for r in responses])
    corrections = await repository.effective_corrections(session, ids)
    rows = await repository.get_many(session, ids)
    for response in responses:
        await classify_response(
            session,
            response_data(response),
            classifier=classifier,
            clock=clock,
            row=rows.get(response.id),
            correction=corrections.get(response.id),
        )
    return len(responses)


async def current_classifications(session: AsyncSession, response_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """What people see for each response: the stored classification with corrections applied."""
    return await repository.current_classifications(session, response_ids)
