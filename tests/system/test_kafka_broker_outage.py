"""Broker down in Kafka mode: ingest keeps answering, the outbox grows, nothing is lost, it drains.

api, relay, classifier and followup run as separate processes on PostgreSQL and a private
librdkafka mock cluster (private because the test freezes it). The broker is frozen with
SIGSTOP — connections stay open and nothing answers, the nastiest kind of outage for a
client, since every request has to time out — for longer than the relay's request timeout,
so the relay goes through its whole failure path (batch given up, producer dropped,
reconnect attempts) several times. Then the broker comes back and every response accepted
during the outage must reach Kafka, be classified, and every detractor must get exactly
one task.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from sqlalchemy import func, select

from npsloop.services.classifier.models import StoredClassification
from npsloop.services.followup.models import Task
from npsloop.shared.db import Database
from npsloop.shared.models import EventLogEntry
from tests.factories import response_body
from tests.support.kafka_mock import MockKafkaCluster, unique_topic_prefix
from tests.support.processes import free_port
from tests.support.role_processes import RoleProcess, role_environment
from tests.system.test_kafka_end_to_end import api_key, read_with_kcat

pytestmark = pytest.mark.kafka  # its own broker, frozen and thawed: no kafka_bootstrap

BEFORE_OUTAGE = 20
DURING_OUTAGE = 200
REQUEST_TIMEOUT_MS = 2000  # the relay gives a batch up after this; the outage lasts several of them
OUTAGE_SECONDS = 8
DRAIN_TIMEOUT = 90
RECEIVED = "npsloop.response.received.v1"


@pytest.fixture
def backend() -> str:
    return "postgresql"  # Kafka mode's database


@pytest.fixture
def broker():
    cluster = MockKafkaCluster()
    try:
        yield cluster
    finally:
        cluster.close()


async def post(client: httpx.AsyncClient, n: int, tag: str) -> tuple[dict[str, int], float]:
    """POST n responses; return {response id: score} and the slowest answer in seconds."""
    acknowledged: dict[str, int] = {}
    slowest = 0.0
    for i in range(n):
        score = i % 11
        started = time.monotonic()
        body = response_body(score, f"{tag}-{i % 40}", "the app keeps crashing" if score < 7 else "great")
        answer = await client.post("/v1/responses", json=body, headers={"Idempotency-Key": f"{tag}-{i}"})
        slowest = max(slowest, time.monotonic() - started)
        assert answer.status_code == 202, answer.text
        acknowledged[answer.json()["id"]] = score
    return acknowledged, slowest


async def unpublished(db: Database) -> int:
    async with db.sessions() as session:
        return await session.scalar(
            select(func.count()).select_from(EventLogEntry).where(EventLogEntry.published_at.is_(None))
        )


async def settled(db: Database, ids: list[str], detractors: set[str]) -> tuple[int, dict[str, int]]:
    async with db.sessions() as session:
        classified = await session.scalar(
            select(func.count()).select_from(StoredClassification).where(StoredClassification.response_id.in_(ids))
        )
        rows = (await session.execute(select(Task.response_id, func.count()).group_by(Task.response_id))).all()
    return classified, dict(rows)


async def wait_until(condition, timeout: float, roles: list[RoleProcess], what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        for role in roles:
            role.assert_running()
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout}s"
        await asyncio.sleep(0.2)


async def test_broker_outage_grows_the_outbox_and_drains_without_loss(database_url, broker, tmp_path):
    prefix = unique_topic_prefix()
    env = role_environment(
        database_url=database_url,
        kafka_bootstrap=broker.bootstrap_servers,
        data_dir=tmp_path / "data",
        topic_prefix=prefix,
        NPSLOOP_LOG_LEVEL="WARNING",
        NPSLOOP_KAFKA_REQUEST_TIMEOUT_MS=str(REQUEST_TIMEOUT_MS),
    )
    api = RoleProcess("api", env, tmp_path, port=free_port()).start()
    roles = [api] + [RoleProcess(role, env, tmp_path).start() for role in ("relay", "classifier", "followup")]
    relay = roles[1]
    db = Database(database_url)
    try:
        base_url = api.wait_ready()
        headers = await api_key(database_url)
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
            before, _ = await post(client, BEFORE_OUTAGE, "before")

            async def first_ones_classified() -> bool:
                classified, _ = await settled(db, list(before), set())
                return classified == BEFORE_OUTAGE and await unpublished(db) == 0

            await wait_until(first_ones_classified, 60, roles, "the pre-outage responses being classified")

            broker.pause()
            outage_started = time.monotonic()
            during, slowest_during = await post(client, DURING_OUTAGE, "during")
            await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - outage_started)))
            waiting_in_outbox = await unpublished(db)
            for role in roles:
                role.assert_running()  # nobody crashed because the broker hung
            broker.resume()
            outage = time.monotonic() - outage_started

            drain_started = time.monotonic()

            async def drained() -> bool:
                return await unpublished(db) == 0

            await wait_until(drained, DRAIN_TIMEOUT, roles, "the outbox draining")
            drain_seconds = time.monotonic() - drain_started

            acknowledged = before | during
            ids = list(acknowledged)
            detractors = {rid for rid, score in acknowledged.items() if score <= 6}

            async def all_settled() -> bool:
                classified, tasks = await settled(db, ids, detractors)
                return classified == len(ids) and detractors <= tasks.keys()

            await wait_until(all_settled, DRAIN_TIMEOUT, roles, "every response being classified")
            await asyncio.sleep(2)  # a late duplicate would show up now
            classified, tasks = await settled(db, ids, detractors)

        async with db.sessions() as session:
            received_ids = set(
                (await session.scalars(select(EventLogEntry.event_id).where(EventLogEntry.type == RECEIVED))).all()
            )
        on_topic = [json.loads(r["payload"]) for r in read_with_kcat(broker.bootstrap_servers, f"{prefix}.responses")]
        topic_ids = [e["id"] for e in on_topic if e["type"] == RECEIVED]
    finally:
        for role in roles:
            role.stop()
        await db.dispose()

    # Whether the producer retries inside aiokafka or the relay gives a pass up and reconnects,
    # the relay logs the failed requests; none logged would mean the broker never looked down.
    relay_log = relay.log_path.read_text().splitlines()
    relay_failures = sum(1 for line in relay_log if " ERROR " in line or " WARNING " in line)
    print(
        f"\nbroker outage: {outage:.1f}s frozen; {DURING_OUTAGE} responses accepted during it (slowest answer "
        f"{slowest_during * 1000:.0f} ms); {waiting_in_outbox} events waiting in the outbox; relay logged "
        f"{relay_failures} failed requests or passes; drained {drain_seconds:.1f}s after the broker came back; "
        f"{len(set(topic_ids))} distinct response events on the topic ({len(topic_ids) - len(set(topic_ids))} "
        f"re-sent copies); {classified}/{len(ids)} classified; {len(detractors)} detractors, "
        f"{sum(tasks.get(r, 0) for r in detractors)} tasks"
    )
    # The outage really stopped the relay: every event written during it waited in the outbox.
    assert waiting_in_outbox >= DURING_OUTAGE
    assert relay_failures >= 1, "the relay never noticed the outage; the test did not test it"
    # Ingest does not depend on the broker: every answer came back while it was still frozen
    # (the POSTs finish before it resumes), and none waited anywhere near the outage's length.
    # Not a fixed number of seconds: one answer on this shared two-core machine took 3.3 s.
    assert slowest_during < OUTAGE_SECONDS / 2
    # Nothing lost: every response event reached Kafka, and the consumers processed it.
    assert received_ids <= set(topic_ids)
    assert classified == len(ids) == BEFORE_OUTAGE + DURING_OUTAGE
    assert all(tasks.get(rid) == 1 for rid in detractors)
    assert not (set(tasks) & set(ids)) - detractors
