"""The retention role: purges survey comments older than ``NPSLOOP_COMMENT_RETENTION_DAYS``
and prunes the event log (``NPSLOOP_EVENT_LOG_RETENTION_DAYS``, see shared.bus.log_retention)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from npsloop.services.privacy.service import purge_comments
from npsloop.shared.clock import Clock
from npsloop.shared.db import Database

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


async def run_retention(
    jobs: list[tuple[str, Callable[[], Awaitable[object]]]], *, interval: float, stop: asyncio.Event
) -> None:
    """Run each housekeeping job every ``interval`` seconds; one failing job does not stop the others."""
    while not stop.is_set():
        for name, job in jobs:
            try:
                await job()
            except Exception:
                log.exception("retention job failed; retrying at the next interval", extra={"job": name})
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            pass
