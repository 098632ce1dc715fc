"""Formbricks as the survey front end: ``POST /v1/integrations/formbricks``.

Bodies are built the way Formbricks' pipeline builds them (``{webhookId, event, data}``,
``data`` being the response spread out plus a summary of its survey, dates as JSON.stringify
writes them) and signed with the ``standardwebhooks`` library, not with npsloop's code.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from npsloop.services.followup.models import Task
from npsloop.services.ingest.models import Response
from npsloop.shared.settings import Settings

SECRET = "whsec_" + base64.b64encode(b"formbricks-test-secret-32-bytes!").decode()
SURVEY = "cm3nps8x10001surveyabc"
URL = "/v1/integrations/formbricks"

POLICY = f"""
integrations:
  formbricks:
    secret: {SECRET}
    surveys:
      {SURVEY}:
        score_question: npsscore01
        comment_question: whyscore01
        customer_id: [contact.userId, data.uid]
        customer_email: contactAttributes.email
        touchpoint: onboarding
        properties:
          plan: trial
"""


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    return Settings(database_url=database_url, data_dir=tmp_path / "data", environment="test", policy_file=policy)


def formbricks_body(
    event: str,
    answers: dict,
    *,
    response_id: str = "cm3resp0000000000000001",
    survey_id: str = SURVEY,
    user_id: str | None = "user-314",
    finished: bool = False,
) -> str:
    """The body Formbricks' pipeline posts, serialised as JSON.stringify would."""
    created = "2026-01-05T08:58:10.507Z"
    response = {
        "id": response_id,
        "createdAt": created,
        "updatedAt": "2026-01-05T08:59:02.116Z",
        "surveyId": survey_id,
        "displayId": "cm3disp0000000000000001",
        "contact": {"id": "cm3cont0000000000000001", "userId": user_id} if user_id else None,
        "contactAttributes": {"email": "ana@example.com", "userId": user_id} if user_id else None,
        "finished": finished,
        "endingId": "endingcard01" if finished else None,
        "data": answers,
        "variables": {},
        "ttc": dict.fromkeys(answers, 2154.7),
        "tags": [],
        "meta": {
            "source": "",
            "url": "https://app.example.com/welcome",
            "userAgent": {"browser": "Chrome", "os": "macOS", "device": "desktop"},
            "country": "DE",
        },
        "singleUseId": None,
        "language": "default",
    }
    survey = {
        "title": "Onboarding NPS",
        "type": "app",
        "status": "inProgress",
        "createdAt": "2025-12-01T10:30:00.000Z",
        "updatedAt": "2025-12-20T07:45:00.000Z",
    }
    return json.dumps(
        {"webhookId": "cm3hook0000000000000001", "event": event, "data": {**response, "survey": survey}},
        separators=(",", ":"),
    )


def signed(body: str, clock, *, secret: str = SECRET) -> dict[str, str]:
    msg_id = str(uuid.uuid4())
    now = clock.now()
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
    }


async def post(client, clock, event: str, answers: dict, **kwargs):
    body = formbricks_body(event, answers, **kwargs)
    return await client.post(URL, content=body, headers=signed(body, clock))


async def count_responses(runtime) -> int:
    async with runtime.db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(Response))


async def test_a_signed_response_finished_is_stored_without_an_api_key(client, runtime, clock, make_key):
    reply = await post(
        client, clock, "responseFinished", {"npsscore01": 2, "whyscore01": "The import kept failing"}, finished=True
    )
    assert reply.status_code == 200, reply.text
    ack = reply.json()
    assert ack["status"] == "accepted" and ack["duplicate"] is False
    stored = (await client.get(f"/v1/responses/{ack['id']}", headers=await make_key("admin"))).json()
    assert stored["score"] == 2 and stored["comment"] == "The import kept failing"
    assert stored["customer"] == {"id": "user-314", "email": "ana@example.com"}
    assert stored["survey"]["touchpoint"] == "onboarding" and stored["properties"] == {"plan": "trial"}
    assert stored["external_id"] == "cm3resp0000000000000001"
    assert stored["responded_at"].startswith("2026-01-05T08:58:10.507")


async def test_a_score_first_and_a_comment_later_update_the_same_response(client, runtime, clock, pump):
    created = await post(client, clock, "responseCreated", {"npsscore01": 3})
    assert created.json()["status"] == "accepted"
    await pump()
    both = {"npsscore01": 3, "whyscore01": "Nobody answered my ticket"}
    updated = await post(client, clock, "responseUpdated", both)
    finished = await post(client, clock, "responseFinished", both, finished=True)
    first = created.json()["id"]
    assert updated.json() == {"status": "accepted", "id": first, "duplicate": True, "reason": None}
    assert finished.json()["id"] == first
    await pump()
    assert await count_responses(runtime) == 1
    async with runtime.db.sessions() as session:
        response = await session.get(Response, first)
        tasks = (await session.scalars(select(Task))).all()
    assert response.comment == "Nobody answered my ticket"
    assert len(tasks) == 1 and tasks[0].comment == "Nobody answered my ticket"  # follow-up saw the comment


