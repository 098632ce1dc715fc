"""The outbox relay against a Kafka cluster (librdkafka's mock unless NPSLOOP_TEST_KAFKA_BOOTSTRAP is set).

The mock stands in for Kafka only because no broker can be installed here; the relay talks
to it over the real wire protocol.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from aiokafka.errors import KafkaConnectionError
from sqlalchemy import func, select

from npsloop.shared import events, outbox
from npsloop.shared.bus.relay import OutboxRelay
from npsloop.shared.clock import ManualClock
from npsloop.shared.db import Database
from npsloop.shared.models import EventLogEntry
from tests.shared.bus.kafka_harness import kafka_bootstrap, private_topics, read_records  # noqa: F401 (fixture)
from tests.support.kafka_mock import unique_topic_prefix


def response_event(key: str, seq: int) -> events.CloudEvent:
    return events.new_event(
        events.RESPONSE_RECEIVED,
        key=key,
        subject=f"{key}-{seq}",
        data={"seq": seq},
        time=datetime(2026, 1, 1, tzinfo=UTC),
    )


async def append(db: Database, clock: ManualClock, *evts: events.CloudEvent) -> None:
    async with db.unit_of_work() as session:
        await outbox.append(session, *evts, clock=clock)


async def unpublished_count(db: Database) -> int:
    async with db.sessions() as session:
        return await session.scalar(
            select(func.count()).select_from(EventLogEntry).where(EventLogEntry.published_at.is_(None))
        )


async def test_relay_sends_cloudevents_keyed_by_customer_in_order_and_stamps_rows_after_the_ack(
    database_url, clock, kafka_bootstrap
):
    db = Database(database_url)
    topics = private_topics(unique_topic_prefix())
    relay = OutboxRelay(db, clock, bootstrap_servers=kafka_bootstrap, topics=topics, poll_interval=0.02, batch_size=7)
    written = [response_event(f"customer-{i % 3}", i) for i in range(30)]
    for i in range(0, 30, 4):
        await append(db, clock, *written[i : i + 4])
    try:
        while await relay.relay_once():
            pass
        assert await unpublished_count(db) == 0
        records = await read_records(kafka_bootstrap, topics.kafka_name(events.TOPIC_RESPONSES), 30)
    finally:
        await relay._drop_producer()
        await db.dispose()
    assert len(records) == 30
    by_key: dict[str, list[int]] = {}
    for record in records:
        envelope = json.loads(record.value)
        assert envelope["specversion"] == "1.0" and envelope["type"] == events.RESPONSE_RECEIVED
        assert record.key.decode() == envelope["partitionkey"]
        # Structured mode of the CloudEvents Kafka binding: a ce_ header would announce binary mode.
        assert dict(record.headers) == {"content-type": b"application/cloudevents+json; charset=UTF-8"}
        by_key.setdefault(envelope["partitionkey"], []).append(envelope["data"]["seq"])
    for key, seqs in by_key.items():
        assert seqs == sorted(seqs) and len(seqs) == 10, key


async def test_rows_stay_unpublished_while_no_broker_acknowledges_them(database_url, clock):
    db = Database(database_url)
    relay = OutboxRelay(
        db, clock, bootstrap_servers="127.0.0.1:1", topics=private_topics("unreachable"), poll_interval=0.02
    )
    await append(db, clock, response_event("k", 0))
    try:
        # The producer cannot start: relay_once raises (run() logs it and retries) instead of
        # stamping anything, and keeps no half-started producer around.
        with pytest.raises(KafkaConnectionError, match="Unable to bootstrap from"):
            await relay.relay_once()
        assert relay._producer is None
        assert await unpublished_count(db) == 1
    finally:
        await relay._drop_producer()
        await db.dispose()


async def test_two_relays_on_postgresql_never_reorder_a_customers_events(postgres_url, kafka_bootstrap):
    clock = ManualClock()
    db = Database(postgres_url)
    async with db.unit_of_work() as session:
        await session.execute(EventLogEntry.__table__.delete())
    topics = private_topics(unique_topic_prefix())
    relays = [
        OutboxRelay(
            Database(postgres_url),
            clock,
            bootstrap_servers=kafka_bootstrap,
            topics=topics,
            poll_interval=0.005,
            batch_size=5,
        )
        for _ in range(2)
    ]
    stop = asyncio.Event()
    running = [asyncio.create_task(relay.run(stop)) for relay in relays]
    try:
        for i in range(120):  # one transaction per event, while both relays poll
            await append(db, clock, response_event(f"customer-{i % 4}", i))
        records = await read_records(kafka_bootstrap, topics.kafka_name(events.TOPIC_RESPONSES), 120)
    finally:
        stop.set()
        await asyncio.gather(*running)
        for relay in relays:
            await relay.db.dispose()
        await db.dispose()
    seqs_by_key: dict[str, list[int]] = {}
    for record in records:
        envelope = json.loads(record.value)
        seqs_by_key.setdefault(record.key.decode(), []).append(envelope["data"]["seq"])
    assert sum(len(s) for s in seqs_by_key.values()) == 120  # nothing sent twice either
    for key, seqs in seqs_by_key.items():
        assert seqs == sorted(seqs), key
