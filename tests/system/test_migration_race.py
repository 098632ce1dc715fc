"""Roles started together on an empty PostgreSQL database: every role migrates at start,
under a lock, so they all come up (no UniqueViolation on alembic_version, no traceback)."""

from __future__ import annotations

import time
from pathlib import Path

import asyncpg
import httpx

from npsloop.services.migrate import alembic_config
from tests.conftest import run_blocking, scratch_postgres_database
from tests.support.processes import free_port
from tests.support.role_processes import RoleProcess, role_environment

ROLES = ("api", "classifier", "followup", "deliveries", "sla")


def _head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head() or ""


def test_every_role_started_at_once_on_an_empty_postgres_database_comes_up(tmp_path: Path):
    with scratch_postgres_database("npsloop_race") as plain_url:
        env = role_environment(
            database_url=plain_url.replace("postgresql://", "postgresql+asyncpg://", 1),
            kafka_bootstrap="",
            data_dir=tmp_path / "data",
            topic_prefix="unused",
        )
        port = free_port()
        roles = [RoleProcess(role, env, tmp_path, port=port if role == "api" else None) for role in ROLES]
        try:
            for role in roles:  # all at once: none waits for another
                role.start()
            base = roles[0].wait_ready(timeout=90)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not all("workers started" in r.log_tail(200) for r in roles[1:]):
                for role in roles:
                    role.assert_running()
                time.sleep(0.2)
            for role in roles:
                role.assert_running()
                assert "workers started" in role.log_tail(200) or role.role == "api", role.log_tail()
                assert "Traceback" not in role.log_tail(400), role.log_tail()

            async def version() -> list[str]:
                conn = await asyncpg.connect(plain_url, timeout=5)
                try:
                    return [r[0] for r in await conn.fetch("SELECT version_num FROM alembic_version")]
                finally:
                    await conn.close()

            assert run_blocking(version) == [_head()]
            # And they work together: a detractor posted to the api is classified and followed up.
            key = _admin_key(env, tmp_path)
            headers = {"Authorization": f"Bearer {key}"}
            posted = httpx.post(
                f"{base}/v1/responses", json={"score": 1, "customer": {"id": "c-race"}}, headers=headers, timeout=10
            )
            assert posted.status_code == 202, posted.text
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                tasks = httpx.get(f"{base}/v1/tasks", headers=headers, timeout=10).json()["tasks"]
                if tasks:
                    break
                time.sleep(0.2)
            assert tasks and tasks[0]["customer_id"] == "c-race"
        finally:
            for role in roles:
                role.stop()


def _admin_key(env: dict[str, str], cwd: Path) -> str:
    from tests.support.processes import run_cli

    created = run_cli("keys", "create", "--name", "race", "--scopes", "admin", env=env, cwd=cwd)
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]
