"""GET /v1/nps against numbers worked out by hand, margin of error and significance included."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.factories import response_body

PERIOD = {"from": "2026-01-05T00:00:00Z", "to": "2026-02-02T00:00:00Z"}


@pytest.fixture(autouse=True)
def after_the_period(clock):
    clock.set(datetime(2026, 2, 10, 12, 0, tzinfo=UTC))


async def test_nps_by_segment_matches_a_hand_computation_with_its_margin_of_error(client, make_key, seed):
    # smb: 10 10 9 9 9 | 8 7 | 6 3 0  -> 5 promoters, 2 passives, 3 detractors, n = 10
    #   NPS = 100·(5 − 3)/10 = 20
    #   p = .5, d = .3: MoE = 1.96·√((.5 + .3 − (.5 − .3)²)/10)·100 = 1.96·√(.076)·100 = 1.96·.275681·100 = 54.03
    # enterprise: 10 9 | 7 | 2 -> 2, 1, 1, n = 4
    #   NPS = 100·(2 − 1)/4 = 25
    #   p = .5, d = .25: MoE = 1.96·√((.75 − .0625)/4)·100 = 1.96·√(.171875)·100 = 1.96·.414578·100 = 81.26
    # overall: 7, 3, 4, n = 14: NPS = 300/14 = 21.43
    #   p = .5, d = 4/14 = .285714: MoE = 1.96·√((.785714 − .045918)/14)·100 = 1.96·.229876·100 = 45.06
    smb = [10, 10, 9, 9, 9, 8, 7, 6, 3, 0]
    enterprise = [10, 9, 7, 2]
    await seed(
        *[response_body(s, f"s{i}", segment="smb", responded_at="2026-01-06T10:00:00Z") for i, s in enumerate(smb)],
        *[
            response_body(s, f"e{i}", segment="enterprise", responded_at="2026-01-13T10:00:00Z")
            for i, s in enumerate(enterprise)
        ],
    )
    reply = await client.get(
        "/v1/nps", params={**PERIOD, "group_by": "segment"}, headers=await make_key("analytics:read")
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    groups = {g["segment"]: g for g in body["groups"]}
    assert [g["segment"] for g in body["groups"]] == ["smb", "enterprise"]  # largest first
    assert {
        k: groups["smb"][k] for k in ("nps", "promoters", "passives", "detractors", "total", "margin_of_error")
    } == {"nps": 20.0, "promoters": 5, "passives": 2, "detractors": 3, "total": 10, "margin_of_error": 54.03}
    assert groups["smb"]["shares"] == {"promoters": 0.5, "passives": 0.2, "detractors": 0.3}
    assert groups["smb"]["ci_low"] == -34.03 and groups["smb"]["ci_high"] == 74.03
    assert (groups["enterprise"]["nps"], groups["enterprise"]["margin_of_error"]) == (25.0, 81.26)
    assert groups["enterprise"]["ci_low"] == -56.26 and groups["enterprise"]["ci_high"] == 100.0  # clipped
    assert (body["overall"]["nps"], body["overall"]["total"], body["overall"]["margin_of_error"]) == (21.43, 14, 45.06)


async def test_consecutive_weeks_say_whether_the_change_is_significant(client, make_key, seed):
    # week of Jan 5: 10 promoters, 10 detractors: NPS 0, variance p + d − (p − d)² = 1
    # week of Jan 12: 18 promoters, 2 detractors: NPS 80, variance .9 + .1 − .64 = .36
    #   SE = √(1/20 + .36/20)·100 = 26.08; z = 80/26.08 = 3.068 > 1.96 -> significant
    # week of Jan 19: 17 promoters, 3 detractors: NPS 70, variance 1 − .49 = .51
    #   SE = √(.36/20 + .51/20)·100 = 20.86; z = −10/20.86 = −0.479 -> not significant
    # week of Jan 26: nobody answered: NPS null, no change to speak of
    weeks = {"2026-01-05": (10, 10), "2026-01-12": (18, 2), "2026-01-19": (17, 3)}
    answers = []
    for day, (promoters, detractors) in weeks.items():
        answers += [response_body(10, f"{day}-p{i}", responded_at=f"{day}T12:00:00Z") for i in range(promoters)]
        answers += [response_body(0, f"{day}-d{i}", responded_at=f"{day}T12:00:00Z") for i in range(detractors)]
    await seed(*answers)
    body = (
        await client.get("/v1/nps", params={**PERIOD, "interval": "week"}, headers=await make_key("analytics:read"))
    ).json()
    weeks_out = body["overall"]["intervals"]
    assert [(w["start"], w["end"], w["nps"], w["total"]) for w in weeks_out] == [
        ("2026-01-05", "2026-01-12", 0.0, 20),
        ("2026-01-12", "2026-01-19", 80.0, 20),
        ("2026-01-19", "2026-01-26", 70.0, 20),
        ("2026-01-26", "2026-02-02", None, 0),
    ]
    assert weeks_out[0]["change"] is None
    assert weeks_out[1]["change"] == {"delta": 80.0, "z": 3.068, "significant": True}
    assert weeks_out[2]["change"] == {"delta": -10.0, "z": -0.479, "significant": False}
    assert weeks_out[3]["change"] is None and weeks_out[3]["margin_of_error"] is None
    assert weeks_out[1]["margin_of_error"] == 26.3  # 1.96·√(.36/20)·100 = 1.96·.134164·100
    assert body["groups"][0]["intervals"] == weeks_out  # ungrouped: one group, the whole


async def test_months_and_days_bucket_in_utc(client, make_key, seed):
    await seed(
        response_body(10, "a", responded_at="2026-01-31T23:30:00Z"),
        response_body(0, "b", responded_at="2026-02-01T00:30:00Z"),
    )
    headers = await make_key("analytics:read")
    params = {"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z", "interval": "month"}
    months = (await client.get("/v1/nps", params=params, headers=headers)).json()["overall"]["intervals"]
    assert [(m["start"], m["nps"]) for m in months] == [("2026-01-01", 100.0), ("2026-02-01", -100.0)]
    params = {"from": "2026-01-31T00:00:00Z", "to": "2026-02-02T00:00:00Z", "interval": "day"}
    days = (await client.get("/v1/nps", params=params, headers=headers)).json()["overall"]["intervals"]
    assert [(d["start"], d["total"]) for d in days] == [("2026-01-31", 1), ("2026-02-01", 1)]


async def test_groups_by_property_lifecycle_survey_kind_and_theme_with_corrections_winning(
    client, make_key, seed, set_themes
):
    ids = await seed(
        response_body(
            10,
            "a",
            properties={"plan": "pro"},
            lifecycle_stage="renewal",
            survey={"kind": "relationship", "touchpoint": "renewal"},
            comment="Great support",
            responded_at="2026-01-06T10:00:00Z",
        ),
        response_body(
            2,
            "b",
            properties={"plan": "pro"},
            survey={"kind": "transactional"},
            comment="Too expensive and support was slow",
            responded_at="2026-01-06T11:00:00Z",
        ),
        response_body(8, "c", properties={"plan": "free"}, comment="Fine", responded_at="2026-01-07T11:00:00Z"),
        response_body(5, "d", responded_at="2026-01-07T12:00:00Z"),
    )
    await set_themes({ids[0]: ["support_experience"], ids[1]: ["pricing", "support_experience"], ids[2]: []})
    headers = await make_key("analytics:read", "responses:write")
    # A person decides the passive's comment is about pricing: the correction wins.
    fixed = await client.put(f"/v1/responses/{ids[2]}/classification", json={"themes": ["pricing"]}, headers=headers)
    assert fixed.status_code == 200, fixed.text

    async def groups(group_by: str) -> dict:
        reply = await client.get("/v1/nps", params={**PERIOD, "group_by": group_by}, headers=headers)
        assert reply.status_code == 200, reply.text
        return {g[group_by]: (g["nps"], g["total"]) for g in reply.json()["groups"]}

    assert await groups("properties.plan") == {"pro": (0.0, 2), "free": (0.0, 1), None: (-100.0, 1)}
    for singular in ("property.plan", "property:plan"):  # DESIGN.md's word, in its one spelling
        reply = await client.get("/v1/nps", params={**PERIOD, "group_by": singular}, headers=headers)
        assert reply.json()["group_by"] == "properties.plan"
        assert {g["properties.plan"]: g["total"] for g in reply.json()["groups"]} == {"pro": 2, "free": 1, None: 1}
    assert await groups("lifecycle_stage") == {"renewal": (100.0, 1), None: (-66.67, 3)}
    assert await groups("survey_kind") == {"relationship": (100.0, 1), "transactional": (-100.0, 1), None: (-50.0, 2)}
    assert await groups("touchpoint") == {"renewal": (100.0, 1), None: (-66.67, 3)}
    # pricing: the detractor and (corrected) the passive; support: promoter and detractor
    assert await groups("theme") == {"pricing": (-50.0, 2), "support_experience": (0.0, 2)}
    filtered = await client.get("/v1/nps", params={**PERIOD, "survey_kind": "relationship"}, headers=headers)
    assert filtered.json()["overall"]["total"] == 1


@pytest.mark.parametrize(
    "params, field",
    [
        ({"group_by": "country"}, "group_by"),
        ({"group_by": "properties."}, "group_by"),
        ({"group_by": "property"}, "group_by"),  # a property needs its name
        ({"interval": "year"}, "interval"),
        ({"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2000-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z", "interval": "day"}, "interval"),
    ],
)
async def test_bad_parameters_get_a_422_that_names_the_field(client, make_key, params, field):
    reply = await client.get("/v1/nps", params=params, headers=await make_key("analytics:read"))
    assert reply.status_code == 422, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert any(field in e["field"] for e in reply.json()["errors"]), reply.json()


async def test_analytics_needs_the_analytics_read_scope_or_admin(client, make_key):
    paths = [
        "/v1/nps",
        "/v1/analytics/themes",
        "/v1/analytics/followup",
        "/v1/analytics/export/responses.csv",
        "/v1/analytics/export/tasks.csv",
    ]
    writer, admin = await make_key("responses:write", "tasks:read"), await make_key("admin")
    for path in paths:
        assert (await client.get(path)).status_code == 401
        assert (await client.get(path, headers=writer)).status_code == 403
        assert (await client.get(path, headers=admin)).status_code == 200


async def test_no_responses_gives_empty_groups_and_null_nps(client, make_key):
    body = (
        await client.get("/v1/nps", params={**PERIOD, "group_by": "segment"}, headers=await make_key("analytics:read"))
    ).json()
    assert body["groups"] == []
    assert body["overall"]["nps"] is None and body["overall"]["total"] == 0
    assert body["from"].startswith("2026-01-05") and body["to"].startswith("2026-02-02")
