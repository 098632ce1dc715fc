"""Start-up traps, met the way users meet them: real `npsloop` processes on a real machine."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from tests.processes import base_env, npsloop_command, run_cli


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
