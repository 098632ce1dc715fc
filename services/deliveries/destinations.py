"""Destinations of deliveries — a webhook subscription or a policy channel — and their circuit breakers.

Each destination gets a bounded share of the delivery worker's sends, so a receiver that
hangs or fails holds only its own share. A destination that keeps failing is backed off as
a whole: its breaker opens, its deliveries stay pending in the database untouched (none
lost, none moved in the line), and one probe now and then tells when it is back.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Row

from npsloop.services.deliveries.models import Delivery, DeliveryDestination

SUBSCRIPTION = "subscription"
CHANNEL = "channel"

# Destination-level failures in a row that open the breaker. A destination whose share of
# sends all time out opens it after one timeout.
FAILURE_THRESHOLD = 3
FIRST_COOLDOWN_SECONDS = 5.0
MAX_COOLDOWN_SECONDS = 600.0  # under the retry backoff's one-hour cap: a recovered receiver is found soon

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


def key_of(delivery: Delivery | Row) -> str:
    """``subscription:<id>`` or ``channel:<name>``: the destination a delivery goes to."""
    if delivery.subscription_id is not None:
        return f"{SUBSCRIPTION}:{delivery.subscription_id}"
    return f"{CHANNEL}:{delivery.channel}"


def split_key(key: str) -> tuple[str, str]:
    kind, _, ref = key.partition(":")
    return kind, ref


def short_label(key: str) -> str:
    """A metrics label for a destination that never carries a URL: the policy channel's name
    (bounded by the policy file) or the first 8 characters of the subscription id."""
    kind, ref = split_key(key)
    return ref if kind == CHANNEL else ref[:8]


def is_destination_failure(*, channel_type: str | None, status_code: int | None) -> bool:
    """Did the destination itself fail (no answer, overloaded, down) rather than refuse this one message?

    A receiver that answers 400 or 410 is up: that message failed, the destination did not.
    """
    if status_code is None:
        return True
    if channel_type == "email":
        return 400 <= status_code < 500  # SMTP 4xx: try later (421 service not available, 451 …)
    return status_code >= 500 or status_code in (408, 429)


@dataclass
class Breaker:
    """closed → (FAILURE_THRESHOLD failures in a row) → open → (cooldown) → half_open: one probe →
    closed on an answer, open again with a doubled cooldown on a failure."""

    state: str = CLOSED
    failures: int = 0
    openings: int = 0
    retry_at: datetime | None = None
    last_error: str | None = None

    def capacity(self, now: datetime, share: int) -> int:
        """How many sends may be in flight to the destination now."""
        if self.state == CLOSED:
            return share
        if self.state == OPEN and self.retry_at is not None and now < self.retry_at:
            return 0
        return 1  # a probe (a half-open breaker's probe left in flight keeps it at one)

    def probing(self, now: datetime) -> bool:
        return self.state != CLOSED and (self.retry_at is None or now >= self.retry_at)

    def start_probe(self) -> bool:
        changed = self.state != HALF_OPEN
        self.state = HALF_OPEN
        return changed

    def record(self, *, ok: bool, error: str | None, now: datetime) -> bool:
        """Take one attempt's outcome (``ok``: the destination answered); True if the state changed."""
        if ok:
            changed = self.state != CLOSED or self.failures > 0
            self.state, self.failures, self.openings, self.retry_at, self.last_error = CLOSED, 0, 0, None, None
            return changed
        self.failures += 1
        self.last_error = (error or "")[:500] or None
        if self.state == HALF_OPEN or (self.state == CLOSED and self.failures >= FAILURE_THRESHOLD):
            self.openings += 1
            cooldown = min(FIRST_COOLDOWN_SECONDS * 2 ** (self.openings - 1), MAX_COOLDOWN_SECONDS)
            self.state = OPEN
            self.retry_at = now + timedelta(seconds=cooldown * random.uniform(0.8, 1.2))
            return True
        return False  # open already (a send that was in flight when it opened), or not yet at the threshold

    @classmethod
    def from_row(cls, row: DeliveryDestination) -> Breaker:
        return cls(row.state, row.failures, row.openings, row.retry_at, row.last_error)


@dataclass
class Destination:
    key: str
    breaker: Breaker = field(default_factory=Breaker)
    in_flight: int = 0
    backlogged: bool = True  # its last lease filled every slot asked for: more may be due
    dirty: bool = False  # breaker state not yet saved
    # Sends it may have in flight (0: the worker's per-destination base). Grows by one with
    # each quick answer given while it was at its limit, halves back on a slow answer or a
    # failure (see DeliveryWorker._adapt_limit).
    limit: int = 0

    @property
    def kind(self) -> str:
        return split_key(self.key)[0]

    @property
    def ref(self) -> str:
        return split_key(self.key)[1]


def water_level(pool_size: int, demands: list[int]) -> int:
    """The most sends each destination may have in flight so that ``pool_size`` is shared
    max-min fairly among destinations wanting ``demands``: one that wants less than an equal
    share (a dead receiver held to its base, an open breaker to none) leaves the rest to
    the others. ``pool_size`` when every demand fits."""
    remaining, waiting = pool_size, len(demands)
    for demand in sorted(demands):
        fair = remaining // waiting
        if demand > fair:
            return max(1, fair)
        remaining -= demand
        waiting -= 1
    return pool_size
