"""The scaled deployment end to end: api, relay, classifier and followup as four processes.

PostgreSQL is real. Kafka is librdkafka's mock cluster (no broker can be installed on these
machines; it speaks the Kafka wire protocol) unless NPSLOOP_TEST_KAFKA_BOOTSTRAP names a
real one. What npsloop put on the topic is read back with kcat, a Kafka client npsloop
did not write, so the wire format is checked independently.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import time
import uuid
from datetime import datetime

import httpx
import pytest

from npsloop.shared import auth
from npsloop.shared.clock import SystemClock
from npsloop.shared.db import Database
from tests.support.kafka_mock import kafka_bootstrap  # noqa: F401 (fixture)
from tests.support.processes import free_port
from tests.support.role_processes import RoleProcess, role_environment

CLOUDEVENTS_REQUIRED = ("specversion", "id", "source", "type")
LATENCY_SAMPLES = 20


@pytest.fixture
def backend() -> str:
    return "postgresql"  # the scaled deployment's database


@pytest.fixture
def deployment(database_url, kafka_bootstrap, tmp_path):
    import os

    # The default topic names are part of the contract; a real broker keeps earlier runs' records,
    # which the test tells apart by customer id.
    env = role_environment(
        database_url=database_url, kafka_bootstrap=kafka_bootstrap, data_dir=tmp_path / "data", topic_prefix="npsloop"
    )
    api = RoleProcess("api", env, tmp_path, port=free_port())
    roles = [api] + [RoleProcess(role, env, tmp_path) for role in ("relay", "classifier", "followup")]
    for role in roles:
        role.start()
    try:
        yield api.wait_ready(), roles
    finally:
        for role in roles:
            role.stop()
        if os.environ.get("NPSLOOP_TEST_SHOW_LOGS"):
            for role in roles:
                print(f"==== {role.role}\n{role.log_tail(200)}")


async def api_key(database_url: str) -> dict[str, str]:
    db = Database(database_url)
    try:
        async with db.unit_of_work() as session:
            _, clear = await auth.create_key(
                session, name="e2e", scopes=["responses:write", "tasks:read"], clock=SystemClock()
            )
    finally:
        await db.dispose()
    return {"Authorization": f"Bearer {clear}"}


def wait_for_task(client: httpx.Client, customer_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = client.get("/v1/tasks", params={"customer_id": customer_id}).json()["tasks"]
        if tasks:
            return tasks[0]
        time.sleep(0.01)
    raise AssertionError(f"no task for {customer_id} after {timeout}s")


def read_with_kcat(bootstrap: str, topic: str) -> list[dict]:
    kcat = shutil.which("kcat")
    if kcat is None:
        pytest.fail("kcat is not installed: run scripts/setup-system-packages (Debian package kcat)")
    done = subprocess.run(
        [kcat, "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


async def test_a_detractor_posted_to_the_api_becomes_a_task_through_kafka(deployment, database_url, kafka_bootstrap):
    base_url, roles = deployment
    headers = await api_key(database_url)
    run_id = uuid.uuid4().hex[:8]
    customer = f"cust-{run_id}-0"
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        posted = client.post(
            "/v1/responses",
            json={"score": 2, "comment": "Support never answered my ticket", "customer": {"id": customer}},
        )
        assert posted.status_code == 202, posted.text
        task = wait_for_task(client, customer)  # includes the consumers joining their groups
        assert task["response_id"] == posted.json()["id"]

        latencies = []  # warm path: POST accepted -> task visible through the API
        for i in range(1, LATENCY_SAMPLES + 1):
            started = time.monotonic()
            assert (
                client.post("/v1/responses", json={"score": 4, "customer": {"id": f"cust-{run_id}-{i}"}}).status_code
                == 202
            )
            wait_for_task(client, f"cust-{run_id}-{i}", timeout=20)
            latencies.append(time.monotonic() - started)
    for role in roles:
        role.assert_running()
    print(
        f"\nend-to-end latency over Kafka (POST -> task), {LATENCY_SAMPLES} detractors: "
        f"median {statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
    )

    records = [r for r in read_with_kcat(kafka_bootstrap, "npsloop.responses") if r.get("key") == customer]
    assert len(records) == 1, "the response event is on npsloop.responses exactly once, keyed by the customer id"
    envelope = json.loads(records[0]["payload"])
    for attribute in CLOUDEVENTS_REQUIRED:
        assert isinstance(envelope.get(attribute), str) and envelope[attribute], attribute
    assert envelope["specversion"] == "1.0"
    assert envelope["type"] == "npsloop.response.received.v1"
    assert envelope["partitionkey"] == customer
    assert envelope["datacontenttype"] == "application/json"
    datetime.fromisoformat(envelope["time"].replace("Z", "+00:00"))  # RFC 3339
    assert envelope["data"]["score"] == 2 and envelope["subject"] == posted.json()["id"]
    flat = records[0].get("headers") or []  # kcat -J lists headers as [name, value, name, value, ...]
    kafka_headers = dict(zip(flat[::2], flat[1::2]))
    assert kafka_headers.get("content-type", "").startswith("application/cloudevents+json")
