"""`npsloop import` as users run it: into the embedded database, and into a running server
with ``--url`` and a key (a real `npsloop serve api` process on a loopback port)."""

from __future__ import annotations

import os
import signal
import sqlite3

import pytest

from tests.support import processes
from tests.support.processes import alive, children_of
from tests.support.waiting import wait_for

EXPORT = (
    "Response ID,Score,Comment,Email,Response timestamp\n"
    "1,10,Lovely,ann@example.com,2024-01-02T03:04:05Z\n"
    "2,1,Terrible,bo@example.com,2024-01-02T03:04:05Z\n"
    "3,12,Off the scale,cy@example.com,2024-01-02T03:04:05Z\n"
)


def test_a_local_import_reports_progress_and_a_summary_and_exits_1_for_rejected_rows(tmp_path):
    (tmp_path / "export.csv").write_text(EXPORT)
    env = processes.base_env(NPSLOOP_DATA_DIR=str(tmp_path / "data"))
    result = processes.run_cli("import", "export.csv", "--preset", "delighted", env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "2 stored, 0 already stored, 1 rejected (line and reason in export.csv.rejected.jsonl)" in result.stderr
    # Not a terminal: plain progress lines, no carriage returns.
    assert "rows/s" in result.stderr and "ETA" in result.stderr and "\r" not in result.stderr
    assert '"line": 4' in (tmp_path / "export.csv.rejected.jsonl").read_text()
    again = processes.run_cli("import", "export.csv", "--preset", "delighted", env=env, cwd=tmp_path)
    assert "0 stored, 2 already stored, 1 rejected" in again.stderr


def test_an_import_with_url_goes_through_a_running_servers_batch_endpoint(tmp_path):
    (tmp_path / "export.csv").write_text(EXPORT)
    server_env = processes.base_env(NPSLOOP_DATA_DIR=str(tmp_path / "server"))
    created = processes.run_cli(
        "keys", "create", "--name", "crm-history", "--scopes", "responses:write", env=server_env, cwd=tmp_path
    )
    key = created.stdout.strip().splitlines()[-1]
    port = processes.free_port()
    server = processes.start(
        "serve", "api", "--port", str(port), env=server_env, cwd=tmp_path, log=tmp_path / "server.log"
    )
    try:
        url = f"http://127.0.0.1:{port}"
        processes.wait_ready(url, server, tmp_path / "server.log")
        client_env = processes.base_env(NPSLOOP_DATA_DIR=str(tmp_path / "client"))
        args = ("import", "export.csv", "--preset", "delighted", "--url", url)
        refused = processes.run_cli(*args, "--key", "nps_wrong", env=client_env, cwd=tmp_path)
        assert refused.returncode == 2 and "refused the key (401)" in refused.stderr
        result = processes.run_cli(*args, "--key", key, env=client_env, cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        assert "2 stored, 0 already stored, 1 rejected" in result.stderr
        again = processes.run_cli(*args, "--key", key, env=client_env, cwd=tmp_path)
        assert "0 stored, 2 already stored, 1 rejected" in again.stderr
    finally:
        processes.stop(server)
    assert not (tmp_path / "client").exists()  # nothing was stored locally


ROWS = 60_000  # many batches of 2,000; over 1 MB, so read in the command's second process


@pytest.fixture
def big_import(tmp_path, request):
    """A started ``npsloop import`` of a big file (``--reader`` from the param, default
    auto), once its first batch is stored, and a function counting the rows and events
    stored so far."""
    reader = getattr(request, "param", "auto")
    with (tmp_path / "big.csv").open("w") as f:
        f.write("Response ID,Score,Comment,Email,Response timestamp\n")
        for n in range(1, ROWS + 1):
            f.write(f"{n},{n % 11},Comment number {n},person{n}@example.com,2023-05-0{1 + n % 9}T10:00:00Z\n")
    env = processes.base_env(NPSLOOP_DATA_DIR=str(tmp_path / "data"))
    database = tmp_path / "data" / "npsloop.db"

    def counts() -> tuple[int, int]:
        with sqlite3.connect(database) as db:
            return (
                db.execute("SELECT count(*) FROM responses").fetchone()[0],
                db.execute("SELECT count(*) FROM event_log").fetchone()[0],
            )

    def first_batch_stored() -> bool:
        try:
            return database.exists() and counts()[0] > 0
        except sqlite3.OperationalError:  # not migrated yet, or locked a moment
            return False

    importing = processes.start(
        "import", "big.csv", "--preset", "delighted", "--reader", reader, env=env, cwd=tmp_path, log=tmp_path / "log"
    )
    try:
        wait_for(lambda: first_batch_stored() or importing.poll() is not None, timeout=60, interval=0.01)
        assert importing.poll() is None, (tmp_path / "log").read_text()
        yield importing, counts, env
    finally:
        processes.kill_all(importing)


def test_an_import_killed_midway_leaves_whole_batches_and_a_re_run_stores_the_rest_once(tmp_path, big_import):
    importing, counts, env = big_import
    (reading,) = children_of(importing.pid)
    os.kill(importing.pid, signal.SIGKILL)  # the command alone: its reading process must stop by itself
    importing.wait()
    wait_for(lambda: not alive(reading), timeout=20)

    stored, logged = counts()
    assert 0 < stored < ROWS and stored % 2000 == 0 and logged == stored
    again = processes.run_cli("import", "big.csv", "--preset", "delighted", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"{ROWS - stored:,} stored, {stored:,} already stored, 0 rejected" in again.stderr
    assert counts() == (ROWS, ROWS)


def test_when_the_reading_process_dies_the_import_stops_with_whole_batches_and_says_so(tmp_path, big_import):
    importing, counts, env = big_import
    (reading,) = children_of(importing.pid)
    os.kill(reading, signal.SIGKILL)
    assert importing.wait(timeout=60) == 2
    log = (tmp_path / "log").read_text()
    assert "stopped: the reading process stopped (exit status -9)" in log, log
    assert "Traceback" not in log
    stored, logged = counts()
    assert 0 < stored < ROWS and stored % 2000 == 0 and logged == stored
    again = processes.run_cli("import", "big.csv", "--preset", "delighted", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"{ROWS - stored:,} stored, {stored:,} already stored, 0 rejected" in again.stderr


@pytest.mark.parametrize("big_import", ["thread", "process"], indirect=True)
def test_ctrl_c_stops_an_import_with_whole_batches_a_message_and_no_traceback(tmp_path, big_import):
    importing, counts, env = big_import
    readers = children_of(importing.pid)
    os.killpg(importing.pid, signal.SIGINT)  # what Ctrl-C sends: the whole foreground group
    assert importing.wait(timeout=30) == 130
    log = (tmp_path / "log").read_text()
    assert "npsloop import: interrupted. Batches stored before are whole" in log, log
    assert "Traceback" not in log, log
    wait_for(lambda: not any(alive(pid) for pid in readers), timeout=20)
    stored, logged = counts()
    assert 0 < stored < ROWS and stored % 2000 == 0 and logged == stored
    again = processes.run_cli("import", "big.csv", "--preset", "delighted", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"{ROWS - stored:,} stored, {stored:,} already stored, 0 rejected" in again.stderr
