"""Schemathesis against ``/openapi.json`` of a running ``npsloop up``, with an admin key, on
SQLite and on PostgreSQL (text one database takes and the other refuses is found on both).

Checks: ``not_a_server_error`` (zero 5xx) and ``response_schema_conformance`` (every answer
matches the documented schema). Bounded by ``--max-examples`` and ``--max-time``; the seed
is printed so a failure can be replayed with NPSLOOP_FUZZ_SEED. NPSLOOP_FUZZ_CASSETTE=<path>
keeps every request and answer (a VCR cassette, with each case's phase) for counting what was reached;
without it the cassette goes to a temporary folder and is read only to check that real webhook ids were reached.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis  # noqa: F401  (in the [test] extra: a missing install must fail, not skip)

from tests.conftest import scratch_postgres_database
from tests.support import processes

MAX_EXAMPLES = os.environ.get("NPSLOOP_FUZZ_MAX_EXAMPLES", "40")
MAX_SECONDS = os.environ.get("NPSLOOP_FUZZ_MAX_SECONDS", "90")
CASSETTE = os.environ.get("NPSLOOP_FUZZ_CASSETTE")


@contextlib.contextmanager
def _database(backend: str) -> Iterator[dict[str, str]]:
    """The environment that points npsloop at ``backend``: a fresh PostgreSQL database, or SQLite."""
    if backend == "sqlite":
        yield {}
        return
    with scratch_postgres_database("npsloop_fuzz") as plain_url:
        yield {"NPSLOOP_DATABASE_URL": plain_url.replace("postgresql://", "postgresql+asyncpg://", 1)}


@pytest.mark.fuzz
def test_the_api_never_answers_5xx_and_always_matches_its_schema(tmp_path, capsys, backend):
    with _database(backend) as database:
        _fuzz(tmp_path, capsys, database, backend)


def _fuzz(tmp_path: Path, capsys, database: dict[str, str], backend: str) -> None:
    port = processes.free_port()
    # Private targets allowed: the fuzzer's webhook URLs ("http://a/") resolve nowhere, and with the
    # public-address check no subscription was ever created, so the operations taking a webhook or
    # delivery id saw invented ids only. The check itself is tested in tests/services/deliveries.
    env = processes.base_env(
        NPSLOOP_DATA_DIR=str(tmp_path / "data"),
        NPSLOOP_LOG_LEVEL="WARNING",
        NPSLOOP_ALLOW_PRIVATE_WEBHOOK_URLS="true",
        **database,
    )
    created = processes.run_cli("keys", "create", "--name", "fuzzer", "--scopes", "admin", env=env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    log = tmp_path / "npsloop.log"
    server = processes.start("up", "--port", str(port), env=env, cwd=tmp_path, log=log)
    seed = os.environ.get("NPSLOOP_FUZZ_SEED") or str(random.randrange(2**32))
    cassette = Path(CASSETTE).resolve() if CASSETTE else tmp_path / "cassette.yaml"
    try:
        processes.wait_ready(f"http://127.0.0.1:{port}", server, log)
        st = Path(sys.executable).parent / "schemathesis"
        command = [
            str(st) if st.exists() else "schemathesis",
            "run",
            f"http://127.0.0.1:{port}/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            # The coverage phase is left out: schemathesis 4.32 crashes inside it on
            # Python 3.11 (hypothesis lambda introspection), reporting its own error.
            "--phases",
            "examples,fuzzing,stateful",
            "--max-examples",
            MAX_EXAMPLES,
            "--max-time",
            MAX_SECONDS,
            "--seed",
            seed,
            "--workers",
            "4",
            "--generation-database",
            "none",
            "--no-color",
            "--request-timeout",
            "20",
        ]
        command += ["--report", "vcr", "--report-vcr-path", str(cassette)]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=int(MAX_SECONDS) + 90,
            cwd=tmp_path,
            env={**os.environ, "NO_COLOR": "1"},
        )
    finally:
        processes.stop(server)
    summary = result.stdout[result.stdout.find("SUMMARY") :] if "SUMMARY" in result.stdout else result.stdout[-3000:]
    with capsys.disabled():
        print(f"\nschemathesis on {backend} (seed {seed}, max {MAX_EXAMPLES} examples per operation):\n{summary}")
    server_errors = [line for line in log.read_text().splitlines() if '"unhandled error"' in line]
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert not server_errors, server_errors[:3]
    # The stateful phase must have followed a created webhook to its id (see the env above).
    assert "200" in webhook_reads(cassette.read_text(encoding="utf-8")), "no GET /v1/webhooks/{id} found a webhook"


def webhook_reads(cassette: str) -> list[str]:
    """The status codes of the recorded GET /v1/webhooks/{uuid} requests."""
    return re.findall(
        r"uri: '[^']*/v1/webhooks/[0-9a-f-]{36}'\n\s+method: 'GET'"
        r"(?:(?!\n  request:).)*?\n  response:\n    status:\n      code: '(\d+)'",
        cassette,
        re.S,
    )
