"""`npsloop classifier train` from stored corrections and `npsloop reclassify`, run as users run them."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import timedelta

from sqlalchemy import func, select

from npsloop.services.classifier.model import load_classifier
from npsloop.services.classifier.replay import reclassify
from npsloop.services.followup.models import Task
from npsloop.shared.models import EventLogEntry
from tests.factories import post_response
from tests.support.processes import run_cli

CLASSIFIED = "npsloop.response.classified.v1"


def _env(settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NPSLOOP_")}
    env.update(
        NPSLOOP_DATABASE_URL=settings.database_url, NPSLOOP_DATA_DIR=str(settings.data_dir), NPSLOOP_LOG_LEVEL="WARNING"
    )
    return env


async def _cli(settings, tmp_path, *args: str):
    return await asyncio.to_thread(run_cli, *args, env=_env(settings), cwd=tmp_path)


async def _count(runtime, model, *where) -> int:
    async with runtime.db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def test_train_learns_from_stored_corrections_and_reclassify_stamps_the_new_version_keeping_corrections(
    client, runtime, make_key, pump, settings, tmp_path
):
    headers = await make_key("admin")
    ids = [
        await post_response(client, headers, score=2, comment="Waited forty minutes on hold", customer="a"),
        await post_response(client, headers, score=10, comment="Everything just works", customer="b"),
        await post_response(client, headers, score=4, comment="Invoice was wrong twice", customer="c"),
    ]
    await pump()
    await client.put(
        f"/v1/responses/{ids[0]}/classification",
        headers=headers,
        json={"themes": ["support_experience", "performance_reliability"], "sentiment": "negative"},
    )
    await client.put(f"/v1/responses/{ids[2]}/classification", headers=headers, json={"themes": ["pricing"]})
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {
                    "comment": "On hold for an hour",
                    "score": 1,
                    "themes": ["support_experience"],
                    "sentiment": "negative",
                },
                {"comment": "Charged twice this month", "score": 3, "themes": ["pricing"], "sentiment": "negative"},
                {"comment": "Fine", "score": 8, "themes": [], "sentiment": "neutral"},
            ]
        )
        + "\n"
    )

    trained = await _cli(settings, tmp_path, "classifier", "train", "--labels", str(labels))
    assert trained.returncode == 0, trained.stderr
    version = trained.stdout.strip().splitlines()[-1]
    assert version.startswith("trained-") and "2 stored corrections" in trained.stderr
    assert load_classifier(data_dir=settings.data_dir).version == version

    replay = await _cli(settings, tmp_path, "reclassify")
    assert replay.returncode == 0, replay.stderr
    assert "3/3" in replay.stderr and f"reclassified 3 responses with {version}" in replay.stderr
    for rid in ids:
        shown = (await client.get(f"/v1/responses/{rid}", headers=headers)).json()
        assert shown["classifier_version"] == version
    first = (await client.get(f"/v1/responses/{ids[0]}", headers=headers)).json()
    assert {t["id"] for t in first["themes"]} == {"support_experience", "performance_reliability"}
    third = (await client.get(f"/v1/responses/{ids[2]}", headers=headers)).json()
    assert [t["id"] for t in third["themes"]] == ["pricing"]
    # 3 first classifications + 2 corrections + 3 replayed
    assert await _count(runtime, EventLogEntry, EventLogEntry.type == CLASSIFIED) == 8
    await pump()
    assert await _count(runtime, Task) == 2  # the two detractors, each once


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


async def test_train_without_examples_or_with_bad_labels_exits_2_with_a_message(settings, tmp_path):
    nothing = await _cli(settings, tmp_path, "classifier", "train")
    assert nothing.returncode == 2 and "no labelled examples" in nothing.stderr
    assert "Traceback" not in nothing.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"comment": "ok", "sentiment": "great"}\n')
    invalid = await _cli(settings, tmp_path, "classifier", "train", "--labels", str(bad))
    assert invalid.returncode == 2 and "labels line 1" in invalid.stderr and "Traceback" not in invalid.stderr
    missing = await _cli(settings, tmp_path, "classifier", "train", "--labels", str(tmp_path / "none.jsonl"))
    assert missing.returncode == 2 and "cannot read --labels" in missing.stderr


async def test_reclassify_rejects_a_bad_since_date(settings, tmp_path):
    reply = await _cli(settings, tmp_path, "reclassify", "--since", "last tuesday")
    assert reply.returncode == 2 and "--since" in reply.stderr
