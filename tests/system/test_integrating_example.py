"""The Python consumer in docs/integrating.md works against npsloop's real records and webhooks.

The code block is taken from the page as it is and executed; it then reads records the outbox
relay put on a Kafka cluster (librdkafka's mock in a child process, see tests/support/kafka_mock.py,
or NPSLOOP_TEST_KAFKA_BOOTSTRAP) and receives signed webhooks from the delivery worker.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import httpx
from confluent_kafka import Consumer
from sqlalchemy import select

from npsloop.services.deliveries.scheduled import DeliveryWorker
from npsloop.shared import events
from npsloop.shared.bus.relay import OutboxRelay
from npsloop.shared.models import EventLogEntry
from tests.shared.bus.kafka_harness import private_topics
from tests.support.kafka_mock import kafka_bootstrap, unique_topic_prefix  # noqa: F401 (fixture)

PAGE = Path(__file__).resolve().parents[2] / "docs" / "integrating.md"


def example() -> SimpleNamespace:
    (code,) = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)
    namespace: dict = {"__name__": "integrating_example"}
    exec(compile(code, str(PAGE), "exec"), namespace)
    return SimpleNamespace(**namespace)


async def _post_loop(client, make_key, pump) -> dict:
    headers = await make_key("admin")
    for score, who in ((2, "cust-d"), (3, "cust-e"), (10, "cust-p")):
        reply = await client.post(
            "/v1/responses",
            json={"score": score, "comment": "Exports time out", "customer": {"id": who}},
            headers=headers,
        )
        assert reply.status_code == 202, reply.text
    await pump()
    return headers


async def test_the_kafka_consumer_of_the_integrating_page_reads_every_record(
    client, runtime, make_key, pump, kafka_bootstrap, capsys
):
    code = example()
    await _post_loop(client, make_key, pump)
    async with runtime.db.sessions() as session:
        logged = [
            json.loads(envelope)
            for envelope in (
                await session.scalars(
                    select(EventLogEntry.envelope)
                    .where(EventLogEntry.topic == events.TOPIC_FOLLOWUPS)
                    .order_by(EventLogEntry.position)
                )
            ).all()
        ]
    assert {e["type"] for e in logged} >= {events.FOLLOWUP_OPENED, events.REFERRAL_REQUESTED}
    topics = private_topics(unique_topic_prefix())
    relay = OutboxRelay(runtime.db, runtime.clock, bootstrap_servers=kafka_bootstrap, topics=topics, poll_interval=0.02)
    try:
        while await relay.relay_once():
            pass
    finally:
        await relay._drop_producer()

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"{topics.kafka_name(events.TOPIC_FOLLOWUPS)}.example",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    consumer.subscribe([topics.kafka_name(events.TOPIC_FOLLOWUPS)])
    received = []
    try:
        stream = code.events(consumer)
        for event in stream:
            code.handle(event)
            received.append(event)
            if len(received) == len(logged):
                stream.close()
        committed = consumer.committed(consumer.assignment(), timeout=10)
    finally:
        consumer.close()

    by_id = {e["id"]: e for e in logged}
    assert sorted(e.get_id() for e in received) == sorted(by_id)
    for event in received:
        envelope = by_id[event.get_id()]
        assert (event.get_type(), event.get_source(), event.get_subject()) == (
            envelope["type"],
            "/npsloop",
            envelope["subject"],
        )
        assert event.get_extension("partitionkey") == envelope["partitionkey"]
        assert event.get_data() == envelope["data"]
    # Every record but the last was committed after handle() returned (the generator closed before the last commit).
    assert sum(max(tp.offset, 0) for tp in committed) == len(logged) - 1
    printed = capsys.readouterr().out.splitlines()
    assert sorted(line.split()[1] for line in printed) == ["cust-d", "cust-e"]


async def test_the_webhook_receiver_of_the_integrating_page_verifies_and_reads_each_delivery(
    client, runtime, make_key, pump
):
    code = example()
    received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), code.webhook_handler("whsec_placeholder", received.append))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/npsloop"
    try:
        headers = await make_key("admin")
        hook = await client.post(
            "/v1/webhooks",
            json={"url": url, "events": [events.FOLLOWUP_OPENED, events.REFERRAL_REQUESTED]},
            headers=headers,
        )
        assert hook.status_code == 201, hook.text
        server.RequestHandlerClass = code.webhook_handler(hook.json()["secret"], received.append)
        await _post_loop(client, make_key, pump)
        worker = DeliveryWorker(runtime.db, runtime.clock, timeout=5, max_age=timedelta(hours=26), allow_private=True)
        try:
            while await worker.run_once():
                pass
        finally:
            await worker.close()

        async with httpx.AsyncClient(timeout=5) as outsider:
            forged = await outsider.post(
                url,
                content=b'{"specversion": "1.0"}',
                headers={"webhook-id": "x", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"},
            )
        assert forged.status_code == 401
    finally:
        server.shutdown()
        server.server_close()

    async with runtime.db.sessions() as session:
        wanted = {
            json.loads(envelope)["id"]: json.loads(envelope)
            for envelope in (
                await session.scalars(
                    select(EventLogEntry.envelope).where(
                        EventLogEntry.type.in_([events.FOLLOWUP_OPENED, events.REFERRAL_REQUESTED])
                    )
                )
            ).all()
        }
    assert len(wanted) == 3
    assert sorted(e.get_id() for e in received) == sorted(wanted)
    for event in received:
        assert event.get_type() == wanted[event.get_id()]["type"]
        assert event.get_data() == wanted[event.get_id()]["data"]
