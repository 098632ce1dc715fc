"""Follow-up rules, the task API and the SLA clock, with a clock the tests move."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from npsloop.services.followup.models import ReferralRequest, Task
from npsloop.services.followup.scheduled import check_sla
from npsloop.shared.models import ConsumerPosition, EventLogEntry
from tests.factories import DETRACTOR_COMMENT, detractor_body, detractor_task, post_response, response_body


async def _events(runtime, event_type: str) -> list[EventLogEntry]:
    async with runtime.db.sessions() as session:
        return list(
            (
                await session.scalars(
                    select(EventLogEntry).where(EventLogEntry.type == event_type).order_by(EventLogEntry.position)
                )
            ).all()
        )


async def test_each_detractor_gets_one_task_due_24h_for_0_to_4_and_48h_for_5_to_6(client, runtime, make_key, pump):
    headers = await make_key("admin")
    low = await post_response(client, headers, detractor_body(2, "a"))
    mid = await post_response(client, headers, detractor_body(6, "b"))
    await post_response(client, headers, response_body(7, "c", DETRACTOR_COMMENT))
    await pump()
    tasks = {t["response_id"]: t for t in (await client.get("/v1/tasks", headers=headers)).json()["tasks"]}
    assert set(tasks) == {low, mid}
    for rid, hours in ((low, 24), (mid, 48)):
        task = tasks[rid]
        received = (await client.get(f"/v1/responses/{rid}", headers=headers)).json()["received_at"]
        from datetime import datetime

        assert datetime.fromisoformat(task["due_at"]) - datetime.fromisoformat(received) == timedelta(hours=hours)
        assert task["status"] == "open" and task["team"] == "cs"
    assert len(await _events(runtime, "npsloop.followup.opened.v1")) == 2


async def test_redelivering_every_event_never_opens_a_second_task(client, runtime, make_key, pump):
    headers = await make_key("admin")
    await post_response(client, headers, detractor_body(1))
    await pump()
    async with runtime.db.unit_of_work() as session:  # replay the whole log to every consumer
        await session.execute(update(ConsumerPosition).values(position=0))
    await pump()
    async with runtime.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Task)) == 1
    assert len(await _events(runtime, "npsloop.followup.opened.v1")) == 1


async def test_a_late_comment_updates_the_open_task_without_a_second_one(client, runtime, make_key, pump):
    headers = await make_key("admin")
    rid = await post_response(client, headers, detractor_body(3, comment=None))
    await pump()
    await client.patch(f"/v1/responses/{rid}", json={"comment": "Billing charged me twice"}, headers=headers)
    await pump()
    (task,) = (await client.get("/v1/tasks", headers=headers)).json()["tasks"]
    assert task["comment"] == "Billing charged me twice"
    detail = (await client.get(f"/v1/tasks/{task['id']}", headers=headers)).json()
    assert [e["type"] for e in detail["events"]] == ["opened", "response_updated"]


async def test_acknowledge_note_and_resolve_are_kept_as_an_audit_trail(client, runtime, make_key, pump):
    headers = await make_key("tasks:read", "tasks:write", "responses:write", name="dana")
    task = await detractor_task(client, headers, pump, score=0)
    base = f"/v1/tasks/{task['id']}"
    ack = await client.post(f"{base}/acknowledge", json={"note": "Called, left voicemail"}, headers=headers)
    assert ack.json()["status"] == "acknowledged" and ack.json()["acknowledged_at"]
    assert (await client.post(f"{base}/notes", json={"note": "Spoke to them"}, headers=headers)).status_code == 201
    missing_outcome = await client.post(f"{base}/resolve", json={"note": "done"}, headers=headers)
    assert missing_outcome.status_code == 422 and missing_outcome.json()["errors"][0]["field"] == "outcome"
    resolved = await client.post(f"{base}/resolve", json={"outcome": "resolved", "note": "Refunded"}, headers=headers)
    assert resolved.json()["status"] == "resolved" and resolved.json()["outcome"] == "resolved"
    assert (await client.post(f"{base}/acknowledge", headers=headers)).status_code == 409
    detail = (await client.get(base, headers=headers)).json()
    assert [(e["type"], e["actor"]) for e in detail["events"]] == [
        ("opened", "npsloop"),
        ("acknowledged", "dana"),
        ("note", "dana"),
        ("resolved", "dana"),
    ]
    assert [e.type for e in await _events(runtime, "npsloop.followup.resolved.v1")] == ["npsloop.followup.resolved.v1"]
    assert (await client.get("/v1/tasks", params={"status": "resolved"}, headers=headers)).json()["tasks"][0][
        "id"
    ] == task["id"]
    assert (await client.get("/v1/tasks", params={"status": "open"}, headers=headers)).json()["tasks"] == []


async def test_the_sla_warns_at_75_percent_and_breaches_at_due_exactly_once(client, runtime, clock, make_key, pump):
    headers = await make_key("admin")
    await post_response(client, headers, detractor_body(2, "late"))
    await post_response(client, headers, detractor_body(2, "handled"))
    await pump()
    tasks = {t["customer_id"]: t for t in (await client.get("/v1/tasks", headers=headers)).json()["tasks"]}
    await client.post(f"/v1/tasks/{tasks['handled']['id']}/acknowledge", headers=headers)

    clock.advance(hours=17)  # 71 % of 24 h
    async with runtime.db.unit_of_work() as session:
        assert (await check_sla(session, clock=clock)).warned == 0
    clock.advance(hours=1, minutes=1)  # past 75 %
    for _ in range(3):  # a restarted or second monitor must not warn again
        async with runtime.db.unit_of_work() as session:
            await check_sla(session, clock=clock)
    warnings = await _events(runtime, "npsloop.followup.sla_warning.v1")
    assert [w.key for w in warnings] == ["late"]

    clock.advance(hours=6)  # past due_at
    for _ in range(3):
        async with runtime.db.unit_of_work() as session:
            await check_sla(session, clock=clock)
    breaches = await _events(runtime, "npsloop.followup.sla_breached.v1")
    assert [b.key for b in breaches] == ["late"]
    late = (await client.get(f"/v1/tasks/{tasks['late']['id']}", headers=headers)).json()
    assert late["breached"] is True and late["breached_at"]
    assert [
        t["customer_id"]
        for t in (await client.get("/v1/tasks", params={"breached": "true"}, headers=headers)).json()["tasks"]
    ] == ["late"]


async def test_a_promoter_gets_one_referral_request_per_throttle_window(client, runtime, clock, make_key, pump):
    headers = await make_key("admin")
    await post_response(client, headers, response_body(10, "fan", "Love it"))
    await pump()
    clock.advance(days=3)
    await post_response(client, headers, response_body(9, "fan", "Still great"))
    await pump()
    assert len(await _events(runtime, "npsloop.referral.requested.v1")) == 1
    clock.advance(days=31)
    await post_response(client, headers, response_body(10, "fan", "Great"))
    await pump()
    assert len(await _events(runtime, "npsloop.referral.requested.v1")) == 2
    async with runtime.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Task)) == 0
        assert await session.scalar(select(func.count()).select_from(ReferralRequest)) == 2


async def test_task_endpoints_check_scopes_and_existence(client, make_key):
    reader = await make_key("responses:read")
    assert (await client.get("/v1/tasks", headers=reader)).status_code == 403
    admin = await make_key("admin")
    assert (await client.get("/v1/tasks/none", headers=admin)).status_code == 404
    assert (await client.post("/v1/tasks/none/acknowledge", headers=admin)).status_code == 404
    assert (await client.get("/v1/tasks", params={"cursor": "%%%"}, headers=admin)).status_code == 400
