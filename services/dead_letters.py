"""``npsloop dlq``: inspect dead-lettered events and run them through their handler again.

A redrive runs the event through the handler of the consumer that dead-lettered it, with
the same idempotency record as normal delivery, so redriving twice never applies twice.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

from sqlalchemy import select

from npsloop.services.runtime import ROLES, Runtime
from npsloop.shared.bus.processing import redrive
from npsloop.shared.models import DeadLetter


async def list_dead_letters(runtime: Runtime, *, include_redriven: bool, consumer: str | None, out: TextIO) -> int:
    query = select(DeadLetter).order_by(DeadLetter.id)
    if not include_redriven:
        query = query.where(DeadLetter.redriven_at.is_(None))
    if consumer:
        query = query.where(DeadLetter.consumer == consumer)
    async with runtime.db.sessions() as session:
        rows = (await session.scalars(query)).all()
    for row in rows:
        state = f"redriven {row.redriven_at.isoformat()}" if row.redriven_at else "waiting"
        reason = row.error.strip().splitlines()[-1][:120] if row.error.strip() else ""
        print(
            f"{row.id}\t{row.consumer}\t{row.type}\t{row.event_id}\t{row.created_at.isoformat()}\t{state}\t{reason}",
            file=out,
        )
    print(f"{len(rows)} dead letter(s)", file=sys.stderr)
    return 0


async def show_dead_letter(runtime: Runtime, dead_letter_id: int, *, out: TextIO) -> int:
    async with runtime.db.sessions() as session:
        row = await session.get(DeadLetter, dead_letter_id)
    if row is None:
        print(f"npsloop dlq: no dead letter with id {dead_letter_id}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "id": row.id,
                "consumer": row.consumer,
                "topic": row.topic,
                "type": row.type,
                "event_id": row.event_id,
                "attempts": row.attempts,
                "error": row.error,
                "created_at": row.created_at.isoformat(),
                "redriven_at": row.redriven_at.isoformat() if row.redriven_at else None,
                "envelope": json.loads(row.envelope),
            },
            indent=2,
            ensure_ascii=False,
        ),
        file=out,
    )
    return 0


async def redrive_dead_letters(runtime: Runtime, ids: list[int], *, redrive_all: bool, out: TextIO) -> int:
    """Redrive the given ids (or every waiting one); exit status 1 if any still fails."""
    subscriptions = {s.consumer: s for s in runtime.subscriptions(ROLES)}
    async with runtime.db.sessions() as session:
        if redrive_all:
            ids = list(
                (
                    await session.scalars(
                        select(DeadLetter.id).where(DeadLetter.redriven_at.is_(None)).order_by(DeadLetter.id)
                    )
                ).all()
            )
        rows = {i: await session.get(DeadLetter, i) for i in ids}
    failed = 0
    for dead_letter_id, row in rows.items():
        if row is None:
            print(f"{dead_letter_id}\tnot found", file=out)
            failed += 1
            continue
        subscription = subscriptions.get(row.consumer)
        if subscription is None:
            print(f"{dead_letter_id}\tno consumer named {row.consumer!r} in this installation", file=out)
            failed += 1
            continue
        try:
            outcome = await redrive(runtime.db, runtime.processor, subscription, dead_letter_id)
        except Exception as exc:  # the handler still fails: report it, keep the dead letter
            print(f"{dead_letter_id}\tstill failing: {type(exc).__name__}: {exc}", file=out)
            failed += 1
            continue
        print(f"{dead_letter_id}\t{outcome}", file=out)
    return 1 if failed else 0
