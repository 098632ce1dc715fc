"""HTTP endpoints for responses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from services.classifier import repository as classification_repository
from services.ingest import repository, service
from services.ingest.schemas import (BatchIn, BatchItemResult, BatchResult, CommentIn, ResponseAccepted, ResponseIn,
                                     ResponseOut)
from shared.auth import Principal
from shared.observability import metrics
from shared.problems import NotFound
from shared.web import ClockDep, DbDep, require

router = APIRouter(prefix="/v1/responses", tags=["responses"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200,
                                             description="Repeat-safe key: a repeat returns the first id.")]
Writer = Annotated[Principal, Depends(require("responses:write"))]
Reader = Annotated[Principal, Depends(require("responses:read"))]


async def _accept(db, clock, payload: ResponseIn, *, source: str, idempotency_key: str | None) -> service.Accepted:
    # Two identical requests racing past the duplicate check: the unique constraint
    # stops the second, which then finds and returns the first.
    for attempt in (1, 2):
        try:
            async with db.unit_of_work() as session:
                return await service.accept_response(session, payload, source=source,
                                                     idempotency_key=idempotency_key, clock=clock)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@router.post("", status_code=202, response_model=ResponseAccepted)
async def create_response(payload: ResponseIn, principal: Writer, db: DbDep, clock: ClockDep,
                          idempotency_key: IdempotencyKey = None) -> Any:
    accepted = await _accept(db, clock, payload, source=principal.name, idempotency_key=idempotency_key)
    if not accepted.duplicate:
        metrics.responses_ingested.inc()
    return JSONResponse(ResponseAccepted(id=accepted.id, duplicate=accepted.duplicate).model_dump(), status_code=202)


@router.post("/batch", status_code=202, response_model=BatchResult)
async def create_responses_batch(batch: BatchIn, principal: Writer, db: DbDep, clock: ClockDep) -> BatchResult:
    """Up to 1,000 responses; each item is validated and stored on its own merits."""
    results: list[BatchItemResult] = []
    valid: list[tuple[int, ResponseIn]] = []
    for index, raw in enumerate(batch.responses):
        try:
            valid.append((index, ResponseIn.model_validate(raw)))
        except ValidationError as exc:
            errors = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]} for e in exc.errors()]
            results.append(BatchItemResult(index=index, status="rejected", errors=errors))
    async with db.unit_of_work() as session:
        for index, payload in valid:
            accepted = await service.accept_response(session, payload, source=principal.name, idempotency_key=None,
                                                     clock=clock)
            await session.flush()  # a repeated external_id inside the batch must see the earlier item
            results.append(BatchItemResult(index=index, status="duplicate" if accepted.duplicate else "accepted",
                                           id=accepted.id))
    results.sort(key=lambda r: r.index)
    counts = {s: sum(1 for r in results if r.status == s) for s in ("accepted", "duplicate", "rejected")}
    metrics.responses_ingested.inc(counts["accepted"])
    return BatchResult(accepted=counts["accepted"], duplicates=counts["duplicate"], rejected=counts["rejected"],
                       results=results)


@router.get("/{response_id}", response_model=ResponseOut)
async def get_response(response_id: str, _: Reader, db: DbDep) -> ResponseOut:
    async with db.sessions() as session:
        response = await repository.get(session, response_id)
        if response is None:
            raise NotFound(f"response {response_id} does not exist")
        classification = await classification_repository.get(session, response_id)
    data = service.response_data(response)
    if classification is not None:
        data.update(classification_repository.as_fields(classification))
    return ResponseOut.model_validate(data)


@router.patch("/{response_id}", status_code=202, response_model=ResponseAccepted)
async def add_comment(response_id: str, body: CommentIn, _: Writer, db: DbDep, clock: ClockDep) -> ResponseAccepted:
    """Attach a comment that arrived after the score; it is classified again."""
    async with db.unit_of_work() as session:
        await service.add_comment(session, response_id, body.comment, clock=clock)
    return ResponseAccepted(id=response_id)
