"""Business hours: SLA clocks that only run while the team works (policy ``business_hours``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_days(value: Any) -> list[str]:
    """``mon-fri``, ``mon,wed,fri`` or a list of day names → ordered day names."""
    parts = value if isinstance(value, list) else str(value).split(",")
    days: set[int] = set()
    for part in parts:
        part = str(part).strip().lower()
        first, _, last = part.partition("-")
        if first not in DAY_NAMES or (last and last not in DAY_NAMES):
            raise ValueError(f"{part!r} is not a day or range of days such as mon-fri")
        start, end = DAY_NAMES.index(first), DAY_NAMES.index(last or first)
        span = range(start, end + 1) if start <= end else [*range(start, 7), *range(end + 1)]
        days.update(span)
    if not days:
        raise ValueError("names no day")
    return [DAY_NAMES[d] for d in sorted(days)]


class BusinessHours(BaseModel):
    """Working time in one time zone; ``add`` counts a duration only inside it."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = "UTC"
    days: list[str] = list(DAY_NAMES[:5])
    hours: str = "09:00-17:00"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone such as Europe/Berlin") from None
        return value

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: Any) -> list[str]:
        return parse_days(value)

    @model_validator(mode="after")
    def _hours_range(self) -> BusinessHours:
        match = _HOURS.match(self.hours)
        if not match:
            raise ValueError(f"hours {self.hours!r} must look like 09:00-17:00")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if not (0 <= h1 <= 23 and 0 <= m1 <= 59 and 0 <= h2 <= 24 and 0 <= m2 <= 59) or (h2 * 60 + m2) > 24 * 60:
            raise ValueError(f"hours {self.hours!r} are not valid times of day")
        if h2 * 60 + m2 <= h1 * 60 + m1:
            raise ValueError(f"hours {self.hours!r} must end after they start")
        return self

    def _window(self) -> tuple[time, timedelta]:
        h1, m1, h2, m2 = (int(g) for g in _HOURS.match(self.hours).groups())  # type: ignore[union-attr]
        return time(h1, m1), timedelta(minutes=(h2 * 60 + m2) - (h1 * 60 + m1))

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The moment ``duration`` of working time after ``start`` (aware UTC in, aware UTC out)."""
        zone = ZoneInfo(self.timezone)
        opens, length = self._window()
        working = {DAY_NAMES.index(d) for d in self.days}
        remaining = duration
        local = start.astimezone(zone)
        day = local.date()
        for _ in range(3700):  # ten years of days: a bound, not a limit anyone reaches
            if day.weekday() in working:
                begin = datetime.combine(day, opens, tzinfo=zone)
                end = begin + length
                # Wall-clock arithmetic in the zone, converted at the edges, keeps 09:00
                # meaning 09:00 across daylight-saving changes.
                cursor = max(begin, local) if day == local.date() else begin
                if cursor < end:
                    available = end.astimezone(UTC) - cursor.astimezone(UTC)
                    if remaining <= available:
                        return cursor.astimezone(UTC) + remaining
                    remaining -= available
            day += timedelta(days=1)
        raise ValueError("business hours never accumulate the duration")
