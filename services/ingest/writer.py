"""Group commit for single-response POSTs.

A durable commit costs a disk flush; doing one per request caps ingest at a few hundred
requests a second. Instead every request hands its submission to one writer task and
waits. The writer takes everything queued, checks it (revocation, de-duplication), writes
its rows and outbox events atomically (``service.accept``: on PostgreSQL one statement
that is its own transaction) and answers each request only after that write committed —
so every 202 is still durable. While one group commits, the next one gathers, so groups
grow with load by themselves.

On PostgreSQL a group spends most of its time waiting on round trips and the commit's
disk flush, not on this process's CPU, so a few writers keep groups in flight at once
(``concurrency``). SQLite has a single write slot: there one writer is all there can be.
Concurrent groups stay correct: the same Idempotency-Key in two of them collides on the
unique index and the loser is redone one by one, finding the winner's row.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import IntegrityError

from npsloop.services.ingest.service import Accepted, Submission, accept, draft
from npsloop.shared.clock import Clock
from npsloop.shared.db import Database

log = logging.getLogger("npsloop.ingest.writer")

MAX_GROUP = 512
# On SQLite a group smaller than this waits SQLITE_LINGER for company before it writes
# (below); a busy stream of requests makes larger groups and never waits.
SMALL_GROUP = 8
SQLITE_LINGER = 0.005  # seconds
# Groups in flight on PostgreSQL. Measured on 2 cores: more writers make smaller groups
# (more CPU per request) and wait on the outbox's append lock.
POSTGRES_WRITERS = 2


class GroupCommitWriter:
    def __init__(self, db: Database, clock: Clock, *, concurrency: int | None = None) -> None:
        self.db = db
        self.clock = clock
        self.concurrency = concurrency or (1 if db.is_sqlite else POSTGRES_WRITERS)
        self._queue: asyncio.Queue[tuple[Submission, asyncio.Future]] = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []
        self._last_group = 0
        self._in_hand = 0  # submissions taken from the queue and not yet settled

    async def submit(self, submission: Submission) -> Accepted:
        """Returns once the submission is committed (or raises its Problem).

        A submission with a ``key_id`` (authenticated from the cache) is refused with 401,
        writing nothing, if that key was revoked in the meantime."""
        if len(self._tasks) < self.concurrency or any(t.done() for t in self._tasks):
            self._tasks = [t for t in self._tasks if not t.done()]
            self._tasks += [
                asyncio.create_task(self._run(), name="ingest-group-commit")
                for _ in range(self.concurrency - len(self._tasks))
            ]
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((submission, future))
        return await future

    async def close(self) -> None:
        if self._tasks:
            # drain what was submitted before closing, including a group taken from the
            # queue and not yet written (waiting for company); a short poll at shutdown only
            while (not self._queue.empty() or self._in_hand) and not all(t.done() for t in self._tasks):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks = []

    async def _run(self) -> None:
        while True:
            group = [await self._queue.get()]
            self._in_hand += 1
            try:
                if self._lingers():
                    await asyncio.sleep(SQLITE_LINGER)
                while len(group) < MAX_GROUP and not self._queue.empty():
                    group.append(self._queue.get_nowait())
                    self._in_hand += 1
                self._last_group = len(group)
                await self._write(group)
            finally:
                self._in_hand -= len(group)

    def _lingers(self) -> bool:
        """Whether a small group should wait a moment for more requests (SQLite only).

        At a few hundred requests a second, writing each request as it came made groups
        of one to three: a turn on SQLite's single write slot, and a commit, every couple
        of milliseconds, so the consumers behind ingest got too few turns to keep up and
        alerts fell seconds behind. A short wait lets a few requests share one turn and
        the consumers take theirs in between. A saturating load already makes large
        groups; waiting then would only hand the slot to the consumers, at ingest's cost.
        """
        return self.db.is_sqlite and self._last_group < SMALL_GROUP and self._queue.qsize() < SMALL_GROUP

    async def _write(self, group: list[tuple[Submission, asyncio.Future]], retried: bool = False) -> None:
        try:
            with self.db.urgent_writer():
                drafts = draft([s for s, _ in group], now=self.clock.now(), dialect=self.db.engine.dialect.name)
                # Keys are authenticated from a cache; accept checks revocation right before
                # the write, so a key revoked by then writes nothing.
                results = await accept(self.db, drafts, clock=self.clock)
        except IntegrityError as exc:
            # Another process stored the same key between our check and insert; once on
            # its own, the submission finds that row and is answered as a duplicate.
            if len(group) == 1 and not retried:
                await self._write(group, retried=True)
            else:
                await self._isolate(group, exc)
            return
        except Exception as exc:
            await self._isolate(group, exc)
            return
        for (_, future), result in zip(group, results):
            _settle(future, result)

    async def _isolate(self, group: list[tuple[Submission, asyncio.Future]], exc: Exception) -> None:
        if len(group) == 1:
            _settle(group[0][1], exc)
            return
        # One bad submission must not fail its neighbours: write them one by one.
        log.warning("group commit failed; retrying one by one", extra={"size": len(group), "error": repr(exc)})
        for item in group:
            await self._write([item])


def _settle(future: asyncio.Future, outcome: Accepted | BaseException) -> None:
    if future.done():  # the client went away; its row is committed all the same
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
