"""Another process holding SQLite's write lock must not freeze this process's event loop.

Two Database objects on one file stand in for two processes: each has its own in-process
writer queue, so they meet only at SQLite's lock — as `npsloop up` and a CLI command, or
two roles of a scaled deployment, do.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from npsloop.shared.db import Database
from npsloop.shared.db import engine as db_engine


@pytest.fixture
async def two_processes(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    first, second = Database(url), Database(url)
    async with first.unit_of_work() as session:
        await session.execute(text("create table t (x integer)"))
    yield first, second
    await first.dispose()
    await second.dispose()


async def _hold_write_lock(db: Database, seconds: float, held: asyncio.Event) -> None:
    async with db.unit_of_work() as session:
        await session.execute(text("insert into t values (1)"))
        held.set()
        await asyncio.sleep(seconds)


async def test_a_writer_waits_for_another_process_without_blocking_the_loop(two_processes):
    first, second = two_processes
    held = asyncio.Event()
    holder = asyncio.create_task(_hold_write_lock(first, 0.3, held))
    await held.wait()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticker = asyncio.create_task(tick())
    # Before: BEGIN IMMEDIATE waited in SQLite's busy handler on the loop's thread, so the
    # holder (on the same loop) could never commit: both hung until busy_timeout.
    async with asyncio.timeout(10):
        async with second.unit_of_work() as session:
            await session.execute(text("insert into t values (2)"))
        await holder
    ticker.cancel()
    assert ticks >= 10  # the loop kept running while the second writer waited
    async with second.sessions() as session:
        assert sorted((await session.scalars(text("select x from t"))).all()) == [1, 2]


async def test_a_writer_gives_up_when_the_lock_is_held_too_long(two_processes, monkeypatch):
    first, second = two_processes
    monkeypatch.setattr(db_engine, "SQLITE_LOCK_WAIT_SECONDS", 0.2)
    held = asyncio.Event()
    holder = asyncio.create_task(_hold_write_lock(first, 1.0, held))
    await held.wait()
    with pytest.raises(OperationalError, match="database is locked"):
        async with second.unit_of_work() as session:
            await session.execute(text("insert into t values (2)"))
    await holder
    async with second.sessions() as session:
        assert (await session.scalars(text("select x from t"))).all() == [1]  # nothing half-written
