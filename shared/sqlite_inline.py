"""aiosqlite's interface, with statements executed on the event loop's own thread.

aiosqlite runs every statement in a helper thread and hands the result back to the loop.
SQLite statements take microseconds, but each hand-off costs a thread switch and a loop
wake-up — far more — and the consumers make thousands of them. Running the calls inline
removes that cost. The helper thread still exists (it opens and closes the connection
and serves the few calls that go to its queue directly). The price: a statement waiting
on another *process's* write lock blocks the loop for that wait (bounded by
busy_timeout); within the process, writers already queue in asyncio
(see Database.unit_of_work).
"""

from __future__ import annotations

import sqlite3
from typing import Any

import aiosqlite


class InlineConnection(aiosqlite.Connection):
    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)


async def connect(path: str, *, timeout: float = 30.0) -> InlineConnection:
    # check_same_thread=False: the connection is opened by the helper thread but used here.
    connection = InlineConnection(lambda: sqlite3.connect(path, timeout=timeout, check_same_thread=False),
                                  iter_chunk_size=64)
    return await connection
