"""An erasure racing the pipeline: nothing derived from data read before it is written after it.

The consumers here are the real ones, run by the real EventProcessor on the real database.
What a transport does between fetching events and handling them is played by the test: it
reads the events each consumer has waiting from the event log (as the transport does),
lets the erasure commit, then hands those envelopes to the processor.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from npsloop.services.deliveries.scheduled import DeliveryWorker
from npsloop.services.followup.scheduled import check_sla
from npsloop.services.privacy import service as privacy_service
from npsloop.services.privacy.service import customer_hash
from npsloop.services.runtime import Runtime
from npsloop.services.schema import metadata
from npsloop.shared.bus.contract import Subscription
from npsloop.shared.bus.processing import EventProcessor
from npsloop.shared.events import CloudEvent
from npsloop.shared.models import EventLogEntry, ProcessedEvent
from npsloop.shared.settings import Settings
from tests.support.receivers import HttpReceiver

CUSTOMER = "cust-race-4711"
EMAIL = "robin.racer@example.org"
NAME = "Robin Racer"
COMMENT = "Billing charged me twice, call me at 0151-5550199"
SECRETS = (CUSTOMER, EMAIL, NAME, COMMENT, "0151-5550199")

# How far the pipeline got before the consumers fetched what they then hold during the erasure.
DRAINED_BEFORE = {
    "received": (),  # the classifier holds response.received
    "classified": ("classifier",),  # follow-up and webhooks hold response.classified
    "opened": ("classifier", "followup"),  # alerts and webhooks hold followup.opened
}


@pytest.fixture
def slack():
    receiver = HttpReceiver(echo=True)
    yield receiver
    receiver.close()


@pytest.fixture
def hook():
    receiver = HttpReceiver(echo=True)  # echoes the body: its answer, stored, holds the customer
    yield receiver
    receiver.close()


@pytest.fixture
def settings(database_url: str, tmp_path: Path, slack: HttpReceiver) -> Settings:
    """The root conftest's settings, with a policy that alerts a Slack channel for every detractor."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(f'channels:\n  cs-slack: {{type: slack, url: "{slack.url}"}}\nrouting:\n  - channel: cs-slack\n')
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        environment="test",
        allow_private_webhook_urls=True,
        handler_retry_base_seconds=0.0,
        poll_interval_seconds=0.05,
        policy_file=policy,
    )


async def _stored(runtime: Runtime) -> str:
    """Every value of every row of every table, as one text to search."""
    parts: list[str] = []
    async with runtime.db.sessions() as session:
        for table in metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                parts.append(" ".join(str(v) for v in row))
    return "\n".join(parts)


def _survivors(stored: str) -> list[str]:
    return [secret for secret in SECRETS if secret in stored]


async def _drain(runtime: Runtime, consumers: tuple[str, ...] | None = None) -> None:
    subscriptions = [s for s in runtime.subscriptions() if consumers is None or s.consumer in consumers]
    while True:
        worked = False
        for subscription in subscriptions:
            worked = await runtime.transport.drain_once(subscription) or worked
        if not worked:
            return


async def _deliver(runtime: Runtime) -> None:
    worker = DeliveryWorker(
        runtime.db,
        runtime.clock,
        timeout=5,
        max_age=timedelta(hours=26),
        allow_private=True,
        settings=runtime.settings,
        policy=runtime.policy,
    )
    try:
        while await worker.run_once():
            pass
    finally:
        await worker.close()


async def _fetched(runtime: Runtime) -> list[tuple[Subscription, list[CloudEvent]]]:
    """What each consumer has waiting in the log, read now (as its transport would fetch it)."""
    async with runtime.db.sessions() as session:
        rows = (await session.execute(select(EventLogEntry).order_by(EventLogEntry.position))).scalars().all()
        done = set((await session.execute(select(ProcessedEvent.consumer, ProcessedEvent.event_id))).all())
    fetched = []
    for subscription in runtime.subscriptions():
        waiting = [
            CloudEvent.from_json(row.envelope)
            for row in rows
            if row.topic in subscription.topics
            and subscription.wants(row.type)
            and (subscription.consumer, row.event_id) not in done
        ]
        if waiting:
            fetched.append((subscription, waiting))
    return fetched


async def _customer_in_the_pipeline(client, runtime, headers, hook, stage: str) -> str:
    assert (
        await client.post("/v1/webhooks", json={"url": hook.url, "events": ["*"]}, headers=headers)
    ).status_code == 201
    posted = await client.post(
        "/v1/responses",
        json={"score": 2, "comment": COMMENT, "customer": {"id": CUSTOMER, "email": EMAIL, "name": NAME}},
        headers=headers,
    )
    assert posted.status_code == 202
    await _drain(runtime, DRAINED_BEFORE[stage])
    return posted.json()["id"]


