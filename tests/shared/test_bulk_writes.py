"""The bulk-write helpers behind a fast import: driver-level inserts, envelopes, ids."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from npsloop.services.ingest.models import Response
from npsloop.shared import events, outbox
from npsloop.shared.db import BulkInsert, json_text, stored_datetime
from npsloop.shared.models import EventLogEntry


def test_envelope_json_is_byte_for_byte_what_the_model_writes():
    time = datetime(2026, 5, 1, 9, 30, 15, 123456, tzinfo=UTC)
    data = {
        "id": "r-1",
        "comment": "naïve “quotes” \\ and \n newlines",
        "score": 3,
        "ratio": 0.1,
        "customer": {"id": "c-1"},
        "properties": {"plan": None, "seats": 12, "trial": True},
    }
    model = events.new_event(events.RESPONSE_RECEIVED, key="c-1", subject="r-1", data=data, time=time)
    fast = events.envelope_json(
        events.RESPONSE_RECEIVED,
        event_id=model.id,
        key="c-1",
        subject="r-1",
        data=data,
        time_json=events.envelope_time(time),
    )
    assert fast == model.to_json()
    assert events.CloudEvent.from_json(fast) == model


@pytest.mark.hand_made_events  # stand-in envelopes: the test is about rows, not events
async def test_bulk_insert_writes_what_the_orm_reads_back_in_the_order_given(runtime):
    now = datetime(2026, 5, 1, 12, 0, 0, 500, tzinfo=UTC)
    insert = BulkInsert(
        Response.__table__,
        (
            "id",
            "source",
            "request_hash",
            "score",
            "comment",
            "customer_id",
            "customer",
            "properties",
            "responded_at",
            "received_at",
        ),
    )
    async with runtime.db.unit_of_work() as session:
        conn = await session.connection()
        dialect = conn.dialect.name
        await insert.run(
            conn,
            [
                (
                    f"r-{n}",
                    "bulk",
                    "",
                    n % 11,
                    'é, "quoted"' if n == 3 else None,
                    f"c-{n}",
                    json_text({"id": f"c-{n}", "name": "Zoë"}),
                    json_text({"n": n}),
                    stored_datetime(now - timedelta(days=n), dialect),
                    stored_datetime(now, dialect),
                )
                for n in range(300)
            ],
        )
        await outbox.append_entries(
            session,
            [(f"e-{n}", "responses", events.RESPONSE_RECEIVED, f"c-{n}", json.dumps({"n": n})) for n in range(300)],
            clock=runtime.clock,
        )
    async with runtime.db.sessions() as session:
        stored = {r.id: r for r in (await session.execute(select(Response))).scalars()}
        logged = (await session.execute(select(EventLogEntry).order_by(EventLogEntry.position))).scalars().all()
    assert len(stored) == 300
    three = stored["r-3"]
    assert (three.score, three.comment, three.customer, three.properties) == (
        3,
        'é, "quoted"',
        {"id": "c-3", "name": "Zoë"},
        {"n": 3},
    )
    assert three.responded_at == now - timedelta(days=3) and three.received_at == now
    assert stored["r-299"].comment is None
    # positions follow the order of the rows given: per-customer event order depends on it
    assert [entry.event_id for entry in logged] == [f"e-{n}" for n in range(300)]
    assert all(entry.created_at == runtime.clock.now() for entry in logged)


def test_bulk_insert_refuses_unknown_columns():
    with pytest.raises(ValueError, match="scroe"):
        BulkInsert(Response.__table__, ("id", "scroe"))


@pytest.mark.hand_made_events
async def test_log_appends_on_postgresql_commit_in_position_order(runtime, backend):
    """A consumer reads ``position > n``: a later position must never commit before an earlier
    one. The append statement itself takes the log's lock, so a second appender waits."""
    if backend != "postgresql":
        pytest.skip("SQLite serialises writers already")

    def entry(name: str) -> tuple[str, str, str, str, str]:
        return (name, "responses", events.RESPONSE_RECEIVED, "c-1", json.dumps({"n": name}))

    first_appended = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> None:
        async with runtime.db.unit_of_work() as session:
            await outbox.append_entries(session, [entry("first")], clock=runtime.clock)
            first_appended.set()
            await release_first.wait()

    async def second() -> None:
        async with runtime.db.unit_of_work() as session:
            await outbox.append_entries(session, [entry("second")], clock=runtime.clock)

    first_task = asyncio.create_task(first())
    await first_appended.wait()
    second_task = asyncio.create_task(second())
    await asyncio.sleep(0.3)
    assert not second_task.done(), "the second append went ahead while the first was uncommitted"
    release_first.set()
    await asyncio.wait_for(asyncio.gather(first_task, second_task), 10)
    async with runtime.db.sessions() as session:
        logged = (await session.execute(select(EventLogEntry).order_by(EventLogEntry.position))).scalars().all()
    assert [e.event_id for e in logged] == ["first", "second"]
