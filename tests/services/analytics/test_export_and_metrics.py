"""CSV exports (streamed, by period, safe in spreadsheets), /metrics gauges that move, the dashboard's files."""

from __future__ import annotations

import csv
import io
import math
import re
from datetime import UTC, datetime

from npsloop.services.followup.scheduled import check_sla
from npsloop.shared.models import DeadLetter
from tests.factories import response_body


async def test_responses_csv_streams_the_period_with_classification_and_defused_formulas(client, make_key, seed):
    ids = await seed(
        response_body(3, "a", comment='=HYPERLINK("http://evil")', segment="smb", responded_at="2026-01-05T10:00:00Z"),
        response_body(10, "b", comment="Great", responded_at="2026-01-06T10:00:00Z"),
        response_body(7, "c", responded_at="2026-02-06T10:00:00Z"),
    )
    headers = await make_key("analytics:read")
    reply = await client.get(
        "/v1/analytics/export/responses.csv",
        params={"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"},
        headers=headers,
    )
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/csv")
    assert "attachment" in reply.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert [r["id"] for r in rows] == ids[:2]
    first = rows[0]
    assert first["comment"].startswith("'=")  # a spreadsheet shows it, never runs it
    assert (first["score"], first["category"], first["segment"], first["customer_id"]) == ("3", "detractor", "smb", "a")
    assert first["classifier_version"] and first["sentiment"] and first["classified_at"]
    everything = await client.get("/v1/analytics/export/responses.csv", headers=headers)
    assert len(list(csv.DictReader(io.StringIO(everything.text)))) == 3


async def test_tasks_csv_lists_tasks_with_their_sla_facts(client, make_key, seed):
    await seed(
        response_body(1, "a", comment="bad", responded_at="2026-01-05T09:00:00Z"),
        response_body(9, "b", responded_at="2026-01-05T09:00:00Z"),
    )
    headers = await make_key("admin")
    (task,) = (await client.get("/v1/tasks", headers=headers)).json()["tasks"]
    await client.post(f"/v1/tasks/{task['id']}/acknowledge", json={}, headers=headers)
    rows = list(csv.DictReader(io.StringIO((await client.get("/v1/analytics/export/tasks.csv", headers=headers)).text)))
    assert [(r["id"], r["status"], r["acknowledged_within_sla"]) for r in rows] == [
        (task["id"], "acknowledged", "true")
    ]
    later = await client.get("/v1/analytics/export/tasks.csv", params={"from": "2026-02-01T00:00:00Z"}, headers=headers)
    assert later.text.count("\n") == 1  # the header only


