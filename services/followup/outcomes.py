"""Closing the loop in numbers: business outcomes per customer or account, and the
recovery rate — the share of resolved detractors whose next answer is passive or promoter."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.followup import repository
from npsloop.services.followup.models import BusinessOutcome
from npsloop.shared.clock import Clock
from npsloop.shared.ids import new_id


def record_outcome(
    session: AsyncSession,
    *,
    customer_id: str | None,
    account_id: str | None,
    outcome: str,
    revenue: float | None,
    currency: str | None,
    occurred_on: date | None,
    note: str | None,
    actor: str,
    clock: Clock,
) -> BusinessOutcome:
    now = clock.now()
    row = BusinessOutcome(
        id=new_id(),
        customer_id=customer_id,
        account_id=account_id,
        outcome=outcome,
        revenue=revenue,
        currency=currency,
        occurred_on=occurred_on or now.date(),
        note=note,
        recorded_by=actor,
        recorded_at=now,
    )
    session.add(row)
    return row


@dataclass
class RecoveryRate:
    resolved_tasks: int
    measured: int  # resolved detractors who answered again
    recovered: int
    recovery_rate: float | None
    by_outcome: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    by_next_category: dict[str, int] = field(default_factory=dict)


def _rate(recovered: int, measured: int) -> float | None:
    return round(recovered / measured, 4) if measured else None


async def recovery_rate(
    session: AsyncSession, *, since: datetime | None, until: datetime | None, team: str | None
) -> RecoveryRate:
    """Over next answers received in [since, until); ``resolved_tasks`` counts tasks resolved in the same window."""
    rows = await repository.recoveries(session, since=since, until=until, team=team)
    result = RecoveryRate(
        resolved_tasks=await repository.resolved_count(session, since=since, until=until, team=team),
        measured=len(rows),
        recovered=sum(r.recovered for r in rows),
        recovery_rate=None,
    )
    result.recovery_rate = _rate(result.recovered, result.measured)
    for row in rows:
        bucket = result.by_outcome.setdefault(row.outcome or "unknown", {"measured": 0, "recovered": 0})
        bucket["measured"] = int(bucket["measured"] or 0) + 1
        bucket["recovered"] = int(bucket["recovered"] or 0) + int(row.recovered)
        result.by_next_category[row.next_category] = result.by_next_category.get(row.next_category, 0) + 1
    for bucket in result.by_outcome.values():
        bucket["recovery_rate"] = _rate(int(bucket["recovered"] or 0), int(bucket["measured"] or 0))
    return result
