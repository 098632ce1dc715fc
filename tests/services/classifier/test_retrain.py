"""Automatic retraining after N new corrections (NPSLOOP_CLASSIFIER_RETRAIN_AFTER_CORRECTIONS)."""

from __future__ import annotations

from npsloop.services.classifier.active import ActiveClassifier
from npsloop.services.classifier.retrain import last_trained_at, retrain_if_due
from npsloop.shared.settings import Settings
from tests.factories import post_response

# Invented comments: enough corrections of one theme for a trained head.
COMMENTS = [
    "The price went up again this year",
    "Too expensive for what it does",
    "Billing charged me twice",
    "The renewal quote was far too high",
]


async def _correct(client, headers, pump, comments: list[str], start: int = 0) -> None:
    ids = [
        await post_response(client, headers, score=3, customer=f"c-{start + i}", comment=c)
        for i, c in enumerate(comments)
    ]
    await pump()
    for rid in ids:
        reply = await client.put(
            f"/v1/responses/{rid}/classification",
            headers=headers,
            json={"themes": ["pricing"], "sentiment": "negative"},
        )
        assert reply.status_code == 200, reply.text


async def test_a_new_version_is_trained_after_n_new_corrections_and_every_role_switches_to_it(
    client, runtime, make_key, pump, clock, tmp_path
):
    headers = await make_key("admin")
    data_dir = tmp_path / "retrain"
    active = ActiveClassifier(themes=None, data_dir=data_dir)
    due = {"db": runtime.db, "themes": None, "data_dir": data_dir, "clock": clock}
    await _correct(client, headers, pump, COMMENTS[:3])
    assert await retrain_if_due(after_corrections=4, **due) is None  # 3 of 4
    assert await retrain_if_due(after_corrections=0, **due) is None  # off
    await _correct(client, headers, pump, COMMENTS[3:], start=3)
    version = await retrain_if_due(after_corrections=4, **due)
    assert version is not None and version.startswith("trained-")
    assert last_trained_at(data_dir) is not None
    assert active.refresh() is True and active.version == version
    assert active.current.model.trained_on.theme_examples == 4  # type: ignore[attr-defined]
    # The corrections it learnt from do not count again; new ones do.
    clock.advance(seconds=5)
    assert await retrain_if_due(after_corrections=1, **due) is None
    await _correct(client, headers, pump, ["Costs more than the competition"], start=10)
    clock.advance(seconds=5)
    newer = await retrain_if_due(after_corrections=1, **due)
    assert newer is not None and newer > version


def test_it_is_off_by_default_and_refuses_a_negative_count():
    import pydantic
    import pytest

    assert Settings().classifier_retrain_after_corrections == 0
    with pytest.raises(pydantic.ValidationError, match="classifier_retrain_after_corrections"):
        Settings(classifier_retrain_after_corrections=-1)


async def test_the_classifier_role_retrains_by_itself_and_every_role_switches_without_a_restart(
    client, runtime, make_key, pump
):
    import asyncio

    runtime.settings = runtime.settings.model_copy(
        update={"classifier_retrain_after_corrections": 2, "classifier_reload_seconds": 0.1}
    )
    assert runtime.classifier.version.startswith("builtin-")
    await runtime.start(roles=("classifier",))
    await _correct(client, await make_key("admin"), pump, COMMENTS[:2])
    for _ in range(300):
        if runtime.classifier.version.startswith("trained-"):
            break
        await asyncio.sleep(0.1)
    assert runtime.classifier.version.startswith("trained-")
