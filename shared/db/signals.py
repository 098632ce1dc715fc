"""Wake-ups for in-process waiters when a transaction that did something they wait for commits.

Other processes still find the new rows by polling; a signal only shortens the embedded path.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession

# session.info flag: this transaction appended events to the log (set by shared.outbox).
EVENTS_APPENDED = "events_appended"


class CommitSignal:
    """Wakes every current waiter at once; a waiter that times out just goes back to polling."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Event] = set()

    def notify(self) -> None:
        for waiter in list(self._waiters):
            waiter.set()

    async def wait(self, timeout: float) -> bool:
        """True when notified, False when ``timeout`` passed first."""
        waiter = asyncio.Event()
        self._waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter.wait(), timeout)
        except TimeoutError:
            return False
        finally:
            self._waiters.discard(waiter)
        return True


def signal_on_commit(session: AsyncSession, flag: str) -> None:
    """Wake the waiters of ``Database.signal(flag)`` when ``session``'s transaction commits."""
    session.info[flag] = True
