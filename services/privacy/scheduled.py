"""The retention role: purges survey comments older than ``NPSLOOP_COMMENT_RETENTION_DAYS``."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from services.privacy.service import purge_comments
from shared.clock import Clock
from shared.db import Database

log = logging.getLogger("npsloop.privacy")


async def purge_expired_comments(db: Database, *, clock: Clock, retention_days: int) -> int:
    """Purge in batches (one short transaction each) until nothing old is left; the count."""
    cutoff = clock.now() - timedelta(days=retention_days)
    total = 0
    while True:
        async with db.unit_of_work() as session:
            purged = await purge_comments(session, older_than=cutoff)
        total += purged
        if purged == 0:
            break
    if total:
        log.info("comments purged", extra={"count": total, "retention_days": retention_days})
    return total


async def run_retention(db: Database, *, clock: Clock, retention_days: int | None, interval: float,
                        stop: asyncio.Event) -> None:
    while not stop.is_set():
        if retention_days:
            try:
                await purge_expired_comments(db, clock=clock, retention_days=retention_days)
            except Exception:
                log.exception("retention purge failed; retrying at the next interval")
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except asyncio.TimeoutError:
            pass
