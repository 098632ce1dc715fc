"""People correct a response's themes and sentiment; the correction wins everywhere."""

from __future__ import annotations

from sqlalchemy import func, select

from npsloop.services.classifier.models import ClassificationCorrection
from npsloop.services.followup.models import Task
from npsloop.shared.models import EventLogEntry
from tests.factories import post_response

CLASSIFIED = "npsloop.response.classified.v1"


REPORTS_CRASH = "The app crashes whenever I open the reports"


async def _classified_events(runtime, response_id: str) -> list[dict]:
    async with runtime.db.sessions() as session:
        rows = (
            await session.scalars(
                select(EventLogEntry).where(EventLogEntry.type == CLASSIFIED).order_by(EventLogEntry.position)
            )
        ).all()
    import json

    envelopes = [json.loads(r.envelope) for r in rows]
    return [e["data"]["classification"] for e in envelopes if e["subject"] == response_id]


async def _count(runtime, model) -> int:
    async with runtime.db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def test_corrected_themes_and_sentiment_win_on_get_and_are_kept_with_who_and_when(
    client, runtime, make_key, pump, clock
):
    headers = await make_key("responses:write", "responses:read", name="dana-cs")
    rid = await post_response(client, headers, score=6, comment=REPORTS_CRASH)
    await pump()
    reply = await client.put(
        f"/v1/responses/{rid}/classification",
        headers=headers,
        json={"themes": ["pricing", "support_experience"], "sentiment": "neutral"},
    )
    assert reply.status_code == 200, reply.text
    corrected = reply.json()
    assert [t["id"] for t in corrected["themes"]] == ["pricing", "support_experience"]
    assert corrected["sentiment"] == "neutral" and corrected["sentiment_score"] == 0.0
    assert corrected["corrected_by"] == "dana-cs"
    shown = (await client.get(f"/v1/responses/{rid}", headers=headers)).json()
    assert {t["id"] for t in shown["themes"]} == {"pricing", "support_experience"}
    assert shown["sentiment"] == "neutral" and shown["category"] == "detractor"
    assert shown["classifier_version"].startswith("builtin-")
    async with runtime.db.sessions() as session:
        (row,) = (await session.scalars(select(ClassificationCorrection))).all()
    assert row.response_id == rid and row.corrected_by == "dana-cs" and row.corrected_at == clock.now()


async def test_a_later_correction_of_one_field_keeps_the_earlier_correction_of_the_other(client, make_key, pump):
    headers = await make_key("admin")
    rid = await post_response(client, headers, score=9, comment="Lovely people, quick answers")
    await pump()
    await client.put(f"/v1/responses/{rid}/classification", headers=headers, json={"themes": ["ease_of_use"]})
    await client.put(f"/v1/responses/{rid}/classification", headers=headers, json={"sentiment": "negative"})
    shown = (await client.get(f"/v1/responses/{rid}", headers=headers)).json()
    assert [t["id"] for t in shown["themes"]] == ["ease_of_use"] and shown["sentiment"] == "negative"
    await client.put(f"/v1/responses/{rid}/classification", headers=headers, json={"themes": []})
    assert (await client.get(f"/v1/responses/{rid}", headers=headers)).json()["themes"] == []


async def test_unknown_theme_id_is_422_naming_the_field_and_writes_nothing(client, runtime, make_key, pump):
    headers = await make_key("admin")
    rid = await post_response(client, headers, score=3, comment=REPORTS_CRASH)
    await pump()
    before = len(await _classified_events(runtime, rid))
    reply = await client.put(
        f"/v1/responses/{rid}/classification",
        headers=headers,
        json={"themes": ["pricing", "shipping_speed"], "sentiment": "negative"},
    )
    assert reply.status_code == 422
    problem = reply.json()
    assert problem["errors"][0]["field"] == "themes" and "shipping_speed" in problem["detail"]
    assert await _count(runtime, ClassificationCorrection) == 0
    assert len(await _classified_events(runtime, rid)) == before


