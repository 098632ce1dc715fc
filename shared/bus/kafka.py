"""The Kafka transport: one consumer group per subscription, offsets committed after the handler.

Events reach Kafka only through the outbox relay (``shared.bus.relay``); this module is the
consuming side. Each record runs through the same :class:`EventProcessor` as the database
log, so the handler's effect and the ``(consumer, event_id)`` record commit together; the
Kafka offset is committed only after that. A crash anywhere therefore means a redelivery,
and the idempotency record turns the redelivery into a no-op.

A record whose handler keeps failing is dead-lettered twice over: the DeadLetter row (which
ops tools and redrive read) and a copy on ``<topic>.dlq`` with headers naming the error,
the consumer and where it came from — then its offset is committed so the partition moves on.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError
from sqlalchemy import select

from npsloop.shared.bus.contract import Subscription
from npsloop.shared.bus.processing import EventProcessor
from npsloop.shared.events import EVENT_TOPICS, CloudEvent
from npsloop.shared.models import DeadLetter
from npsloop.shared.settings import ConfigError, Settings

log = logging.getLogger("npsloop.bus.kafka")

DLQ_SUFFIX = ".dlq"
CLOUDEVENTS_CONTENT_TYPE = b"application/cloudevents+json; charset=UTF-8"
FETCH_MAX_RECORDS = 100
FAILURE_BACKOFF_SECONDS = (0.5, 5.0)


class KafkaUnreachable(ConfigError):
    """No broker answered at start-up.

    A ConfigError so the command line reports it like any other start-up mistake: one
    line naming NPSLOOP_KAFKA_BOOTSTRAP_SERVERS, exit status 2, no traceback.
    """


@dataclass(frozen=True)
class KafkaTopics:
    """Maps npsloop's logical topics ("responses", ...) to Kafka topic names and back."""

    by_logical: dict[str, str]

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaTopics:
        return cls({logical: settings.kafka_topic(logical) for logical in sorted(set(EVENT_TOPICS.values()))})

    def kafka_name(self, logical_topic: str) -> str:
        return self.by_logical[logical_topic]

    def logical_name(self, kafka_topic: str) -> str:
        for logical, name in self.by_logical.items():
            if name == kafka_topic:
                return logical
        raise KeyError(kafka_topic)

    @staticmethod
    def dead_letter_topic(kafka_topic: str) -> str:
        return kafka_topic + DLQ_SUFFIX


def idempotent_producer(
    bootstrap_servers: str, *, client_id: str, request_timeout_ms: int = 30_000
) -> AIOKafkaProducer:
    """A producer whose retries can neither duplicate nor reorder records of a partition."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=2,
        request_timeout_ms=request_timeout_ms,
    )


async def probe_broker(bootstrap_servers: str, *, timeout: float) -> None:
    """Raise unless a broker answers a metadata request within ``timeout`` seconds."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
    finally:
        await client.close()


