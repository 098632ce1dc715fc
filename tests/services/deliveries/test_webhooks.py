"""Webhook subscriptions and signed, retried deliveries to a real local receiver."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from npsloop.services.deliveries.models import Delivery
from npsloop.services.deliveries.scheduled import DeliveryWorker
from npsloop.services.deliveries.wakeup import delivery_signal
from tests.factories import post_response, post_responses, response_body, subscribe_webhook
from tests.support.event_log import consumer_positions, log_ends
from tests.support.receivers import HttpReceiver


@pytest.fixture
def receiver():
    r = HttpReceiver()
    yield r
    r.close()


def worker(runtime) -> DeliveryWorker:
    return DeliveryWorker(runtime.db, runtime.clock, timeout=5, max_age=timedelta(hours=26), allow_private=True)


async def test_subscribers_get_signed_envelopes_of_the_events_they_chose(client, runtime, make_key, pump, receiver):
    headers = await make_key("admin")
    hook = await subscribe_webhook(client, headers, receiver.url, ["npsloop.followup.opened.v1"])
    assert hook["secret"].startswith("whsec_")
    await post_response(client, headers, score=1, customer="c1", comment="Bad")
    await post_response(client, headers, score=10, customer="c2")
    await pump()
    w = worker(runtime)
    assert await w.run_once() == 1
    await w.close()
    (request,) = receiver.requests
    payload = Webhook(hook["secret"]).verify(request.body, request.headers)  # raises if the signature is wrong
    assert payload["type"] == "npsloop.followup.opened.v1" and payload["specversion"] == "1.0"
    assert request.headers["webhook-id"] == payload["id"]
    assert payload["data"]["customer"]["id"] == "c1"
    listing = (await client.get("/v1/webhooks", headers=headers)).json()["webhooks"]
    assert [h["id"] for h in listing] == [hook["id"]] and "secret" not in listing[0]


async def test_a_failing_receiver_is_retried_with_backoff_and_the_same_webhook_id(
    client, runtime, clock, make_key, pump, receiver
):
    headers = await make_key("admin")
    hook = await subscribe_webhook(client, headers, receiver.url, ["*"])
    await post_response(client, headers, score=9, customer="c")
    await pump()
    receiver.status = 503
    w = worker(runtime)
    first_round = await w.run_once()
    assert first_round == 3  # received, classified, referral requested
    assert await w.run_once() == 0  # not due again until the backoff passes
    clock.advance(seconds=10)
    receiver.status = 200
    assert await w.run_once() == 3
    await w.close()
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(ids) == 6 and sorted(set(ids)) == sorted(ids[:3])
    log = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=headers)).json()["deliveries"]
    assert {d["status"] for d in log} == {"delivered"}
    for delivery in log:
        assert [a["status_code"] for a in delivery["attempt_log"]] == [503, 200]
        assert delivery["attempt_log"][0]["response_body"] == "receiver is down"


async def test_a_delivery_failing_past_its_retry_window_is_dead_and_can_be_redelivered(
    client, runtime, clock, make_key, pump, receiver
):
    headers = await make_key("admin")
    hook = await subscribe_webhook(client, headers, receiver.url, ["npsloop.response.received.v1"])
    await post_response(client, headers, score=8, customer="c")
    await pump()
    receiver.status = 500
    w = worker(runtime)
    await w.run_once()
    clock.advance(hours=27)
    await w.run_once()
    (delivery,) = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=headers)).json()["deliveries"]
    assert delivery["status"] == "dead" and delivery["attempts"] == 2
    receiver.status = 200
    assert (await client.post(f"/v1/deliveries/{delivery['id']}/redeliver", headers=headers)).status_code == 202
    await w.run_once()
    await w.close()
    (delivery,) = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=headers)).json()["deliveries"]
    assert delivery["status"] == "delivered"


async def test_deleted_subscriptions_get_nothing_more(client, runtime, make_key, pump, receiver):
    headers = await make_key("admin")
    hook = await subscribe_webhook(client, headers, receiver.url, ["*"])
    assert (await client.delete(f"/v1/webhooks/{hook['id']}", headers=headers)).status_code == 204
    await post_response(client, headers, score=2, customer="c")
    await pump()
    w = worker(runtime)
    assert await w.run_once() == 0
    await w.close()
    assert receiver.requests == []
    assert (await client.get(f"/v1/webhooks/{hook['id']}", headers=headers)).status_code == 404


async def test_without_subscriptions_the_fan_out_passes_the_log_by_and_serves_later_subscribers(
    client, runtime, make_key, pump, receiver
):
    headers = await make_key("admin")
    await post_response(client, headers, score=2, customer="before")
    await pump()
    async with runtime.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Delivery)) == 0
    # every event passed by, nothing made of it
    assert await consumer_positions(runtime.db, "webhooks") == await log_ends(runtime.db)

    hook = await subscribe_webhook(client, headers, receiver.url, ["npsloop.followup.opened.v1"])
    await post_response(client, headers, score=1, customer="after")
    await post_response(client, headers, score=10, customer="promoter")
    await pump()
    w = worker(runtime)
    assert await w.run_once() == 1
    await w.close()
    (request,) = receiver.requests
    payload = Webhook(hook["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "npsloop.followup.opened.v1" and payload["data"]["customer"]["id"] == "after"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.1.2.3/x",
        "http://192.168.0.10/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "ftp://example.com/x",
        "file:///etc/passwd",
    ],
)
async def test_internal_and_non_http_targets_are_refused(client, runtime, make_key, url):
    runtime.settings.allow_private_webhook_urls = False
    headers = await make_key("admin")
    reply = await client.post("/v1/webhooks", json={"url": url, "events": ["*"]}, headers=headers)
    assert reply.status_code == 422
    assert reply.json()["errors"][0]["field"] == "url"


async def test_unknown_event_types_and_missing_scope_are_refused(client, make_key, receiver):
    admin = await make_key("admin")
    reply = await client.post("/v1/webhooks", json={"url": receiver.url, "events": ["npsloop.nope.v1"]}, headers=admin)
    assert reply.status_code == 422 and "npsloop.nope.v1" in reply.json()["detail"]
    writer = await make_key("responses:write")
    assert (
        await client.post("/v1/webhooks", json={"url": receiver.url, "events": ["*"]}, headers=writer)
    ).status_code == 403


async def test_the_spec_lists_exactly_the_event_types_a_subscription_accepts(client, make_key, receiver):
    spec = (await client.get("/openapi.json")).json()
    listed = spec["components"]["schemas"]["WebhookIn"]["properties"]["events"]["items"]["enum"]
    assert "*" in listed and "npsloop.response.classified.v1" in listed
    reply = await client.post(
        "/v1/webhooks", json={"url": receiver.url, "events": listed}, headers=await make_key("admin")
    )
    assert reply.status_code == 201, reply.text
    assert set(reply.json()["events"]) == set(listed)


async def test_a_queued_delivery_wakes_the_worker_instead_of_waiting_for_its_poll(
    client, runtime, make_key, pump, receiver
):
    """In one process the worker is woken by the commit that queued a delivery: with a
    30 s poll interval the alert still leaves within a second."""
    import asyncio
    import time

    headers = await make_key("admin")
    await subscribe_webhook(client, headers, receiver.url, ["npsloop.followup.opened.v1"])
    worker = DeliveryWorker(runtime.db, runtime.clock, timeout=5, max_age=timedelta(hours=26), allow_private=True)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop, poll_interval=30))
    try:
        await asyncio.sleep(0.2)  # the worker found nothing and is waiting
        await post_response(client, headers, score=1, customer="c-wake")
        await pump()  # the follow-up consumer opens the task and queues the webhook delivery
        queued = time.monotonic()
        while not receiver.requests and time.monotonic() - queued < 5:
            await asyncio.sleep(0.02)
        waited = time.monotonic() - queued
    finally:
        stop.set()
        delivery_signal(runtime.db).notify()
        await asyncio.wait_for(running, 5)
        await worker.close()
    assert len(receiver.requests) == 1
    assert waited < 1.0


async def test_a_backlog_flows_each_delivery_sent_once_and_attempts_recorded_in_grouped_commits(
    client, runtime, make_key, pump, receiver, monkeypatch
):
    """Every delivery of a backlog is sent once; attempts that finish together are recorded
    together, in the transaction that leases the next ones (on SQLite's single write slot
    each transaction waits its turn), so there are far fewer transactions than deliveries."""
    import asyncio
    from contextlib import asynccontextmanager

    headers = await make_key("admin")
    await subscribe_webhook(client, headers, receiver.url, ["npsloop.response.received.v1"])
    await post_responses(client, headers, [response_body(8, f"c{i}") for i in range(120)])
    await pump()
    w = worker(runtime)
    transactions = 0
    opened = w.db.unit_of_work

    @asynccontextmanager
    async def counted(**kwargs):
        nonlocal transactions
        transactions += 1
        async with opened(**kwargs) as session:
            yield session

    monkeypatch.setattr(w.db, "unit_of_work", counted)

    async def stored() -> list:
        async with runtime.db.sessions() as session:
            return (await session.execute(select(Delivery.status, Delivery.attempts))).all()

    # A long poll: once the backlog is out the worker waits, so idle look-ups are not counted.
    running = asyncio.create_task(w.run(asyncio.Event(), poll_interval=60))
    for _ in range(200):
        if sum(row.status == "delivered" for row in await stored()) >= 120:
            break
        await asyncio.sleep(0.05)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await w.close()
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(ids) == 120 and len(set(ids)) == 120
    assert transactions <= 120 // 4
    assert sorted(set(await stored())) == [("delivered", 1)]


async def test_a_customer_email_is_sent_at_once_not_at_the_next_discovery_scan(runtime, smtp):
    """``customer-email`` is not in the policy file, yet the worker knows it from the start:
    an email queued after the worker's first look goes out when the commit wakes it, not
    when the occasional scan for unknown destinations (every 5 s) comes round."""
    import asyncio
    import time

    from npsloop.services.deliveries import service
    from npsloop.shared.settings import Settings

    settings = Settings(smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_from="team@npsloop.test")
    w = DeliveryWorker(
        runtime.db, runtime.clock, timeout=5, max_age=timedelta(hours=26), allow_private=True, settings=settings
    )
    stop = asyncio.Event()
    running = asyncio.create_task(w.run(stop, poll_interval=30))
    try:
        await asyncio.sleep(0.2)  # the worker made its first look (and scan) and is waiting
        async with runtime.db.unit_of_work() as session:
            service.enqueue_customer_message(
                session,
                to="customer@example.test",
                subject="About your feedback",
                body="Thank you.",
                event_id="evt-customer-email",
                event_type="npsloop.followup.customer_messaged.v1",
                now=runtime.clock.now(),
            )
        queued = time.monotonic()
        while not smtp.inbox.messages and time.monotonic() - queued < 5:
            await asyncio.sleep(0.02)
        waited = time.monotonic() - queued
    finally:
        stop.set()
        delivery_signal(runtime.db).notify()
        await asyncio.wait_for(running, 10)
        await w.close()
    assert [m["Subject"] for m in smtp.inbox.messages] == ["About your feedback"]
    assert waited < 2.0


async def test_fan_out_keeps_no_processed_events_rows_and_reading_the_log_again_adds_no_delivery(
    client, runtime, make_key, pump, receiver
):
    """The webhooks consumer reads every event; a delivery is unique per (subscription, event)
    and checked first, so it needs no idempotency row per event — and a consumer that reads
    the whole log again (its position lost) creates nothing twice."""
    from sqlalchemy import func, update

    from npsloop.services.deliveries.handlers import CONSUMER
    from npsloop.shared.models import ConsumerPosition, ProcessedEvent

    headers = await make_key("admin")
    await subscribe_webhook(client, headers, receiver.url, ["*"])
    await post_responses(client, headers, [response_body(score=n % 11, customer=f"c{n}") for n in range(12)])
    await pump()

    async def counts() -> tuple[int, int]:
        async with runtime.db.sessions() as session:
            rows = await session.scalar(
                select(func.count()).select_from(ProcessedEvent).where(ProcessedEvent.consumer == CONSUMER)
            )
            deliveries = await session.scalar(select(func.count()).select_from(Delivery))
            return rows, deliveries

    rows, deliveries = await counts()
    assert rows == 0 and deliveries >= 24  # received and classified at least, per response
    async with runtime.db.unit_of_work() as session:
        await session.execute(update(ConsumerPosition).where(ConsumerPosition.consumer == CONSUMER).values(position=0))
    await pump()
    assert await counts() == (0, deliveries)
