"""Start-up traps, met the way users meet them: real `npsloop` processes on a real machine."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from tests.support.processes import base_env, npsloop_command, run_cli


def test_a_policy_channel_with_an_internal_target_stops_start_up_with_one_line_naming_it(tmp_path: Path):
    policy = tmp_path / "policy.yaml"
    policy.write_text('channels:\n  ops-hook: {type: webhook, url: "http://10.0.0.7/alerts"}\n')
    env = base_env(NPSLOOP_DATA_DIR=str(tmp_path / "data"), NPSLOOP_POLICY_FILE=str(policy))
    done = run_cli("serve", "deliveries", env=env, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("npsloop: ") and "channels.ops-hook.url" in last and "10.0.0.7" in last, done.stderr
    assert "NPSLOOP_ALLOW_PRIVATE_WEBHOOK_URLS" in last


def test_a_server_whose_port_is_taken_exits_at_once_with_one_line_and_starts_nothing(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = base_env(NPSLOOP_DATA_DIR=str(tmp_path / "data"))
        started = time.monotonic()
        done = subprocess.run(
            [*npsloop_command(), "up", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
        )
        elapsed = time.monotonic() - started
    assert done.returncode != 0 and elapsed < 10, (done.returncode, elapsed, done.stderr)
    assert done.stderr.strip().splitlines() == [
        f"npsloop: cannot listen on 127.0.0.1:{port}: Address already in use; stop what uses it or "
        "choose another with --port or NPSLOOP_PORT"
    ], done.stderr
    # Nothing started before the port was checked: no database, no workers.
    assert not (tmp_path / "data").exists()


def test_keys_create_says_which_database_it_used_and_warns_when_it_made_a_new_one(tmp_path: Path):
    """The trap: a key created from another directory went to a new ./.npsloop there, and
    the running server answered it 401 with nothing saying why."""
    server_dir, elsewhere = tmp_path / "server", tmp_path / "elsewhere"
    server_dir.mkdir()
    elsewhere.mkdir()
    env = base_env()
    first = run_cli("keys", "create", "--name", "a", "--scopes", "admin", env=env, cwd=server_dir)
    assert first.returncode == 0, first.stderr
    database = (server_dir / ".npsloop" / "npsloop.db").resolve()
    assert f"npsloop: warning: created a new, empty database at {database}" in first.stderr
    assert "NPSLOOP_DATA_DIR" in first.stderr

    again = run_cli("keys", "create", "--name", "b", "--scopes", "admin", env=env, cwd=server_dir)
    assert f"npsloop: using the database at {database}" in again.stderr and "warning" not in again.stderr

    astray = run_cli("keys", "create", "--name", "c", "--scopes", "admin", env=env, cwd=elsewhere)
    assert astray.returncode == 0
    assert f"created a new, empty database at {(elsewhere / '.npsloop' / 'npsloop.db').resolve()}" in astray.stderr
    assert astray.stdout.strip().splitlines()[-1].startswith("nps_")  # the key stays the last line of stdout

    pointed = run_cli("keys", "list", env=base_env(NPSLOOP_DATA_DIR=str(server_dir / ".npsloop")), cwd=elsewhere)
    assert f"using the database at {database}" in pointed.stderr
    assert "\ta\t" in pointed.stdout and "\tb\t" in pointed.stdout and "\tc\t" not in pointed.stdout


def test_every_command_that_opens_the_database_names_it(tmp_path: Path):
    env = base_env(NPSLOOP_DATA_DIR=str(tmp_path / "data"))
    database = (tmp_path / "data" / "npsloop.db").resolve()
    for args in (("db", "upgrade"), ("keys", "list"), ("dlq", "list")):
        done = run_cli(*args, env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert str(database) in done.stderr, (args, done.stderr)
