"""The Kafka side of the bus contract harness.

Events travel the production path: outbox rows in the test's database, the relay forwards
them to Kafka, and the Kafka transport consumes them in a consumer group. Every harness
gets its own topics and groups, so tests never see each other's records even on a shared
real broker.
"""

from __future__ import annotations

from npsloop.shared import events, outbox
from npsloop.shared.bus.kafka import KafkaTopics, KafkaTransport
from npsloop.shared.bus.processing import EventProcessor
from npsloop.shared.bus.relay import OutboxRelay
from npsloop.shared.clock import ManualClock
from npsloop.shared.db import Database
from tests.support.kafka_mock import TEST_SESSION_TIMEOUT_MS, kafka_bootstrap, unique_topic_prefix  # noqa: F401 (fixture)


def private_topics(prefix: str) -> KafkaTopics:
    return KafkaTopics(
        {t: f"{prefix}.{t}" for t in (events.TOPIC_RESPONSES, events.TOPIC_CLASSIFICATIONS, events.TOPIC_FOLLOWUPS)}
    )


class KafkaHarness:
    name = "kafka"

    def __init__(self, db: Database, clock: ManualClock, bootstrap_servers: str, max_attempts: int = 3) -> None:
        self.db = db
        self.clock = clock
        self.bootstrap_servers = bootstrap_servers
        self.prefix = unique_topic_prefix()
        self.topics = private_topics(self.prefix)
        self.processor = EventProcessor(db, clock, max_attempts=max_attempts, retry_base_seconds=0.0)
        self.transport = KafkaTransport(
            self.processor,
            bootstrap_servers=bootstrap_servers,
            topics=self.topics,
            group_prefix=self.prefix,
            session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
        )
        self.relay = OutboxRelay(db, clock, bootstrap_servers=bootstrap_servers, topics=self.topics, poll_interval=0.02)

    async def publish(self, *evts: events.CloudEvent) -> None:
        """Append through the outbox, then relay until every row is acked by the broker."""
        async with self.db.unit_of_work() as session:
            await outbox.append(session, *evts, clock=self.clock)
        while await self.relay.relay_once():
            pass

    async def rewind(self, consumer: str) -> None:
        """Join the (idle) group, commit offset 0 on every partition, leave.

        Committing as a member is what works everywhere: the mock keeps a departed member
        for a while, and a commit from outside the group is refused until it is gone.
        """
        member = self.transport.new_consumer(consumer)
        member.subscribe(list(self.topics.by_logical.values()))
        await member.start()
        try:
            while not member.assignment():
                await member.getmany(timeout_ms=100, max_records=1)
            await member.commit(dict.fromkeys(member.assignment(), 0))
        finally:
            await member.stop()

    async def close(self) -> None:
        await self.relay._drop_producer()


async def read_records(bootstrap_servers: str, topic: str, count: int, timeout: float = 20.0) -> list:
    """Every record of ``topic`` from the beginning (outside any group), once ``count`` arrived."""
    import asyncio

    from aiokafka import AIOKafkaConsumer, TopicPartition

    reader = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await reader.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        partitions: set[int] = set()
        while not partitions:
            await reader._client.force_metadata_update()  # the public topics() does not refresh for assign()
            partitions = reader.partitions_for_topic(topic) or set()
            if loop.time() > deadline:
                raise AssertionError(f"topic {topic} never appeared")
            if not partitions:
                await asyncio.sleep(0.1)
        reader.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        records: list = []
        while len(records) < count:
            if loop.time() > deadline:
                raise AssertionError(f"only {len(records)} of {count} records on {topic}")
            for batch in (await reader.getmany(timeout_ms=200)).values():
                records.extend(batch)
        return records
    finally:
        await reader.stop()
