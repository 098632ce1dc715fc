"""Follow-up metrics: SLA compliance, time to first touch, open tasks by age, the SLA
board, recovery rate, and NPS against business outcomes. Read-only."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.analytics import repository
from npsloop.services.analytics.nps import Tally, category_of, percentile
from npsloop.services.analytics.schemas import Period
from npsloop.services.analytics.service import CATEGORIES, share
from npsloop.services.followup import service as followup

OUTCOME_KINDS = ("churned", "renewed", "expanded", "contracted")
DUE_SOON = timedelta(hours=6)
AGE_BUCKETS = (
    ("under_24h", timedelta(hours=24)),
    ("24h_to_48h", timedelta(hours=48)),
    ("2d_to_7d", timedelta(days=7)),
    ("over_7d", None),
)


async def followup_report(session: AsyncSession, *, period: Period, now: datetime) -> dict[str, Any]:
    """SLA compliance, time to first touch, open tasks by age, SLA board, recovery, outcomes.

    Period metrics cover tasks whose response was received in the period; the open-task
    views (age, board) are the state right now.
    """
    tasks = await followup.tasks_received(session, start=period.start, end=period.end)
    unresolved = await followup.unresolved_tasks(session)
    return {
        "from": period.start,
        "to": period.end,
        "now": now,
        "sla": _sla_compliance(tasks, now),
        "time_to_first_touch": _first_touch(tasks),
        "open_tasks_by_age": _by_age(unresolved, now),
        "sla_board": _sla_board(unresolved, now),
        "recovery": await _recovery(session, period),
        "outcomes": {"tasks": _task_outcomes(tasks), "business": await _business_outcomes(session, period)},
    }


def _sla_compliance(tasks: Sequence[Any], now: datetime) -> dict[str, Any]:
    """Share of detractor tasks acknowledged by their due time. A task neither acknowledged
    nor yet due is undecided and left out (``pending``) rather than counted either way."""

    def tally(subset: Sequence[Any]) -> dict[str, Any]:
        decided = [t for t in subset if t.acknowledged_at is not None or t.due_at <= now]
        within = sum(1 for t in decided if t.acknowledged_at is not None and t.acknowledged_at <= t.due_at)
        return {
            "tasks": len(subset),
            "decided": len(decided),
            "acknowledged_within_sla": within,
            "missed": len(decided) - within,
            "pending": len(subset) - len(decided),
            "compliance": share(within, len(decided)),
        }

    teams: dict[str, list[Any]] = defaultdict(list)
    for task in tasks:
        teams[task.team or "unassigned"].append(task)
    return {**tally(tasks), "by_team": [{"team": team, **tally(ts)} for team, ts in sorted(teams.items())]}


def _first_touch(tasks: Sequence[Any]) -> dict[str, Any]:
    """From the response's arrival (the customer's clock) to the first acknowledgement."""
    seconds = [(t.acknowledged_at - t.received_at).total_seconds() for t in tasks if t.acknowledged_at is not None]
    return {
        "touched": len(seconds),
        "median_seconds": statistics.median(seconds) if seconds else None,
        "p90_seconds": percentile(seconds, 0.9),
    }


def _by_age(unresolved: Sequence[Any], now: datetime) -> dict[str, Any]:
    counts = {name: 0 for name, _ in AGE_BUCKETS}
    for task in unresolved:
        age = now - task.received_at
        name = next(n for n, limit in AGE_BUCKETS if limit is None or age < limit)
        counts[name] += 1
    return {"total": len(unresolved), "buckets": counts}


def _sla_board(unresolved: Sequence[Any], now: datetime) -> dict[str, Any]:
    """Unacknowledged tasks: the ones whose SLA can still be kept or is already broken."""
    teams: dict[str, dict[str, int]] = defaultdict(lambda: {"open": 0, "due_soon": 0, "breached": 0})
    for task in unresolved:
        if task.status != "open":
            continue
        row = teams[task.team or "unassigned"]
        row["open"] += 1
        if task.breached_at is not None or task.due_at <= now:
            row["breached"] += 1
        elif task.due_at - now <= DUE_SOON:
            row["due_soon"] += 1
    by_team = [{"team": team, **row} for team, row in sorted(teams.items())]
    return {
        "due_soon_hours": DUE_SOON.total_seconds() / 3600,
        "open": sum(r["open"] for r in by_team),
        "due_soon": sum(r["due_soon"] for r in by_team),
        "breached": sum(r["breached"] for r in by_team),
        "by_team": by_team,
    }


async def _recovery(session: AsyncSession, period: Period) -> dict[str, Any]:
    """Detractors won back, as follow-up measures them when a customer answers again
    after a resolved task (next answers received in the period)."""
    rate = await followup.recovery_rate(session, since=period.start, until=period.end, team=None)
    return {
        "rate": rate.recovery_rate,
        "recovered": rate.recovered,
        "answered_again": rate.measured,
        "resolved_tasks": rate.resolved_tasks,
        "by_outcome": rate.by_outcome,
        "by_next_category": rate.by_next_category,
    }


def _task_outcomes(tasks: Sequence[Any]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for task in tasks:
        if task.outcome:
            counts[task.outcome] += 1
    return dict(sorted(counts.items()))


async def _business_outcomes(session: AsyncSession, period: Period) -> dict[str, Any]:
    """Churn, renewal, expansion and contraction rates by NPS category.

    Each customer counts once, in the category of their latest answer in the period, and
    an outcome counts when it is recorded for them (or their account) on or after the
    day of that answer: did what they told us come true?
    """
    latest: dict[str, Any] = {}
    async for page in repository.scored_responses(session, start=period.start, end=period.end, filters={}):
        for row in page:  # pages are in answer order, so the last one seen is the latest
            latest[row.customer_id] = row
    outcomes = await followup.business_outcomes_of(
        session, customer_ids=list(latest), account_ids=sorted({r.account_id for r in latest.values() if r.account_id})
    )
    by_customer: dict[str, list[Any]] = defaultdict(list)
    by_account: dict[str, list[Any]] = defaultdict(list)
    for outcome in outcomes:
        if outcome.customer_id:
            by_customer[outcome.customer_id].append(outcome)
        elif outcome.account_id:
            by_account[outcome.account_id].append(outcome)
    kinds = sorted({o.outcome for o in outcomes} | set(OUTCOME_KINDS))
    table = {c: {"customers": 0, **dict.fromkeys(kinds, 0)} for c in CATEGORIES}
    tallies: dict[str, Tally] = defaultdict(Tally)
    for customer_id, row in latest.items():
        category = category_of(row.score)
        table[category]["customers"] += 1
        answered_on = row.responded_at.date()
        happened = {
            o.outcome
            for o in by_customer.get(customer_id, []) + by_account.get(row.account_id or "", [])
            if o.occurred_on >= answered_on
        }
        for kind in happened:
            table[category][kind] += 1
            tallies[kind].add(category)
    by_category = {
        c: {**counts, **{f"{k}_rate": share(counts[k], counts["customers"]) for k in kinds}}
        for c, counts in table.items()
    }
    return {
        "by_category": by_category,
        "nps_by_outcome": {k: {"nps": tallies[k].as_dict()["nps"], "customers": tallies[k].total} for k in kinds},
        "recorded": len(outcomes),
    }
