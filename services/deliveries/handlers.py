"""Bus subscription of the delivery service: every event becomes deliveries to webhooks."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.deliveries import service
from npsloop.shared import events
from npsloop.shared.bus.contract import Subscription
from npsloop.shared.clock import Clock

CONSUMER = "webhooks"


def subscriptions(*, clock: Clock) -> list[Subscription]:
    async def on_event(session: AsyncSession, event: events.CloudEvent) -> None:
        await service.fan_out(session, event, clock=clock)

    topics = tuple(sorted(set(events.EVENT_TOPICS.values())))
    # Idempotent: a delivery is unique per (subscription, event) and fan_out checks first, so
    # the consumer keeps no processed_events row for each of the events it reads (all of them).
    # It reads only the events some subscription wants (with none, it only moves its position).
    return [
        Subscription(
            consumer=CONSUMER,
            topics=topics,
            handler=on_event,
            prefetch=service.prefetch,
            idempotent=True,
            interest=service.interest,
        )
    ]
