"""HTTP endpoints for webhook subscriptions and the delivery logs (subscriptions' and policy channels')."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from npsloop.services.deliveries import customer_messages, repository, service
from npsloop.services.deliveries.schemas import (
    DeliveryAttemptOut,
    DeliveryList,
    DeliveryOut,
    DestinationOut,
    WebhookCreated,
    WebhookIn,
    WebhookList,
    WebhookOut,
)
from npsloop.shared.auth import Principal
from npsloop.shared.problems import NotFound, not_found
from npsloop.shared.web import ClockDep, DbDep, require

router = APIRouter(tags=["webhooks"])
Admin = Annotated[Principal, Depends(require("admin"))]


@router.post("/v1/webhooks", status_code=201, response_model=WebhookCreated)
async def create_webhook(body: WebhookIn, request: Request, _: Admin, db: DbDep, clock: ClockDep) -> WebhookCreated:
    allow_private = request.app.state.settings.allow_private_webhook_urls
    async with db.unit_of_work() as session:
        row = await service.create_subscription(session, body, allow_private=allow_private, clock=clock)
    return WebhookCreated(
        id=row.id,
        url=row.url,
        events=row.events,
        description=row.description,
        created_at=row.created_at,
        secret=row.secret,
    )


@router.get("/v1/webhooks", response_model=WebhookList)
async def list_webhooks(_: Admin, db: DbDep) -> WebhookList:
    async with db.sessions() as session:
        rows = await repository.active_subscriptions(session)
    return WebhookList(webhooks=[WebhookOut.model_validate(r) for r in rows])


@router.get("/v1/webhooks/{webhook_id}", response_model=WebhookOut, responses=not_found("webhook"))
async def get_webhook(webhook_id: str, _: Admin, db: DbDep) -> WebhookOut:
    async with db.sessions() as session:
        row = await repository.get_subscription(session, webhook_id)
    if row is None:
        raise NotFound(f"webhook {webhook_id} does not exist")
    return WebhookOut.model_validate(row)


@router.delete("/v1/webhooks/{webhook_id}", status_code=204, responses=not_found("webhook"))
async def delete_webhook(webhook_id: str, _: Admin, db: DbDep, clock: ClockDep) -> Response:
    async with db.unit_of_work() as session:
        await service.delete_subscription(session, webhook_id, clock=clock)
    return Response(status_code=204)


@router.get("/v1/webhooks/{webhook_id}/deliveries", response_model=DeliveryList, responses=not_found("webhook"))
async def list_deliveries(webhook_id: str, _: Admin, db: DbDep, clock: ClockDep) -> DeliveryList:
    """The subscription's latest deliveries with every attempt, and its backlog and circuit breaker."""
    async with db.sessions() as session:
        if await repository.get_subscription(session, webhook_id) is None:
            raise NotFound(f"webhook {webhook_id} does not exist")
        deliveries = await repository.deliveries_of(session, webhook_id)
        attempts = await repository.attempts_of(session, [d.id for d in deliveries])
        backlog = await service.destination_backlog(session, now=clock.now())
    by_delivery: dict[str, list[DeliveryAttemptOut]] = {}
    for attempt in attempts:
        by_delivery.setdefault(attempt.delivery_id, []).append(DeliveryAttemptOut.model_validate(attempt))
    return DeliveryList(
        deliveries=[
            DeliveryOut.model_validate(d).model_copy(update={"attempt_log": by_delivery.get(d.id, [])})
            for d in deliveries
        ],
        destinations=[
            DestinationOut.model_validate(d) for d in backlog if d.kind == "subscription" and d.id == webhook_id
        ],
    )


@router.get(
    "/v1/deliveries",
    response_model=DeliveryList,
    responses={404: {"description": "The channel is not in the policy file"}},
)
async def channel_deliveries(
    request: Request,
    _: Admin,
    db: DbDep,
    clock: ClockDep,
    channel: str | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeliveryList:
    """Alerts to policy channels (and messages to customers, channel ``customer-email``) with every
    attempt; ``status=dead`` lists what needs ops' attention.

    ``destinations``: the backlog and circuit breaker of every destination with deliveries
    pending (subscriptions too), or of ``channel`` alone."""
    known = [*request.app.state.runtime.policy.channels, customer_messages.CHANNEL]
    if channel is not None and channel not in known:
        raise NotFound(f"channel {channel} is not in the policy file (nor {customer_messages.CHANNEL})")
    async with db.sessions() as session:
        rows = await repository.channel_deliveries(session, channel=channel, status=status, limit=limit)
        attempts = await repository.attempts_of(session, [d.id for d in rows])
        destinations = await service.destination_backlog(session, now=clock.now())
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


@router.post(
    "/v1/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DeliveryOut,
    responses={
        **not_found("delivery"),
        409: {"description": "The delivery is still pending; it will be attempted at next_attempt_at"},
    },
)
async def redeliver(delivery_id: str, _: Admin, db: DbDep, clock: ClockDep) -> DeliveryOut:
    async with db.unit_of_work() as session:
        delivery = await service.redeliver(session, delivery_id, clock=clock)
    return DeliveryOut.model_validate(delivery)
