"""Bus subscriptions of the classifier service."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.classifier import repository, service
from npsloop.services.classifier.model import Classifier
from npsloop.shared import events
from npsloop.shared.bus.contract import Subscription
from npsloop.shared.clock import Clock

CONSUMER = "classifier"


def subscriptions(*, classifier: Classifier, clock: Clock) -> list[Subscription]:
    async def on_response(session: AsyncSession, event: events.CloudEvent) -> None:
        await service.classify_response(session, event.data, classifier=classifier, clock=clock)

    async def prefetch(session: AsyncSession, group: list[events.CloudEvent]) -> None:
        if classifier.prepares_batches:
            # sentence embeddings: the group in one batch, off the event loop (milliseconds per comment)
            await asyncio.to_thread(classifier.prepare, [event.data.get("comment") for event in group])
        await repository.prefetch(session, [event.data["id"] for event in group])

    return [
        Subscription(
            consumer=CONSUMER,
            topics=(events.TOPIC_RESPONSES,),
            handler=on_response,
            event_types=frozenset({events.RESPONSE_RECEIVED, events.RESPONSE_UPDATED}),
            prefetch=prefetch,
        )
    ]
