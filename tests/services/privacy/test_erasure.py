"""GDPR erasure and comment retention, proven by scanning every table afterwards."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from npsloop.services.deliveries.scheduled import DeliveryWorker
from npsloop.services.privacy.models import ErasureRecord
from npsloop.services.privacy.scheduled import purge_expired_comments
from npsloop.services.privacy.service import customer_hash
from npsloop.services.schema import metadata
from npsloop.shared.models import DeadLetter, EventLogEntry
from tests.factories import detractor_body, post_response, response_body, subscribe_webhook
from tests.support.receivers import HttpReceiver

ERASED_ID = "cust-gdpr-4711"
EMAIL = "dana.erasable@example.org"
NAME = "Dana Erasable"
COMMENT = "The invoice portal leaked my home address 12 Rosebud Lane"
NOTE = "Called Dana on her mobile 0170-5550123, she is upset"
KEPT_COMMENT = "Shipping was quick and support very friendly"


@pytest.fixture
def receiver():
    r = HttpReceiver()
    yield r
    r.close()


async def _everything_stored(runtime) -> str:
    """Every value of every row of every table, as one text to search."""
    parts: list[str] = []
    async with runtime.db.sessions() as session:
        for table in metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                parts.append(" ".join(str(v) for v in row))
    return "\n".join(parts)


async def _customer_with_history(client, runtime, make_key, pump, receiver, headers) -> dict:
    await subscribe_webhook(client, headers, receiver.url)
    customer = {"id": ERASED_ID, "email": EMAIL, "name": NAME, "segment": "smb", "account_id": "acct-9"}
    detractor_id = await post_response(
        client,
        {**headers, "Idempotency-Key": "gdpr-1"},
        detractor_body(2, customer, COMMENT, external_id="order-gdpr-1", properties={"contact": EMAIL, "plan": "pro"}),
    )
    await post_response(client, headers, response_body(10, customer, "Great team"))
    stays = {"id": "cust-stays", "email": "stays@example.org"}
    await post_response(client, headers, response_body(9, stays, KEPT_COMMENT))
    await pump()
    (task,) = (await client.get("/v1/tasks", params={"customer_id": ERASED_ID}, headers=headers)).json()["tasks"]
    assert (await client.post(f"/v1/tasks/{task['id']}/notes", json={"note": NOTE}, headers=headers)).status_code == 201
    await client.post("/v1/surveys/sent", json={"customer_id": ERASED_ID, "channel": "email"}, headers=headers)
    await pump()
    worker = DeliveryWorker(runtime.db, runtime.clock, timeout=5, max_age=timedelta(hours=26), allow_private=True)
    assert await worker.run_once() > 0
    await worker.close()
    # A poison copy of one of the customer's events, as a failing consumer would leave it.
    async with runtime.db.unit_of_work() as session:
        entry = (await session.scalars(select(EventLogEntry).where(EventLogEntry.key == ERASED_ID))).first()
        session.add(
            DeadLetter(
                consumer="classifier",
                event_id=entry.event_id,
                topic=entry.topic,
                type=entry.type,
                envelope=entry.envelope,
                error=f"KeyError: {EMAIL}",
                attempts=5,
                created_at=runtime.clock.now(),
            )
        )
    return {"detractor_id": detractor_id, "task_id": task["id"]}


async def test_erasing_a_customer_leaves_no_trace_of_them_in_any_table_or_payload(
    client, runtime, make_key, pump, receiver
):
    headers = await make_key("admin", name="crm-sync")
    ids = await _customer_with_history(client, runtime, make_key, pump, receiver, headers)
    before = await _everything_stored(runtime)
    for secret in (ERASED_ID, EMAIL, NAME, COMMENT, NOTE):
        assert secret in before  # the scan below would prove nothing otherwise

    reply = await client.delete(f"/v1/customers/{ERASED_ID}", params={"reason": "art. 17 request #88"}, headers=headers)
    assert reply.status_code == 200, reply.text
    erasure = reply.json()
    assert erasure["status"] == "erased"
    assert erasure["counts"]["responses"] == 2 and erasure["counts"]["tasks"] == 1
    assert erasure["counts"]["event_log"] > 0 and erasure["counts"]["deliveries"] > 0

    after = await _everything_stored(runtime)
    for secret in (ERASED_ID, EMAIL, NAME, COMMENT, NOTE, "Rosebud", "0170-5550123", "order-gdpr-1"):
        assert secret not in after, f"{secret!r} survived the erasure"
    assert KEPT_COMMENT in after and "stays@example.org" in after  # other customers untouched

    # NPS history stays: the score and category remain, under a pseudonym.
    kept = (await client.get(f"/v1/responses/{ids['detractor_id']}", headers=headers)).json()
    assert kept["score"] == 2 and kept["category"] == "detractor" and kept["comment"] is None
    assert kept["customer"]["id"].startswith("erased-") and kept["customer"]["segment"] == "smb"
    task = (await client.get(f"/v1/tasks/{ids['task_id']}", headers=headers)).json()
    assert task["customer_id"] == kept["customer"]["id"] and task["comment"] is None

    async with runtime.db.sessions() as session:
        (record,) = (await session.scalars(select(ErasureRecord))).all()
    assert record.customer_id_sha256 == customer_hash(ERASED_ID) and record.requested_by == "crm-sync"
    assert record.reason == "art. 17 request #88" and record.id == erasure["erasure_id"]


async def test_the_erased_events_still_flow_through_the_pipeline(client, runtime, make_key, pump):
    headers = await make_key("admin")
    posted = await client.post(
        "/v1/responses",
        json={"score": 1, "comment": COMMENT, "customer": {"id": ERASED_ID, "email": EMAIL}},
        headers=headers,
    )
    # Erased before any consumer ran: the scrubbed events must still be processable.
    assert (await client.delete(f"/v1/customers/{ERASED_ID}", headers=headers)).status_code == 200
    await pump()
    async with runtime.db.sessions() as session:
        assert (await session.scalar(text("SELECT count(*) FROM dead_letters"))) == 0
    response = (await client.get(f"/v1/responses/{posted.json()['id']}", headers=headers)).json()
    assert response["category"] == "detractor"
    assert EMAIL not in await _everything_stored(runtime)


async def test_erasure_needs_the_admin_scope_and_unknown_customers_are_answered_alike(client, runtime, make_key):
    writer = await make_key("responses:write", "responses:read")
    assert (await client.delete(f"/v1/customers/{ERASED_ID}", headers=writer)).status_code == 403
    assert (await client.delete(f"/v1/customers/{ERASED_ID}")).status_code == 401
    admin = await make_key("admin")
    reply = await client.delete("/v1/customers/never-seen", headers=admin)
    assert reply.status_code == 200 and reply.json()["counts"]["responses"] == 0
    async with runtime.db.sessions() as session:
        assert await session.scalar(select(ErasureRecord.customer_id_sha256)) == customer_hash("never-seen")


async def test_comments_older_than_the_retention_period_are_purged_with_their_copies(
    client, runtime, clock, make_key, pump
):
    headers = await make_key("admin")
    old = await client.post(
        "/v1/responses", json={"score": 3, "comment": COMMENT, "customer": {"id": "c-old"}}, headers=headers
    )
    await pump()
    clock.advance(days=40)
    new = await client.post(
        "/v1/responses", json={"score": 3, "comment": KEPT_COMMENT, "customer": {"id": "c-old"}}, headers=headers
    )
    await pump()
    assert await purge_expired_comments(runtime.db, clock=clock, retention_days=30) == 1
    assert await purge_expired_comments(runtime.db, clock=clock, retention_days=30) == 0

    stored = await _everything_stored(runtime)
    assert COMMENT not in stored and "Rosebud" not in stored
    assert KEPT_COMMENT in stored
    old_response = (await client.get(f"/v1/responses/{old.json()['id']}", headers=headers)).json()
    assert old_response["comment"] is None and old_response["score"] == 3 and old_response["category"] == "detractor"
    assert (await client.get(f"/v1/responses/{new.json()['id']}", headers=headers)).json()["comment"] == KEPT_COMMENT


async def test_the_retention_role_purges_on_its_own_when_a_retention_period_is_set(
    client, runtime, clock, make_key, pump
):
    headers = await make_key("admin")
    old = await client.post(
        "/v1/responses", json={"score": 9, "comment": COMMENT, "customer": {"id": "c-role"}}, headers=headers
    )
    await pump()
    clock.advance(days=8)
    runtime.settings.comment_retention_days = 7
    runtime.settings.retention_check_interval_seconds = 0.05
    await runtime.start(("retention",))
    try:
        for _ in range(100):
            reply = (await client.get(f"/v1/responses/{old.json()['id']}", headers=headers)).json()
            if reply["comment"] is None:
                break
            await asyncio.sleep(0.05)
    finally:
        await runtime.stop()
    assert reply["comment"] is None and reply["score"] == 9