async def test_events_of_one_answer_arriving_together_still_make_one_response(client, runtime, clock):
    both = {"npsscore01": 9, "whyscore01": "Smooth"}
    replies = await asyncio.gather(
        post(client, clock, "responseCreated", {"npsscore01": 9}),
        post(client, clock, "responseUpdated", both),
        post(client, clock, "responseFinished", both, finished=True),
    )
    assert [r.status_code for r in replies] == [200, 200, 200], [r.text for r in replies]
    assert len({r.json()["id"] for r in replies}) == 1
    assert await count_responses(runtime) == 1
    async with runtime.db.sessions() as session:
        assert (await session.scalars(select(Response.comment))).one() == "Smooth"


@pytest.mark.parametrize(
    "tamper",
    ["another secret", "changed body", "stale timestamp", "no signature"],
)
async def test_a_wrong_signature_is_401_and_stores_nothing(client, runtime, clock, tamper):
    body = formbricks_body("responseFinished", {"npsscore01": 1}, finished=True)
    headers = signed(body, clock, secret="whsec_" + base64.b64encode(b"x" * 32).decode())
    if tamper != "another secret":
        headers = signed(body, clock)
    if tamper == "changed body":
        body = body.replace('"npsscore01":1', '"npsscore01":10')
    elif tamper == "stale timestamp":
        clock.advance(minutes=6)
    elif tamper == "no signature":
        del headers["webhook-signature"]
    reply = await client.post(URL, content=body, headers=headers)
    assert reply.status_code == 401, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert await count_responses(runtime) == 0


async def test_an_unmapped_survey_or_question_is_acknowledged_ignored_and_logged(client, runtime, clock, caplog):
    caplog.set_level(logging.INFO, logger="npsloop.integrations")
    other = await post(client, clock, "responseFinished", {"q1": 4}, survey_id="cm3othersurvey0000000001")
    no_score = await post(client, clock, "responseCreated", {"whyscore01": "Comment before the score"})
    assert (other.status_code, other.json()["status"]) == (200, "ignored")
    assert "cm3othersurvey0000000001 is not mapped" in other.json()["reason"]
    assert no_score.json()["status"] == "ignored" and "npsscore01" in no_score.json()["reason"]
    ignored = [r for r in caplog.records if r.getMessage() == "formbricks webhook ignored"]
    assert len(ignored) == 2 and ignored[0].formbricks_survey_id == "cm3othersurvey0000000001"
    assert await count_responses(runtime) == 0


async def test_formbricks_test_ping_is_acknowledged_even_before_the_secret_is_known(client, runtime):
    reply = await client.post(URL, content='{"event":"testEndpoint"}', headers={"content-type": "application/json"})
    assert reply.status_code == 200 and reply.json()["status"] == "ignored"
    assert await count_responses(runtime) == 0


async def test_a_hidden_field_names_the_customer_when_there_is_no_contact(client, runtime, clock, make_key):
    reply = await post(client, clock, "responseFinished", {"npsscore01": 8, "uid": "acct-77"}, user_id=None)
    assert reply.json()["status"] == "accepted", reply.text
    stored = (await client.get(f"/v1/responses/{reply.json()['id']}", headers=await make_key("admin"))).json()
    assert stored["customer"] == {"id": "acct-77"}


async def test_answers_that_cannot_be_stored_get_422_naming_the_field(client, runtime, clock):
    off_scale = await post(client, clock, "responseFinished", {"npsscore01": 42})
    anonymous = await post(client, clock, "responseFinished", {"npsscore01": 5}, user_id=None)
    assert off_scale.status_code == 422 and off_scale.json()["errors"][0]["field"] == "data.data.npsscore01"
    assert anonymous.status_code == 422 and "no customer id at contact.userId or data.uid" in anonymous.json()["detail"]
    assert await count_responses(runtime) == 0


async def test_without_the_policy_keys_the_endpoint_is_404(database_url, tmp_path, clock):
    import httpx

    from npsloop.services.app import create_app
    from npsloop.services.runtime import Runtime

    runtime = Runtime.build(
        Settings(database_url=database_url, data_dir=tmp_path / "d", environment="test"), clock=clock
    )
    try:
        app = create_app(runtime, worker_roles=())
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            body = formbricks_body("responseFinished", {"npsscore01": 1})
            reply = await client.post(URL, content=body, headers=signed(body, clock))
    finally:
        await runtime.close()
    assert reply.status_code == 404 and "integrations.formbricks" in reply.json()["detail"]


async def test_a_signature_made_within_the_same_second_as_a_fractional_clock_verifies(client, runtime, clock):
    # Formbricks signs Math.floor(Date.now() / 1000): up to a second behind the receiver's clock.
    clock.set(clock.now() + timedelta(milliseconds=999))
    reply = await post(client, clock, "responseFinished", {"npsscore01": 10})
    assert reply.status_code == 200 and reply.json()["status"] == "accepted", reply.text