async def wait_for_broker(bootstrap_servers: str, *, timeout: float) -> None:
    """Retry :func:`probe_broker` for ``timeout`` seconds, then raise :class:`KafkaUnreachable`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await probe_broker(bootstrap_servers, timeout=min(5.0, timeout))
            return
        except (TimeoutError, KafkaError, OSError) as exc:
            if loop.time() >= deadline:
                raise KafkaUnreachable(
                    f"NPSLOOP_KAFKA_BOOTSTRAP_SERVERS: no Kafka broker answered at {bootstrap_servers} "
                    f"within {timeout:g}s ({type(exc).__name__}: {exc})"
                ) from None
            await asyncio.sleep(1.0)


class _FinishBatchBeforeRevoke(ConsumerRebalanceListener):
    """Holds a rebalance until the batch in hand is handled and committed.

    Without it another member could take a partition over and handle record N+1 while this
    one is still committing N, which would break per-key order.
    """

    def __init__(self, batch_lock: asyncio.Lock) -> None:
        self.batch_lock = batch_lock

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self.batch_lock:
            pass

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info(
            "partitions assigned",
            extra={"partitions": ",".join(f"{tp.topic}:{tp.partition}" for tp in sorted(assigned))},
        )


class KafkaTransport:
    name = "kafka"

    def __init__(
        self,
        processor: EventProcessor,
        *,
        bootstrap_servers: str,
        topics: KafkaTopics,
        group_prefix: str,
        session_timeout_ms: int = 10_000,
        connect_timeout: float = 15.0,
    ) -> None:
        self.processor = processor
        self.bootstrap_servers = bootstrap_servers
        self.topics = topics
        self.group_prefix = group_prefix
        self.session_timeout_ms = session_timeout_ms
        self.connect_timeout = connect_timeout

    @classmethod
    def from_settings(cls, settings: Settings, processor: EventProcessor) -> KafkaTransport:
        assert settings.kafka_bootstrap_servers
        return cls(
            processor,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            topics=KafkaTopics.from_settings(settings),
            group_prefix=settings.kafka_topic_prefix,
            session_timeout_ms=settings.kafka_session_timeout_ms,
            connect_timeout=settings.kafka_connect_timeout_seconds,
        )

    def group_id(self, consumer: str) -> str:
        # Prefixed like the topics, so two installations can share one cluster.
        return f"{self.group_prefix}.{consumer}"

    async def check(self) -> None:
        await probe_broker(self.bootstrap_servers, timeout=3.0)

    async def ensure_reachable(self) -> None:
        await wait_for_broker(self.bootstrap_servers, timeout=self.connect_timeout)

    def new_consumer(self, consumer: str, **overrides: object) -> AIOKafkaConsumer:
        options: dict[str, object] = {
            "bootstrap_servers": self.bootstrap_servers,
            "group_id": self.group_id(consumer),
            "client_id": f"npsloop-{consumer}",
            "enable_auto_commit": False,  # offsets move only after the handler's transaction
            "auto_offset_reset": "earliest",  # a new group starts at the oldest event, never skips any
            "session_timeout_ms": self.session_timeout_ms,
            "heartbeat_interval_ms": max(300, self.session_timeout_ms // 4),
            # A broker answers an idle fetch when data arrives, but librdkafka's mock only when this
            # expires; 100 ms keeps test latency realistic and costs ten tiny requests a second.
            "fetch_max_wait_ms": 100,
        }
        options.update(overrides)
        return AIOKafkaConsumer(**options)

    async def run(self, subscription: Subscription, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._consume(subscription, stop)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A broker outage or a fenced member: rejoin and continue from the committed offsets.
                log.exception("consumer failed; rejoining", extra={"consumer": subscription.consumer})
                try:
                    await asyncio.wait_for(stop.wait(), random.uniform(*FAILURE_BACKOFF_SECONDS))
                except TimeoutError:
                    pass

    async def _consume(self, subscription: Subscription, stop: asyncio.Event) -> None:
        kafka_topics = [self.topics.kafka_name(t) for t in subscription.topics]
        consumer = self.new_consumer(subscription.consumer)
        batch_lock = asyncio.Lock()
        consumer.subscribe(kafka_topics, listener=_FinishBatchBeforeRevoke(batch_lock))
        dead_letters = _DeadLetterPublisher(self.bootstrap_servers, subscription.consumer, stop)
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()
            raise
        log.info(
            "consumer joined",
            extra={
                "consumer": subscription.consumer,
                "group": self.group_id(subscription.consumer),
                "topics": ",".join(kafka_topics),
            },
        )
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=FETCH_MAX_RECORDS)
                async with batch_lock:
                    failed = False
                    for partition, records in batch.items():
                        failed = (
                            not await self._handle_partition_batch(
                                consumer, subscription, partition, records, stop, dead_letters
                            )
                            or failed
                        )
                if failed and not stop.is_set():
                    await asyncio.sleep(random.uniform(*FAILURE_BACKOFF_SECONDS))
        finally:
            # Leaving the group hands the partitions over at once instead of after the session timeout.
            await consumer.stop()
            await dead_letters.close()
            log.info("consumer left", extra={"consumer": subscription.consumer})

    async def _handle_partition_batch(
        self,
        consumer: AIOKafkaConsumer,
        subscription: Subscription,
        partition: TopicPartition,
        records: list[ConsumerRecord],
        stop: asyncio.Event,
        dead_letters: _DeadLetterPublisher,
    ) -> bool:
        """Handle records in order; commit what was handled; False if one failed (it is re-fetched)."""
        next_offset: int | None = None
        try:
            for record in records:
                if stop.is_set():
                    break
                try:
                    await self._handle_record(subscription, record, dead_letters)
                except Exception:
                    # Only bookkeeping failures get here (the processor retries and dead-letters
                    # handler errors): the database is unwell, so try this record again later.
                    log.exception(
                        "could not process record; will retry it",
                        extra={
                            "consumer": subscription.consumer,
                            "topic": record.topic,
                            "partition": record.partition,
                            "offset": record.offset,
                        },
                    )
                    consumer.seek(partition, record.offset)
                    return False
                next_offset = record.offset + 1
            return True
        finally:
            if next_offset is not None:
                await self._commit(consumer, partition, next_offset, subscription.consumer)

    async def _commit(self, consumer: AIOKafkaConsumer, partition: TopicPartition, offset: int, name: str) -> None:
        try:
            await consumer.commit({partition: offset})
        except KafkaError as exc:
            # Not fatal: the records come back after the rebalance and the idempotency record skips them.
            log.warning(
                "offset commit failed",
                extra={
                    "consumer": name,
                    "topic": partition.topic,
                    "partition": partition.partition,
                    "error": repr(exc),
                },
            )

    async def _handle_record(
        self, subscription: Subscription, record: ConsumerRecord, dead_letters: _DeadLetterPublisher
    ) -> None:
        logical_topic = self.topics.logical_name(record.topic)
        try:
            event = CloudEvent.from_json(record.value or b"")
        except ValidationError as exc:
            error = f"not a CloudEvents JSON envelope: {exc.errors()[0]['msg'] if exc.errors() else exc}"
            await self._record_unreadable(subscription, record, logical_topic, error)
            await dead_letters.publish(record, error=error, attempts=1)
            return
        if not subscription.wants(event.type):
            return
        outcome = await self.processor.handle(subscription, event, topic=logical_topic, write_position=None)
        if outcome == "dead_lettered":
            error, attempts = await self._dead_letter_details(subscription.consumer, event.id)
            await dead_letters.publish(record, error=error, attempts=attempts)

    async def _dead_letter_details(self, consumer: str, event_id: str) -> tuple[str, int]:
        async with self.processor.db.sessions() as session:
            row = (
                await session.execute(
                    select(DeadLetter.error, DeadLetter.attempts)
                    .where(DeadLetter.consumer == consumer, DeadLetter.event_id == event_id)
                    .order_by(DeadLetter.id.desc())
                    .limit(1)
                )
            ).first()
        return (row[0], row[1]) if row else ("unknown", self.processor.max_attempts)

    async def _record_unreadable(
        self, subscription: Subscription, record: ConsumerRecord, logical_topic: str, error: str
    ) -> None:
        # The row is what ops tools list; the id names the record since the event has none.
        async with self.processor.db.unit_of_work() as session:
            session.add(
                DeadLetter(
                    consumer=subscription.consumer,
                    event_id=f"kafka:{record.partition}:{record.offset}",
                    topic=logical_topic,
                    type="unreadable",
                    envelope=(record.value or b"").decode("utf-8", "replace"),
                    error=error,
                    attempts=1,
                    created_at=self.processor.clock.now(),
                )
            )


class _DeadLetterPublisher:
    """Copies a dead-lettered record to ``<topic>.dlq``; started on first use."""

    def __init__(self, bootstrap_servers: str, consumer: str, stop: asyncio.Event) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.consumer = consumer
        self.stop = stop
        self._producer: AIOKafkaProducer | None = None

    async def publish(self, record: ConsumerRecord, *, error: str, attempts: int) -> None:
        """Return once the broker acknowledged the copy; retry until then (the offset waits)."""
        headers = [(k, v) for k, v in (record.headers or ()) if not k.startswith("dlq_")]
        headers += [
            ("dlq_error", error[:2000].encode()),
            ("dlq_consumer", self.consumer.encode()),
            ("dlq_original_topic", record.topic.encode()),
            ("dlq_original_partition", str(record.partition).encode()),
            ("dlq_original_offset", str(record.offset).encode()),
            ("dlq_attempts", str(attempts).encode()),
        ]
        while True:
            try:
                if self._producer is None:
                    producer = idempotent_producer(self.bootstrap_servers, client_id=f"npsloop-{self.consumer}-dlq")
                    await producer.start()
                    self._producer = producer
                await self._producer.send_and_wait(
                    KafkaTopics.dead_letter_topic(record.topic), value=record.value, key=record.key, headers=headers
                )
                return
            except KafkaError as exc:
                if self.stop.is_set():
                    raise  # not committed: the record is dead-lettered again after the restart
                log.warning(
                    "dead-letter topic unavailable; retrying", extra={"consumer": self.consumer, "error": repr(exc)}
                )
                await asyncio.sleep(1.0)

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
