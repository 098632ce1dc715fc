"""What a new user does, against ``npsloop up`` running as its own process (embedded default)."""

from __future__ import annotations

import sqlite3
import time

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.support import processes
from tests.support.receivers import HttpReceiver
from tests.support.waiting import wait_for


@pytest.fixture
def npsloop_up(tmp_path):
    port = processes.free_port()
    env = processes.base_env(
        NPSLOOP_DATA_DIR=str(tmp_path / "data"),
        NPSLOOP_ALLOW_PRIVATE_WEBHOOK_URLS="1",
        NPSLOOP_POLL_INTERVAL_SECONDS="0.1",
    )
    log = tmp_path / "npsloop.log"
    created = processes.run_cli("keys", "create", "--name", "shop-app", "--scopes", "admin", env=env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    process = processes.start("up", "--port", str(port), env=env, cwd=tmp_path, log=log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        processes.wait_ready(base_url, process, log)
        yield base_url, key, tmp_path / "data" / "npsloop.db"
    finally:
        processes.stop(process)


def test_a_new_user_sees_a_detractor_become_a_task_and_signed_alerts(npsloop_up, capsys):
    base_url, key, db_path = npsloop_up
    auth = {"Authorization": f"Bearer {key}"}
    receiver = HttpReceiver()
    try:
        with httpx.Client(base_url=base_url, headers=auth, timeout=10) as http:
            hook = http.post(
                "/v1/webhooks",
                json={"url": receiver.url, "events": ["npsloop.followup.opened.v1", "npsloop.referral.requested.v1"]},
            ).json()

            posted_at = time.monotonic()
            detractor = http.post(
                "/v1/responses",
                headers={"Idempotency-Key": "order-1001"},
                json={
                    "score": 3,
                    "comment": "Delivery was late and nobody answered my emails",
                    "customer": {"id": "cust-77", "email": "pat@example.com", "segment": "smb"},
                    "survey": {"touchpoint": "purchase", "kind": "transactional", "channel": "email"},
                },
            )
            assert detractor.status_code == 202
            rid = detractor.json()["id"]
            tasks = wait_for(lambda: http.get("/v1/tasks", params={"customer_id": "cust-77"}).json()["tasks"])
            post_to_task = time.monotonic() - posted_at
            (task,) = tasks
            assert task["response_id"] == rid and task["status"] == "open"
            from datetime import datetime

            sla = datetime.fromisoformat(task["due_at"]) - datetime.fromisoformat(task["received_at"])
            assert sla.total_seconds() == 24 * 3600

            promoter = http.post(
                "/v1/responses", json={"score": 10, "comment": "Love it", "customer": {"id": "cust-88"}}
            )
            assert promoter.status_code == 202

            wait_for(lambda: len(receiver.requests) >= 2)
            verified = {}
            for request in receiver.requests:
                payload = Webhook(hook["secret"]).verify(request.body, request.headers)
                verified[payload["type"]] = payload
            assert verified["npsloop.followup.opened.v1"]["data"]["task_id"] == task["id"]
            assert verified["npsloop.referral.requested.v1"]["data"]["customer"]["id"] == "cust-88"

            repeat = http.post(
                "/v1/responses",
                headers={"Idempotency-Key": "order-1001"},
                json={
                    "score": 3,
                    "comment": "Delivery was late and nobody answered my emails",
                    "customer": {"id": "cust-77", "email": "pat@example.com", "segment": "smb"},
                    "survey": {"touchpoint": "purchase", "kind": "transactional", "channel": "email"},
                },
            )
            assert repeat.status_code == 202 and repeat.json()["id"] == rid

            bad = [
                (http.post("/v1/responses", json={"score": 11, "customer": {"id": "x"}}), 422, "score"),
                (http.post("/v1/responses", json={"score": 5, "customer": {}}), 422, "customer.id"),
                (httpx.post(f"{base_url}/v1/responses", json={"score": 5, "customer": {"id": "x"}}), 401, None),
                (
                    httpx.post(
                        f"{base_url}/v1/responses",
                        json={"score": 5, "customer": {"id": "x"}},
                        headers={"Authorization": "Bearer nps_000000000000_wrong"},
                    ),
                    401,
                    None,
                ),
            ]
            for reply, status, field in bad:
                assert reply.status_code == status
                assert reply.headers["content-type"] == "application/problem+json"
                if field:
                    assert field in [e["field"] for e in reply.json()["errors"]]
            time.sleep(0.5)
            assert len(http.get("/v1/tasks").json()["tasks"]) == 1
        with sqlite3.connect(db_path) as conn:
            assert conn.execute("select count(*) from responses").fetchone()[0] == 2
        with capsys.disabled():
            print(f"\nend-to-end: POST to task stored {post_to_task * 1000:.0f} ms")
    finally:
        receiver.close()
