"""One process per role on PostgreSQL: each stage hears of the previous one's commits
(LISTEN/NOTIFY), so an alert does not wait for every stage's poll. The poll interval is
set to 30 s here: an alert within seconds proves the hand-offs did not wait for it."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.conftest import run_blocking, scratch_postgres_database
from tests.support.processes import free_port
from tests.support.receivers import HttpReceiver
from tests.support.role_processes import RoleProcess, role_environment

ROLES = ("api", "classifier", "followup", "deliveries")
POLL_SECONDS = 30.0


def test_a_detractor_alerts_within_seconds_although_every_role_polls_every_30_s(tmp_path: Path):
    receiver = HttpReceiver()
    with scratch_postgres_database("npsloop_handoff") as plain_url:
        env = role_environment(
            database_url=plain_url.replace("postgresql://", "postgresql+asyncpg://", 1),
            kafka_bootstrap="",
            data_dir=tmp_path / "data",
            topic_prefix="unused",
            NPSLOOP_POLL_INTERVAL_SECONDS=str(POLL_SECONDS),
            NPSLOOP_ALLOW_PRIVATE_WEBHOOK_URLS="1",
        )
        port = free_port()
        api = RoleProcess("api", env, tmp_path, port=port).start()
        roles = [api]
        try:
            base = api.wait_ready(timeout=90)  # migrates first; then the workers start on a ready schema
            roles += [RoleProcess(role, env, tmp_path).start() for role in ROLES[1:]]
            key = _admin_key(plain_url)
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10) as http:
                hook = http.post("/v1/webhooks", json={"url": receiver.url, "events": ["npsloop.followup.opened.v1"]})
                assert hook.status_code == 201, hook.text
                _wait_until_listening(roles)
                # The delivery worker reads subscriptions at most once a second: give it that.
                time.sleep(2)
                posted = time.monotonic()
                answer = http.post(
                    "/v1/responses",
                    headers={"Idempotency-Key": "handoff-1"},
                    json={"score": 1, "comment": "Still broken after three calls", "customer": {"id": "c-1"}},
                )
                assert answer.status_code == 202, answer.text
                while not receiver.requests and time.monotonic() - posted < POLL_SECONDS:
                    for role in roles:
                        role.assert_running()
                    time.sleep(0.05)
                took = time.monotonic() - posted
                assert receiver.requests, "no alert within one poll interval"
                assert receiver.requests[0].json()["data"]["response_id"] == answer.json()["id"]
                # Three hand-offs (classifier, follow-up, fan-out) and the send, none waiting for a poll.
                assert took < 10, f"alert after {took:.1f} s"
        finally:
            for role in roles:
                role.stop()
            receiver.close()


def _admin_key(plain_url: str) -> str:
    from npsloop.shared import auth
    from npsloop.shared.clock import SystemClock
    from npsloop.shared.db import Database

    async def create() -> str:
        db = Database(plain_url.replace("postgresql://", "postgresql+asyncpg://", 1))
        try:
            async with db.unit_of_work() as session:
                _row, clear = await auth.create_key(session, name="t", scopes=["admin"], clock=SystemClock())
            return clear
        finally:
            await db.dispose()

    return run_blocking(create)


def _wait_until_listening(roles: list[RoleProcess], timeout: float = 60.0) -> None:
    """Every worker role logs "workers started" once its consumers (and LISTEN) run."""
    deadline = time.monotonic() + timeout
    for role in roles[1:]:
        while "workers started" not in role.log_tail(400):
            role.assert_running()
            assert time.monotonic() < deadline, f"{role.role} did not start:\n{role.log_tail()}"
            time.sleep(0.1)
