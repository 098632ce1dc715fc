"""Queries on webhook subscriptions and deliveries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.deliveries.models import Delivery, DeliveryAttempt, WebhookSubscription


async def get_subscription(session: AsyncSession, subscription_id: str) -> WebhookSubscription | None:
    row = await session.get(WebhookSubscription, subscription_id)
    return row if row is not None and row.deleted_at is None else None


async def active_subscriptions(session: AsyncSession) -> list[WebhookSubscription]:
    query = select(WebhookSubscription).where(WebhookSubscription.deleted_at.is_(None)).order_by(WebhookSubscription.created_at)
    return list((await session.scalars(query)).all())


async def get_delivery(session: AsyncSession, delivery_id: str) -> Delivery | None:
    return await session.get(Delivery, delivery_id)


async def delivery_exists(session: AsyncSession, subscription_id: str, event_id: str) -> bool:
    query = select(Delivery.id).where(Delivery.subscription_id == subscription_id, Delivery.event_id == event_id)
    return await session.scalar(query) is not None


async def claim_due(session: AsyncSession, now: datetime, limit: int) -> list[Delivery]:
    query = (select(Delivery).where(Delivery.status == "pending", Delivery.next_attempt_at <= now)
             .order_by(Delivery.next_attempt_at).limit(limit).with_for_update(skip_locked=True))
    return list((await session.scalars(query)).all())


async def deliveries_of(session: AsyncSession, subscription_id: str, limit: int = 100) -> list[Delivery]:
    query = select(Delivery).where(Delivery.subscription_id == subscription_id).order_by(Delivery.created_at.desc())
    return list((await session.scalars(query.limit(limit))).all())


async def attempts_of(session: AsyncSession, delivery_ids: list[str]) -> list[DeliveryAttempt]:
    if not delivery_ids:
        return []
    query = select(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(delivery_ids)).order_by(DeliveryAttempt.id)
    return list((await session.scalars(query)).all())


async def channel_delivery_exists(session: AsyncSession, channel: str, event_id: str) -> bool:
    query = select(Delivery.id).where(Delivery.channel == channel, Delivery.event_id == event_id)
    return await session.scalar(query) is not None


async def channel_deliveries(session: AsyncSession, *, channel: str | None = None, status: str | None = None,
                             limit: int = 100) -> list[Delivery]:
    """Deliveries to policy channels, newest first (ops look here for dead alerts)."""
    query = select(Delivery).where(Delivery.channel.is_not(None))
    if channel:
        query = query.where(Delivery.channel == channel)
    if status:
        query = query.where(Delivery.status == status)
    return list((await session.scalars(query.order_by(Delivery.created_at.desc()).limit(limit))).all())
