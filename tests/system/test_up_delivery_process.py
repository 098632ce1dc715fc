"""``npsloop up`` sends deliveries from a second process: started, supervised, counted, never orphaned."""

from __future__ import annotations

import os
import signal

import httpx
import pytest

from tests.support import processes
from tests.support.processes import alive, children_of
from tests.support.receivers import HttpReceiver
from tests.support.waiting import wait_for

DETRACTOR = {"score": 2, "comment": "Nobody called me back", "customer": {"id": "cust-1"}}


@pytest.fixture(params=["on"])
def up(tmp_path, request):
    """``npsloop up`` (``NPSLOOP_DELIVERY_PROCESS`` from the param) with a webhook subscription."""
    env = processes.base_env(
        NPSLOOP_DATA_DIR=str(tmp_path / "data"),
        NPSLOOP_ALLOW_PRIVATE_WEBHOOK_URLS="1",
        NPSLOOP_POLL_INTERVAL_SECONDS="0.2",
        NPSLOOP_DELIVERY_PROCESS=request.param,
    )
    created = processes.run_cli("keys", "create", "--name", "app", "--scopes", "admin", env=env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    port = processes.free_port()
    log = tmp_path / "npsloop.log"
    process = processes.start("up", "--port", str(port), env=env, cwd=tmp_path, log=log)
    base_url = f"http://127.0.0.1:{port}"
    receiver = HttpReceiver()
    try:
        processes.wait_ready(base_url, process, log)
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as http:
            hook = http.post("/v1/webhooks", json={"url": receiver.url, "events": ["npsloop.followup.opened.v1"]})
            assert hook.status_code == 201, hook.text
            yield process, http, receiver, log
    finally:
        processes.stop(process)
        processes.kill_all(process)  # whatever is left of its session
        receiver.close()


def post_detractor(http: httpx.Client, n: int) -> str:
    posted = http.post("/v1/responses", headers={"Idempotency-Key": f"r-{n}"}, json=DETRACTOR)
    assert posted.status_code == 202, posted.text
    return posted.json()["id"]


def delivered(receiver: HttpReceiver) -> set[str]:
    return {request.json()["data"]["response_id"] for request in receiver.requests}


def test_deliveries_leave_from_a_second_process_and_count_in_metrics(up):
    process, http, receiver, _log = up
    (child,) = wait_for(lambda: children_of(process.pid))
    assert http.get("/readyz").json()["checks"]["delivery_process"] == "ok"
    ids = {post_detractor(http, n) for n in range(3)}
    wait_for(lambda: ids <= delivered(receiver))
    # The counter is the child's, reported to the parent that serves /metrics.
    wait_for(lambda: "npsloop_deliveries_sent_total 3.0" in http.get("/metrics").text, timeout=10)
    assert children_of(process.pid) == [child]


def test_a_killed_delivery_process_is_restarted_and_loses_nothing(up):
    process, http, receiver, log = up
    (child,) = wait_for(lambda: children_of(process.pid))
    os.kill(child, signal.SIGKILL)
    wait_for(lambda: not alive(child))
    # Accepted while no delivery process runs: waits in the database, goes out after the restart.
    ids = {post_detractor(http, n) for n in range(3)}
    (restarted,) = wait_for(lambda: [pid for pid in children_of(process.pid) if pid != child])
    wait_for(lambda: ids <= delivered(receiver))
    assert http.get("/readyz").json()["checks"]["delivery_process"] == "ok"
    assert "delivery process exited; restarting" in log.read_text()
    assert restarted != child


def test_the_delivery_process_stops_when_up_is_killed(up):
    process, _http, _receiver, _log = up
    (child,) = wait_for(lambda: children_of(process.pid))
    process.kill()  # only the parent: the child must notice and stop, not keep sending as an orphan
    process.wait()
    wait_for(lambda: not alive(child), timeout=20)


def test_up_stops_both_processes_on_sigterm(up):
    process, _http, _receiver, _log = up
    (child,) = wait_for(lambda: children_of(process.pid))
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
    wait_for(lambda: not alive(child), timeout=20)


@pytest.mark.parametrize("up", ["off"], indirect=True)
def test_up_can_send_deliveries_itself(up):
    process, http, receiver, _log = up
    ids = {post_detractor(http, n) for n in range(2)}
    wait_for(lambda: ids <= delivered(receiver))
    assert children_of(process.pid) == []
    assert "delivery_process" not in http.get("/readyz").json()["checks"]
