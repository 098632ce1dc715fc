"""aiosqlite's interface, with statements executed on the event loop's own thread.

aiosqlite runs every statement in a helper thread and hands the result back to the loop.
SQLite statements take microseconds, but each hand-off costs a thread switch and a loop
wake-up — far more — and the consumers make thousands of them. Running the calls inline
removes that cost. The exception is COMMIT: that is where SQLite writes the WAL and
waits for the disk flush, time in which the loop could be parsing and validating the
next group of requests. COMMIT therefore goes to the helper thread (the sqlite3 module
releases the GIL while it waits), one hand-off per transaction. The price of inline
statements: one waiting on another *process's* write lock blocks the loop for that
wait (bounded by busy_timeout); within the process, writers already queue in asyncio
(see Database.unit_of_work).
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import aiosqlite


class InlineConnection(aiosqlite.Connection):
    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    async def commit(self) -> None:
        # The helper thread's queue (aiosqlite's own _execute): the loop runs meanwhile.
        # The session that commits holds this connection, so nothing else uses it.
        committing = asyncio.ensure_future(aiosqlite.Connection._execute(self, self._conn.commit))
        try:
            await asyncio.shield(committing)
        except asyncio.CancelledError:
            # A started COMMIT runs to its end in the helper thread whatever happens here.
            # Wait for it to report back before passing the cancellation on: a loop that
            # closes first (Ctrl-C ends asyncio.run) makes that thread fail with a traceback.
            await asyncio.wait([committing])
            raise


async def connect(path: str, *, timeout: float = 30.0) -> InlineConnection:
    # check_same_thread=False: the connection is opened by the helper thread but used here.
    connection = InlineConnection(
        lambda: sqlite3.connect(path, timeout=timeout, check_same_thread=False), iter_chunk_size=64
    )
    await connection  # starts aiosqlite's helper thread, which opens the database
    return connection
