"""The outbox relay: forwards ``event_log`` rows to Kafka in position order.

A row is stamped ``published_at`` only after the broker acknowledged it (idempotent
producer, ``acks=all``), so a crash between the two re-sends the row: Kafka may see an
event twice, and consumers skip the copy by its event id. Nothing is ever lost.

Order: rows leave in position order and one key always lands on one partition (the
Kafka key is the customer id), so a key's events reach Kafka in the order they were
written. On PostgreSQL several relays may run for availability: a transaction-scoped
advisory lock lets exactly one of them publish at a time (the others retry every poll
interval and take over within one when it dies). Publishing in parallel from several
relays would let a later batch of one key overtake an earlier one, which the lock rules
out. On SQLite there is one process (``npsloop up``), so no lock is needed.

Wire format: the CloudEvents Kafka protocol binding's structured content mode. The value is
the stored envelope as it is (the same bytes the database log and webhooks carry), the
``content-type`` header is ``application/cloudevents+json; charset=UTF-8``, the key is the
customer id. No ``ce_`` header is added: the binding reads any ``ce_`` header as binary mode,
and the official SDKs then reject every record. Binary mode would make the relay parse each
envelope into headers and lose the self-contained value a dead-letter copy keeps.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from sqlalchemy import Row, select, text, update

from npsloop.shared.bus.kafka import CLOUDEVENTS_CONTENT_TYPE, KafkaTopics, idempotent_producer
from npsloop.shared.clock import Clock
from npsloop.shared.db import Database
from npsloop.shared.models import EventLogEntry

log = logging.getLogger("npsloop.bus.relay")

BATCH_SIZE = 500
# Any constant works: it only has to be the same for every relay of one database.
_RELAY_LOCK = 7_302_215_772


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        bootstrap_servers: str,
        topics: KafkaTopics,
        poll_interval: float,
        batch_size: int = BATCH_SIZE,
        request_timeout_ms: int = 30_000,
    ) -> None:
        self.db = db
        self.clock = clock
        self.bootstrap_servers = bootstrap_servers
        self.topics = topics
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.request_timeout_ms = request_timeout_ms
        self._producer: AIOKafkaProducer | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set; a batch in flight is finished (acked and stamped) first."""
        try:
            while not stop.is_set():
                try:
                    sent = await self.relay_once()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("relay pass failed; retrying")
                    await self._drop_producer()
                    sent = 0
                    await asyncio.sleep(1.0)
                if sent < self.batch_size and not stop.is_set():
                    # In one process the commit signal wakes us at once; other processes poll.
                    await self.db.commit_signal.wait(self.poll_interval)
        finally:
            await self._drop_producer()

    async def relay_once(self) -> int:
        """Publish the oldest unpublished rows; return how many were acked and stamped."""
        if self.db.is_sqlite:
            async with self.db.sessions() as session:
                rows = await self._unpublished(session)
            # The write transaction is opened only after the broker acked: on SQLite a
            # transaction holds the one write lock, and ingest must not wait for Kafka.
            published = await self._publish(rows) if rows else []
            if published:
                async with self.db.unit_of_work() as session:
                    await self._stamp(session, published)
            return len(published)
        async with self.db.unit_of_work() as session:
            locked = await session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _RELAY_LOCK})
            if not locked:
                return 0  # another relay is publishing
            rows = await self._unpublished(session)
            published = await self._publish(rows) if rows else []
            if published:
                await self._stamp(session, published)
            return len(published)

    async def _unpublished(self, session) -> Sequence[Row]:
        query = (
            select(
                EventLogEntry.position,
                EventLogEntry.event_id,
                EventLogEntry.topic,
                EventLogEntry.type,
                EventLogEntry.key,
                EventLogEntry.envelope,
            )
            .where(EventLogEntry.published_at.is_(None))
            .order_by(EventLogEntry.position)
            .limit(self.batch_size)
        )
        return (await session.execute(query)).all()

    async def _stamp(self, session, positions: list[int]) -> None:
        await session.execute(
            update(EventLogEntry).where(EventLogEntry.position.in_(positions)).values(published_at=self.clock.now())
        )

    async def _publish(self, rows: Sequence[Row]) -> list[int]:
        """Send every row, wait for the acks; return the positions of the acked prefix.

        Only a prefix counts: stamping a later row whose predecessor failed would let the
        predecessor be re-sent after it, out of order.
        """
        producer = await self._started_producer()
        pending = []
        headers = [("content-type", CLOUDEVENTS_CONTENT_TYPE)]
        for row in rows:
            pending.append(
                await producer.send(
                    self.topics.kafka_name(row.topic),
                    value=row.envelope.encode(),
                    key=row.key.encode(),
                    headers=headers,
                )
            )
        results = await asyncio.gather(*pending, return_exceptions=True)
        acked: list[int] = []
        for row, result in zip(rows, results):
            if isinstance(result, BaseException):
                log.error(
                    "broker did not acknowledge an event; it will be re-sent",
                    extra={"event_id": row.event_id, "event_type": row.type, "error": repr(result)},
                )
                break
            acked.append(row.position)
        if acked:
            log.debug("relayed events", extra={"count": len(acked), "last_position": acked[-1]})
        return acked

    async def _started_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = idempotent_producer(
                self.bootstrap_servers, client_id="npsloop-relay", request_timeout_ms=self.request_timeout_ms
            )
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _drop_producer(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()
