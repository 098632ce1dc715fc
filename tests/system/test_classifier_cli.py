"""The classifier's commands as users run them: `npsloop classify` (JSON Lines in, JSON Lines
out), `npsloop classifier evaluate`, `npsloop classifier train` from stored corrections and
`npsloop reclassify`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess

from sqlalchemy import func, select

from npsloop.services.classifier.active import load_classifier
from npsloop.services.followup.models import Task
from npsloop.shared.models import EventLogEntry
from tests.factories import post_response
from tests.services.classifier.test_evaluation import invented_labels
from tests.support import processes
from tests.support.processes import run_cli

CLASSIFIED = "npsloop.response.classified.v1"


def test_classify_reads_json_lines_and_writes_one_classification_per_line(tmp_path):
    lines = [
        {"id": "a", "score": 2, "comment": "Far too expensive for what you get"},
        {"id": "b", "comment": "Quick and friendly support"},
        {"id": "c", "score": 9, "comment": ""},
    ]
    env = processes.base_env(NPSLOOP_DATA_DIR=str(tmp_path))
    result = subprocess.run(
        [*processes.npsloop_command(), "classify"],
        input="\n".join(json.dumps(x) for x in lines),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in out] == ["a", "b", "c"]
    assert out[0]["category"] == "detractor" and "pricing" in [t["id"] for t in out[0]["themes"]]
    assert out[1]["category"] is None and out[1]["sentiment"] == "positive"
    assert out[2]["category"] == "promoter" and out[2]["themes"] == []
    assert all(o["classifier_version"] for o in out)


def test_classify_refuses_a_stored_model_in_another_format_and_says_what_to_do(tmp_path):
    folder = tmp_path / "classifier"
    folder.mkdir()
    (folder / "trained-20300101T000000Z.json").write_text(json.dumps({"format": 999}))
    env = processes.base_env(NPSLOOP_DATA_DIR=str(tmp_path))
    result = subprocess.run(
        [*processes.npsloop_command(), "classify"],
        input=json.dumps({"id": "a", "score": 2, "comment": "Too expensive"}),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert "format 999" in result.stderr and "npsloop classifier train" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_command_prints_both_models_figures_and_refuses_bad_folds(tmp_path):
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        "\n".join(
            json.dumps({"comment": e.comment, "score": e.score, "themes": e.themes, "sentiment": e.sentiment})
            for e in invented_labels(30)
        )
    )
    env = processes.base_env(NPSLOOP_DATA_DIR=str(tmp_path / "data"))
    command = [*processes.npsloop_command(), "classifier", "evaluate", "--labels", str(labels)]
    result = subprocess.run(
        [*command, "--folds", "3", "--json"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["folds"] == 3 and report["examples"] == 30
    assert report["trained"]["theme_micro_f1"] > report["builtin"]["theme_micro_f1"]
    assert report["trained"]["themes"]["performance_reliability"]["support"] == 15
    assert "fold 3/3: trained on 20" in result.stderr
    assert not (tmp_path / "data" / "classifier").exists()  # evaluating stores no model

    table = subprocess.run(
        command + ["--folds", "2"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert table.returncode == 0, table.stderr
    assert "2-fold cross-validation on 30 labelled comments" in table.stdout
    assert any(
        line.split()[:1] == ["performance_reliability"] and line.split()[-1] == "15"
        for line in table.stdout.splitlines()
    )
    assert "theme micro-F1" in table.stdout and "sentiment macro-F1" in table.stdout

    refused = subprocess.run(
        command + ["--folds", "7"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert refused.returncode == 2
    assert "npsloop classifier evaluate: 30 labelled comments are too few" in refused.stderr


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
