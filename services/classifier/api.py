"""HTTP endpoints of the classifier: people correct a response's themes and sentiment."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from npsloop.services.classifier import review_queue, service
from npsloop.services.classifier.schemas import (
    ClassificationOut,
    ClassifierOut,
    CorrectionIn,
    ReviewItemOut,
    ReviewQueueOut,
    ThemeDefinitionOut,
)
from npsloop.shared.auth import Principal
from npsloop.shared.problems import not_found
from npsloop.shared.taxonomy import DEFAULT_THEMES
from npsloop.shared.web import ClockDep, DbDep, require, require_any

router = APIRouter(prefix="/v1/responses", tags=["classification"])
classifier_router = APIRouter(prefix="/v1/classifier", tags=["classification"])

# Correcting tags changes what a response says, so it takes the same scope as writing
# responses (``responses:write``); ``admin`` allows everything.
Corrector = Annotated[Principal, Depends(require("responses:write"))]
Reader = Annotated[Principal, Depends(require_any("responses:read", "tasks:read", "analytics:read"))]


@router.put("/{response_id}/classification", response_model=ClassificationOut, responses=not_found("response"))
async def correct_classification(
    response_id: str, body: CorrectionIn, principal: Corrector, db: DbDep, clock: ClockDep, request: Request
) -> ClassificationOut:
    """Correct the themes and/or sentiment; kept with who and when, and it wins from then on.

    The corrected classification is announced again as ``npsloop.response.classified.v1``
    (follow-up updates the existing task rather than opening a second one). Requires the
    ``responses:write`` scope. Theme ids must belong to the active taxonomy (422 otherwise).
    """
    runtime = request.app.state.runtime
    allowed = [t.id for t in (runtime.policy.theme_definitions() or DEFAULT_THEMES)]
    async with db.unit_of_work() as session:
        result = await service.correct_classification(
            session,
            response_id,
            themes=body.themes,
            sentiment=body.sentiment,
            allowed_themes=allowed,
            actor=principal.name,
            classifier=runtime.classifier,
            clock=clock,
        )
    return ClassificationOut.model_validate({"response_id": response_id, **result})


@classifier_router.get("", response_model=ClassifierOut)
async def active_classifier(_: Reader, request: Request) -> ClassifierOut:
    """The active classifier version, how it was trained, and the theme taxonomy with labels.

    Any key that reads responses, tasks or analytics may ask (the dashboard labels themes with it)."""
    runtime = request.app.state.runtime
    classifier = getattr(runtime.classifier, "current", runtime.classifier)
    summary = getattr(getattr(classifier, "model", None), "trained_on", None)
    trained = summary.model_dump(mode="json") if summary is not None else None
    themes = runtime.policy.theme_definitions() or DEFAULT_THEMES
    return ClassifierOut(
        version=classifier.version,
        kind="trained" if trained is not None else "built-in",
        trained=trained,
        themes=[ThemeDefinitionOut(id=t.id, label=t.display_label) for t in themes],
    )


# The queue shows comments, so it takes the scope that reads responses.
ResponseReader = Annotated[Principal, Depends(require("responses:read"))]


@classifier_router.get("/review-queue", response_model=ReviewQueueOut)
async def classifier_review_queue(
    _: ResponseReader,
    db: DbDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> ReviewQueueOut:
    """Comments whose correction teaches the classifier most, least certain first.

    Read from the newest commented responses with the active classifier: themes whose decision
    is near its threshold, a sentiment near its boundary or against the score (a detractor's
    comment read as positive), a detractor's comment with no theme; every other item comes from a
    fixed random sample, so the labels people give are not all borderline. Responses already corrected,
    not yet classified or erased are left out; correct one with
    ``PUT /v1/responses/{id}/classification`` and it leaves the queue. Requires ``responses:read``;
    an invalid ``cursor`` or ``limit`` is 422 naming the field."""
    after = review_queue.decode_cursor(cursor) if cursor else None
    runtime = request.app.state.runtime
    async with db.sessions() as session:
        page = await review_queue.review_queue(session, classifier=runtime.classifier, limit=limit, after=after)
    return ReviewQueueOut(
        items=[ReviewItemOut.model_validate(item) for item in page.items],
        next_cursor=page.next_cursor,
        window=page.window,
    )
