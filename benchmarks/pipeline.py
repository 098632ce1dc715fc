"""End-to-end latency: POST a detractor → task stored → alert delivered (signed webhook and Slack).

    .venv/bin/python -m benchmarks.pipeline [--rate 500] [--seconds 10] [--detractors 0.3]
        [--hanging-subscriptions 3]

Runs `npsloop up` (embedded default), subscribes a local receiver to
npsloop.followup.opened.v1 and points the policy's Slack channel (the team's, so every
detractor's alert goes there) at it too, sends responses at a fixed rate from a lean
open-loop generator (benchmarks/loadgen.py; bounded, 127.0.0.1 only) and prints, per
detractor, the time from the start of its POST to the arrival of its alerts: p50, p99,
max, and how many arrived. Also prints POST latency.

``--hanging-subscriptions N`` runs the load twice in the same run: first as above, then
again after subscribing N more webhooks to a local receiver that accepts each request
and never answers — the alerts' latency without and with them, side by side.

``--detractors`` is the share of responses that are detractors (default 1: every
response opens a task and an alert, the worst case). The others alternate between
passives and promoters; every response is still stored, classified and followed up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import dataclass

import httpx

from benchmarks import loadgen
from benchmarks.common import (
    NPSLOOP,
    ROOT,
    Server,
    cpu_seconds,
    create_key,
    free_port,
    npsloop_env,
    postgres_cpu_seconds,
    rss_mb,
    scratch_dir,
)


class AlertReceiver:
    """The receiver runs as its own process (benchmarks/alert_receiver.py)."""

    def __init__(self, work, *, hang: bool = False) -> None:
        import subprocess
        import sys

        self.port = free_port()
        self.path = work / ("hanging.log" if hang else "alerts.log")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.alert_receiver", str(self.port), str(self.path)]
            + (["--hang"] if hang else []),
            cwd=ROOT,
        )
        self.url = f"http://127.0.0.1:{self.port}/alerts"
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                import socket

                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)

    def arrivals(self, kind: str) -> dict[str, float]:
        """First arrival per alert of ``kind``: webhook (by response id) or slack (by customer id)."""
        found: dict[str, float] = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                moment, got, name = line.split(maxsplit=2)
                if got == kind:
                    found.setdefault(name, float(moment))
        return found

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(5)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def is_detractor(i: int, share: float) -> bool:
    """Spreads ``share`` of the requests evenly over the run (request i is one when the
    running count of detractors steps up)."""
    return int((i + 1) * share) > int(i * share)


@dataclass
class Phase:
    """One load run: when each detractor's POST was due, by response id and by customer id."""

    by_response: dict[str, float]
    by_customer: dict[str, float]
    post_latency: list[float]
    accepted: int


def load(port: int, key: str, rate: int, seconds: int, detractors: float, prefix: str) -> Phase:
    """Responses at ``rate`` per second (customers ``{prefix}-cust-{i}``)."""
    headers = {"Authorization": f"Bearer {key}"}

    def request(i: int) -> bytes:
        customer = {"id": f"{prefix}-cust-{i}"}
        if is_detractor(i, detractors):
            body = {"score": i % 7, "comment": "Support was slow to answer", "customer": customer}
        else:
            body = {"score": 7 + i % 4, "comment": "Easy to use, does what we need", "customer": customer}
        return loadgen.post_request("127.0.0.1", port, "/v1/responses", body, headers)

    answers = asyncio.run(loadgen.open_loop("127.0.0.1", port, rate=rate, seconds=seconds, request=request))
    good = [a for a in answers if a.status == 202 and is_detractor(a.index, detractors)]
    return Phase(
        by_response={json.loads(a.body)["id"]: a.started for a in good},
        by_customer={f"{prefix}-cust-{a.index}": a.started for a in good},
        post_latency=[a.seconds for a in answers],
        accepted=sum(a.status == 202 for a in answers),
    )


def wait_for_alerts(receiver: AlertReceiver, phase: Phase, seconds: float = 60) -> None:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        webhooks, slack = receiver.arrivals("webhook"), receiver.arrivals("slack")
        if phase.by_response.keys() <= webhooks.keys() and phase.by_customer.keys() <= slack.keys():
            return
        time.sleep(0.2)


