"""``DELETE /v1/customers/{customer_id}``: the right to erasure; ``GET /v1/privacy/erasures``: its audit."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from npsloop.services.privacy import repository, service
from npsloop.services.privacy.models import ErasureRecord
from npsloop.services.privacy.schemas import ErasureList, ErasureOut, ErasureRecordOut
from npsloop.shared.auth import Principal
from npsloop.shared.problems import BadRequest
from npsloop.shared.web import ClockDep, DbDep, require

router = APIRouter(prefix="/v1/customers", tags=["privacy"])
audit_router = APIRouter(prefix="/v1/privacy", tags=["privacy"])
Admin = Annotated[Principal, Depends(require("admin"))]


@router.delete("/{customer_id}", response_model=ErasureOut)
async def erase_customer(
    customer_id: Annotated[str, Path(min_length=1, max_length=200)],
    principal: Admin,
    db: DbDep,
    clock: ClockDep,
    reason: Annotated[str | None, Query(max_length=500, description="Kept in the audit record.")] = None,
) -> ErasureOut:
    """Erase or irreversibly anonymise this customer's responses, comments, tasks notes and
    every stored copy (event log, dead letters, deliveries); an audit record is written.

    Unknown customers are answered the same way (and audited), so the answer never tells
    whether someone was a customer.
    """
    async with db.unit_of_work() as session:
        record = await service.erase_customer(
            session, customer_id, requested_by=principal.name, reason=reason, clock=clock
        )
    return ErasureOut(erasure_id=record.id, erased_at=record.erased_at, counts=record.counts)


@audit_router.get("/erasures", response_model=ErasureList)
async def list_erasures(
    _: Admin,
    db: DbDep,
    customer_id: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Only the erasures of this customer id.")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ErasureList:
    """The audit trail of erasures, newest first: proof that each request was honoured.

    A record names the requesting key, the reason and the counts of what changed, and the
    customer only by the SHA-256 of their id (ask with ``customer_id`` to find theirs).
    """
    digest = service.customer_hash(customer_id) if customer_id is not None else None
    async with db.sessions() as session:
        records = await repository.recent_erasures(
            session, limit=limit, customer_id_sha256=digest, after=_parse_cursor(cursor) if cursor else None
        )
    return ErasureList(
        erasures=[
            ErasureRecordOut(
                erasure_id=r.id,
                customer_id_sha256=r.customer_id_sha256,
                requested_by=r.requested_by,
                reason=r.reason,
                erased_at=r.erased_at,
                counts=r.counts,
            )
            for r in records
        ],
        next_cursor=_cursor(records[-1]) if len(records) == limit else None,
    )


def _cursor(record: ErasureRecord) -> str:
    return base64.urlsafe_b64encode(f"{record.erased_at.isoformat()}|{record.id}".encode()).decode()


def _parse_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        erased_at, erasure_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(erased_at), erasure_id
    except Exception:
        raise BadRequest(
            "cursor is not one this API returned", errors=[{"field": "cursor", "message": "invalid"}]
        ) from None
