"""One injectable source of time. Every SLA decision reads a Clock, never datetime.now()."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Protocol

from pydantic import AfterValidator


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Aware UTC wall-clock time, optionally shifted (demos, soak tests)."""

    def __init__(self, offset_seconds: float = 0.0) -> None:
        self._offset = timedelta(seconds=offset_seconds)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset


class ManualClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> datetime:
        self._now += timedelta(**delta)
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment


# The instants a client may send (timestamps in bodies, time filters in queries). Far enough
# inside datetime's years 1-9999 that no UTC offset and no policy duration added to them can
# leave it: 0001-01-01T00:00:01+00:03 is in year 0, and the API answered it with a 500.
EARLIEST_INSTANT = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(3000, 1, 1, tzinfo=UTC)


def checked_instant(moment: datetime) -> datetime:
    """A client's instant in UTC (naive = UTC); ValueError saying the range when outside it."""
    try:
        utc = as_utc(moment)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST_INSTANT <= utc < LATEST_INSTANT:
        raise ValueError(f"must be from {EARLIEST_INSTANT:%Y-%m-%d} to before {LATEST_INSTANT:%Y-%m-%d} (UTC)")
    return utc


Instant = Annotated[datetime, AfterValidator(checked_instant)]  # request fields and query parameters


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