@pytest.mark.parametrize("stage", list(DRAINED_BEFORE))
async def test_events_fetched_before_an_erasure_write_nothing_of_the_customer_after_it(
    client, runtime, make_key, hook, slack, stage
):
    headers = await make_key("admin")
    response_id = await _customer_in_the_pipeline(client, runtime, headers, hook, stage)
    in_flight = await _fetched(runtime)
    assert in_flight, "the consumers hold the customer's events"

    assert (await client.delete(f"/v1/customers/{CUSTOMER}", headers=headers)).status_code == 200
    for subscription, events in in_flight:
        assert await runtime.processor.handle_group(subscription, events) == len(events)
    await _drain(runtime)
    await _deliver(runtime)

    assert _survivors(await _stored(runtime)) == []
    # The pipeline still ran, under the pseudonym: classified, followed up, alerted.
    response = (await client.get(f"/v1/responses/{response_id}", headers=headers)).json()
    assert response["category"] == "detractor" and response["customer"]["id"].startswith("erased-")
    (task,) = (await client.get("/v1/tasks", headers=headers)).json()["tasks"]
    assert task["customer_id"] == response["customer"]["id"]
    assert slack.requests and hook.requests
    for request in slack.requests + hook.requests:  # all sent after the erasure
        assert not [s for s in SECRETS if s.encode() in request.body], request.body

    again = (await client.delete(f"/v1/customers/{CUSTOMER}", headers=headers)).json()
    assert again["counts"]["deliveries"] == 0 and again["counts"]["event_log"] == 0  # nothing was left


async def test_a_receivers_answer_to_a_send_in_flight_during_the_erasure_is_not_kept(
    client, runtime, make_key, hook, slack
):
    headers = await make_key("admin")
    await _customer_in_the_pipeline(client, runtime, headers, hook, "opened")
    await _drain(runtime)
    hook.gate = slack.gate = threading.Event()
    sending = asyncio.create_task(_deliver(runtime))
    try:
        for _ in range(200):
            if len(hook.requests) >= 3 and slack.requests:
                break
            await asyncio.sleep(0.025)
        assert len(hook.requests) >= 3 and slack.requests, "every delivery is in flight"
        assert (await client.delete(f"/v1/customers/{CUSTOMER}", headers=headers)).status_code == 200
    finally:
        hook.gate.set()
    await sending
    assert any(COMMENT.encode() in r.body for r in hook.requests)  # the echo did carry it
    assert _survivors(await _stored(runtime)) == []


async def test_a_consumer_starting_during_an_erasure_waits_for_it_and_sees_it(client, runtime, make_key, hook, clock):
    headers = await make_key("admin")
    await _customer_in_the_pipeline(client, runtime, headers, hook, "opened")
    in_flight = await _fetched(runtime)
    async with runtime.db.unit_of_work() as session:
        await privacy_service.erase_customer(session, CUSTOMER, requested_by="test", reason=None, clock=clock)
        consumers = [asyncio.create_task(runtime.processor.handle_group(s, e)) for s, e in in_flight]
        await asyncio.sleep(0.3)
        assert not any(c.done() for c in consumers), "a consumer wrote while the erasure was not committed"
    assert all(await asyncio.gather(*consumers))
    await _drain(runtime)
    assert _survivors(await _stored(runtime)) == []


async def test_an_erasure_starting_while_a_consumer_handles_the_customer_waits_and_erases_its_writes(
    client, runtime, make_key, hook
):
    headers = await make_key("admin")
    await _customer_in_the_pipeline(client, runtime, headers, hook, "opened")
    ((webhooks, events),) = [(s, e) for s, e in await _fetched(runtime) if s.consumer == "webhooks"]
    inside, leave = asyncio.Event(), asyncio.Event()

    async def slow_handler(session, event):
        await webhooks.handler(session, event)  # the real fan-out: deliveries with the envelope
        inside.set()
        await leave.wait()

    consumer = asyncio.create_task(
        runtime.processor.handle_group(dataclasses.replace(webhooks, handler=slow_handler), events)
    )
    await asyncio.wait_for(inside.wait(), 10)
    erasure = asyncio.create_task(client.delete(f"/v1/customers/{CUSTOMER}", headers=headers))
    await asyncio.sleep(0.3)
    assert not erasure.done(), "the erasure did not wait for the consumer holding the customer's events"
    leave.set()
    assert await consumer == len(events)
    reply = await erasure
    assert reply.status_code == 200 and reply.json()["counts"]["deliveries"] >= 1
    await _drain(runtime)
    assert _survivors(await _stored(runtime)) == []


