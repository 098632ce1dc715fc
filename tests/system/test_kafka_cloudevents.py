"""Kafka records read back with the official CloudEvents SDK's Kafka binding.

Real events (a detractor's response through the API, classified, a task opened) leave
through the outbox relay for a Kafka cluster: librdkafka's mock in a child process (no
broker can be installed here; see tests/support/kafka_mock.py), or a real one named by
NPSLOOP_TEST_KAFKA_BOOTSTRAP. The ``cloudevents`` SDK, which npsloop did not write, must
get every attribute back, with the record key as the partitionkey.
"""

from __future__ import annotations

import json

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.v1 import kafka as ce_kafka_v1
from sqlalchemy import select

from npsloop.shared import events
from npsloop.shared.bus.relay import OutboxRelay
from npsloop.shared.models import EventLogEntry
from tests.shared.bus.kafka_harness import private_topics, read_records
from tests.support.event_contract import assert_conforms
from tests.support.kafka_mock import kafka_bootstrap, unique_topic_prefix  # noqa: F401 (fixture)


async def test_relayed_records_read_back_with_the_cloudevents_kafka_binding_attribute_for_attribute(
    client, runtime, make_key, pump, kafka_bootstrap
):
    headers = await make_key("admin")
    for score, who in ((2, "cust-d"), (10, "cust-p")):
        reply = await client.post(
            "/v1/responses", json={"score": score, "comment": "Slow exports", "customer": {"id": who}}, headers=headers
        )
        assert reply.status_code == 202, reply.text
    await pump()
    async with runtime.db.sessions() as session:
        logged = {
            row.event_id: (row.topic, json.loads(row.envelope))
            for row in (await session.scalars(select(EventLogEntry))).all()
        }
    assert {envelope["type"] for _, envelope in logged.values()} >= {
        events.RESPONSE_RECEIVED,
        events.RESPONSE_CLASSIFIED,
        events.FOLLOWUP_OPENED,
        events.REFERRAL_REQUESTED,
    }

    topics = private_topics(unique_topic_prefix())
    relay = OutboxRelay(runtime.db, runtime.clock, bootstrap_servers=kafka_bootstrap, topics=topics, poll_interval=0.02)
    try:
        while await relay.relay_once():
            pass
    finally:
        await relay._drop_producer()
    records = []
    for logical in sorted({topic for topic, _ in logged.values()}):
        count = sum(1 for topic, _ in logged.values() if topic == logical)
        records += await read_records(kafka_bootstrap, topics.kafka_name(logical), count)
    assert len(records) == len(logged)

    for record in records:
        record_headers = dict(record.headers)
        assert record_headers == {"content-type": b"application/cloudevents+json; charset=UTF-8"}
        assert not any(name.startswith("ce_") for name in record_headers)
        message = ce_kafka.KafkaMessage(headers=record_headers, key=record.key, value=record.value)
        event = ce_kafka.from_kafka(message, JSONFormat())  # detects the content mode itself
        _, envelope = logged[event.get_id()]
        assert_conforms(envelope)
        assert event.get_specversion() == "1.0"
        assert (event.get_source(), event.get_type(), event.get_subject()) == (
            envelope["source"],
            envelope["type"],
            envelope["subject"],
        )
        assert event.get_time() is not None and event.get_time().isoformat() == envelope["time"].replace("Z", "+00:00")
        assert event.get_datacontenttype() == "application/json"
        assert event.get_extension("partitionkey") == envelope["partitionkey"] == record.key.decode()
        assert event.get_data() == envelope["data"]
        # The SDK's older (v1) API reads the same record.
        old = ce_kafka_v1.from_structured(ce_kafka_v1.KafkaMessage(record_headers, record.key, record.value))
        assert (old["id"], old["type"], old["partitionkey"], old.get_data()) == (
            envelope["id"],
            envelope["type"],
            envelope["partitionkey"],
            envelope["data"],
        )
