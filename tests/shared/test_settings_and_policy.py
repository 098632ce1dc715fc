"""Configuration errors name the variable or policy key; good values load."""

from __future__ import annotations

from datetime import timedelta

import pytest

from npsloop.shared.policy import load_policy, parse_duration
from npsloop.shared.settings import ConfigError, load_settings


def test_a_wrong_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("NPSLOOP_HANDLER_MAX_ATTEMPTS", "zero")
    with pytest.raises(ConfigError, match="NPSLOOP_HANDLER_MAX_ATTEMPTS"):
        load_settings()


def test_database_urls_are_normalised_to_async_drivers(monkeypatch):
    monkeypatch.setenv("NPSLOOP_DATABASE_URL", "postgresql://u@h/db")
    assert load_settings().resolved_database_url == "postgresql+asyncpg://u@h/db"
    monkeypatch.setenv("NPSLOOP_DATABASE_URL", "oracle://x")
    with pytest.raises(ConfigError, match="NPSLOOP_DATABASE_URL"):
        load_settings()


def test_kafka_servers_must_be_host_port(monkeypatch):
    monkeypatch.setenv("NPSLOOP_KAFKA_BOOTSTRAP_SERVERS", "broker-without-port")
    with pytest.raises(ConfigError, match="NPSLOOP_KAFKA_BOOTSTRAP_SERVERS"):
        load_settings()


def test_durations_accept_seconds_minutes_hours_days():
    assert parse_duration("8s") == timedelta(seconds=8)
    assert parse_duration("90d") == timedelta(days=90)
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_the_default_policy_is_24h_for_0_to_4_and_48h_for_5_to_6():
    policy = load_policy(None)
    assert policy.sla_for({"score": 0}) == timedelta(hours=24)
    assert policy.sla_for({"score": 4}) == timedelta(hours=24)
    assert policy.sla_for({"score": 5}) == timedelta(hours=48)
    assert policy.sla_warning_at == 0.75


def test_policy_rules_match_segment_and_properties(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("""
sla:
  - match: {score: "5-6", segment: enterprise}
    due_in: 12h
  - match: {"properties.plan": gold}
    due_in: 6h
  - match: {}
    due_in: 48h
""")
    policy = load_policy(path)
    assert policy.sla_for({"score": 6, "segment": "enterprise"}) == timedelta(hours=12)
    assert policy.sla_for({"score": 6, "segment": "smb", "properties": {"plan": "gold"}}) == timedelta(hours=6)
    assert policy.sla_for({"score": 6, "segment": "smb"}) == timedelta(hours=48)


@pytest.mark.parametrize(
    "text, key",
    [
        ("sla:\n  - match: {score: '3-12'}\n    due_in: 24h\n", "sla.0.match.score"),
        ("sla:\n  - match: {}\n    due_in: tomorrow\n", "sla.0.due_in"),
        ("sla_warning_at: 1.5\n", "sla_warning_at"),
        ("sla:\n  - match: {colour: red}\n    due_in: 1h\n", "sla.0.match"),
        ("throttles: {}\n", "throttles"),
        ("themes:\n  - id: Bad Id\n    description: x\n", "themes"),
    ],
)
def test_an_invalid_policy_names_the_key(tmp_path, text, key):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_policy(path)
    assert key in str(raised.value)


def test_an_unreadable_or_malformed_policy_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("sla: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_policy(bad)
