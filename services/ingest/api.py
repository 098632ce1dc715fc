"""HTTP endpoints for responses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from npsloop.services.classifier import repository as classification_repository
from npsloop.services.ingest import repository, service
from npsloop.services.ingest.schemas import BatchIn, BatchResult, CommentIn, ResponseAccepted, ResponseIn, ResponseOut
from npsloop.shared.auth import Principal
from npsloop.shared.observability import metrics
from npsloop.shared.problems import NotFound, not_found
from npsloop.shared.web import ClockDep, DbDep, require

router = APIRouter(prefix="/v1/responses", tags=["responses"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Repeat-safe key: a repeat returns the first id.",
    ),
]
Writer = Annotated[Principal, Depends(require("responses:write"))]
# The group-commit writer re-checks revocation in its transaction (services/ingest/writer.py).
FastWriter = Annotated[Principal, Depends(require("responses:write", revocation_checked_by_caller=True))]
Reader = Annotated[Principal, Depends(require("responses:read"))]


@router.post(
    "",
    status_code=202,
    response_model=ResponseAccepted,
    responses={409: {"description": "This Idempotency-Key was already used with a different body"}},
)
async def create_response(
    payload: ResponseIn, principal: FastWriter, request: Request, idempotency_key: IdempotencyKey = None
) -> Any:
    """Store one response; the 202 is sent after it is durably committed."""
    submission = service.Submission(
        payload, source=principal.name, idempotency_key=idempotency_key, key_id=principal.key_id
    )
    accepted = await request.app.state.ingest_writer.submit(submission)
    if not accepted.duplicate:
        metrics.responses_ingested.inc()
    # A pre-rendered JSONResponse skips FastAPI's response-model round trip on the hot path.
    return JSONResponse({"id": accepted.id, "status": "accepted", "duplicate": accepted.duplicate}, status_code=202)


@router.post("/batch", status_code=202, response_model=BatchResult)
async def create_responses_batch(batch: BatchIn, principal: Writer, db: DbDep, clock: ClockDep) -> Any:
    """Up to 1,000 responses; each item is validated and stored on its own merits.

    A batch whose items are all valid is usually served by services/ingest/fast_path.py;
    this route handles the rest (and is the reference the fast path is tested against).
    """
    valid: list[tuple[int, ResponseIn]] = []
    rejected: dict[int, list[dict[str, Any]]] = {}
    for index, raw in enumerate(batch.responses):
        try:
            valid.append((index, ResponseIn.model_validate(raw)))
        except ValidationError as exc:
            rejected[index] = [
                {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]} for e in exc.errors()
            ]
    outcomes = await service.store_batch(db, principal.name, None, [payload for _, payload in valid], clock=clock)
    result = service.batch_result(len(batch.responses), dict(zip((i for i, _ in valid), outcomes)), rejected)
    metrics.responses_ingested.inc(result["accepted"])
    return JSONResponse(result, status_code=202)


@router.get("/{response_id}", response_model=ResponseOut, responses=not_found("response"))
async def get_response(response_id: str, _: Reader, db: DbDep) -> ResponseOut:
    async with db.sessions() as session:
        response = await repository.get(session, response_id)
        if response is None:
            raise NotFound(f"response {response_id} does not exist")
        classification = await classification_repository.current_classification(session, response_id)
    data = service.response_data(response)
    if classification is not None:
        data.update(classification)
    return ResponseOut.model_validate(data)


@router.patch("/{response_id}", status_code=202, response_model=ResponseAccepted, responses=not_found("response"))
async def add_comment(response_id: str, body: CommentIn, _: Writer, db: DbDep, clock: ClockDep) -> ResponseAccepted:
    """Attach a comment that arrived after the score; it is classified again."""
    async with db.unit_of_work() as session:
        await service.add_comment(session, response_id, body.comment, clock=clock)
    return ResponseAccepted(id=response_id)
