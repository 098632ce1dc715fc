"""Commit signals reach other processes on PostgreSQL (LISTEN/NOTIFY): a stage starts at
once instead of at its next poll. Two Database objects stand for two processes; each has
its own notification connection, exactly as two role processes would."""

from __future__ import annotations

import asyncio
import time

import asyncpg
from sqlalchemy import text

from npsloop.shared.db import Database
from npsloop.shared.db import notify as notify_module
from npsloop.shared.db.signals import EVENTS_APPENDED, events_appended_to, signal_on_commit


async def _commit_with(db: Database, flag: str | None) -> None:
    async with db.unit_of_work() as session:
        await session.execute(text("SELECT 1"))
        if flag:
            signal_on_commit(session, flag)


async def _two_processes(postgres_url: str) -> tuple[Database, Database]:
    writer, reader = Database(postgres_url), Database(postgres_url)
    for db in (writer, reader):
        await db.start_cross_process_signals()
        assert db.cross_process is not None and await db.cross_process.wait_connected(10)
    return writer, reader


async def test_a_commit_in_one_process_wakes_a_waiter_in_another(postgres_url):
    writer, reader = await _two_processes(postgres_url)
    try:
        waiting = asyncio.create_task(reader.commit_signal.wait(30))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await _commit_with(writer, EVENTS_APPENDED)
        assert await waiting is True, "woken by the other process's commit, not by the 30 s timeout"
        assert time.monotonic() - started < 5
        # A commit that raised no flag wakes nobody.
        waiting = asyncio.create_task(reader.commit_signal.wait(0.5))
        await _commit_with(writer, None)
        assert await waiting is False
    finally:
        await writer.dispose()
        await reader.dispose()


async def test_signals_made_after_start_are_heard_too(postgres_url):
    writer, reader = await _two_processes(postgres_url)
    try:
        late = reader.signal("deliveries_enqueued")  # as the delivery worker makes its signal
        writer.signal("deliveries_enqueued")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the listener picks new signals up within a second or so
            waiting = asyncio.create_task(late.wait(0.5))
            await _commit_with(writer, "deliveries_enqueued")
            if await waiting:
                break
        else:
            raise AssertionError("a signal made after start was never heard")
    finally:
        await writer.dispose()
        await reader.dispose()


async def test_the_notification_connection_comes_back_after_it_is_killed(postgres_url, monkeypatch):
    monkeypatch.setattr(notify_module, "RECONNECT_SECONDS", 0.2)
    writer, reader = await _two_processes(postgres_url)
    try:
        admin = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            pid = reader.cross_process._connection.get_server_pid()
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            waiting = asyncio.create_task(reader.commit_signal.wait(0.5))
            await _commit_with(writer, EVENTS_APPENDED)
            if await waiting and reader.cross_process._connection.get_server_pid() != pid:
                break
        else:
            raise AssertionError("no notification after the connection was killed")
    finally:
        await writer.dispose()
        await reader.dispose()


async def test_sqlite_has_no_notification_connection(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    await db.start_cross_process_signals()
    assert db.cross_process is None
    await db.dispose()


async def test_a_topic_flag_reaches_the_process_waiting_for_that_topic_only(postgres_url):
    """The API appends events it never consumes: its commits are announced all the same, and
    a consumer in another process wakes for its own topic, not for another's."""
    writer, reader = await _two_processes(postgres_url)
    long_topic = "t" * 80  # past PostgreSQL's 63-byte identifiers
    try:
        followups = reader.signal(events_appended_to("followups"))
        long_one = reader.signal(events_appended_to(long_topic))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the listener picks new signals up within a second or so
            waiting = asyncio.create_task(followups.wait(0.5))
            await _commit_with(writer, events_appended_to("followups"))
            if await waiting:
                break
        else:
            raise AssertionError("a topic's commit in another process never woke its waiter")
        assert events_appended_to("followups") not in writer._signals, "the writer made no signal of its own"
        waiting = asyncio.create_task(followups.wait(0.5))
        await _commit_with(writer, events_appended_to("responses"))
        assert await waiting is False, "woken by another topic's commit"
        waiting = asyncio.create_task(long_one.wait(10))
        await _commit_with(writer, events_appended_to(long_topic))
        assert await waiting is True
    finally:
        await writer.dispose()
        await reader.dispose()


def test_long_flags_get_distinct_channels_within_postgresqls_identifier_limit():
    first, second = (notify_module.channel(events_appended_to("x" * 70 + tail)) for tail in ("a", "b"))
    assert first != second
    assert max(len(first.encode()), len(second.encode())) <= 63
    assert notify_module.channel("events_appended") == "npsloop_events_appended"
