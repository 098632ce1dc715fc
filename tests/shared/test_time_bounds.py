"""Timestamps outside what the API can hold get a 422 naming the field, never a 500.

Found by the fuzzer: 0001-01-01T00:00:01+00:03 is in year 0 once in UTC, which Python's
datetime cannot hold, and a survey sent at 9999-12-31 is eligible again after year 9999."""

from __future__ import annotations

import pytest

YEAR_ZERO = "0001-01-01T00:00:01+00:03"
YEAR_TEN_THOUSAND = "9999-12-31T23:59:59-00:03"


@pytest.mark.parametrize(
    "path, params, field",
    [
        ("/v1/nps", {"to": YEAR_ZERO}, "to"),
        ("/v1/analytics/followup", {"to": "0001-01-01T00:01:00Z"}, "to"),  # 90 days before it do not exist
        ("/v1/analytics/themes", {"from": YEAR_ZERO, "to": "2026-01-01T00:00:00Z"}, "from"),
        ("/v1/analytics/export/tasks.csv", {"from": "2000-01-02T00:00:01Z", "to": YEAR_ZERO}, "to"),
        ("/v1/analytics/export/responses.csv", {"from": YEAR_TEN_THOUSAND}, "from"),
        ("/v1/tasks", {"due_before": YEAR_ZERO}, "due_before"),
        ("/v1/tasks", {"due_after": YEAR_TEN_THOUSAND}, "due_after"),
        ("/v1/followup/recovery", {"since": YEAR_ZERO}, "since"),
        ("/v1/followup/recovery", {"until": YEAR_TEN_THOUSAND}, "until"),
    ],
)
async def test_time_filters_out_of_range_are_refused_with_the_field(client, make_key, path, params, field):
    reply = await client.get(path, params=params, headers=await make_key("admin"))
    assert reply.status_code == 422, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    errors = reply.json()["errors"]
    assert any(field in e["field"] and "1900-01-01" in e["message"] for e in errors), errors


async def test_time_filters_inside_the_range_are_answered(client, make_key):
    headers = await make_key("admin")
    for path, params in [
        ("/v1/nps", {"from": "1900-01-01T00:00:00Z", "to": "2999-12-31T23:59:59Z"}),
        ("/v1/tasks", {"due_before": "2999-12-31T00:00:00+14:00"}),
        ("/v1/followup/recovery", {"since": "1900-01-01T00:00:00"}),
    ]:  # naive = UTC
        reply = await client.get(path, params=params, headers=headers)
        assert reply.status_code == 200, (path, reply.text)


async def test_a_response_or_a_survey_send_out_of_range_is_refused_and_nothing_is_stored(client, make_key):
    headers = await make_key("admin")
    for at in (YEAR_ZERO, YEAR_TEN_THOUSAND, "1899-12-31T23:59:59Z"):
        reply = await client.post(
            "/v1/responses", json={"score": 3, "customer": {"id": "c1"}, "responded_at": at}, headers=headers
        )
        assert reply.status_code == 422, reply.text
        assert [e["field"] for e in reply.json()["errors"]] == ["responded_at"], reply.text
        batch = await client.post(
            "/v1/responses/batch",
            headers=headers,
            json={"responses": [{"score": 3, "customer": {"id": "c1"}, "responded_at": at}]},
        )
        assert batch.status_code < 500, batch.text
        assert "responded_at" in batch.text
        sent = await client.post("/v1/surveys/sent", json={"customer_id": "c1", "sent_at": at}, headers=headers)
        assert sent.status_code == 422, sent.text
        assert any("sent_at" in e["field"] for e in sent.json()["errors"]), sent.text
    # the same response inside the range is taken
    ok = await client.post(
        "/v1/responses",
        json={"score": 3, "customer": {"id": "c2"}, "responded_at": "1900-01-01T00:00:00Z"},
        headers=headers,
    )
    assert ok.status_code == 202, ok.text
    eligibility = await client.get("/v1/surveys/eligibility", params={"customer_id": "c1"}, headers=headers)
    assert eligibility.status_code == 200, eligibility.text
    assert eligibility.json()["reason"] == "never_surveyed"  # no response and no send was recorded
    assert (await client.get("/v1/nps", params={"from": "1900-01-01T00:00:00Z"}, headers=headers)).json()["overall"][
        "total"
    ] == 1  # c2's alone
