"""Follow-up metrics and themes, with a clock the test moves: SLA compliance, first touch,
open tasks by age, the SLA board, recovery, and NPS against business outcomes."""

from __future__ import annotations

from datetime import UTC, datetime

from npsloop.services.followup.scheduled import check_sla
from tests.factories import response_body

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # the ManualClock's start
PERIOD = {"from": "2026-01-04T00:00:00Z", "to": "2026-01-09T00:00:00Z"}


async def test_followup_metrics_follow_the_sla_clock_first_touch_recovery_and_outcomes(
    client, runtime, clock, make_key, seed
):
    headers = await make_key("admin", name="dana")
    at = T0.isoformat()
    await seed(
        response_body(2, "a", comment="Broken again", responded_at=at),
        response_body(3, "b", comment="Slow support", responded_at=at),
        response_body(6, "c", comment="Meh", responded_at=at),
        response_body(10, "d", comment="Love it", responded_at=at),
    )
    tasks = {t["customer_id"]: t for t in (await client.get("/v1/tasks", headers=headers)).json()["tasks"]}
    assert sorted(tasks) == ["a", "b", "c"]  # due: a and b at T0+24h (0–4), c at T0+48h (5–6)

    clock.advance(hours=2)
    await client.post(f"/v1/tasks/{tasks['a']['id']}/acknowledge", json={}, headers=headers)  # 2 h: in time
    clock.advance(hours=28)
    async with runtime.db.unit_of_work() as session:
        assert (await check_sla(session, clock=clock)).breached == 1  # b
    await client.post(f"/v1/tasks/{tasks['b']['id']}/acknowledge", json={}, headers=headers)  # 30 h: late
    clock.advance(hours=1)
    resolved = await client.post(f"/v1/tasks/{tasks['a']['id']}/resolve", json={"outcome": "resolved"}, headers=headers)
    assert resolved.status_code == 200, resolved.text
    clock.advance(hours=13)  # T0 + 44 h: c is due in 4 h
    await seed(response_body(9, "a", comment="Thanks for fixing it", responded_at=clock.now().isoformat()))
    for body in ({"customer_id": "d", "outcome": "renewed"}, {"customer_id": "b", "outcome": "churned"}):
        assert (await client.post("/v1/outcomes", json=body, headers=headers)).status_code == 201

    reply = await client.get("/v1/analytics/followup", params=PERIOD, headers=await make_key("analytics:read"))
    assert reply.status_code == 200, reply.text
    report = reply.json()
    sla = report["sla"]
    # a acknowledged within 24 h, b after its due time, c neither yet due nor acknowledged
    assert {k: sla[k] for k in ("tasks", "decided", "acknowledged_within_sla", "missed", "pending", "compliance")} == {
        "tasks": 3,
        "decided": 2,
        "acknowledged_within_sla": 1,
        "missed": 1,
        "pending": 1,
        "compliance": 0.5,
    }
    # first touches after 2 h and 30 h: median (2 + 30)/2 = 16 h; p90 by nearest rank = the 2nd of 2 = 30 h
    assert report["time_to_first_touch"] == {"touched": 2, "median_seconds": 16 * 3600, "p90_seconds": 30 * 3600}
    # b (acknowledged) and c (open) are unresolved, both 44 h old
    assert report["open_tasks_by_age"] == {
        "total": 2,
        "buckets": {"under_24h": 0, "24h_to_48h": 2, "2d_to_7d": 0, "over_7d": 0},
    }
    board = report["sla_board"]
    assert (board["open"], board["due_soon"], board["breached"]) == (1, 1, 0)  # only c still waits for a first touch
    assert report["recovery"]["rate"] == 1.0 and report["recovery"]["recovered"] == 1
    assert report["outcomes"]["tasks"] == {"resolved": 1}
    business = report["outcomes"]["business"]["by_category"]
    # latest answers: a 9 and d 10 (promoters), b 3 and c 6 (detractors)
    assert (
        business["promoter"]["customers"],
        business["promoter"]["renewed"],
        business["promoter"]["renewed_rate"],
    ) == (2, 1, 0.5)
    assert (
        business["detractor"]["customers"],
        business["detractor"]["churned"],
        business["detractor"]["churned_rate"],
    ) == (2, 1, 0.5)
    assert report["outcomes"]["business"]["nps_by_outcome"]["churned"] == {"nps": -100.0, "customers": 1}

    clock.advance(hours=5)  # T0 + 49 h: c breaches on the board even before the monitor runs
    board = (await client.get("/v1/analytics/followup", params=PERIOD, headers=headers)).json()["sla_board"]
    assert (board["due_soon"], board["breached"]) == (0, 1)


async def test_themes_compare_what_detractors_and_promoters_talk_about(client, make_key, seed, set_themes):
    ids = await seed(
        response_body(1, "a", comment="x", responded_at="2026-01-05T10:00:00Z"),
        response_body(2, "b", comment="x", responded_at="2026-01-05T10:00:00Z"),
        response_body(10, "c", comment="x", responded_at="2026-01-05T10:00:00Z"),
        response_body(9, "d", comment="x", responded_at="2026-01-12T10:00:00Z"),
        response_body(8, "e", comment="x", responded_at="2026-01-12T10:00:00Z"),
        response_body(10, "f", responded_at="2026-01-12T10:00:00Z"),
    )
    await set_themes(
        {
            ids[0]: ["pricing", "performance_reliability"],
            ids[1]: ["pricing"],
            ids[2]: ["ease_of_use"],
            ids[3]: ["ease_of_use", "pricing"],
            ids[4]: [],
        }
    )
    params = {"from": "2026-01-05T00:00:00Z", "to": "2026-01-19T00:00:00Z", "interval": "week"}
    reply = await client.get("/v1/analytics/themes", params=params, headers=await make_key("analytics:read"))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["responses"] == {"promoter": 3, "passive": 1, "detractor": 2}
    assert body["commented"] == {"promoter": 2, "passive": 1, "detractor": 2}  # f gave no comment
    themes = {t["id"]: t for t in body["themes"]}
    assert [t["id"] for t in body["themes"]] == ["pricing", "ease_of_use", "performance_reliability"]
    pricing = themes["pricing"]
    assert pricing["total"] == 3 and pricing["share"] == 0.6  # 3 of 5 commented responses
    assert pricing["by_category"] == {
        "promoter": {"count": 1, "share": 0.5},
        "passive": {"count": 0, "share": 0.0},
        "detractor": {"count": 2, "share": 1.0},
    }
    assert pricing["nps"] == -33.33  # 1 promoter, 2 detractors
    assert themes["ease_of_use"]["by_category"]["promoter"] == {"count": 2, "share": 1.0}
    # week 1: 3 commented, pricing in 2; week 2: 2 commented, pricing in 1
    assert [(p["start"], p["count"], p["share"]) for p in pricing["trend"]] == [
        ("2026-01-05", 2, 0.6667),
        ("2026-01-12", 1, 0.5),
    ]
