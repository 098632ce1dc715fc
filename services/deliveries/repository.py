"""Queries on webhook subscriptions and deliveries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.deliveries.models import Delivery, DeliveryAttempt, WebhookSubscription
from npsloop.shared.bus.contract import NOT_PREFETCHED, lookup, prefetched, store_prefetched

# event id -> the (subscription id or channel name) it already has a delivery to, for a
# group of events loaded in one query (see shared.bus.contract.prefetched).
EXISTING = "deliveries.existing"


async def prefetch_existing(
    session: AsyncSession,
    event_ids: list[str],
    *,
    subscription_ids: list[str] | None = None,
    channels: list[str] | None = None,
) -> None:
    """Load EXISTING for ``event_ids``: all their deliveries, or only those to the given subscriptions / channels.

    Naming the targets the handlers will ask about lets the query use the unique
    (subscription_id, event_id) or (channel, event_id) index instead of scanning the table.
    """
    existing: dict[str, set[str]] = {event_id: set() for event_id in event_ids}
    targets = []
    if subscription_ids is not None:
        targets.append(Delivery.subscription_id.in_(subscription_ids))
    if channels is not None:
        targets.append(Delivery.channel.in_(channels))
    if existing and (subscription_ids or channels or not targets):
        query = select(Delivery.event_id, Delivery.subscription_id, Delivery.channel).where(
            Delivery.event_id.in_(list(existing)), or_(*targets) if targets else true()
        )
        for event_id, subscription_id, channel in (await session.execute(query)).all():
            existing[event_id].add(f"subscription:{subscription_id}" if subscription_id else f"channel:{channel}")
    store_prefetched(session, EXISTING, existing)


def remember_delivery(session: AsyncSession, event_id: str, target: str) -> None:
    table = prefetched(session, EXISTING)
    if table is not None:
        table.setdefault(event_id, set()).add(target)


async def get_subscription(session: AsyncSession, subscription_id: str) -> WebhookSubscription | None:
    row = await session.get(WebhookSubscription, subscription_id)
    return row if row is not None and row.deleted_at is None else None


async def active_subscriptions(session: AsyncSession) -> list[WebhookSubscription]:
    query = (
        select(WebhookSubscription)
        .where(WebhookSubscription.deleted_at.is_(None))
        .order_by(WebhookSubscription.created_at)
    )
    return list((await session.scalars(query)).all())


async def get_delivery(session: AsyncSession, delivery_id: str) -> Delivery | None:
    return await session.get(Delivery, delivery_id)


async def delivery_exists(session: AsyncSession, subscription_id: str, event_id: str) -> bool:
    found = lookup(session, EXISTING, event_id)
    if found is not NOT_PREFETCHED:
        return f"subscription:{subscription_id}" in found  # type: ignore[operator]
    query = select(Delivery.id).where(Delivery.subscription_id == subscription_id, Delivery.event_id == event_id)
    return await session.scalar(query) is not None


async def claim_due(session: AsyncSession, now: datetime, limit: int) -> list[Delivery]:
    query = (
        select(Delivery)
        .where(Delivery.status == "pending", Delivery.next_attempt_at <= now)
        .order_by(Delivery.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.scalars(query)).all())


async def deliveries_by_id(
    session: AsyncSession, delivery_ids: list[str], *, lock: bool = False
) -> dict[str, Delivery]:
    """The deliveries with these ids, in one query (a round of attempts records up to 50);
    ``lock``: FOR UPDATE, so what is read is what the transaction's writes build on."""
    if not delivery_ids:
        return {}
    query = select(Delivery).where(Delivery.id.in_(delivery_ids))
    return {d.id: d for d in (await session.scalars(query.with_for_update() if lock else query)).all()}


async def deliveries_of(session: AsyncSession, subscription_id: str, limit: int = 100) -> list[Delivery]:
    query = select(Delivery).where(Delivery.subscription_id == subscription_id).order_by(Delivery.created_at.desc())
    return list((await session.scalars(query.limit(limit))).all())


async def attempts_of(session: AsyncSession, delivery_ids: list[str]) -> list[DeliveryAttempt]:
    if not delivery_ids:
        return []
    query = select(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(delivery_ids)).order_by(DeliveryAttempt.id)
    return list((await session.scalars(query)).all())


async def channel_delivery_exists(session: AsyncSession, channel: str, event_id: str) -> bool:
    found = lookup(session, EXISTING, event_id)
    if found is not NOT_PREFETCHED:
        return f"channel:{channel}" in found  # type: ignore[operator]
    query = select(Delivery.id).where(Delivery.channel == channel, Delivery.event_id == event_id)
    return await session.scalar(query) is not None


async def channel_deliveries(
    session: AsyncSession, *, channel: str | None = None, status: str | None = None, limit: int = 100
) -> list[Delivery]:
    """Deliveries to policy channels, newest first (ops look here for dead alerts)."""
    query = select(Delivery).where(Delivery.channel.is_not(None))
    if channel:
        query = query.where(Delivery.channel == channel)
    if status:
        query = query.where(Delivery.status == status)
    return list((await session.scalars(query.order_by(Delivery.created_at.desc()).limit(limit))).all())
