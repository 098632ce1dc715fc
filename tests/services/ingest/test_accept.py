"""Accepting a group of submissions (``service.accept``, behind the group-commit writer and
the batch endpoint): atomic, once per key, and on PostgreSQL without a transaction block."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import event, func, select, text

from npsloop.services.ingest.models import Response
from npsloop.services.ingest.schemas import ResponseIn
from npsloop.services.ingest.service import Accepted, Submission, accept, draft
from npsloop.services.ingest.writer import GroupCommitWriter
from npsloop.shared import events
from npsloop.shared.models import EventLogEntry


def submission(
    n: int,
    *,
    key: str | None = None,
    external_id: str | None = None,
    comment: str | None = "Support took days to answer",
) -> Submission:
    payload = ResponseIn.model_validate(
        {
            "score": n % 11,
            "comment": comment,
            "customer": {"id": f"c-{n}"},
            **({"external_id": external_id} if external_id else {}),
        }
    )
    return Submission(payload, source="tests", idempotency_key=key)


async def accept_group(runtime, submissions: list[Submission]):
    drafts = draft(submissions, now=runtime.clock.now(), dialect=runtime.db.engine.dialect.name)
    return await accept(runtime.db, drafts, clock=runtime.clock)


async def counts(runtime) -> tuple[int, int]:
    async with runtime.db.sessions() as session:
        return (
            await session.scalar(select(func.count()).select_from(Response)),
            await session.scalar(select(func.count()).select_from(EventLogEntry)),
        )


async def refuse_event_log_inserts(runtime, backend: str) -> None:
    """A trigger that fails every insert into the log: the write after the rows' insert fails."""
    async with runtime.db.engine.begin() as conn:
        if backend == "sqlite":
            await conn.execute(
                text(
                    "CREATE TRIGGER refuse_log BEFORE INSERT ON event_log "
                    "BEGIN SELECT RAISE(ABORT, 'log refused by the test'); END"
                )
            )
        else:
            await conn.execute(
                text(
                    "CREATE FUNCTION refuse_log() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'log refused by the test'; END $$"
                )
            )
            await conn.execute(
                text("CREATE TRIGGER refuse_log BEFORE INSERT ON event_log FOR EACH ROW EXECUTE FUNCTION refuse_log()")
            )


async def allow_event_log_inserts(runtime, backend: str) -> None:
    async with runtime.db.engine.begin() as conn:
        await conn.execute(text("DROP TRIGGER refuse_log" + ("" if backend == "sqlite" else " ON event_log")))
        if backend != "sqlite":
            await conn.execute(text("DROP FUNCTION refuse_log()"))


async def test_when_the_events_cannot_be_logged_no_response_of_the_group_is_stored(runtime, backend):
    await refuse_event_log_inserts(runtime, backend)
    try:
        with pytest.raises(Exception, match="log refused by the test"):
            await accept_group(runtime, [submission(n, key=f"k-{n}") for n in range(5)])
    finally:
        await allow_event_log_inserts(runtime, backend)
    assert await counts(runtime) == (0, 0)
    # and the same group goes through once the log takes it
    results = await accept_group(runtime, [submission(n, key=f"k-{n}") for n in range(5)])
    assert all(isinstance(r, Accepted) and not r.duplicate for r in results)
    assert await counts(runtime) == (5, 5)


async def test_a_late_comment_whose_event_cannot_be_logged_is_not_stored_either(runtime, backend):
    await accept_group(runtime, [submission(1, external_id="ext-1", comment=None)])
    await refuse_event_log_inserts(runtime, backend)
    try:
        with pytest.raises(Exception, match="log refused by the test"):
            await accept_group(runtime, [submission(2, key="k-2"), submission(1, external_id="ext-1", comment="Late")])
    finally:
        await allow_event_log_inserts(runtime, backend)
    async with runtime.db.sessions() as session:
        stored = (await session.execute(select(Response))).scalars().all()
    assert [(r.external_id, r.comment) for r in stored] == [("ext-1", None)]

    first, late = await accept_group(
        runtime, [submission(2, key="k-2"), submission(1, external_id="ext-1", comment="Late")]
    )
    assert not first.duplicate and late.duplicate
    async with runtime.db.sessions() as session:
        comment = await session.scalar(select(Response.comment).where(Response.external_id == "ext-1"))
        logged = (await session.execute(select(EventLogEntry.type).order_by(EventLogEntry.position))).scalars().all()
    assert comment == "Late"
    assert logged == [events.RESPONSE_RECEIVED, events.RESPONSE_RECEIVED, events.RESPONSE_UPDATED]


async def test_writers_racing_with_one_idempotency_key_store_it_once(runtime):
    """Submissions trickle in, so the same key lands in groups of both writers at once; on
    PostgreSQL one group's lookup then misses the other's row and its insert fails on the
    unique index, to be redone and answered as a duplicate."""
    writer = GroupCommitWriter(runtime.db, runtime.clock, concurrency=2)

    async def trickle(round_: int) -> list[Accepted]:
        tasks = []
        for _ in range(20):
            tasks.append(asyncio.create_task(writer.submit(submission(round_, key=f"same-{round_}"))))
            await asyncio.sleep(0.0005)
        return await asyncio.gather(*tasks)

    try:
        for round_ in range(5):
            answers = await trickle(round_)
            assert len({a.id for a in answers}) == 1
            assert sum(not a.duplicate for a in answers) == 1
    finally:
        await writer.close()
    assert await counts(runtime) == (5, 5)


