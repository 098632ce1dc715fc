"""NPS arithmetic: score, margin of error, change significance, time buckets, percentiles.

Pure functions so the numbers can be checked by hand in tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

Interval = Literal["day", "week", "month"]
Z_95 = 1.96


def category_of(score: int) -> str:
    """Category always follows the score (docs/classifier.md): 9–10, 7–8, 0–6."""
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"


@dataclass
class Tally:
    promoters: int = 0
    passives: int = 0
    detractors: int = 0

    def add(self, category: str) -> None:
        if category == "promoter":
            self.promoters += 1
        elif category == "passive":
            self.passives += 1
        else:
            self.detractors += 1

    @property
    def total(self) -> int:
        return self.promoters + self.passives + self.detractors

    @property
    def variance(self) -> float | None:
        """Per-respondent variance of NPS as a difference of proportions (scale −1..1)."""
        if not self.total:
            return None
        p, d = self.promoters / self.total, self.detractors / self.total
        return p + d - (p - d) ** 2

    @property
    def nps(self) -> float | None:
        if not self.total:
            return None
        return 100 * (self.promoters - self.detractors) / self.total

    @property
    def margin_of_error(self) -> float | None:
        """95 %: 1.96·√((p + d − (p − d)²)/n)·100."""
        if not self.total:
            return None
        return Z_95 * math.sqrt(max(self.variance or 0.0, 0.0) / self.total) * 100

    def as_dict(self) -> dict[str, Any]:
        n, nps, moe = self.total, self.nps, self.margin_of_error
        share = (lambda k: round(k / n, 4)) if n else (lambda k: None)
        return {
            "nps": _round(nps),
            "promoters": self.promoters,
            "passives": self.passives,
            "detractors": self.detractors,
            "total": n,
            "shares": {
                "promoters": share(self.promoters),
                "passives": share(self.passives),
                "detractors": share(self.detractors),
            },
            "margin_of_error": _round(moe),
            "ci_low": _round(max(-100.0, nps - moe)) if nps is not None and moe is not None else None,
            "ci_high": _round(min(100.0, nps + moe)) if nps is not None and moe is not None else None,
        }


def change_between(before: Tally, after: Tally) -> dict[str, Any] | None:
    """Two-sample z-test on the NPS difference of two independent periods (95 %).

    With no sampling variance on either side (e.g. all promoters both times) any
    difference is real, so it counts as significant when the NPS moved at all.
    """
    if not before.total or not after.total:
        return None
    delta = (after.nps or 0.0) - (before.nps or 0.0)
    se = math.sqrt((before.variance or 0.0) / before.total + (after.variance or 0.0) / after.total) * 100
    if se == 0:
        return {"delta": _round(delta), "z": None, "significant": delta != 0}
    z = delta / se
    return {"delta": _round(delta), "z": round(z, 3), "significant": abs(z) > Z_95}


def bucket_start(moment: datetime, interval: Interval) -> date:
    day = moment.astimezone(UTC).date()
    if interval == "week":
        return day - timedelta(days=day.weekday())  # ISO weeks start on Monday
    if interval == "month":
        return day.replace(day=1)
    return day


def next_bucket(start: date, interval: Interval) -> date:
    if interval == "day":
        return start + timedelta(days=1)
    if interval == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def buckets(start: datetime, end: datetime, interval: Interval) -> list[date]:
    """Every bucket overlapping [start, end), so empty periods show as gaps, not joins."""
    out: list[date] = []
    current = bucket_start(start, interval)
    while as_moment(current) < end:
        out.append(current)
        current = next_bucket(current, interval)
    return out


def as_moment(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def count_buckets(start: datetime, end: datetime, interval: Interval) -> int:
    days = max((end - start).total_seconds() / 86400, 0)
    return int(days / {"day": 1, "week": 7, "month": 28}[interval]) + 2


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least ``fraction`` of values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
