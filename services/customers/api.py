"""GET /v1/customers/{customer_id}: the story a customer-success lead reads before calling."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import StringConstraints

from npsloop.services.customers import service
from npsloop.services.customers.schemas import CustomerMatches, CustomerOut
from npsloop.shared.auth import Principal
from npsloop.shared.problems import UnprocessableContent, not_found
from npsloop.shared.web import ClockDep, DbDep, require

router = APIRouter(prefix="/v1/customers", tags=["customers"])

Reader = Annotated[Principal, Depends(require("responses:read"))]
SearchText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320)]


@router.get("", response_model=CustomerMatches)
async def find_customers(
    _: Reader,
    db: DbDep,
    email: Annotated[SearchText | None, Query(description="Exact email, any case.")] = None,
    customer_id: Annotated[SearchText | None, Query(description="Exact customer id.")] = None,
) -> CustomerMatches:
    """Find customers by email or id (the dashboard's search box). Needs ``responses:read``."""
    if not email and not customer_id:
        raise UnprocessableContent(
            "give email or customer_id", errors=[{"field": "email", "message": "email or customer_id is required"}]
        )
    async with db.sessions() as session:
        return CustomerMatches(customers=await service.find(session, email=email, customer_id=customer_id))


@router.get("/{customer_id}", response_model=CustomerOut, responses=not_found("customer (never answered, or erased)"))
async def get_customer(customer_id: str, request: Request, _: Reader, db: DbDep, clock: ClockDep) -> CustomerOut:
    """The customer's latest identity and account, current category, every response with its
    classification, tasks with status, SLA and outcome, business outcomes, referral requests and
    survey eligibility. 404 for a customer who never answered or was erased. Needs ``responses:read``."""
    async with db.sessions() as session:
        return await service.story(session, customer_id, policy=request.app.state.runtime.policy, clock=clock)