def _sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.match(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$", line)
        if match and match.group(1) == name:
            found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(match.group(3))
    return None


async def test_metrics_appear_and_move_with_the_pipeline(client, runtime, clock, make_key, seed, pump):
    async def scrape() -> str:
        reply = await client.get("/metrics")
        assert reply.status_code == 200
        return reply.text

    await scrape()  # run alone, no request has been timed yet: this one is, by the next scrape
    before = await scrape()
    for name in (
        "npsloop_responses_ingested_total",
        "npsloop_responses_classified_total",
        "npsloop_sla_warnings_total",
        "npsloop_sla_breaches_total",
        "npsloop_outbox_backlog",
        "npsloop_deliveries_failed_total",
        "npsloop_dead_letters",
        "npsloop_http_request_duration_seconds_bucket",
    ):
        assert f"\n{name}" in "\n" + before, name
    ingested, classified = (
        _sample(before, "npsloop_responses_ingested_total"),
        _sample(before, "npsloop_responses_classified_total"),
    )
    breaches = _sample(before, "npsloop_sla_breaches_total")

    headers = await make_key("responses:write")
    reply = await client.post(
        "/v1/responses",
        json=response_body(1, "a", comment="awful", responded_at=clock.now().isoformat()),
        headers=headers,
    )
    assert reply.status_code == 202
    waiting = await scrape()
    assert _sample(waiting, "npsloop_responses_ingested_total") == ingested + 1
    assert _sample(waiting, "npsloop_outbox_backlog") >= 1  # nobody has read the new event yet

    await pump()
    after = await scrape()
    assert _sample(after, "npsloop_responses_classified_total") == classified + 1
    teams = re.findall(r'npsloop_tasks_open\{team="([^"]+)"\} 1\.0', after)
    assert len(teams) == 1
    assert _sample(after, "npsloop_outbox_backlog") == 0
    lags = re.findall(r'npsloop_consumer_lag\{consumer="([^"]+)"\} (\S+)', after)
    assert lags and all(float(v) == 0 for _, v in lags)
    assert _sample(after, "npsloop_http_request_duration_seconds_count", route="/v1/responses", method="POST") >= 1

    clock.advance(hours=25)
    async with runtime.db.unit_of_work() as session:
        await check_sla(session, clock=clock)
        session.add(
            DeadLetter(
                consumer="followup",
                event_id="e-1",
                topic="responses",
                type="t",
                envelope="{}",
                error="boom",
                attempts=5,
                created_at=datetime.now(UTC),
            )
        )
    moved = await scrape()
    assert _sample(moved, "npsloop_sla_breaches_total") == breaches + 1
    assert _sample(moved, "npsloop_dead_letters") == 1

    (task,) = (await client.get("/v1/tasks", headers=await make_key("admin"))).json()["tasks"]
    await client.post(f"/v1/tasks/{task['id']}/resolve", json={"outcome": "resolved"}, headers=await make_key("admin"))
    resolved = await scrape()
    assert "npsloop_tasks_open{" not in resolved  # the resolved team's gauge is gone, not stale
    assert _sample(resolved, "npsloop_recovery_measured") == 0
    assert math.isnan(_sample(resolved, "npsloop_recovery_rate"))  # nothing measured is not 0%

    # The recovery rate: the detractor whose task was resolved answers again, as a promoter.
    again = response_body(9, "a", comment="sorted, thanks", responded_at=clock.now().isoformat())
    assert (await client.post("/v1/responses", json=again, headers=headers)).status_code == 202
    await pump()
    won_back = await scrape()
    assert (
        _sample(won_back, "npsloop_recovery_measured"),
        _sample(won_back, "npsloop_recovery_recovered"),
        _sample(won_back, "npsloop_recovery_rate"),
    ) == (1, 1, 1.0)
    clock.advance(days=91)  # out of the 90-day window
    assert _sample(await scrape(), "npsloop_recovery_measured") == 0


async def test_the_dashboard_is_served_at_the_root_with_its_own_files_only(client):
    page = await client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert not re.search(r"(src|href)=\"https?://", page.text)  # nothing from a CDN
    for asset, kind in (("/dashboard/app.js", "javascript"), ("/dashboard/app.css", "text/css")):
        reply = await client.get(asset)
        assert reply.status_code == 200 and kind in reply.headers["content-type"], asset
        assert "http://" not in reply.text.replace("http://www.w3.org/2000/svg", "")
    assert (await client.get("/v1/nope")).headers["content-type"].startswith("application/problem+json")


def test_deploy_alerts_and_grafana_use_the_metrics_npsloop_exposes():
    import json
    from pathlib import Path

    import yaml

    from npsloop.shared.observability import metrics

    deploy = Path(__file__).resolve().parents[3] / "deploy"
    rules = yaml.safe_load((deploy / "prometheus-alerts.yml").read_text())["groups"][0]["rules"]
    exprs = " ".join(rule["expr"] for rule in rules)
    for needed in ("npsloop_sla_breaches_total", "npsloop_consumer_lag", "npsloop_dead_letters"):
        assert needed in exprs
    families = {family.name: family.type for family in metrics.registry.collect()}
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    exposed = {name + suffix for name, kind in families.items() for suffix in suffixes.get(kind, ("",))}
    used = set(re.findall(r"npsloop_[a-z_]+", exprs + (deploy / "grafana-dashboard.json").read_text()))
    assert used <= exposed, used - exposed
    assert json.loads((deploy / "grafana-dashboard.json").read_text())["panels"]
