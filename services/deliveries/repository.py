"""Queries on webhook subscriptions and deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Row, Select, Table, bindparam, case, func, insert, or_, select, true, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.deliveries.models import Delivery, DeliveryAttempt, DeliveryDestination, WebhookSubscription
from npsloop.shared.bus.contract import NOT_PREFETCHED, lookup, prefetched, store_prefetched
from npsloop.shared.db import among

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
        targets.append(among(session, Delivery.subscription_id, subscription_ids))
    if channels is not None:
        targets.append(among(session, Delivery.channel, channels))
    if existing and (subscription_ids or channels or not targets):
        query = select(Delivery.event_id, Delivery.subscription_id, Delivery.channel).where(
            among(session, Delivery.event_id, existing), or_(*targets) if targets else true()
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


def _to(subscription_id: str | None, channel: str | None):
    if subscription_id is not None:
        return Delivery.subscription_id == subscription_id
    return (Delivery.subscription_id.is_(None)) & (Delivery.channel == channel)


async def claim_due(
    session: AsyncSession, now: datetime, wanted: list[tuple[str | None, str | None, int]]
) -> list[Row]:
    """Lock due pending deliveries: for each (subscription id, channel, n), that destination's n
    oldest, each found through its own index range (one statement for all).

    Rows another worker has locked are skipped (PostgreSQL), and the outer query checks the
    rows again, so one leased and committed meanwhile is not taken twice.
    """
    if not wanted:
        return []
    rows = (await session.execute(claim_query(now, wanted))).all()
    return sorted(rows, key=lambda row: row.next_attempt_at)  # oldest first, as each destination's part


def claim_query(now: datetime, wanted: list[tuple[str | None, str | None, int]]) -> Select:
    """claim_due's statement."""
    parts = [
        select(Delivery.id)
        .where(_to(subscription_id, channel), Delivery.status == "pending", Delivery.next_attempt_at <= now)
        .order_by(Delivery.next_attempt_at)
        .limit(n)
        .subquery()
        for subscription_id, channel, n in wanted
    ]
    ids = union_all(*(select(part.c.id) for part in parts)) if len(parts) > 1 else select(parts[0].c.id)
    wanted_ids = ids.subquery("wanted")
    # Plain rows, not ORM objects: the worker only reads them, and leases them in one statement.
    # Driven from the ids found, a primary-key lookup each, and not ordered here: with
    # "id IN (…)", or an ORDER BY that the (status, next_attempt_at) index serves, the
    # databases read every due row of every destination instead (PostgreSQL whenever its
    # statistics are stale), so a dead receiver's backlog slowed every other destination's lease.
    query = (
        select(
            Delivery.id,
            Delivery.subscription_id,
            Delivery.channel,
            Delivery.channel_type,
            Delivery.target,
            Delivery.event_id,
            Delivery.envelope,
            Delivery.next_attempt_at,
        )
        .select_from(wanted_ids)
        .join(Delivery, Delivery.id == wanted_ids.c.id)
        .where(Delivery.status == "pending", Delivery.next_attempt_at <= now)
        .with_for_update(skip_locked=True, of=Delivery)
    )
    return query


async def attempt_targets(session: AsyncSession, delivery_ids: list[str]) -> dict[str, Row]:
    """What recording an attempt needs of each delivery (envelope, created_at, attempts), locked
    (FOR UPDATE on PostgreSQL), so what is read is what the transaction's writes build on."""
    if not delivery_ids:
        return {}
    query = (
        select(Delivery.id, Delivery.envelope, Delivery.created_at, Delivery.attempts)
        .where(among(session, Delivery.id, delivery_ids))
        .with_for_update()
    )
    return {row.id: row for row in (await session.execute(query)).all()}


