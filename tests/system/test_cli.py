"""The `npsloop` command as users run it: start-up refuses a wrong setting or an unreachable
broker by name; API keys."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support import processes


def test_a_wrong_setting_stops_start_up_naming_the_variable(tmp_path):
    env = processes.base_env(NPSLOOP_DATA_DIR=str(tmp_path), NPSLOOP_PORT="not-a-port")
    result = processes.run_cli("up", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "NPSLOOP_PORT" in result.stderr and "Traceback" not in result.stderr
    env = processes.base_env(NPSLOOP_DATA_DIR=str(tmp_path), NPSLOOP_DATABASE_URL="mysql://x")
    result = processes.run_cli("db", "upgrade", env=env, cwd=tmp_path)
    assert result.returncode == 2 and "NPSLOOP_DATABASE_URL" in result.stderr


def test_keys_are_listed_without_secrets_and_revoked(tmp_path):
    env = processes.base_env(NPSLOOP_DATA_DIR=str(tmp_path / "d"))
    created = processes.run_cli(
        "keys", "create", "--name", "ops", "--scopes", "tasks:read,analytics:read", env=env, cwd=tmp_path
    )
    clear = created.stdout.strip().splitlines()[-1]
    key_id = clear.split("_")[1]
    listing = processes.run_cli("keys", "list", env=env, cwd=tmp_path).stdout
    assert key_id in listing and "analytics:read,tasks:read" in listing and clear not in listing
    assert processes.run_cli("keys", "revoke", key_id, env=env, cwd=tmp_path).returncode == 0
    assert "revoked" in processes.run_cli("keys", "list", env=env, cwd=tmp_path).stdout
    bad = processes.run_cli("keys", "create", "--name", "x", "--scopes", "everything", env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "unknown scope" in bad.stderr


@pytest.mark.parametrize("backend", ["sqlite"])  # the broker check is the same on both databases
def test_serve_exits_with_a_clear_message_when_kafka_is_unreachable(database_url, tmp_path):
    env = {
        **os.environ,
        "NPSLOOP_DATABASE_URL": database_url,
        "NPSLOOP_DATA_DIR": str(tmp_path),
        "NPSLOOP_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "NPSLOOP_KAFKA_CONNECT_TIMEOUT_SECONDS": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "npsloop.services.cli", "serve", "classifier"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )  # generous: start-up is slow on a busy CI box
    assert done.returncode == 2
    assert "NPSLOOP_KAFKA_BOOTSTRAP_SERVERS: no Kafka broker answered at 127.0.0.1:1" in done.stderr
    assert "Traceback" not in done.stderr