async def test_bad_bodies_are_422_naming_the_field(client, make_key, pump):
    headers = await make_key("admin")
    rid = await post_response(client, headers, score=3, comment=REPORTS_CRASH)
    bad_sentiment = await client.put(
        f"/v1/responses/{rid}/classification", headers=headers, json={"sentiment": "furious"}
    )
    assert bad_sentiment.status_code == 422 and bad_sentiment.json()["errors"][0]["field"] == "sentiment"
    empty = await client.put(f"/v1/responses/{rid}/classification", headers=headers, json={})
    assert empty.status_code == 422 and "themes, sentiment or both" in empty.json()["detail"]
    unknown_field = await client.put(f"/v1/responses/{rid}/classification", headers=headers, json={"tags": []})
    assert unknown_field.status_code == 422 and unknown_field.json()["errors"][0]["field"] == "tags"


async def test_correcting_needs_responses_write_and_an_existing_response(client, make_key):
    reader = await make_key("responses:read")
    writer = await make_key("responses:write")
    rid = await post_response(client, writer, score=8, comment=REPORTS_CRASH)
    denied = await client.put(f"/v1/responses/{rid}/classification", headers=reader, json={"sentiment": "neutral"})
    assert denied.status_code == 403 and "responses:write" in denied.json()["detail"]
    assert (await client.put(f"/v1/responses/{rid}/classification", json={"sentiment": "neutral"})).status_code == 401
    missing = await client.put("/v1/responses/nope/classification", headers=writer, json={"sentiment": "neutral"})
    assert missing.status_code == 404


async def test_a_correction_re_emits_classified_and_follow_up_keeps_one_task_with_the_corrected_themes(
    client, runtime, make_key, pump
):
    headers = await make_key("admin")
    rid = await post_response(client, headers, score=2, comment=REPORTS_CRASH)
    await pump()
    await client.put(
        f"/v1/responses/{rid}/classification",
        headers=headers,
        json={"themes": ["performance_reliability"], "sentiment": "negative"},
    )
    await pump()
    events = await _classified_events(runtime, rid)
    assert len(events) == 2
    assert [t["id"] for t in events[-1]["themes"]] == ["performance_reliability"]
    assert events[-1]["corrected_by"] == "test-app" and events[-1]["category"] == "detractor"
    async with runtime.db.sessions() as session:
        (task,) = (await session.scalars(select(Task))).all()
    assert [t["id"] for t in task.themes] == ["performance_reliability"]


async def test_a_late_comment_re_classifies_but_keeps_the_corrected_values(client, make_key, pump):
    headers = await make_key("admin")
    rid = await post_response(client, headers, score=5)
    await pump()
    await client.put(
        f"/v1/responses/{rid}/classification",
        headers=headers,
        json={"themes": ["delivery_logistics"], "sentiment": "neutral"},
    )
    await client.patch(f"/v1/responses/{rid}", json={"comment": "Support never answered my emails"}, headers=headers)
    await pump()
    shown = (await client.get(f"/v1/responses/{rid}", headers=headers)).json()
    assert shown["comment"] == "Support never answered my emails"
    assert [t["id"] for t in shown["themes"]] == ["delivery_logistics"] and shown["sentiment"] == "neutral"


async def test_a_correction_before_the_classifier_ran_is_kept_when_it_runs(client, runtime, make_key, pump):
    headers = await make_key("admin")
    rid = await post_response(client, headers, score=10, comment="Great value for money")
    reply = await client.put(f"/v1/responses/{rid}/classification", headers=headers, json={"themes": ["pricing"]})
    assert reply.status_code == 200 and reply.json()["category"] == "promoter"
    await pump()
    shown = (await client.get(f"/v1/responses/{rid}", headers=headers)).json()
    assert [t["id"] for t in shown["themes"]] == ["pricing"] and shown["classified_at"]
    assert all(e["themes"] == [{"id": "pricing", "confidence": 1.0}] for e in await _classified_events(runtime, rid))