def report(title: str, phase: Phase, receiver: AlertReceiver, rate: int, seconds: int) -> None:
    print(f"  {title}")
    post = phase.post_latency
    print(
        f"    POST         p50 {statistics.median(post) * 1000:7.1f} ms  p99 {percentile(post, 0.99) * 1000:7.1f} ms"
        f"  ({phase.accepted} accepted of {rate * seconds}, {len(phase.by_response)} detractors)"
    )
    for name, sent, arrived in (
        ("webhook", phase.by_response, receiver.arrivals("webhook")),
        ("Slack", phase.by_customer, receiver.arrivals("slack")),
    ):
        latencies = [arrived[k] - t for k, t in sent.items() if k in arrived]
        if latencies:
            print(
                f"    POST→{name + ' alert':<13} p50 {statistics.median(latencies) * 1000:7.1f} ms"
                f"  p99 {percentile(latencies, 0.99) * 1000:7.1f} ms  max {max(latencies) * 1000:7.1f} ms"
                f"  ({len(latencies)} alerts of {len(sent)})"
            )
        else:
            print(f"    POST→{name} alert: none of {len(sent)} arrived")


_STAGES_SQL = (
    "select t.received_at, t.opened_at, d.created_at, d.delivered_at from tasks t "
    "join deliveries d on d.event_type = 'npsloop.followup.opened.v1' "
    "and {task_id} = t.id where d.delivered_at is not null"
)


def _stage_rows(db_path, postgres: str | None) -> list[tuple]:
    if postgres:
        import asyncpg

        async def fetch() -> list[tuple]:
            conn = await asyncpg.connect(postgres)
            try:
                return [
                    tuple(r)
                    for r in await conn.fetch(_STAGES_SQL.format(task_id="(d.envelope::json -> 'data' ->> 'task_id')"))
                ]
            finally:
                await conn.close()

        return asyncio.run(fetch())
    import sqlite3

    with sqlite3.connect(db_path) as conn:
        return conn.execute(_STAGES_SQL.format(task_id="json_extract(d.envelope, '$.data.task_id')")).fetchall()


