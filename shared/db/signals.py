"""Wake-ups for in-process waiters when a transaction that did something they wait for commits.

Other processes still find the new rows by polling; a signal only shortens the embedded path.
"""

from __future__ import annotations

import asyncio

# session.info flag: this transaction queued outbound deliveries (see Database.delivery_signal).
DELIVERIES_ENQUEUED = "deliveries_enqueued"


class CommitSignal:
    """Wakes in-process waiters as soon as a transaction they wait for commits; a waiter that
    times out just goes back to polling."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Event] = set()

    def notify(self) -> None:
        for waiter in list(self._waiters):
            waiter.set()

    async def wait(self, timeout: float) -> None:
        waiter = asyncio.Event()
        self._waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(waiter)
