"""Kill the consumers at random moments while responses stream in; nothing is lost or doubled.

api, relay, classifier and followup run as separate processes on PostgreSQL and Kafka
(librdkafka's mock cluster — no broker can be installed here — or a real broker named by
NPSLOOP_TEST_KAFKA_BOOTSTRAP). The classifier and followup processes are SIGKILLed and
restarted while 2,000 responses are posted; afterwards every acknowledged response must be
classified and every detractor must have exactly one task.
"""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import pytest
from sqlalchemy import func, select

from npsloop.services.classifier.models import StoredClassification
from npsloop.services.followup.models import Task
from npsloop.services.ingest.models import Response
from npsloop.shared.db import Database
from tests.factories import response_body
from tests.support.kafka_mock import kafka_bootstrap, unique_topic_prefix  # noqa: F401 (fixture)
from tests.support.processes import free_port
from tests.support.role_processes import RoleProcess, role_environment
from tests.system.test_kafka_end_to_end import api_key

pytestmark = pytest.mark.crash

RESPONSES = 2000
POSTING_SECONDS = 25  # long enough for several kills to land while responses arrive
CONCURRENCY = 8
DRAIN_TIMEOUT = 120


@pytest.fixture
def backend() -> str:
    return "postgresql"


async def post_responses(base_url: str, headers: dict[str, str], rng: random.Random) -> dict[str, int]:
    """POST RESPONSES responses at a steady pace; return {response id: score} of the acknowledged ones."""
    acknowledged: dict[str, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(RESPONSES):
        queue.put_nowait(i)
    interval = POSTING_SECONDS / RESPONSES * CONCURRENCY
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                score = rng.randint(0, 10)
                started = time.monotonic()
                body = response_body(score, f"crash-{i % 300}", "slow and buggy" if score < 7 else None)
                response = await client.post("/v1/responses", json=body)
                if response.status_code == 202:
                    acknowledged[response.json()["id"]] = score
                await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return acknowledged


async def kill_and_restart(victims: list[RoleProcess], rng: random.Random, until: asyncio.Event) -> list[str]:
    """Kill every victim once per round, in a random order at random moments, until posting ends.

    Rounds (rather than a random choice per kill) make sure each role is killed at least
    once: eight independent choices once all landed on the classifier.
    """
    kills = []
    while not until.is_set():
        for victim in rng.sample(victims, len(victims)):
            await asyncio.sleep(rng.uniform(1.5, 4.0))
            victim.kill()
            kills.append(victim.role)
            await asyncio.sleep(rng.uniform(0.0, 1.0))
            victim.start()
            if until.is_set():
                break
    return kills


async def counts(db: Database, ids: list[str]) -> tuple[int, dict[str, int]]:
    async with db.sessions() as session:
        classified = await session.scalar(
            select(func.count()).select_from(StoredClassification).where(StoredClassification.response_id.in_(ids))
        )
        rows = (await session.execute(select(Task.response_id, func.count()).group_by(Task.response_id))).all()
    return classified, dict(rows)


async def test_killing_consumers_mid_stream_loses_nothing_and_opens_each_task_once(
    database_url, kafka_bootstrap, tmp_path
):
    rng = random.Random(20260501)
    env = role_environment(
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        data_dir=tmp_path / "data",
        topic_prefix=unique_topic_prefix(),
        NPSLOOP_LOG_LEVEL="WARNING",
    )
    api = RoleProcess("api", env, tmp_path, port=free_port()).start()
    relay = RoleProcess("relay", env, tmp_path).start()
    classifier = RoleProcess("classifier", env, tmp_path).start()
    followup = RoleProcess("followup", env, tmp_path).start()
    roles = [api, relay, classifier, followup]
    db = Database(database_url)
    started = time.monotonic()
    try:
        base_url = api.wait_ready()
        headers = await api_key(database_url)
        posting_done = asyncio.Event()
        # Separate generators: the workers draw scores in whatever order the event loop runs
        # them, which must not change the kill schedule.
        killer = asyncio.create_task(
            kill_and_restart([classifier, followup], random.Random(rng.random()), posting_done)
        )
        acknowledged = await post_responses(base_url, headers, random.Random(rng.random()))
        posting_done.set()
        kills = await killer

        ids = list(acknowledged)
        detractors = {rid for rid, score in acknowledged.items() if score <= 6}
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while True:
            classified, tasks = await counts(db, ids)
            if classified == len(ids) and detractors <= tasks.keys():
                break
            for role in roles:
                role.assert_running()
            assert time.monotonic() < deadline, (
                f"after {DRAIN_TIMEOUT}s: {classified}/{len(ids)} classified, "
                f"{len(detractors & tasks.keys())}/{len(detractors)} detractor tasks\n{classifier.log_tail()}"
            )
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # let any late duplicate show up before counting
        classified, tasks = await counts(db, ids)
        async with db.sessions() as session:
            stored = await session.scalar(select(func.count()).select_from(Response).where(Response.id.in_(ids)))
    finally:
        for role in roles:
            role.stop()
        await db.dispose()
    print(
        f"\ncrash test: {len(ids)} acknowledged, {stored} stored, {classified} classified, {len(detractors)} "
        f"detractors, {sum(tasks.get(r, 0) for r in detractors)} tasks for them, kills {kills}, "
        f"{time.monotonic() - started:.0f}s"
    )
    assert len(ids) == RESPONSES and stored == RESPONSES
    assert classified == len(ids)
    assert all(tasks.get(rid) == 1 for rid in detractors)
    assert not (set(tasks) & set(ids)) - detractors  # no task for a passive or promoter
    assert len(kills) >= 4 and {"classifier", "followup"} <= set(kills)
