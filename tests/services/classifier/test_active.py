"""A running process switches to a newly trained classifier within seconds, no restart:
the classifier role classifies with it and the API reports it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from npsloop.services.app import create_app
from npsloop.services.classifier.active import ActiveClassifier
from npsloop.services.classifier.model import BuiltinClassifier
from npsloop.services.classifier.stored_model import save
from npsloop.services.classifier.training import LabelledExample, train
from npsloop.services.runtime import Runtime
from npsloop.shared.settings import Settings


def _examples() -> list[LabelledExample]:
    return [
        LabelledExample(
            comment=f"The price is too high for plan {i}", score=3, themes=["pricing"], sentiment="negative"
        )
        for i in range(15)
    ] + [
        LabelledExample(
            comment=f"Support answered my ticket {i} fast", score=9, themes=["support_experience"], sentiment="positive"
        )
        for i in range(15)
    ]


def test_refresh_swaps_in_a_version_stored_since_and_only_then(tmp_path: Path):
    active = ActiveClassifier(themes=None, data_dir=tmp_path)
    built_in = active.version
    assert active.refresh() is False
    version = save(train(_examples(), base=BuiltinClassifier()), tmp_path)
    assert active.refresh() is True
    assert active.version == version != built_in
    assert active.classify("The price is too high", 3).classifier_version == version
    assert active.refresh() is False  # nothing new since


def test_an_unreadable_newest_version_is_logged_and_the_current_one_kept(tmp_path: Path, caplog):
    active = ActiveClassifier(themes=None, data_dir=tmp_path)
    version = save(train(_examples(), base=BuiltinClassifier()), tmp_path)
    assert active.refresh() is True
    broken = tmp_path / "classifier" / "trained-29991231T235959Z-1.json"
    broken.write_text('{"format": 0}')
    assert active.refresh() is False
    assert active.version == version


async def test_a_running_app_reports_and_uses_a_new_version_within_seconds(database_url, tmp_path: Path, clock):
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        environment="test",
        classifier_reload_seconds=0.05,
        poll_interval_seconds=0.05,
    )
    runtime = Runtime.build(settings, clock=clock)
    app = create_app(runtime, worker_roles=())
    import httpx

    from npsloop.shared import auth

    async with runtime.db.unit_of_work() as session:
        _, key = await auth.create_key(session, name="t", scopes=["admin"], clock=clock)
    headers = {"Authorization": f"Bearer {key}"}
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
        ):
            before = (await client.get("/v1/classifier", headers=headers)).json()
            assert before["kind"] == "built-in"
            version = save(train(_examples(), base=BuiltinClassifier()), settings.data_dir)
            for _ in range(100):
                now = (await client.get("/v1/classifier", headers=headers)).json()
                if now["version"] == version:
                    break
                await asyncio.sleep(0.05)
            assert now["version"] == version and now["kind"] == "trained"
    finally:
        await runtime.close()
