"""Per-API-key request rate limits: an in-process token bucket per key id.

Each process limits on its own, so N API processes allow N times the rate; the limit is
a guard against a runaway client, not a billing meter.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class RateLimiter:
    """``rate`` tokens per second refill a bucket of ``burst``; a request takes one."""

    def __init__(
        self, rate: float, burst: int, *, now: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._now = now
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, updated)

    def acquire(self, key: str) -> float:
        """Take a token for ``key``: 0.0 if allowed, else the seconds until one is free."""
        now = self._now()
        tokens, updated = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - updated) * self.rate)
        if tokens >= 1.0:
            if len(self._buckets) >= self._max_keys and key not in self._buckets:
                self._buckets.clear()  # only authenticated keys get here: bounded in practice
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate


def retry_after_header(wait_seconds: float) -> str:
    """Retry-After takes whole seconds; never 0, which clients read as 'now'."""
    return str(max(1, math.ceil(wait_seconds)))
