"""HTTP endpoints around the loop: survey eligibility and sends, business outcomes,
the recovery rate, and the delivery log of policy channels."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from npsloop.services.deliveries import repository as delivery_repository
from npsloop.services.deliveries import service as delivery_service
from npsloop.services.deliveries.schemas import DeliveryAttemptOut, DeliveryList, DeliveryOut, DestinationOut
from npsloop.services.followup import eligibility, outcomes, repository
from npsloop.services.followup.schemas import (
    EligibilityOut,
    OutcomeIn,
    OutcomeList,
    OutcomeOut,
    RecoveryOut,
    SurveySentIn,
    SurveySentOut,
)
from npsloop.shared.auth import Principal
from npsloop.shared.clock import Instant
from npsloop.shared.problems import NotFound, UnprocessableContent
from npsloop.shared.web import ClockDep, DbDep, require, require_any

router = APIRouter()


SurveyAsker = Annotated[Principal, Depends(require_any("responses:write", "responses:read"))]
Writer = Annotated[Principal, Depends(require("responses:write"))]
Analyst = Annotated[Principal, Depends(require_any("analytics:read", "tasks:read"))]
Admin = Annotated[Principal, Depends(require("admin"))]


def _one_of(customer_id: str | None, account_id: str | None) -> None:
    if not customer_id and not account_id:
        raise UnprocessableContent(
            "give customer_id or account_id",
            errors=[{"field": "customer_id", "message": "customer_id or account_id is required"}],
        )


@router.get("/v1/surveys/eligibility", response_model=EligibilityOut, tags=["surveys"])
async def survey_eligibility(
    request: Request,
    _: SurveyAsker,
    db: DbDep,
    clock: ClockDep,
    customer_id: str | None = None,
    account_id: str | None = None,
) -> EligibilityOut:
    """Whether the customer (and/or account) may be surveyed now, and from when (``throttle.survey_every``).

    Needs a key with ``responses:write`` or ``responses:read``."""
    _one_of(customer_id, account_id)
    async with db.sessions() as session:
        found = await eligibility.eligibility(
            session,
            customer_id=customer_id,
            account_id=account_id,
            policy=request.app.state.runtime.policy,
            clock=clock,
        )
    return EligibilityOut(**found.__dict__)


@router.post("/v1/surveys/sent", status_code=201, response_model=SurveySentOut, tags=["surveys"])
async def survey_sent(
    body: SurveySentIn, request: Request, principal: Writer, db: DbDep, clock: ClockDep
) -> SurveySentOut:
    """Report a survey sent to a customer; eligibility then counts from it."""
    _one_of(body.customer_id, body.account_id)
    async with db.unit_of_work() as session:
        send = eligibility.record_send(
            session,
            customer_id=body.customer_id,
            account_id=body.account_id,
            channel=body.channel,
            touchpoint=body.touchpoint,
            sent_at=body.sent_at,
            actor=principal.name,
            clock=clock,
        )
    every = request.app.state.runtime.policy.throttle.survey_every
    return SurveySentOut(
        customer_id=send.customer_id,
        account_id=send.account_id,
        sent_at=send.sent_at,
        next_eligible_at=send.sent_at + every,
    )


@router.post("/v1/outcomes", status_code=201, response_model=OutcomeOut, tags=["outcomes"])
async def record_outcome(body: OutcomeIn, principal: Writer, db: DbDep, clock: ClockDep) -> OutcomeOut:
    """Record churn, renewal, expansion or contraction of a customer or account, to set against NPS."""
    _one_of(body.customer_id, body.account_id)
    async with db.unit_of_work() as session:
        row = outcomes.record_outcome(
            session,
            customer_id=body.customer_id,
            account_id=body.account_id,
            outcome=body.outcome,
            revenue=body.revenue,
            currency=body.currency,
            occurred_on=body.occurred_on,
            note=body.note,
            actor=principal.name,
            clock=clock,
        )
    return OutcomeOut.model_validate(row)


@router.get("/v1/outcomes", response_model=OutcomeList, tags=["outcomes"])
async def list_outcomes(
    _: Analyst,
    db: DbDep,
    customer_id: str | None = None,
    account_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> OutcomeList:
    """Business outcomes, newest first. Needs a key with ``analytics:read`` or ``tasks:read``."""
    async with db.sessions() as session:
        rows = await repository.business_outcomes(session, customer_id=customer_id, account_id=account_id, limit=limit)
    return OutcomeList(outcomes=[OutcomeOut.model_validate(r) for r in rows])


@router.get("/v1/followup/recovery", response_model=RecoveryOut, tags=["tasks"])
async def recovery(
    _: Analyst, db: DbDep, since: Instant | None = None, until: Instant | None = None, team: str | None = None
) -> RecoveryOut:
    """Recovery rate: resolved detractor tasks whose customer's next answer was passive or promoter.

    Needs a key with ``analytics:read`` or ``tasks:read``."""
    async with db.sessions() as session:
        rate = await outcomes.recovery_rate(session, since=since, until=until, team=team)
    return RecoveryOut(**rate.__dict__)


@router.get("/v1/deliveries", response_model=DeliveryList, tags=["webhooks"])
async def channel_deliveries(
    request: Request,
    _: Admin,
    db: DbDep,
    clock: ClockDep,
    channel: str | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeliveryList:
    """Alerts to policy channels with every attempt; ``status=dead`` lists what needs ops' attention.

    ``destinations``: the backlog and circuit breaker of every destination with deliveries
    pending (subscriptions too), or of ``channel`` alone."""
    if channel is not None and channel not in request.app.state.runtime.policy.channels:
        raise NotFound(f"channel {channel} is not in the policy file")
    async with db.sessions() as session:
        rows = await delivery_repository.channel_deliveries(session, channel=channel, status=status, limit=limit)
        attempts = await delivery_repository.attempts_of(session, [d.id for d in rows])
        destinations = await delivery_service.destination_backlog(session, now=clock.now())
    if channel is not None:
        destinations = [d for d in destinations if d.kind == "channel" and d.id == channel]
    by_delivery: dict[str, list[DeliveryAttemptOut]] = {}
    for attempt in attempts:
        by_delivery.setdefault(attempt.delivery_id, []).append(DeliveryAttemptOut.model_validate(attempt))
    return DeliveryList(
        deliveries=[
            DeliveryOut.model_validate(d).model_copy(update={"attempt_log": by_delivery.get(d.id, [])}) for d in rows
        ],
        destinations=[DestinationOut.model_validate(d) for d in destinations],
    )
