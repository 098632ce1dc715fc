"""Promoters, passives, eligibility, business outcomes, recovery and the digest."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import select

from npsloop.services.followup.digest import send_digests
from npsloop.services.followup.models import Recovery
from npsloop.shared.models import EventLogEntry
from tests.support.receivers import field_values


def policy(slack, hook, extra: str = "") -> str:
    return f"""
    channels:
      cs-slack: {{type: slack, url: "{slack.url}"}}
      crm: {{type: webhook, url: "{hook.url}"}}
    routing:
      - match: {{segment: enterprise}}
        assignee_from: properties.account_owner
        team: enterprise-cs
        channel: cs-slack
      - match: {{}}
        team: cs
        channel: cs-slack
    {extra}
    """


async def _events(loop, event_type: str) -> list[dict]:
    async with loop.runtime.db.sessions() as session:
        rows = (
            await session.scalars(
                select(EventLogEntry).where(EventLogEntry.type == event_type).order_by(EventLogEntry.position)
            )
        ).all()
    return [json.loads(r.envelope)["data"] for r in rows]


async def test_a_promoter_who_answers_twice_gets_one_referral_request_on_the_owners_channel(make_loop, slack, hook):
    loop = await make_loop(policy(slack, hook))
    await loop.respond(10, "fan", "Love it", customer={"segment": "enterprise"}, properties={"account_owner": "kim"})
    loop.clock.advance(days=2)
    await loop.respond(
        9, "fan", "Still love it", customer={"segment": "enterprise"}, properties={"account_owner": "kim"}
    )
    (referral,) = await _events(loop, "npsloop.referral.requested.v1")
    assert (referral["owner"], referral["channel"]) == ("kim", "cs-slack")
    assert await loop.deliver() == 1
    (message,) = slack.messages()
    assert message["blocks"][0]["text"]["text"] == "Promoter: ask for a referral"
    assert field_values(message)["Owner"] == "kim"


async def test_referrals_can_be_switched_off_or_sent_to_their_own_channel(make_loop, slack, hook):
    off = await make_loop(policy(slack, hook, "referrals: {enabled: false}"))
    await off.respond(10, "fan")
    assert await _events(off, "npsloop.referral.requested.v1") == []


async def test_review_requests_go_to_every_respondent_whatever_their_score(make_loop, slack, hook):
    extra = 'review_requests: {audience: every_respondent, channel: crm, url: "https://g.page/r/acme/review"}'
    loop = await make_loop(policy(slack, hook, extra))
    for score, who in ((10, "p"), (7, "n"), (2, "d")):
        await loop.respond(score, who)
    requested = await _events(loop, "npsloop.review.requested.v1")
    assert sorted(r["customer"]["id"] for r in requested) == ["d", "n", "p"]
    await loop.deliver()
    crm = [r.json() for r in hook.requests]
    assert sorted(e["data"]["customer"]["id"] for e in crm if e["type"] == "npsloop.review.requested.v1") == [
        "d",
        "n",
        "p",
    ]


async def test_passives_emit_a_segment_event_for_nurture_tools_and_another_when_they_leave(make_loop, slack, hook):
    loop = await make_loop(policy(slack, hook))
    await loop.respond(7, "mid")
    loop.clock.advance(days=1)
    await loop.respond(10, "mid")
    await loop.respond(10, "fan")
    changes = await _events(loop, "npsloop.customer.segment_changed.v1")
    assert [(c["customer"]["id"], c["previous_segment"], c["segment"]) for c in changes] == [
        ("mid", None, "passive"),
        ("mid", "passive", "promoter"),
    ]


async def test_eligibility_counts_survey_every_from_the_last_response_and_the_last_send(make_loop, slack, hook):
    loop = await make_loop(policy(slack, hook))
    url = "/v1/surveys/eligibility"
    fresh = (await loop.client.get(url, params={"customer_id": "c9"}, headers=loop.headers)).json()
    assert fresh == {
        "eligible": True,
        "next_eligible_at": None,
        "reason": "never_surveyed",
        "last_response_at": None,
        "last_sent_at": None,
    }
    await loop.respond(7, "c10", customer={"account_id": "acct-1"})  # a colleague, long ago
    await loop.respond(9, "c11", customer={"account_id": "acct-2"})
    loop.clock.advance(days=200)
    await loop.respond(8, "c9", customer={"account_id": "acct-1"})
    now = loop.clock.now()
    after = (await loop.client.get(url, params={"customer_id": "c9"}, headers=loop.headers)).json()
    assert after["eligible"] is False and after["reason"] == "recently_responded"
    assert datetime.fromisoformat(after["next_eligible_at"]) == now + timedelta(days=90)
    # Per account too: a colleague on the same account waits as well.
    account = (await loop.client.get(url, params={"account_id": "acct-1"}, headers=loop.headers)).json()
    assert account["eligible"] is False
    # Asked about by customer id alone, the colleague's account is the one they answered under before.
    colleague = (await loop.client.get(url, params={"customer_id": "c10"}, headers=loop.headers)).json()
    assert colleague["eligible"] is False and colleague["reason"] == "recently_responded"
    assert colleague["last_response_at"] == after["last_response_at"]
    stranger = (await loop.client.get(url, params={"customer_id": "c11"}, headers=loop.headers)).json()
    assert stranger["eligible"] is True  # on another account
    loop.clock.advance(days=91)
    assert (await loop.client.get(url, params={"customer_id": "c9"}, headers=loop.headers)).json()["eligible"] is True
    sent = await loop.client.post(
        "/v1/surveys/sent", json={"customer_id": "c9", "channel": "email"}, headers=loop.headers
    )
    assert sent.status_code == 201
    again = (await loop.client.get(url, params={"customer_id": "c9"}, headers=loop.headers)).json()
    assert again["eligible"] is False and again["reason"] == "recently_surveyed"
    missing = await loop.client.get(url, headers=loop.headers)
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "customer_id"


async def test_business_outcomes_are_stored_for_customers_or_accounts(make_loop, slack, hook):
    loop = await make_loop(policy(slack, hook))
    made = await loop.client.post(
        "/v1/outcomes",
        json={
            "account_id": "acct-1",
            "outcome": "renewed",
            "revenue": 12000,
            "currency": "EUR",
            "occurred_on": "2026-01-02",
        },
        headers=loop.headers,
    )
    assert made.status_code == 201 and made.json()["recorded_by"] == "dana"
    bad = await loop.client.post("/v1/outcomes", json={"account_id": "a", "outcome": "upsold"}, headers=loop.headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "outcome"
    nobody = await loop.client.post("/v1/outcomes", json={"outcome": "churned"}, headers=loop.headers)
    assert nobody.status_code == 422
    listed = (await loop.client.get("/v1/outcomes", params={"account_id": "acct-1"}, headers=loop.headers)).json()
    assert [(o["outcome"], o["revenue"], o["occurred_on"]) for o in listed["outcomes"]] == [
        ("renewed", 12000.0, "2026-01-02")
    ]


async def test_the_recovery_rate_is_the_share_of_resolved_detractors_whose_next_answer_is_passive_or_promoter(
    make_loop, slack, hook
):
    loop = await make_loop(policy(slack, hook))
    for who in ("won", "lost", "pending", "silent"):
        await loop.respond(2, who)
    tasks = {t["customer_id"]: t["id"] for t in await loop.tasks()}
    for who, outcome in (("won", "resolved"), ("lost", "contacted"), ("silent", "no_response")):
        await loop.client.post(f"/v1/tasks/{tasks[who]}/resolve", json={"outcome": outcome}, headers=loop.headers)
    loop.clock.advance(days=30)
    await loop.respond(9, "won")
    await loop.respond(4, "lost")
    await loop.respond(8, "pending")  # answered again before the task was resolved: not measured
    rate = (await loop.client.get("/v1/followup/recovery", headers=loop.headers)).json()
    assert (rate["resolved_tasks"], rate["measured"], rate["recovered"], rate["recovery_rate"]) == (3, 2, 1, 0.5)
    assert rate["by_outcome"]["resolved"] == {"measured": 1, "recovered": 1, "recovery_rate": 1.0}
    async with loop.runtime.db.sessions() as session:
        rows = {r.customer_id: (r.next_category, r.recovered) for r in (await session.scalars(select(Recovery))).all()}
    assert rows == {"won": ("promoter", True), "lost": ("detractor", False)}
    await loop.respond(10, "won")  # only the next answer counts
    assert (await loop.client.get("/v1/followup/recovery", headers=loop.headers)).json()["measured"] == 2


async def test_a_daily_digest_per_team_channel_is_sent_once_per_period(make_loop, slack, hook):
    extra = 'digest: {every: 1d, at: "08:00"}\n    sla: [{match: {score: "0-6"}, due_in: 12h}]'
    loop = await make_loop(policy(slack, hook, extra))  # the clock starts on a Monday, 09:00 UTC
    await loop.respond(2, "a")
    await loop.respond(9, "b")
    await loop.tick(hours=12)  # the task breaches at 21:00
    await loop.tick(hours=12)  # past 08:00 the next day: Monday's digest is due
    for _ in range(3):  # every monitor round and restart: still one digest per team and day
        async with loop.runtime.db.unit_of_work() as session:
            await send_digests(session, policy=loop.runtime.policy, clock=loop.clock, public_url="http://npsloop.test")
    await loop.pump()
    (digest,) = await _events(loop, "npsloop.followup.digest.v1")
    assert (digest["team"], digest["new_detractors"], digest["open_tasks"], digest["breaches"]) == ("cs", 1, 1, 1)
    assert (digest["responses"], digest["nps"]) == (2, 0.0)
    slack.requests.clear()
    await loop.deliver()
    titles = [m["blocks"][0]["text"]["text"] for m in slack.messages()]
    assert "Daily digest: cs" in titles
    (message,) = [m for m in slack.messages() if m["blocks"][0]["text"]["text"] == "Daily digest: cs"]
    assert field_values(message)["New detractors"] == "1" and field_values(message)["NPS"].startswith("+0.0")
