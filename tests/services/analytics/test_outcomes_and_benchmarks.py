"""Money and references: GET /v1/analytics/outcomes sums customers and revenue by the NPS
category of each customer's latest answer before the outcome; GET /v1/nps returns the
policy's benchmarks."""

from __future__ import annotations

from pathlib import Path

import pytest

from npsloop.shared.settings import Settings
from tests.factories import response_body

PERIOD = {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}
POLICY = """
benchmarks:
  - {name: "SaaS industry average", nps: 41}
  - {name: "Target 2026", nps: 50.5}
"""


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        environment="test",
        policy_file=policy,
        handler_retry_base_seconds=0.0,
    )


async def test_nps_returns_the_policys_benchmarks(client, make_key):
    reply = await client.get("/v1/nps", params=PERIOD, headers=await make_key("analytics:read"))
    assert reply.status_code == 200, reply.text
    assert reply.json()["benchmarks"] == [
        {"name": "SaaS industry average", "nps": 41.0},
        {"name": "Target 2026", "nps": 50.5},
    ]


async def test_outcomes_sum_customers_and_revenue_by_category_at_the_time(client, make_key, seed):
    admin = await make_key("admin")
    await seed(
        response_body(2, "det-1", responded_at="2026-01-03T10:00:00Z"),
        {
            **response_body(3, "det-2", responded_at="2026-01-03T10:00:00Z"),
            "customer": {"id": "det-2", "account_id": "acct-d"},
        },
        response_body(10, "pro-1", responded_at="2026-01-04T10:00:00Z"),
        response_body(9, "turned", responded_at="2026-01-02T10:00:00Z"),
        response_body(1, "turned", responded_at="2026-01-20T10:00:00Z"),  # a detractor only after the renewal below
    )
    for body in (
        {"customer_id": "det-1", "outcome": "churned", "revenue": 1200, "currency": "EUR", "occurred_on": "2026-01-10"},
        {
            "account_id": "acct-d",
            "outcome": "churned",
            "revenue": 800.5,
            "currency": "EUR",
            "occurred_on": "2026-01-11",
        },
        {"customer_id": "pro-1", "outcome": "expanded", "revenue": 300, "currency": "EUR", "occurred_on": "2026-01-12"},
        {"customer_id": "turned", "outcome": "renewed", "revenue": 500, "occurred_on": "2026-01-05"},
        {"customer_id": "never-answered", "outcome": "churned", "occurred_on": "2026-01-06"},
        {"customer_id": "det-1", "outcome": "churned", "revenue": 99, "occurred_on": "2026-03-01"},  # outside
    ):
        made = await client.post("/v1/outcomes", json=body, headers=admin)
        assert made.status_code == 201, made.text

    reply = await client.get("/v1/analytics/outcomes", params=PERIOD, headers=await make_key("analytics:read"))
    assert reply.status_code == 200, reply.text
    table = {c["category"]: c["outcomes"] for c in reply.json()["categories"]}
    assert table["detractor"]["churned"] == {"customers": 2, "outcomes": 2, "revenue": 2000.5, "currencies": ["EUR"]}
    assert table["promoter"]["expanded"]["revenue"] == 300.0
    assert table["promoter"]["renewed"] == {"customers": 1, "outcomes": 1, "revenue": 500.0, "currencies": []}
    assert table["unknown"]["churned"]["customers"] == 1
    assert table["passive"]["renewed"]["outcomes"] == 0


async def test_revenue_is_bounded_so_every_sum_in_the_report_stays_a_number(client, make_key):
    admin = await make_key("admin")
    huge = await client.post(
        "/v1/outcomes", json={"customer_id": "c", "outcome": "churned", "revenue": 1e308}, headers=admin
    )
    assert huge.status_code == 422 and "revenue" in huge.text
    for _ in range(3):
        body = {"customer_id": "c", "outcome": "churned", "revenue": 1e12, "occurred_on": "2026-01-10"}
        assert (await client.post("/v1/outcomes", json=body, headers=admin)).status_code == 201
    reply = await client.get("/v1/analytics/outcomes", params=PERIOD, headers=admin)
    table = {c["category"]: c["outcomes"] for c in reply.json()["categories"]}
    assert table["unknown"]["churned"]["revenue"] == 3e12


async def test_outcomes_need_analytics_read_and_a_valid_period(client, make_key):
    assert (await client.get("/v1/analytics/outcomes", headers=await make_key("tasks:read"))).status_code == 403
    backwards = await client.get(
        "/v1/analytics/outcomes", params={"from": PERIOD["to"], "to": PERIOD["from"]}, headers=await make_key("admin")
    )
    assert backwards.status_code == 422


def test_a_benchmark_out_of_range_stops_start_up_naming_the_key(tmp_path):
    from npsloop.shared.policy import load_policy
    from npsloop.shared.settings import ConfigError

    path = tmp_path / "policy.yaml"
    path.write_text("benchmarks:\n  - {name: Impossible, nps: 140}\n")
    with pytest.raises(ConfigError, match="benchmarks"):
        load_policy(path)


async def test_properties_seen_in_the_period_most_common_first(client, make_key, seed):
    await seed(
        response_body(9, "a", properties={"plan": "pro", "region": "eu"}, responded_at="2026-01-03T10:00:00Z"),
        response_body(5, "b", properties={"plan": "free"}, responded_at="2026-01-04T10:00:00Z"),
        response_body(5, "c", properties={"old_only": 1}, responded_at="2025-06-04T10:00:00Z"),
    )
    reply = await client.get("/v1/analytics/properties", params=PERIOD, headers=await make_key("analytics:read"))
    assert reply.status_code == 200, reply.text
    assert reply.json()["properties"] == [{"name": "plan", "responses": 2}, {"name": "region", "responses": 1}]


async def test_me_names_the_key_and_its_scopes(client, make_key):
    reply = await client.get("/v1/me", headers=await make_key("tasks:read", "tasks:write", name="agent"))
    assert reply.json() == {"name": "agent", "scopes": ["tasks:read", "tasks:write"]}
    assert (await client.get("/v1/me")).status_code == 401
