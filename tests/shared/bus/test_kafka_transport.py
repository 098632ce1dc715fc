"""What only the Kafka transport does: the DLQ topic, unreadable records, start-up and readiness.

Runs on SQLite (the contract suite covers Kafka on PostgreSQL), against librdkafka's mock
cluster unless NPSLOOP_TEST_KAFKA_BOOTSTRAP names a real broker: no broker can be installed
on these machines, and the mock speaks the real wire protocol.
"""

from __future__ import annotations

import httpx
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.app import create_app
from npsloop.services.runtime import Runtime
from npsloop.shared import events
from npsloop.shared.bus.contract import Subscription
from npsloop.shared.bus.kafka import KafkaUnreachable
from npsloop.shared.models import DeadLetter
from npsloop.shared.settings import Settings
from tests.shared.bus.conftest import effect_rows, run_until
from tests.shared.bus.kafka_harness import kafka_bootstrap, read_records  # noqa: F401 (fixture)
from tests.shared.bus.test_contract import make_event, recording_handler


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
async def kafka_bus(database_url, clock, kafka_bootstrap):
    from npsloop.shared.db import Database
    from tests.shared.bus.conftest import test_metadata
    from tests.shared.bus.kafka_harness import KafkaHarness

    db = Database(database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(test_metadata.create_all)
    harness = KafkaHarness(db, clock, kafka_bootstrap)
    yield harness
    await harness.close()
    await db.dispose()


async def test_a_poison_event_goes_to_the_dlq_topic_with_error_consumer_and_origin_headers(kafka_bus):
    bus = kafka_bus
    await bus.publish(*[make_event("customer-7", i) for i in range(3)])
    record = recording_handler("dlq")

    async def fails_on_one(session: AsyncSession, event: events.CloudEvent) -> None:
        if event.data["seq"] == 1:
            raise ValueError("score is not a number")
        await record(session, event)

    sub = Subscription(consumer="dlq", topics=(events.TOPIC_RESPONSES,), handler=fails_on_one)
    await run_until(bus, sub, lambda: _effects_at_least(bus, "dlq", 2))
    topic = bus.topics.kafka_name(events.TOPIC_RESPONSES)
    [dead] = await read_records(bus.bootstrap_servers, topic + ".dlq", 1)
    headers = {k: v.decode() for k, v in dead.headers}
    assert "ValueError: score is not a number" in headers["dlq_error"]
    assert headers["dlq_consumer"] == "dlq"
    assert headers["dlq_original_topic"] == topic
    assert int(headers["dlq_attempts"]) == bus.processor.max_attempts
    assert dead.key == b"customer-7" and events.CloudEvent.from_json(dead.value).data == {"seq": 1}
    async with bus.db.sessions() as session:  # ops tools read the row, so it is written too
        assert len((await session.scalars(select(DeadLetter).where(DeadLetter.consumer == "dlq"))).all()) == 1


async def test_a_record_that_is_not_a_cloudevent_is_dead_lettered_and_the_partition_moves_on(kafka_bus):
    bus = kafka_bus
    topic = bus.topics.kafka_name(events.TOPIC_RESPONSES)
    producer = AIOKafkaProducer(bootstrap_servers=bus.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"{not json", key=b"customer-1")
    finally:
        await producer.stop()
    await bus.publish(make_event("customer-1", 0))
    sub = Subscription(consumer="garbage", topics=(events.TOPIC_RESPONSES,), handler=recording_handler("garbage"))
    await run_until(bus, sub, lambda: _effects_at_least(bus, "garbage", 1))
    [dead] = await read_records(bus.bootstrap_servers, topic + ".dlq", 1)
    assert dead.value == b"{not json" and "not a CloudEvents JSON envelope" in dict(dead.headers)["dlq_error"].decode()
    async with bus.db.sessions() as session:
        row = (await session.scalars(select(DeadLetter).where(DeadLetter.consumer == "garbage"))).one()
    assert row.type == "unreadable" and row.envelope == "{not json"


async def test_a_stopped_consumer_has_committed_everything_it_handled(kafka_bus):
    from aiokafka.admin import AIOKafkaAdminClient

    bus = kafka_bus
    await bus.publish(*[make_event(f"c{i % 2}", i) for i in range(6)])
    sub = Subscription(consumer="graceful", topics=(events.TOPIC_RESPONSES,), handler=recording_handler("graceful"))
    await run_until(bus, sub, lambda: _effects_at_least(bus, "graceful", 6))  # returns after a graceful stop
    records = await read_records(bus.bootstrap_servers, bus.topics.kafka_name(events.TOPIC_RESPONSES), 6)
    end_offsets: dict[int, int] = {}
    for r in records:
        end_offsets[r.partition] = max(end_offsets.get(r.partition, 0), r.offset + 1)
    admin = AIOKafkaAdminClient(bootstrap_servers=bus.bootstrap_servers)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(
            bus.transport.group_id("graceful"), partitions=[TopicPartition(records[0].topic, p) for p in end_offsets]
        )
    finally:
        await admin.close()
    assert {tp.partition: meta.offset for tp, meta in committed.items() if meta.offset >= 0} == end_offsets
    assert sorted(seq for _, _, seq in await effect_rows(bus.db, "graceful")) == list(range(6))


async def test_an_unreachable_broker_is_a_start_up_error_naming_the_setting(database_url, tmp_path):
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path,
        kafka_bootstrap_servers="127.0.0.1:1",
        kafka_connect_timeout_seconds=1,
    )
    runtime = Runtime.build(settings)
    try:
        with pytest.raises(KafkaUnreachable, match="NPSLOOP_KAFKA_BOOTSTRAP_SERVERS.*127.0.0.1:1"):
            await runtime.ensure_transport_reachable(("classifier",))
    finally:
        await runtime.close()


async def test_readyz_reports_an_unreachable_broker(database_url, tmp_path):
    settings = Settings(database_url=database_url, data_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1")
    runtime = Runtime.build(settings)
    app = create_app(runtime, worker_roles=())
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            response = await client.get("/readyz")
    finally:
        await runtime.close()
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Service Unavailable",
        "status": 503,
        "detail": "a dependency is not reachable",
        "checks": {"database": "ok", "bus": "unavailable: KafkaConnectionError"},
    }


async def test_readyz_is_ok_when_the_broker_answers(database_url, tmp_path, kafka_bootstrap):
    settings = Settings(database_url=database_url, data_dir=tmp_path, kafka_bootstrap_servers=kafka_bootstrap)
    runtime = Runtime.build(settings)
    app = create_app(runtime, worker_roles=())
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            response = await client.get("/readyz")
    finally:
        await runtime.close()
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "bus": "ok"}}


async def _effects_at_least(bus, consumer: str, n: int) -> bool:
    from tests.shared.bus.conftest import effect_count

    return await effect_count(bus.db, consumer) >= n
