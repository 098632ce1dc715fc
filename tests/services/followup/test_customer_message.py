"""Closing the loop with the customer: a resolve's customer_message is emailed once to the
customer (a real SMTP server), kept in the task's trail and announced as an event; refused
with a 422 when there is no address; left to a CRM when the policy says so."""

from __future__ import annotations

import json
from email import message_from_bytes

from sqlalchemy import select

from npsloop.shared import events
from npsloop.shared.models import EventLogEntry

MESSAGE = {"subject": "We fixed the export", "body": "Hi Rosa,\n\nthe export works again since Tuesday.\n\nKim"}
POLICY = """
channels:
  cs-mail: {type: email, to: ["cs@example.com"]}
routing:
  - match: {}
    channel: cs-mail
"""


async def _resolve(loop, task_id, **body):
    return await loop.client.post(
        f"/v1/tasks/{task_id}/resolve", json={"outcome": "resolved", **body}, headers=loop.headers
    )


async def _events_of_type(loop, event_type) -> list[dict]:
    """The envelopes of that type in the event log, as a consumer reads them."""
    async with loop.runtime.db.sessions() as session:
        rows = (await session.scalars(select(EventLogEntry).where(EventLogEntry.type == event_type))).all()
    return [json.loads(row.envelope) for row in rows]


async def test_the_customer_gets_the_message_once_and_the_trail_keeps_it(make_loop, smtp):
    loop = await make_loop(POLICY, smtp_host="127.0.0.1", smtp_port=smtp.port)
    await loop.respond(2, "rosa", "Export broken", customer={"email": "rosa@example.org", "name": "Rosa"})
    (task,) = await loop.tasks()
    await loop.deliver()
    smtp.inbox.messages.clear()  # the team's alert

    for _ in range(2):  # a client retrying the same resolve sends nothing twice
        reply = await _resolve(loop, task["id"], customer_message=MESSAGE)
        assert reply.status_code == 200, reply.text
        await loop.pump()
        await loop.deliver()
    (mail,) = [m for m in smtp.inbox.messages if m["To"] == "rosa@example.org"]
    assert mail["Subject"] == "We fixed the export"
    text = mail.get_body(preferencelist=("plain",)).get_content() if hasattr(mail, "get_body") else ""
    text = text or message_from_bytes(mail.as_bytes()).get_payload()[0].get_payload(decode=True).decode()
    assert "the export works again since Tuesday." in text and "[npsloop]" not in mail["Subject"]
    stored = (await loop.client.get(f"/v1/tasks/{task['id']}", headers=loop.headers)).json()
    trail = [e for e in stored["events"] if e["type"] == "customer_messaged"]
    assert len(trail) == 1 and trail[0]["data"]["to"] == "rosa@example.org"
    (announced,) = await _events_of_type(loop, events.FOLLOWUP_CUSTOMER_MESSAGED)
    assert announced["subject"] == task["id"] and announced["data"]["subject"] == MESSAGE["subject"]
    log = (await loop.client.get("/v1/deliveries", params={"channel": "customer-email"}, headers=loop.headers)).json()
    assert [d["status"] for d in log["deliveries"]] == ["delivered"]


async def test_no_email_or_an_erased_customer_is_a_422_and_nothing_is_resolved(make_loop, smtp):
    loop = await make_loop(POLICY, smtp_host="127.0.0.1", smtp_port=smtp.port)
    await loop.respond(3, "no-mail", "Slow")
    await loop.respond(3, "gone", "Slow", customer={"email": "gone@example.org"})
    tasks = {t["customer_id"]: t for t in await loop.tasks()}
    erased = await loop.client.delete("/v1/customers/gone", headers=loop.headers)
    assert erased.status_code < 300, erased.text
    for task in (tasks["no-mail"], tasks["gone"]):  # the erased task keeps its id, not the address
        reply = await _resolve(loop, task["id"], customer_message=MESSAGE)
        assert reply.status_code == 422, reply.text
        assert reply.json()["errors"][0]["field"] == "customer_message"
        assert (await loop.client.get(f"/v1/tasks/{task['id']}", headers=loop.headers)).json()["status"] == "open"
    blank = await _resolve(loop, tasks["no-mail"]["id"], customer_message={"subject": " ", "body": "x"})
    assert blank.status_code == 422


async def test_with_send_via_event_only_the_event_goes_out(make_loop, smtp):
    loop = await make_loop(
        POLICY + "customer_messages: {send_via: event}\n", smtp_host="127.0.0.1", smtp_port=smtp.port
    )
    await loop.respond(1, "crm-sent", "Billing", customer={"email": "crm@example.org"})
    (task,) = await loop.tasks()
    assert (await _resolve(loop, task["id"], customer_message=MESSAGE)).status_code == 200
    await loop.pump()
    await loop.deliver()
    assert not [m for m in smtp.inbox.messages if m["To"] == "crm@example.org"]
    (announced,) = await _events_of_type(loop, events.FOLLOWUP_CUSTOMER_MESSAGED)
    assert announced["data"]["to"] == "crm@example.org" and announced["data"]["body"] == MESSAGE["body"]
