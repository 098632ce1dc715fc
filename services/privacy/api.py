"""``DELETE /v1/customers/{customer_id}``: the right to erasure."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from npsloop.services.privacy import service
from npsloop.services.privacy.schemas import ErasureOut
from npsloop.shared.auth import Principal
from npsloop.shared.web import ClockDep, DbDep, require

router = APIRouter(prefix="/v1/customers", tags=["privacy"])
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
