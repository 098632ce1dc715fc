"""Wake-ups for in-process waiters when a transaction that did something they wait for commits.

Other processes still find the new rows by polling; a signal only shortens the embedded path.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession

# session.info flag: this transaction appended events to the log (set by shared.outbox).
EVENTS_APPENDED = "events_appended"
# session.info: every flag the transaction raised, announced after it commits.
RAISED = "npsloop.commit_flags"


def events_appended_to(topic: str) -> str:
    """The flag a transaction that appended to ``topic`` raises besides EVENTS_APPENDED: a
    consumer waits for its own topics, not for every commit of every stage."""
    return f"{EVENTS_APPENDED}:{topic}"


class CommitSignal:
    """Wakes every current waiter at once; a waiter that times out just goes back to polling."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Event] = set()

    def notify(self) -> None:
        for waiter in list(self._waiters):
            waiter.set()

    def attach(self, waker: asyncio.Event) -> None:
        """Set ``waker`` on every notification until :meth:`detach` — also those that come
        while its owner is busy, which :meth:`wait` would miss."""
        self._waiters.add(waker)

    def detach(self, waker: asyncio.Event) -> None:
        self._waiters.discard(waker)

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
    """Wake the waiters of ``Database.signal(flag)`` when ``session``'s transaction commits
    (in other processes too, on PostgreSQL)."""
    session.info.setdefault(RAISED, set()).add(flag)


def raised(session: AsyncSession, flag: str) -> bool:
    """Whether ``session``'s transaction has raised ``flag`` so far."""
    return flag in session.info.get(RAISED, ())
