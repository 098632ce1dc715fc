"""``among`` answers as ``IN`` does, and on PostgreSQL is one statement for lists of any length."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import event as sa_event
from sqlalchemy import select

from npsloop.shared.db import Database, among
from npsloop.shared.models import ProcessedEvent


async def test_among_finds_what_in_finds_with_one_statement_for_every_length(database_url, backend):
    db = Database(database_url)
    try:
        async with db.unit_of_work() as session:
            for n in range(10):
                session.add(
                    ProcessedEvent(consumer="c", event_id=f"e{n}", processed_at=datetime(2026, 1, 1, tzinfo=UTC))
                )
        statements: list[str] = []

        def record(conn, cursor, statement, parameters, context, executemany) -> None:
            if "processed_events" in statement:
                statements.append(statement)

        sa_event.listen(db.engine.sync_engine, "before_cursor_execute", record)
        asked = [
            [],
            ["e1"],
            ["e1", "e2", "missing"],
            ["e3", "e3", "e4", "'; drop table x; --"],
            [f"e{n}" for n in range(12)],
        ]
        async with db.sessions() as session:
            for ids in asked:
                found = set(
                    (
                        await session.scalars(
                            select(ProcessedEvent.event_id).where(
                                ProcessedEvent.consumer == "c", among(session, ProcessedEvent.event_id, ids)
                            )
                        )
                    ).all()
                )
                expected = set(
                    (
                        await session.scalars(
                            select(ProcessedEvent.event_id).where(
                                ProcessedEvent.consumer == "c", ProcessedEvent.event_id.in_(ids)
                            )
                        )
                    ).all()
                )
                assert found == expected == {i for i in ids if i in {f"e{n}" for n in range(10)}}
        sa_event.remove(db.engine.sync_engine, "before_cursor_execute", record)
        ours = statements[0::2]
        if backend == "postgresql":
            assert len(set(ours)) == 1, ours
            assert "ANY" in ours[0]
        assert len(set(statements[1::2])) > 1, "IN is a statement per length (what among avoids)"
    finally:
        await db.dispose()
