"""Bus subscriptions of the follow-up service."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.followup import alerts, service
from npsloop.shared import events
from npsloop.shared.bus.contract import Subscription
from npsloop.shared.clock import Clock
from npsloop.shared.policy import Policy

CONSUMER = "followup"


def subscriptions(*, policy: Policy, clock: Clock, public_url: str = "http://127.0.0.1:8000") -> list[Subscription]:
    async def on_classified(session: AsyncSession, event: events.CloudEvent) -> None:
        await service.consider_response(session, event.data, policy=policy, clock=clock)

    return [
        Subscription(
            consumer=CONSUMER,
            topics=(events.TOPIC_CLASSIFICATIONS,),
            handler=on_classified,
            event_types=frozenset({events.RESPONSE_CLASSIFIED}),
            prefetch=service.prefetch,
        ),
        *alerts.subscriptions(policy=policy, clock=clock, public_url=public_url),
    ]
