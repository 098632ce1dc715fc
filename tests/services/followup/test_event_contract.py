"""The whole loop emits every event type, and each event is what asyncapi.yaml documents.

Checked with ``jsonschema`` against the published document (tests/support/event_contract.py), in
the event log and as webhook bodies (verified with the ``standardwebhooks`` library and
read with the official ``cloudevents`` SDK's JSON format).
"""

from __future__ import annotations

import json

from cloudevents.core.formats.json import JSONFormat
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from npsloop.services.followup.digest import send_digests
from npsloop.shared import events
from npsloop.shared.models import EventLogEntry
from tests.support.event_contract import assert_conforms


def policy(slack, hook) -> str:
    return f"""
    channels:
      cs-slack: {{type: slack, url: "{slack.url}"}}
      crm: {{type: webhook, url: "{hook.url}"}}
    routing:
      - match: {{}}
        team: cs
        channel: cs-slack
    sla: [{{match: {{score: "0-6"}}, due_in: 12h}}]
    review_requests: {{audience: every_respondent, channel: crm, url: "https://g.page/r/acme/review"}}
    digest: {{every: 1d, at: "08:00"}}
    """


async def test_every_event_type_the_loop_emits_matches_the_asyncapi_document(make_loop, slack, hook):
    loop = await make_loop(policy(slack, hook))
    subscribed = await loop.client.post("/v1/webhooks", json={"url": hook.url, "events": ["*"]}, headers=loop.headers)
    assert subscribed.status_code == 201, subscribed.text
    secret = subscribed.json()["secret"]

    detractor = await loop.respond(
        2,
        "d-1",
        "Support never answered",
        customer={"email": "dee@example.com", "name": "Dee", "account_id": "acme", "segment": "smb"},
        survey={"touchpoint": "support", "kind": "transactional", "channel": "email"},
        lifecycle_stage="renewal",
        properties={"plan": "pro", "seats": 12, "trial": False, "score_weight": 1.5, "region": None},
        external_id="ext-1",
    )
    patched = await loop.client.patch(
        f"/v1/responses/{detractor}", json={"comment": "Support never answered, twice"}, headers=loop.headers
    )
    assert patched.status_code == 202, patched.text
    await loop.pump()
    await loop.respond(7, "p-1", None)  # a passive: the segment event
    await loop.respond(10, "f-1", "Love it")  # a promoter: the referral request

    await loop.tick(hours=10)  # past 75% of the 12 h SLA: the warning
    await loop.tick(hours=3)  # past the SLA: the breach
    (task,) = await loop.tasks()
    for path, body in (
        ("reassign", {"assignee": "zoe", "note": "Knows them"}),
        ("acknowledge", {}),
        (
            "resolve",
            {
                "outcome": "contacted",
                "note": "Called them",
                "customer_message": {"subject": "Thank you, Dee", "body": "Support now answers within a day."},
            },
        ),
    ):
        reply = await loop.client.post(f"/v1/tasks/{task['id']}/{path}", json=body, headers=loop.headers)
        assert reply.status_code == 200, reply.text
    await loop.tick(hours=11)  # the next day, past 08:00: yesterday's digest is due
    async with loop.runtime.db.unit_of_work() as session:
        assert await send_digests(session, policy=loop.runtime.policy, clock=loop.clock, public_url="http://x.test")
    await loop.pump()

    async with loop.runtime.db.sessions() as session:
        logged = [json.loads(e) for e in (await session.scalars(select(EventLogEntry.envelope))).all()]
    for envelope in logged:
        assert_conforms(envelope)
    assert {e["type"] for e in logged} == set(events.EVENT_TYPES)

    hook.requests.clear()
    while await loop.deliver():
        pass
    bodies = [r for r in hook.requests if "webhook-signature" in r.headers]
    assert {json.loads(r.body)["type"] for r in bodies} == set(events.EVENT_TYPES)
    for request in bodies:
        envelope = Webhook(secret).verify(request.body, request.headers)  # raises unless correctly signed
        assert_conforms(envelope)
        assert request.headers["content-type"] == "application/json"
        read = JSONFormat().read(None, request.body)  # the body is a CloudEvents JSON-format event
        assert (read.get_id(), read.get_type(), read.get_source()) == (envelope["id"], envelope["type"], "/npsloop")
        assert read.get_extension("partitionkey") == envelope["partitionkey"]
