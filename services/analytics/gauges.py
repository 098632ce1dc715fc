"""Ops gauges read from the database at scrape time, so every process reports the same truth."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.analytics import repository
from npsloop.services.deliveries import service as delivery_service
from npsloop.services.followup import service as followup
from npsloop.shared.observability import MAX_DESTINATION_LABELS, Metrics

RECOVERY_WINDOW = timedelta(days=90)  # the default survey throttle: about one next answer per customer


async def refresh_gauges(
    session: AsyncSession, metrics: Metrics, *, relayed: bool, now: datetime, subscribed: Iterable[tuple[str, str]] = ()
) -> None:
    """Set the gauges from the database, so any process's /metrics tells the same truth.

    ``subscribed``: the (consumer, topic) pairs this deployment runs; one that has not
    read anything yet is behind by the whole topic, not absent.
    ``relayed``: the outbox is forwarded to Kafka, so its backlog is what is unpublished;
    otherwise the log is read in place and the backlog is what some consumer has not read.
    ``now``: the end of the recovery window.
    """
    open_by_team = await followup.open_tasks_by_team(session)
    metrics.tasks_open.clear()  # a team with no open tasks left must drop to nothing, not linger
    for team, count in open_by_team.items():
        metrics.tasks_open.labels(team=team).set(count)
    lag: dict[str, int] = defaultdict(int)
    slowest: dict[str, int] = {}
    positions = dict.fromkeys(subscribed, 0)
    positions.update({(c, t): p for c, t, p in await repository.consumer_positions(session)})
    for (consumer, topic), position in positions.items():
        lag[consumer] += await repository.events_after(session, topic, position)
        slowest[topic] = min(slowest.get(topic, position), position)
    metrics.consumer_lag.clear()
    for consumer, behind in lag.items():
        metrics.consumer_lag.labels(consumer=consumer).set(behind)
    if relayed:
        metrics.outbox_backlog.set(await repository.unpublished_events(session))
    else:
        backlog = 0
        for topic, position in slowest.items():
            backlog += await repository.events_after(session, topic, position)
        metrics.outbox_backlog.set(backlog)
    metrics.dead_letters.set(await repository.pending_dead_letters(session))
    await _destination_gauges(session, metrics, now)
    measured, recovered = await followup.recovery_counts(session, since=now - RECOVERY_WINDOW)
    metrics.recovery_measured.set(measured)
    metrics.recovery_recovered.set(recovered)
    metrics.recovery_rate.set(recovered / measured if measured else math.nan)


async def _destination_gauges(session: AsyncSession, metrics: Metrics, now: datetime) -> None:
    """Per-destination backlog and breaker state, labelled by kind and a short name (never a URL);
    the biggest MAX_DESTINATION_LABELS backlogs by name, the rest summed as "other"."""
    pending: dict[tuple[str, str], float] = defaultdict(float)
    oldest: dict[tuple[str, str], float] = defaultdict(float)
    held: dict[tuple[str, str], float] = defaultdict(float)
    for rank, destination in enumerate(await delivery_service.destination_backlog(session, now=now)):
        name = destination.id if destination.kind == "channel" else destination.id[:8]
        labels = (destination.kind, name if rank < MAX_DESTINATION_LABELS else "other")
        pending[labels] += destination.pending
        if destination.oldest_pending_at is not None:
            oldest[labels] = max(oldest[labels], (now - destination.oldest_pending_at).total_seconds())
        held[labels] = max(held[labels], float(destination.state != "closed"))
    for gauge, values in (
        (metrics.delivery_destination_pending, pending),
        (metrics.delivery_destination_oldest_pending_seconds, oldest),
        (metrics.delivery_destination_open, held),
    ):
        gauge.clear()  # a destination whose backlog is gone drops out rather than lingering
        for (kind, name), value in values.items():
            gauge.labels(kind=kind, destination=name).set(value)
