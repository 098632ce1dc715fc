"""Reclassifying stored responses with the current model: from a date on, in batches, with progress.
The `train` and `reclassify` commands run as processes in tests/system/test_classifier_cli.py."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select

from npsloop.services.classifier.replay import reclassify
from npsloop.services.followup.models import Task
from npsloop.shared.models import EventLogEntry
from tests.factories import post_response

CLASSIFIED = "npsloop.response.classified.v1"


async def _count(runtime, model, *where) -> int:
    async with runtime.db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def test_reclassify_since_only_touches_responses_received_from_that_date(client, runtime, make_key, pump, clock):
    headers = await make_key("admin")
    old = await post_response(client, headers, score=3, comment="Too expensive")
    clock.advance(days=3)
    new = await post_response(client, headers, score=9, comment="Friendly staff")
    await pump()
    since = clock.now() - timedelta(days=1)
    count = await reclassify(runtime.db, classifier=runtime.classifier, clock=clock, since=since, progress=None)
    assert count == 1
    async with runtime.db.sessions() as session:
        subjects = [
            json.loads(e)["subject"]
            for e in (
                await session.scalars(select(EventLogEntry.envelope).where(EventLogEntry.type == CLASSIFIED))
            ).all()
        ]
    assert subjects.count(new) == 2 and subjects.count(old) == 1


async def test_reclassify_works_in_batches_and_reports_progress(client, runtime, make_key, pump, clock):
    import io

    headers = await make_key("admin")
    for n in range(5):
        await post_response(client, headers, score=n, comment=f"Comment number {n}", customer=f"cust-{n}")
    await pump()
    progress = io.StringIO()
    assert (
        await reclassify(runtime.db, classifier=runtime.classifier, clock=clock, batch_size=2, progress=progress) == 5
    )
    lines = progress.getvalue().splitlines()
    assert [line.split("] ")[1].split(" ")[0] for line in lines] == ["0/5", "2/5", "4/5", "5/5"]
    await pump()
    assert await _count(runtime, Task) == 5
