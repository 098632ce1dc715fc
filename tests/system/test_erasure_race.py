"""The erasure race as a client meets it: `npsloop up` with an echoing webhook receiver and a
Slack channel; a detractor is posted and its customer erased 0-100 ms later, while the
pipeline is still carrying the response. Afterwards no table holds anything of them."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from sqlalchemy import select

from npsloop.services.schema import metadata
from npsloop.shared.db import Database
from tests.conftest import run_blocking, scratch_postgres_database
from tests.support.processes import base_env, free_port, run_cli, start, stop, wait_ready
from tests.support.receivers import HttpReceiver

DELAYS = (0.0, 0.0, 0.01, 0.025, 0.05, 0.05, 0.1, 0.1)


@contextlib.contextmanager
def _database(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'data' / 'npsloop.db'}"
        return
    with scratch_postgres_database("npsloop_erase_race") as plain_url:
        yield plain_url.replace("postgresql://", "postgresql+asyncpg://", 1)


def _stored(url: str) -> str:
    async def scan() -> str:
        db = Database(url)
        parts: list[str] = []
        try:
            async with db.sessions() as session:
                for table in metadata.sorted_tables:
                    for row in (await session.execute(select(table))).all():
                        parts.append(" ".join(str(v) for v in row))
        finally:
            await db.dispose()
        return "\n".join(parts)

    return str(run_blocking(scan))


def test_customers_erased_while_their_response_is_in_the_pipeline_leave_nothing_behind(tmp_path, backend):
    hook, slack = HttpReceiver(echo=True), HttpReceiver(echo=True)
    policy = tmp_path / "policy.yaml"
    policy.write_text(f'channels:\n  cs-slack: {{type: slack, url: "{slack.url}"}}\nrouting:\n  - channel: cs-slack\n')
    try:
        with _database(backend, tmp_path) as url:
            env = base_env(
                NPSLOOP_DATA_DIR=str(tmp_path / "data"),
                NPSLOOP_DATABASE_URL=url,
                NPSLOOP_POLICY_FILE=str(policy),
                NPSLOOP_ALLOW_PRIVATE_WEBHOOK_URLS="1",
                NPSLOOP_POLL_INTERVAL_SECONDS="0.05",
            )
            created = run_cli("keys", "create", "--name", "dpo", "--scopes", "admin", env=env, cwd=tmp_path)
            assert created.returncode == 0, created.stderr
            headers = {"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"}
            port = free_port()
            log = tmp_path / "up.log"
            server = start("up", "--port", str(port), env=env, cwd=tmp_path, log=log)
            secrets: list[str] = []
            try:
                base = f"http://127.0.0.1:{port}"
                wait_ready(base, server, log)
                with httpx.Client(base_url=base, headers=headers, timeout=10) as api:
                    assert api.post("/v1/webhooks", json={"url": hook.url, "events": ["*"]}).status_code == 201
                    for n, delay in enumerate(DELAYS):
                        customer = f"race-customer-{n:03d}"
                        email, comment = f"person{n}@example.org", f"Refund never came, case {n}x7q"
                        secrets += [customer, email, comment]
                        posted = api.post(
                            "/v1/responses",
                            json={"score": 1, "comment": comment, "customer": {"id": customer, "email": email}},
                        )
                        assert posted.status_code == 202, posted.text
                        time.sleep(delay)
                        assert api.delete(f"/v1/customers/{customer}").status_code == 200
                    # The pipeline settles: every customer's pseudonymised detractor has its task and alerts.
                    deadline = time.monotonic() + 30
                    while time.monotonic() < deadline:
                        tasks = api.get("/v1/tasks", params={"limit": 100}).json()["tasks"]
                        if len(tasks) == len(DELAYS) and len(slack.requests) >= len(DELAYS):
                            break
                        time.sleep(0.2)
                    assert len(tasks) == len(DELAYS) and all(t["customer_id"].startswith("erased-") for t in tasks)
                    time.sleep(1.0)  # the deliveries' attempts are recorded
            finally:
                stop(server)
            stored = _stored(url)
            assert [s for s in secrets if s in stored] == []
            sent = b"".join(r.body for r in hook.requests + slack.requests)
            assert sent, "the receivers got the alerts"
    finally:
        hook.close()
        slack.close()
