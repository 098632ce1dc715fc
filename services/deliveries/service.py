"""Webhook subscriptions, fan-out of events into deliveries, alerts to policy channels, and
the retry schedule. Other services reach deliveries through this module."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.deliveries import channels, customer_messages, repository, signing
from npsloop.services.deliveries.destinations import CHANNEL, CLOSED, SUBSCRIPTION, split_key
from npsloop.services.deliveries.models import Delivery, WebhookSubscription
from npsloop.services.deliveries.schemas import Alert, WebhookIn
from npsloop.services.deliveries.urls import UnsafeUrl, check_url
from npsloop.services.deliveries.wakeup import DELIVERIES_ENQUEUED, SUBSCRIPTIONS_CHANGED
from npsloop.shared import row_buffer
from npsloop.shared.clock import Clock
from npsloop.shared.db import signal_on_commit
from npsloop.shared.events import CloudEvent
from npsloop.shared.ids import new_id
from npsloop.shared.policy import EmailChannel, SlackChannel, WebhookChannel
from npsloop.shared.problems import Conflict, NotFound, UnprocessableContent

FIRST_RETRY_SECONDS = 5.0
MAX_RETRY_SECONDS = 3600.0


async def create_subscription(
    session: AsyncSession, body: WebhookIn, *, allow_private: bool, clock: Clock
) -> WebhookSubscription:
    try:
        await check_url(str(body.url), allow_private=allow_private)
    except UnsafeUrl as exc:
        raise UnprocessableContent(f"url: {exc}", errors=[{"field": "url", "message": str(exc)}]) from None
    row = WebhookSubscription(
        # Random (version 4), not time-ordered: created rarely, and its first eight characters
        # label the subscription's metrics (destinations.short_label), which must differ.
        id=str(uuid.uuid4()),
        url=str(body.url),
        events=body.events,
        secret=signing.new_secret(),
        description=body.description,
        created_at=clock.now(),
    )
    session.add(row)
    signal_on_commit(session, SUBSCRIPTIONS_CHANGED)  # served from its first event, not the worker's next read
    return row


async def delete_subscription(session: AsyncSession, subscription_id: str, *, clock: Clock) -> None:
    row = await repository.get_subscription(session, subscription_id)
    if row is None:
        raise NotFound(f"webhook {subscription_id} does not exist")
    row.deleted_at = clock.now()
    signal_on_commit(session, SUBSCRIPTIONS_CHANGED)


async def fan_out(session: AsyncSession, event: CloudEvent, *, clock: Clock) -> int:
    """One pending delivery per subscription that wants this event; none twice."""
    created = 0
    now = clock.now()
    envelope = None
    for subscription in await _active_subscriptions(session):
        if not _wants(subscription, event.type):
            continue
        if await repository.delivery_exists(session, subscription.id, event.id):
            continue
        envelope = envelope or event.to_json()
        row_buffer.add(
            session,
            Delivery,
            id=new_id(),
            subscription_id=subscription.id,
            event_id=event.id,
            event_type=event.type,
            envelope=envelope,
            status="pending",
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
        repository.remember_delivery(session, event.id, f"subscription:{subscription.id}")
        signal_on_commit(session, DELIVERIES_ENQUEUED)
        created += 1
    return created


async def prefetch(session: AsyncSession, group: list[CloudEvent]) -> None:
    """What :func:`fan_out` reads, for a whole group of events: subscriptions, and existing deliveries of
    the events some subscription wants (to those subscriptions: an indexed query, none if nobody listens)."""
    subscriptions = await _active_subscriptions(session)
    wanted = [event.id for event in group if any(_wants(s, event.type) for s in subscriptions)]
    await repository.prefetch_existing(session, wanted, subscription_ids=[s.id for s in subscriptions])


async def interest(session: AsyncSession) -> frozenset[str] | None:
    """The event types some active subscription asked for (None: one asked for every type):
    the fan-out consumer passes over the others without reading them."""
    types: set[str] = set()
    for subscription in await _active_subscriptions(session):
        if "*" in subscription.events:
            return None
        types.update(subscription.events)
    return frozenset(types)


async def _active_subscriptions(session: AsyncSession) -> list[WebhookSubscription]:
    # Consumers handle events in groups inside one transaction: read the subscriptions
    # once per transaction rather than once per event.
    subscriptions = session.info.get("active_webhook_subscriptions")
    if subscriptions is None:
        subscriptions = session.info["active_webhook_subscriptions"] = await repository.active_subscriptions(session)
    return subscriptions


def _wants(subscription: WebhookSubscription, event_type: str) -> bool:
    return "*" in subscription.events or event_type in subscription.events


def enqueue_alert(
    session: AsyncSession,
    *,
    name: str,
    channel: SlackChannel | EmailChannel | WebhookChannel,
    event_id: str,
    event_type: str,
    alert: Alert,
    envelope: str,
    now: datetime,
) -> Delivery:
    """Store one pending delivery of ``alert`` to the policy channel ``name`` (webhook
    channels get the CloudEvent ``envelope``); check :func:`alert_enqueued` first."""
    return channels.enqueue(
        session,
        name=name,
        channel=channel,
        event_id=event_id,
        event_type=event_type,
        alert=alert,
        envelope=envelope,
        now=now,
    )


async def alert_enqueued(session: AsyncSession, *, name: str, event_id: str) -> bool:
    """Whether event ``event_id`` already has a delivery to the policy channel ``name``."""
    return await channels.already_enqueued(session, name=name, event_id=event_id)


async def prefetch_alerts(session: AsyncSession, event_ids: list[str], *, channel_names: list[str]) -> None:
    """What :func:`alert_enqueued` (for these channels) and :func:`customer_message_enqueued`
    ask about a group of events, in one query."""
    await repository.prefetch_existing(session, event_ids, channels=[*channel_names, customer_messages.CHANNEL])


def enqueue_customer_message(
    session: AsyncSession, *, to: str, subject: str, body: str, event_id: str, event_type: str, now: datetime
) -> Delivery:
    """One pending email to the customer, sent as written; check :func:`customer_message_enqueued` first."""
    return customer_messages.enqueue(
        session, to=to, subject=subject, body=body, event_id=event_id, event_type=event_type, now=now
    )


async def customer_message_enqueued(session: AsyncSession, *, event_id: str) -> bool:
    """Whether event ``event_id`` already has its email to the customer."""
    return await customer_messages.already_enqueued(session, event_id=event_id)


def next_attempt_at(attempts: int, now: datetime) -> datetime:
    """Exponential backoff with jitter: about 5 s, 10 s, 20 s … capped at an hour."""
    delay = min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS)
    return now + timedelta(seconds=delay * random.uniform(0.75, 1.25))


async def redeliver(session: AsyncSession, delivery_id: str, *, clock: Clock) -> Delivery:
    delivery = await repository.get_delivery(session, delivery_id)
    if delivery is None:
        raise NotFound(f"delivery {delivery_id} does not exist")
    if delivery.status == "pending":
        raise Conflict("the delivery is still pending; it will be attempted at next_attempt_at")
    delivery.status = "pending"
    delivery.next_attempt_at = clock.now()
    return delivery


@dataclass(frozen=True)
class DestinationBacklog:
    """What waits for one destination, and whether its circuit breaker holds it back."""

    kind: str  # subscription | channel
    id: str  # the subscription id or the channel name
    pending: int
    due: int  # pending and due now (for an open breaker: held back)
    oldest_pending_at: datetime | None
    state: str  # closed | open | half_open
    consecutive_failures: int
    retry_at: datetime | None
    last_error: str | None


async def destination_backlog(session: AsyncSession, *, now: datetime) -> list[DestinationBacklog]:
    """Every destination with pending deliveries or a breaker that is not closed, biggest backlog first."""
    found: dict[str, dict] = {}
    for subscription_id, channel, pending, due, oldest in await repository.pending_by_destination(session, now):
        key = f"{SUBSCRIPTION}:{subscription_id}" if subscription_id else f"{CHANNEL}:{channel}"
        found[key] = {"pending": pending, "due": due, "oldest_pending_at": oldest}
    states = {row.key: row for row in await repository.destination_states(session)}
    for key, state in states.items():
        if state.state != CLOSED:
            found.setdefault(key, {"pending": 0, "due": 0, "oldest_pending_at": None})
    backlog = []
    for key, counts in found.items():
        row = states.get(key)
        kind, ref = split_key(key)
        backlog.append(
            DestinationBacklog(
                kind=kind,
                id=ref,
                **counts,
                state=row.state if row else CLOSED,
                consecutive_failures=row.failures if row else 0,
                retry_at=row.retry_at if row and row.state != CLOSED else None,
                last_error=row.last_error if row and row.state != CLOSED else None,
            )
        )
    return sorted(backlog, key=lambda b: (-b.pending, b.kind, b.id))
