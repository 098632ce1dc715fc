"""Crash invariants: SIGKILL ``npsloop up`` while responses stream in, restart it, check.

A careful client streams responses (a unique Idempotency-Key each, retried with the same
key until it gets a 202). The server is killed with SIGKILL at a random moment and
restarted. Afterwards: every acknowledged response exists and is classified, every
detractor has exactly one task, and every task's alert reached a local webhook receiver
at least once, always under the same ``webhook-id``. A second subscription points at a
receiver that accepts and never answers, so sends are in flight whenever the kill lands;
whatever it received carries the same ids, and it never held the healthy receiver's alerts. Runs on the embedded default
(SQLite) and on PostgreSQL (a database created and dropped by the test).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.conftest import scratch_postgres_database
from tests.factories import response_body
from tests.support import processes
from tests.support.receivers import HangingReceiver, HttpReceiver

pytestmark = pytest.mark.crash

RESPONSES = int(os.environ.get("NPSLOOP_CRASH_RESPONSES", "600"))
CLIENTS = 4


@dataclass
class Server:
    """``npsloop up`` as users run it, killable and restartable on the same port and data."""

    env: dict[str, str]
    cwd: object
    port: int
    log: object
    process: object = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = processes.start("up", "--port", str(self.port), env=self.env, cwd=self.cwd, log=self.log)
        self.starts += 1
        processes.wait_ready(self.url, self.process, self.log, timeout=90)

    def kill(self) -> None:
        # SIGKILL to up and its delivery process at once: no shutdown hooks, no flush, no goodbye.
        processes.kill_all(self.process)


@dataclass
class Stream:
    acknowledged: dict[int, str] = field(default_factory=dict)
    scores: dict[int, int] = field(default_factory=dict)
    retries: int = 0
    duplicates: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture(params=["sqlite", "postgresql"])
def crash_env(request, tmp_path):
    env = processes.base_env(
        NPSLOOP_DATA_DIR=str(tmp_path / "data"),
        NPSLOOP_ALLOW_PRIVATE_WEBHOOK_URLS="1",
        NPSLOOP_POLL_INTERVAL_SECONDS="0.1",
        NPSLOOP_LOG_LEVEL="WARNING",
        NPSLOOP_DELIVERY_TIMEOUT_SECONDS="3",
    )
    if request.param == "sqlite":
        yield request.param, env
        return
    with scratch_postgres_database("npsloop_crash") as url:
        env["NPSLOOP_DATABASE_URL"] = url
        yield request.param, env


SURVEY = {"touchpoint": "support", "kind": "transactional", "channel": "email"}


def _send_until_acknowledged(server: Server, key: str, stream: Stream, i: int, score: int, deadline: float) -> None:
    """A careful client: the same Idempotency-Key until a 202, whatever happens in between."""
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": f"crash-{i}"}
    customer = {"id": f"crash-cust-{i}", "email": f"c{i}@example.com"}
    body = response_body(score, customer, f"crash test answer {i}", survey=SURVEY)
    first = True
    while time.monotonic() < deadline:
        try:
            reply = httpx.post(f"{server.url}/v1/responses", json=body, headers=headers, timeout=10)
        except httpx.HTTPError:
            reply = None
        if reply is not None and reply.status_code == 202:
            with stream.lock:
                stream.acknowledged[i] = reply.json()["id"]
                stream.scores[i] = score
                stream.duplicates += bool(reply.json().get("duplicate")) and not first
            return
        assert reply is None or reply.status_code >= 500 or reply.status_code == 429, reply.text
        with stream.lock:
            stream.retries += 1
        first = False
        time.sleep(0.05)
    raise AssertionError(f"response {i} never acknowledged")


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"not converged in {timeout:.0f}s: {what}")


def test_a_sigkill_at_a_random_moment_loses_nothing_and_duplicates_nothing(crash_env, tmp_path, capsys):
    backend, env = crash_env
    rng = random.Random(os.environ.get("NPSLOOP_CRASH_SEED") or None)
    receiver = HttpReceiver()
    hanging = HangingReceiver()
    server = Server(env=env, cwd=tmp_path, port=processes.free_port(), log=tmp_path / "npsloop.log")
    created = processes.run_cli("keys", "create", "--name", "crash-client", "--scopes", "admin", env=env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    auth = {"Authorization": f"Bearer {key}"}
    stream = Stream()
    kill_after = rng.randint(RESPONSES // 10, RESPONSES * 9 // 10)  # acknowledged responses before the kill
    kill_delay = rng.uniform(0, 0.05)  # and then a little later, so it lands mid-request and mid-pipeline
    kill_report: dict[str, object] = {}
    try:
        server.start()
        hook = httpx.post(
            f"{server.url}/v1/webhooks",
            headers=auth,
            timeout=10,
            json={"url": receiver.url, "events": ["npsloop.followup.opened.v1"]},
        ).json()
        stuck = httpx.post(
            f"{server.url}/v1/webhooks",
            headers=auth,
            timeout=10,
            json={"url": hanging.url(), "events": ["npsloop.followup.opened.v1"]},
        ).json()

        def killer() -> None:
            _wait_for(lambda: len(stream.acknowledged) >= kill_after, 300, "kill point")
            time.sleep(kill_delay)
            with stream.lock:
                kill_report["acknowledged"] = len(stream.acknowledged)
            kill_report["tasks_alerted"] = len(receiver.requests)
            kill_report["hanging_open"] = hanging.open_requests
            server.kill()
            kill_report["at"] = time.monotonic()
            server.start()
            kill_report["down_seconds"] = time.monotonic() - kill_report["at"]

        started = time.monotonic()
        kill_thread = threading.Thread(target=killer, daemon=True)
        kill_thread.start()
        deadline = started + 300
        scores = [rng.randint(0, 10) for _ in range(RESPONSES)]
        with ThreadPoolExecutor(CLIENTS) as pool:
            for future in [
                pool.submit(_send_until_acknowledged, server, key, stream, i, scores[i], deadline)
                for i in range(RESPONSES)
            ]:
                future.result()
        streamed_seconds = time.monotonic() - started
        kill_thread.join(120)
        assert server.starts == 2, "the kill never happened"

        # 1. Every acknowledged response exists and ends classified.
        assert len(stream.acknowledged) == RESPONSES
        with httpx.Client(base_url=server.url, headers=auth, timeout=10) as http:

            def unclassified() -> list[int]:
                missing = []
                for i, rid in stream.acknowledged.items():
                    reply = http.get(f"/v1/responses/{rid}")
                    assert reply.status_code == 200, f"acknowledged response {rid} is lost: {reply.text}"
                    if reply.json().get("category") is None:
                        missing.append(i)
                return missing

            _wait_for(lambda: not unclassified(), 120, "every acknowledged response classified")

            # 2. Every detractor has exactly one task; nobody else has any.
            detractors = {i for i, s in stream.scores.items() if s <= 6}

            def tasks_by_customer() -> dict[int, list[dict]]:
                found: dict[int, list[dict]] = {}
                for i in stream.acknowledged:
                    found[i] = http.get("/v1/tasks", params={"customer_id": f"crash-cust-{i}"}).json()["tasks"]
                return found

            tasks = _wait_for(
                lambda: (t := tasks_by_customer()) and all(t[i] for i in detractors) and t,
                120,
                "a task for every detractor",
            )
            for i, found in tasks.items():
                if i in detractors:
                    assert len(found) == 1, f"detractor {i} has {len(found)} tasks"
                    assert found[0]["response_id"] == stream.acknowledged[i]
                else:
                    assert found == [], f"non-detractor {i} got a task"
            task_ids = {found[0]["id"] for i, found in tasks.items() if i in detractors}

        # 3. Every alert delivered at least once, always with the same webhook-id.
        verifier = Webhook(hook["secret"])

        def alerts() -> dict[str, set[str]]:
            by_task: dict[str, set[str]] = defaultdict(set)
            for request in list(receiver.requests):
                payload = verifier.verify(request.body, request.headers)
                assert request.headers["webhook-id"] == payload["id"]
                by_task[payload["data"]["task_id"]].add(request.headers["webhook-id"])
            return by_task

        by_task = _wait_for(lambda: (a := alerts()) and task_ids <= set(a) and a, 120, "an alert for every task")
        assert set(by_task) == task_ids
        unstable = {t: ids for t, ids in by_task.items() if len(ids) != 1}
        assert not unstable, f"alerts with more than one webhook-id: {unstable}"
        redelivered = len(receiver.requests) - len(by_task)
        # What the receiver that never answers got: signed, and one id per event however often it was tried.
        stuck_ids: dict[str, set[str]] = defaultdict(set)
        for request in list(hanging.requests):
            payload = Webhook(stuck["secret"]).verify(request.body, request.headers)
            stuck_ids[payload["id"]].add(request.headers["webhook-id"])
        assert stuck_ids and all(ids == {event_id} for event_id, ids in stuck_ids.items())
    finally:
        if server.process is not None:
            processes.stop(server.process)
        receiver.close()
        hanging.close()

    with capsys.disabled():
        print(
            f"\ncrash test [{backend}]: {RESPONSES} responses streamed by {CLIENTS} clients in "
            f"{streamed_seconds:.1f} s; SIGKILL after {kill_report['acknowledged']} acknowledged "
            f"(target {kill_after} + {kill_delay * 1000:.0f} ms; {kill_report['tasks_alerted']} alerts out by then), "
            f"restarted in {kill_report['down_seconds']:.1f} s; client retries {stream.retries}, "
            f"retries answered as duplicates {stream.duplicates}; checked {len(stream.acknowledged)} responses "
            f"classified, {len(detractors)} detractors with exactly one task, {len(by_task)} alerts delivered "
            f"with one stable webhook-id each ({redelivered} redeliveries, {receiver.incomplete} cut off by the kill); "
            f"the receiver that never answers held {kill_report['hanging_open']} requests at the kill and got "
            f"{len(hanging.requests)} over the run (its breaker backed it off), one id per event"
        )
