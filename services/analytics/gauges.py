"""Ops gauges read from the database at scrape time, so every process reports the same truth."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.analytics import repository
from npsloop.services.followup import service as followup
from npsloop.shared.observability import Metrics

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
    measured, recovered = await followup.recovery_counts(session, since=now - RECOVERY_WINDOW)
    metrics.recovery_measured.set(measured)
    metrics.recovery_recovered.set(recovered)
    metrics.recovery_rate.set(recovered / measured if measured else math.nan)