async def test_the_sla_monitor_running_during_an_erasure_alerts_nothing_of_the_customer(
    client, runtime, make_key, hook, slack, clock
):
    headers = await make_key("admin")
    await _customer_in_the_pipeline(client, runtime, headers, hook, "opened")
    await _drain(runtime)
    clock.advance(hours=25)  # the task's SLA is over: the monitor breaches it and alerts

    async def monitor() -> None:
        async with runtime.db.unit_of_work() as session:
            await check_sla(session, clock=clock)

    async with runtime.db.unit_of_work() as session:
        await privacy_service.erase_customer(session, CUSTOMER, requested_by="test", reason=None, clock=clock)
        beside = asyncio.create_task(monitor())
        await asyncio.sleep(0.3)
    await beside
    await monitor()
    await _drain(runtime)
    await _deliver(runtime)
    (task,) = (await client.get("/v1/tasks", headers=headers)).json()["tasks"]
    assert task["breached_at"] is not None
    assert _survivors(await _stored(runtime)) == []


async def test_a_task_change_during_an_erasure_writes_nothing_of_the_customer(client, runtime, make_key, hook, clock):
    headers = await make_key("admin")
    await _customer_in_the_pipeline(client, runtime, headers, hook, "opened")
    await _drain(runtime)
    (task,) = (await client.get("/v1/tasks", headers=headers)).json()["tasks"]
    async with runtime.db.unit_of_work() as session:
        await privacy_service.erase_customer(session, CUSTOMER, requested_by="test", reason=None, clock=clock)
        acknowledging = asyncio.create_task(
            client.post(f"/v1/tasks/{task['id']}/acknowledge", json={"note": "called back"}, headers=headers)
        )
        await asyncio.sleep(0.3)
    assert (await acknowledging).status_code == 200
    await _drain(runtime)
    await _deliver(runtime)
    assert _survivors(await _stored(runtime)) == []


@pytest.mark.parametrize("stage", ["received", "opened"])
async def test_a_repeated_erasure_finds_the_copies_a_consumer_of_an_older_version_wrote_after_the_first(
    client, runtime, make_key, hook, clock, stage
):
    headers = await make_key("admin")
    await _customer_in_the_pipeline(client, runtime, headers, hook, stage)
    in_flight = await _fetched(runtime)
    assert (await client.delete(f"/v1/customers/{CUSTOMER}", headers=headers)).status_code == 200
    # A process still running the previous release: it does not screen events for erasures.
    older = EventProcessor(runtime.db, clock, max_attempts=1, retry_base_seconds=0.0)
    for subscription, events in in_flight:
        assert await older.handle_group(subscription, events) == len(events)
    await _drain(runtime)
    await _deliver(runtime)
    assert _survivors(await _stored(runtime)), "the older consumer wrote the erased data again"

    again = await client.delete(f"/v1/customers/{CUSTOMER}", headers=headers)
    assert again.status_code == 200
    assert sum(again.json()["counts"].values()) > 0
    assert _survivors(await _stored(runtime)) == []


async def test_admins_read_the_audit_trail_of_erasures_without_the_person_in_it(client, runtime, make_key):
    admin = await make_key("admin", name="dpo-tool")
    first = (await client.delete(f"/v1/customers/{CUSTOMER}", params={"reason": "ticket 7"}, headers=admin)).json()
    await client.delete("/v1/customers/someone-else", headers=admin)

    listed = await client.get("/v1/privacy/erasures", headers=admin)
    assert listed.status_code == 200
    assert len(listed.json()["erasures"]) == 2 and CUSTOMER not in listed.text and "erased-" not in listed.text
    mine = (await client.get("/v1/privacy/erasures", params={"customer_id": CUSTOMER}, headers=admin)).json()
    (record,) = mine["erasures"]
    assert record["erasure_id"] == first["erasure_id"] and record["customer_id_sha256"] == customer_hash(CUSTOMER)
    assert (record["requested_by"], record["reason"], record["counts"]) == ("dpo-tool", "ticket 7", first["counts"])

    page = (await client.get("/v1/privacy/erasures", params={"limit": 1}, headers=admin)).json()
    rest = (
        await client.get("/v1/privacy/erasures", params={"limit": 1, "cursor": page["next_cursor"]}, headers=admin)
    ).json()
    assert {page["erasures"][0]["erasure_id"], rest["erasures"][0]["erasure_id"]} == {
        e["erasure_id"] for e in listed.json()["erasures"]
    }
    reader = await make_key("responses:read", "tasks:read")
    assert (await client.get("/v1/privacy/erasures", headers=reader)).status_code == 403
