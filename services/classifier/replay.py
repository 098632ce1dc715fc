"""``npsloop reclassify``: re-run the current classifier over stored responses (replay).

Batches of responses, each in its own transaction that updates their classifications and
appends ``response.classified`` to the outbox, so an interrupted run leaves every batch
either wholly done or untouched and can simply be started again. Corrections are kept.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import Any, TextIO

from npsloop.services.classifier import service
from npsloop.services.classifier.model import Classifier
from npsloop.services.ingest import service as ingest
from npsloop.shared.clock import Clock
from npsloop.shared.db import Database

BATCH_SIZE = 500


class ProgressLine:
    """A one-line progress bar on a terminal (a plain line per update elsewhere)."""

    def __init__(self, total: int, stream: TextIO, *, width: int = 30) -> None:
        self.total, self.stream, self.width = total, stream, width
        self.started = time.monotonic()
        self.tty = hasattr(stream, "isatty") and stream.isatty()

    def update(self, done: int) -> None:
        fraction = done / self.total if self.total else 1.0
        filled = int(self.width * fraction)
        rate = done / max(time.monotonic() - self.started, 1e-9)
        line = (
            f"reclassify [{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} "
            f"({fraction:4.0%}, {rate:,.0f}/s)"
        )
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


async def reclassify(
    db: Database,
    *,
    classifier: Classifier,
    clock: Clock,
    since: datetime | None = None,
    batch_size: int = BATCH_SIZE,
    progress: TextIO | None = sys.stderr,
) -> int:
    """Re-classify every response received at or after ``since`` (all when None); return how many."""
    async with db.sessions() as session:
        total = await ingest.count_responses(session, since=since)
    bar = ProgressLine(total, progress) if progress is not None else None
    done = 0
    after: dict[str, Any] | None = None  # the last response of the previous page
    if bar:
        bar.update(0)
    while True:
        async with db.unit_of_work() as session:
            page = await ingest.responses_page(session, since=since, after=after, limit=batch_size)
            if not page:
                break
            done += await service.reclassify_batch(session, page, classifier=classifier, clock=clock)
            after = page[-1]
        if bar:
            bar.update(min(done, max(total, done)))
    if bar:
        bar.close()
    return done
