"""SQLite's single write slot, shared out in asyncio: client-facing writers first, background ones not starved."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager


class WriterQueue:
    """One writer at a time, urgent writers first (SQLite allows a single writer).

    Background consumers may lag under a burst of requests — their events wait safely in
    the log — but a client waiting for its 202 never queues behind them.

    The slot passes straight from the writer releasing it to the next one — the oldest
    urgent writer if any, else the oldest background one. (An asyncio.Lock wakes its
    oldest waiter whatever it is: a background writer woken that way runs only to hand the
    slot back, and the waiting request loses a turn of a busy event loop.) An urgent writer
    that is still preparing its rows announces itself (:meth:`announce`), and a free slot
    goes to a background writer only on the loop's next turn, once the ingest writer had
    its chance to start its next group: otherwise background writers take the slot for a
    group and a disk flush between every two ingest groups.

    So that consumers are never stalled for the whole of a long burst, a background writer
    that waited ``BACKGROUND_MAX_WAIT`` gets the next turn regardless (at most one such
    turn per ``BACKGROUND_MAX_WAIT``), and keeps it for up to ``BACKGROUND_TURN`` before
    it is asked to commit (``urgent_waiting``): a small share of the slot under a
    sustained burst (docs/decisions/db.md).
    """

    BACKGROUND_MAX_WAIT = 0.25  # seconds
    BACKGROUND_TURN = 0.02  # seconds
    # Any background turn runs this long before an ingest writer may ask it to commit.
    # Cut short after every event, a consumer made one transaction — a commit and a turn
    # on the single slot — per event whenever ingest was busy, and alerts lagged by
    # seconds. Ten milliseconds of work per turn costs a waiting request at most that.
    BACKGROUND_MIN_TURN = 0.01  # seconds

    def __init__(self) -> None:
        self._held = False
        self._announced = 0
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._background: deque[tuple[asyncio.Future[None], float]] = deque()  # (waiter, since)
        self._protected_until = 0.0  # a background turn given for waiting too long runs until then
        self._last_protected = float("-inf")  # when the last such turn was given
        self._hand_over_scheduled = False

    @property
    def urgent_waiting(self) -> bool:
        if self._protected_until and time.monotonic() < self._protected_until:
            return False
        return self.urgent_pending

    @property
    def urgent_pending(self) -> bool:
        """An urgent writer waits or prepares, whether or not the turn in progress is protected."""
        return bool(self._urgent) or self._announced > 0

    @contextmanager
    def announce(self) -> Iterator[None]:
        """Around an urgent writer's preparation and turn: background writers wait."""
        self._announced += 1
        try:
            yield
        finally:
            self._announced -= 1
            self._hand_over_soon()

    @asynccontextmanager
    async def turn(self, *, urgent: bool) -> AsyncIterator[None]:
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._held = False
            self._protected_until = 0.0
            self._hand_over(urgent_only=True)
            self._hand_over_soon()

    def _starved(self) -> bool:
        # One such turn per BACKGROUND_MAX_WAIT, not one per waiting consumer back to back:
        # several consumers starved together would otherwise hold ingest up for all their turns.
        now = time.monotonic()
        return (
            bool(self._background)
            and now - self._background[0][1] >= self.BACKGROUND_MAX_WAIT
            and now - self._last_protected >= self.BACKGROUND_MAX_WAIT
        )

    async def _acquire(self, urgent: bool) -> None:
        self._drop_cancelled()
        if (
            not self._held
            and not self._urgent
            and not self._starved()
            and (urgent or (not self._announced and not self._background))
        ):
            self._held = True
            if not urgent:
                self._protected_until = time.monotonic() + self.BACKGROUND_MIN_TURN
            return
        handed = asyncio.get_running_loop().create_future()
        if urgent:
            self._urgent.append(handed)
        else:
            self._background.append((handed, time.monotonic()))
        self._hand_over(urgent_only=True)  # a free slot: a background writer that waited too long goes now
        self._hand_over_soon()
        try:
            await handed  # resolved by _hand_over: the slot is ours, already marked held
        except asyncio.CancelledError:
            if handed.done() and not handed.cancelled():
                self._held = False  # handed over just as we were cancelled: pass it on
                self._hand_over_soon()
            else:
                self._forget(handed)
            raise

    def _forget(self, handed: asyncio.Future[None]) -> None:
        if handed in self._urgent:
            self._urgent.remove(handed)
        self._background = deque(entry for entry in self._background if entry[0] is not handed)

    def _hand_over_soon(self) -> None:
        if not self._hand_over_scheduled:
            self._hand_over_scheduled = True
            asyncio.get_running_loop().call_soon(self._hand_over)

    def _hand_over(self, urgent_only: bool = False) -> None:
        """Give the free slot to the next writer in line, if any may have it now
        (``urgent_only``: now only to an urgent or a starved background writer)."""
        if not urgent_only:
            self._hand_over_scheduled = False
        if self._held:
            return
        self._drop_cancelled()
        starved = self._starved()
        if self._urgent and not starved:
            self._held = True
            self._urgent.popleft().set_result(None)
        elif self._background and (starved or (not urgent_only and not self._announced)):
            self._held = True
            now = time.monotonic()
            if starved:
                self._last_protected = now
            self._protected_until = now + (self.BACKGROUND_TURN if starved else self.BACKGROUND_MIN_TURN)
            self._background.popleft()[0].set_result(None)

    def _drop_cancelled(self) -> None:
        while self._urgent and self._urgent[0].done():
            self._urgent.popleft()
        while self._background and self._background[0][0].done():
            self._background.popleft()
