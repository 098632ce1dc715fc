"""Start-up traps, met the way users meet them: real `npsloop` processes on a real machine."""

from __future__ import annotations

from pathlib import Path

from tests.processes import base_env, run_cli


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
