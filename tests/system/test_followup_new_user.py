"""Tried as a new user would: ``npsloop up`` as a process, a policy whose SLA is 8 seconds,
a local Slack receiver — and the loop closes by itself in real time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from tests.support.processes import free_port
from tests.support.receivers import field_values

NPSLOOP = str(Path(sys.executable).with_name("npsloop"))


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_npsloop_up_warns_and_breaches_an_untouched_task_alerts_slack_and_throttles(tmp_path, slack):
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"""
sla:
  - match: {{score: "0-6"}}
    due_in: 8s
sla_warning_at: 0.75
channels:
  cs-slack: {{type: slack, url: "{slack.url}"}}
routing:
  - match: {{}}
    team: cs
    channel: cs-slack
throttle:
  referral_every: 30d
  survey_every: 90d
""")
    port = free_port()
    env = {
        **os.environ,
        "NPSLOOP_DATA_DIR": str(tmp_path / "data"),
        "NPSLOOP_POLICY_FILE": str(policy),
        "NPSLOOP_ALLOW_PRIVATE_WEBHOOK_URLS": "1",
        "NPSLOOP_SLA_CHECK_INTERVAL_SECONDS": "0.5",
        "NPSLOOP_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "NPSLOOP_LOG_FORMAT": "json",
    }
    env.pop("NPSLOOP_DATABASE_URL", None)
    created = subprocess.run(
        [NPSLOOP, "keys", "create", "--name", "demo", "--scopes", "admin"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    headers = {"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"}
    server = subprocess.Popen(
        [NPSLOOP, "up", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "npsloop.log", "w"),
    )
    try:
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10)

        def ready() -> bool:
            try:
                return api.get("/readyz").status_code == 200
            except httpx.HTTPError:
                return False

        _wait(ready, 60, "npsloop up to be ready")
        for customer in ("untouched", "handled"):
            reply = api.post(
                "/v1/responses", json={"score": 3, "comment": "Invoices are wrong", "customer": {"id": customer}}
            )
            assert reply.status_code == 202
        tasks = _wait(lambda: (t := api.get("/v1/tasks").json()["tasks"]) and len(t) == 2 and t, 10, "two tasks")
        by_customer = {t["customer_id"]: t for t in tasks}
        assert api.post(f"/v1/tasks/{by_customer['handled']['id']}/acknowledge").status_code == 200

        for _ in range(2):  # a promoter who answers twice
            assert api.post("/v1/responses", json={"score": 10, "customer": {"id": "fan"}}).status_code == 202
        eligibility = api.get("/v1/surveys/eligibility", params={"customer_id": "fan"}).json()
        assert eligibility["eligible"] is False and eligibility["reason"] == "recently_responded"
        next_at = datetime.fromisoformat(eligibility["next_eligible_at"])
        expected = datetime.fromisoformat(eligibility["last_response_at"]) + timedelta(days=90)
        assert next_at == expected and abs((next_at - datetime.now(next_at.tzinfo)) - timedelta(days=90)) < timedelta(
            minutes=1
        )

        def titles() -> list[str]:
            return [m["blocks"][0]["text"]["text"] for m in slack.messages()]

        _wait(lambda: "SLA breached" in titles(), 30, "the breach alert")
        time.sleep(2)  # room for anything wrongly sent late
        untouched = api.get(f"/v1/tasks/{by_customer['untouched']['id']}").json()
        handled = api.get(f"/v1/tasks/{by_customer['handled']['id']}").json()
        assert [e["type"] for e in untouched["events"]] == ["opened", "sla_warning", "sla_breached"]
        assert untouched["breached"] is True and handled["breached"] is False
        assert [e["type"] for e in handled["events"]] == ["opened", "acknowledged"]
        messages = slack.messages()  # every one checked for Block Kit shape
        assert sorted(titles()) == sorted(
            ["New detractor", "New detractor", "SLA warning", "SLA breached", "Promoter: ask for a referral"]
        )
        alerted = {
            m["blocks"][0]["text"]["text"]: field_values(m)["Customer"]
            for m in messages
            if m["blocks"][0]["text"]["text"].startswith("SLA")
        }
        assert alerted == {"SLA warning": "untouched", "SLA breached": "untouched"}
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert server.returncode in (0, -signal.SIGTERM), (tmp_path / "npsloop.log").read_text()[-3000:]