async def store_attempts(
    session: AsyncSession,
    attempts: list[dict],
    *,
    delivered: list[str],
    dead: list[str],
    retries: list[tuple[str, datetime]],
    now: datetime,
) -> None:
    """The attempts' rows, and each delivery's new state: a few statements for any number."""
    table = cast(Table, Delivery.__table__)
    if attempts:
        await session.execute(insert(cast(Table, DeliveryAttempt.__table__)), attempts)
    tried = {"attempts": table.c.attempts + 1, "last_attempt_at": now}
    if delivered:
        await session.execute(
            table.update()
            .where(among(session, table.c.id, delivered))
            .values(status="delivered", delivered_at=now, next_attempt_at=None, **tried)
        )
    if dead:
        await session.execute(
            table.update().where(among(session, table.c.id, dead)).values(status="dead", next_attempt_at=None, **tried)
        )
    if retries:
        await session.execute(
            table.update()
            .where(table.c.id == bindparam("delivery_id"))
            .values(next_attempt_at=bindparam("retry_at"), **tried),
            [{"delivery_id": delivery_id, "retry_at": retry_at} for delivery_id, retry_at in retries],
        )


async def subscriptions_by_id(session: AsyncSession, subscription_ids: set[str]) -> dict[str, WebhookSubscription]:
    """The active (not deleted) subscriptions among these ids, in one query."""
    if not subscription_ids:
        return {}
    query = select(WebhookSubscription).where(
        among(session, WebhookSubscription.id, subscription_ids), WebhookSubscription.deleted_at.is_(None)
    )
    return {row.id: row for row in (await session.scalars(query)).all()}


async def cancel(session: AsyncSession, delivery_ids: list[str]) -> None:
    """Deliveries with nothing left to send to (their subscription was deleted)."""
    if delivery_ids:
        await session.execute(
            update(Delivery)
            .where(Delivery.id.in_(delivery_ids))
            .values(status="cancelled", next_attempt_at=None)
            .execution_options(synchronize_session=False)
        )


async def lease(session: AsyncSession, delivery_ids: list[str], *, until: datetime) -> None:
    """Push these (claimed, locked) deliveries' next attempt to ``until``: sent by whoever leased them."""
    if delivery_ids:
        await session.execute(
            update(Delivery)
            .where(Delivery.id.in_(delivery_ids))
            .values(next_attempt_at=until)
            .execution_options(synchronize_session=False)
        )


async def any_due(session: AsyncSession, now: datetime) -> bool:
    """Is any pending delivery due (an index probe)? An idle worker asks before taking a write lock."""
    query = select(Delivery.id).where(Delivery.status == "pending", Delivery.next_attempt_at <= now).limit(1)
    return (await session.scalar(query)) is not None


async def due_destinations(session: AsyncSession, now: datetime) -> list[tuple[str | None, str | None]]:
    """Every (subscription id, channel) with a due pending delivery — the worker's occasional
    look beyond the subscriptions and channels it knows (deleted ones, channels since removed)."""
    query = (
        select(Delivery.subscription_id, Delivery.channel)
        .where(Delivery.status == "pending", Delivery.next_attempt_at <= now)
        .group_by(Delivery.subscription_id, Delivery.channel)
    )
    return [(row[0], row[1]) for row in (await session.execute(query)).all()]


async def active_subscription_ids(session: AsyncSession) -> list[str]:
    query = select(WebhookSubscription.id).where(WebhookSubscription.deleted_at.is_(None))
    return list((await session.scalars(query)).all())


async def pending_by_destination(
    session: AsyncSession, now: datetime
) -> list[tuple[str | None, str | None, int, int, datetime]]:
    """(subscription id, channel, pending, due now, oldest pending created_at) per destination with a backlog."""
    due = func.sum(case((Delivery.next_attempt_at <= now, 1), else_=0))
    query = (
        select(Delivery.subscription_id, Delivery.channel, func.count(), due, func.min(Delivery.created_at))
        .where(Delivery.status == "pending")
        .group_by(Delivery.subscription_id, Delivery.channel)
    )
    return [(r[0], r[1], int(r[2]), int(r[3] or 0), r[4]) for r in (await session.execute(query)).all()]


async def destination_states(session: AsyncSession) -> list[DeliveryDestination]:
    return list((await session.scalars(select(DeliveryDestination))).all())


async def save_destination_state(session: AsyncSession, key: str, **state: object) -> None:
    """Insert or overwrite a destination's breaker state (two workers may save one at once)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(DeliveryDestination).values(key=key, **state)
    await session.execute(statement.on_conflict_do_update(index_elements=["key"], set_=state))


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
