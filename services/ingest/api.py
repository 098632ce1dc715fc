"""HTTP endpoints for responses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from services.classifier import repository as classification_repository
from services.ingest import repository, service
from services.ingest.schemas import BatchIn, BatchResult, CommentIn, ResponseAccepted, ResponseIn, ResponseOut
from shared.auth import Principal
from shared.observability import metrics
from shared.problems import NotFound
from shared.web import ClockDep, DbDep, require

router = APIRouter(prefix="/v1/responses", tags=["responses"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200,
                                             description="Repeat-safe key: a repeat returns the first id.")]
Writer = Annotated[Principal, Depends(require("responses:write"))]
# The group-commit writer re-checks revocation in its transaction (services/ingest/writer.py).
FastWriter = Annotated[Principal, Depends(require("responses:write", revocation_checked_by_caller=True))]
Reader = Annotated[Principal, Depends(require("responses:read"))]


@router.post("", status_code=202, response_model=ResponseAccepted)
async def create_response(payload: ResponseIn, principal: FastWriter, request: Request,
                          idempotency_key: IdempotencyKey = None) -> Any:
    """Store one response; the 202 is sent after it is durably committed."""
    submission = service.Submission(payload, source=principal.name, idempotency_key=idempotency_key)
    accepted = await request.app.state.ingest_writer.submit(submission, key_id=principal.key_id)
    if not accepted.duplicate:
        metrics.responses_ingested.inc()
    # A pre-rendered JSONResponse skips FastAPI's response-model round trip on the hot path.
    return JSONResponse({"id": accepted.id, "status": "accepted", "duplicate": accepted.duplicate}, status_code=202)


@router.post("/batch", status_code=202, response_model=BatchResult)
async def create_responses_batch(batch: BatchIn, principal: Writer, db: DbDep, clock: ClockDep) -> Any:
    """Up to 1,000 responses; each item is validated and stored on its own merits."""
    results: list[dict[str, Any]] = []
    valid: list[tuple[int, ResponseIn]] = []
    for index, raw in enumerate(batch.responses):
        try:
            valid.append((index, ResponseIn.model_validate(raw)))
        except ValidationError as exc:
            errors = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]} for e in exc.errors()]
            results.append(_item(index, "rejected", errors=errors))
    async with db.unit_of_work() as session:
        outcomes = await service.accept_many(
            session, [service.Submission(payload, source=principal.name) for _, payload in valid], clock=clock)
    for (index, _), outcome in zip(valid, outcomes):
        if isinstance(outcome, service.Accepted):
            results.append(_item(index, "duplicate" if outcome.duplicate else "accepted", id=outcome.id))
        else:
            results.append(_item(index, "rejected", errors=[{"field": "body", "message": outcome.detail or outcome.title}]))
    results.sort(key=lambda r: r["index"])
    counts = {s: sum(1 for r in results if r["status"] == s) for s in ("accepted", "duplicate", "rejected")}
    metrics.responses_ingested.inc(counts["accepted"])
    # Rendered as BatchResult would render it, without building and re-validating a
    # model per item (a thousand per request); the schema in /openapi.json is unchanged.
    return JSONResponse({"accepted": counts["accepted"], "duplicates": counts["duplicate"],
                         "rejected": counts["rejected"], "results": results}, status_code=202)


def _item(index: int, status: str, *, id: str | None = None, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One BatchItemResult, as JSON (every field present, like the model's dump)."""
    return {"index": index, "status": status, "id": id, "errors": errors}


@router.get("/{response_id}", response_model=ResponseOut)
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


@router.patch("/{response_id}", status_code=202, response_model=ResponseAccepted)
async def add_comment(response_id: str, body: CommentIn, _: Writer, db: DbDep, clock: ClockDep) -> ResponseAccepted:
    """Attach a comment that arrived after the score; it is classified again."""
    async with db.unit_of_work() as session:
        await service.add_comment(session, response_id, body.comment, clock=clock)
    return ResponseAccepted(id=response_id)