def _stage_report(db_path, postgres: str | None = None) -> None:
    """Where the time went, from the stored timestamps (received → task opened → delivered),
    per load phase (a pause of more than a second between responses starts the next one)."""
    from datetime import datetime

    rows = _stage_rows(db_path, postgres)
    if not rows:
        return

    def parse(value):  # SQLite gives text, asyncpg datetimes
        return value if isinstance(value, datetime) else datetime.fromisoformat(value)

    timed = sorted(tuple(parse(value) for value in row) for row in rows)
    phases: list[list[tuple]] = [[]]
    for row in timed:
        if phases[-1] and (row[0] - phases[-1][-1][0]).total_seconds() > 1.0:
            phases.append([])
        phases[-1].append(row)
    for number, phase in enumerate(phases, 1):
        if len(phases) > 1:
            print(f"  webhook stages, load phase {number} ({len(phase)} deliveries)")
        stages: dict[str, list[float]] = {"received→task": [], "task→delivery row": [], "delivery row→delivered": []}
        for received, opened, created, delivered in phase:
            stages["received→task"].append((opened - received).total_seconds())
            stages["task→delivery row"].append((created - opened).total_seconds())
            stages["delivery row→delivered"].append((delivered - created).total_seconds())
        for name, values in stages.items():
            print(
                f"  {name:<24} p50 {statistics.median(values) * 1000:8.1f} ms"
                f"  p99 {percentile(values, 0.99) * 1000:8.1f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--detractors",
        type=float,
        default=1.0,
        help="share of responses that are detractors, 0 < share <= 1 (default 1: all of them)",
    )
    parser.add_argument(
        "--deployment",
        choices=["up", "roles"],
        default="up",
        help="up: everything in one process (default); roles: `npsloop serve ROLE` per role "
        "(api, classifier, followup, deliveries, sla) as separate processes on one database",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="run on this PostgreSQL database (postgresql://…; it must exist and should be empty) "
        "instead of the embedded SQLite file",
    )
    parser.add_argument(
        "--hanging-subscriptions",
        type=int,
        default=0,
        metavar="N",
        help="after a first run, subscribe N webhooks to a local receiver that accepts and never "
        "answers, and run the load again: latency without and with them in the same run",
    )
    parser.add_argument(
        "--delivery-process",
        choices=["auto", "on", "off"],
        default="auto",
        help="for --deployment up: NPSLOOP_DELIVERY_PROCESS (deliveries in a second process or not)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NPSLOOP_NAME=VALUE",
        help="a setting for every npsloop process started (repeatable), e.g. to compare two values",
    )
    args = parser.parse_args()
    if any("=" not in setting or not setting.startswith("NPSLOOP_") for setting in args.env):
        parser.error("--env takes NPSLOOP_NAME=VALUE")
    if not 0 < args.detractors <= 1:
        parser.error("--detractors must be a share above 0 and at most 1")
    if not 0 <= args.hanging_subscriptions <= 100:
        parser.error("--hanging-subscriptions must be from 0 to 100")

    work = scratch_dir("bench-pipeline-")
    receiver = AlertReceiver(work)
    policy = work / "policy.yaml"
    policy.write_text(
        f'channels:\n  bench-slack: {{type: slack, url: "{receiver.url.replace("/alerts", "/slack")}"}}\n'
        "teams:\n  cs: {channel: bench-slack}\n"
    )
    env = npsloop_env(
        work / "data",
        NPSLOOP_ALLOW_PRIVATE_WEBHOOK_URLS="1",
        NPSLOOP_POLL_INTERVAL_SECONDS="0.05",
        NPSLOOP_POLICY_FILE=str(policy),
        NPSLOOP_DELIVERY_PROCESS=args.delivery_process,
        **({"NPSLOOP_DATABASE_URL": args.postgres} if args.postgres else {}),
        **dict(setting.split("=", 1) for setting in args.env),
    )
    key = create_key(env, work)
    auth = {"Authorization": f"Bearer {key}"}
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    servers: list[Server] = []
    hanging = None
    phases: list[tuple[str, Phase]] = []
    postgres_cpu = postgres_cpu_seconds() if args.postgres else 0.0
    try:
        if args.deployment == "up":
            servers.append(
                Server([*NPSLOOP, "up", "--port", str(port)], env=env, cwd=work, ready_url=f"{base_url}/readyz")
            )
        else:
            servers.append(
                Server(
                    [*NPSLOOP, "serve", "api", "--port", str(port)], env=env, cwd=work, ready_url=f"{base_url}/readyz"
                )
            )
            servers += [
                Server([*NPSLOOP, "serve", role], env=env, cwd=work, ready_url=None)
                for role in ("classifier", "followup", "deliveries", "sla")
            ]
        httpx.post(
            f"{base_url}/v1/webhooks",
            headers=auth,
            json={"url": receiver.url, "events": ["npsloop.followup.opened.v1"]},
        ).raise_for_status()
        phase = load(port, key, args.rate, args.seconds, args.detractors, "a")
        wait_for_alerts(receiver, phase)
        phases.append(("without hanging subscriptions" if args.hanging_subscriptions else "", phase))
        if args.hanging_subscriptions:
            hanging = AlertReceiver(work, hang=True)
            for i in range(args.hanging_subscriptions):
                httpx.post(
                    f"{base_url}/v1/webhooks",
                    headers=auth,
                    json={"url": f"{hanging.url}/{i}", "events": ["npsloop.followup.opened.v1"]},
                ).raise_for_status()
            time.sleep(2)  # the delivery worker learns new subscriptions within a second
            phase = load(port, key, args.rate, args.seconds, args.detractors, "b")
            wait_for_alerts(receiver, phase)
            phases.append((f"with {args.hanging_subscriptions} subscriptions that never answer", phase))
        loaded = sum(rss_mb(server.process.pid) for server in servers)
        cpu = {pid: seconds for server in servers for pid, seconds in cpu_seconds(server.process.pid).items()}
        postgres_cpu = postgres_cpu_seconds() - postgres_cpu if args.postgres else 0.0
    finally:
        for server in servers:
            server.stop()
        receiver.stop()
        if hanging is not None:
            hanging.stop()
    _stage_report(work / "data" / "npsloop.db", args.postgres)
    deployment = "npsloop up" if args.deployment == "up" else "one process per role"
    database = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"end-to-end benchmark: {args.rate} req/s for {args.seconds} s against {deployment} ({database}), "
        f"{args.detractors:.0%} detractors"
    )
    for title, phase in phases:
        report(title or "alerts", phase, receiver, args.rate, args.seconds)
    print(f"  RSS after the run {loaded:.0f} MB" + (f" ({len(cpu)} processes)" if len(cpu) > 1 else ""))
    print("  CPU seconds per process: " + ", ".join(f"{seconds:.1f}" for seconds in cpu.values()))
    if args.postgres:
        print(f"  CPU seconds of the PostgreSQL server (if it runs on this machine): {postgres_cpu:.1f}")


if __name__ == "__main__":
    main()