async def test_on_postgresql_a_group_of_new_responses_is_two_statements_without_begin_or_commit(
    runtime, backend, monkeypatch
):
    if backend != "postgresql":
        pytest.skip("SQLite takes its write lock at BEGIN; its group stays one transaction")
    await accept_group(runtime, [submission(0, key="warm-up")])  # connection set-up statements
    sent: list[str] = []
    original = asyncpg.connection.Connection.execute

    async def execute(self, query, *args, **kwargs):
        sent.append(query.strip().split()[0].upper())
        return await original(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.connection.Connection, "execute", execute)

    def statement(conn, cursor, sql, parameters, context, executemany):
        sent.append(sql.strip().split()[0].upper())

    event.listen(runtime.db.engine.sync_engine, "before_cursor_execute", statement)
    try:
        results = await accept_group(runtime, [submission(n, key=f"k-{n}") for n in range(10)])
    finally:
        event.remove(runtime.db.engine.sync_engine, "before_cursor_execute", statement)
    assert all(not r.duplicate for r in results)
    assert sent == ["SELECT", "WITH"], sent  # the lookups, then rows and events in one statement
    assert await counts(runtime) == (11, 11)


async def test_consumers_of_the_process_are_woken_when_a_group_is_stored(runtime):
    waiting = asyncio.create_task(runtime.db.commit_signal.wait(timeout=30))
    await asyncio.sleep(0)
    await accept_group(runtime, [submission(1, key="k-1")])
    await asyncio.wait_for(waiting, 5)


async def _groups_written(writer: GroupCommitWriter, monkeypatch) -> list[int]:
    """The size of each group the writer commits, in order."""
    sizes: list[int] = []
    write = writer._write

    async def counting(group, retried=False):
        sizes.append(len(group))
        await write(group, retried)

    monkeypatch.setattr(writer, "_write", counting)
    return sizes


async def test_on_sqlite_a_trickle_of_requests_shares_one_group(runtime, backend, monkeypatch):
    """Requests that arrive a moment apart are committed together on SQLite: one turn on its
    single write slot for several of them, so the consumers get theirs in between."""
    if backend != "sqlite":
        pytest.skip("PostgreSQL has no single write slot; its writers do not wait")
    monkeypatch.setattr("npsloop.services.ingest.writer.SQLITE_LINGER", 0.5)  # wide margins on a busy machine
    writer = GroupCommitWriter(runtime.db, runtime.clock)
    sizes = await _groups_written(writer, monkeypatch)
    try:
        tasks = []
        for n in range(3):
            tasks.append(asyncio.create_task(writer.submit(submission(n))))
            await asyncio.sleep(0.02)  # the writer has the first and is waiting for company
        answers = await asyncio.gather(*tasks)
    finally:
        await writer.close()
    assert sizes == [3]
    assert len({a.id for a in answers}) == 3
    assert await counts(runtime) == (3, 3)


async def test_on_sqlite_a_busy_writer_does_not_wait(runtime, backend, monkeypatch):
    """After a large group (a saturating load) the next one is written at once: waiting
    would only give the slot away and slow ingest down."""
    if backend != "sqlite":
        pytest.skip("PostgreSQL has no single write slot; its writers do not wait")
    monkeypatch.setattr("npsloop.services.ingest.writer.SQLITE_LINGER", 30.0)  # a wait would time the test out
    writer = GroupCommitWriter(runtime.db, runtime.clock)
    sizes = await _groups_written(writer, monkeypatch)
    try:
        busy = [writer.submit(submission(n)) for n in range(20)]  # queued before the writer starts
        await asyncio.gather(*busy)
        late = await asyncio.wait_for(writer.submit(submission(20)), 10)
    finally:
        await writer.close()
    assert sizes == [20, 1]
    assert not late.duplicate
    assert await counts(runtime) == (21, 21)


async def test_closing_the_writer_while_a_group_waits_for_company_still_writes_it(runtime, backend, monkeypatch):
    """Shutdown drains what was submitted, also a request the writer already took and holds
    while it waits for more: it is stored and answered, not cancelled."""
    if backend != "sqlite":
        pytest.skip("PostgreSQL has no single write slot; its writers do not wait")
    monkeypatch.setattr("npsloop.services.ingest.writer.SQLITE_LINGER", 0.3)
    writer = GroupCommitWriter(runtime.db, runtime.clock)
    pending = asyncio.create_task(writer.submit(submission(1)))
    await asyncio.sleep(0.05)  # the writer holds it, waiting; the queue is empty
    await writer.close()
    assert pending.done() and not pending.cancelled()
    assert not pending.result().duplicate
    assert await counts(runtime) == (1, 1)
