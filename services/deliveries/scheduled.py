"""The delivery worker: sends due deliveries, records every attempt, retries, dead-letters.

It runs apart from the consumers, so a slow or dead receiver only delays its own
deliveries. A delivery is leased (``next_attempt_at`` pushed past the timeout) before it
is sent, so two workers never send the same attempt; a worker killed mid-send leaves the
lease to expire and the delivery is sent again — at least once, same ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.deliveries import channels, repository, signing
from npsloop.services.deliveries.models import DeliveryAttempt
from npsloop.services.deliveries.sender import SendError, WebhookSender
from npsloop.services.deliveries.service import next_attempt_at
from npsloop.services.deliveries.urls import UnsafeUrl, check_url, guarded_client
from npsloop.services.deliveries.wakeup import delivery_signal
from npsloop.shared.clock import Clock
from npsloop.shared.db import Database
from npsloop.shared.observability import metrics
from npsloop.shared.policy import Policy
from npsloop.shared.settings import Settings

log = logging.getLogger("npsloop.deliveries")

RESPONSE_BODY_LIMIT = 2000
BATCH = 50


@dataclass(frozen=True)
class _Job:
    delivery_id: str
    event_id: str
    url: str
    secret: str | None
    body: bytes
    channel_type: str | None = None  # set for policy channels (slack | email | webhook)


@dataclass(frozen=True)
class _Result:
    status_code: int | None
    body: str | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        timeout: float,
        max_age: timedelta,
        allow_private: bool,
        concurrency: int = 20,
        settings: Settings | None = None,
        policy: Policy | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.timeout = timeout
        self.max_age = max_age
        self.allow_private = allow_private
        self.limit = asyncio.Semaphore(concurrency)
        # Channels (Slack, Teams, email relays) keep httpx; subscriptions' webhooks, the bulk
        # of the traffic, go through the lean sender (see services.deliveries.sender).
        self.client = guarded_client(timeout=timeout, allow_private=allow_private)
        self.sender = WebhookSender(timeout=timeout, allow_private=allow_private)
        self.settings = settings or Settings(delivery_timeout_seconds=timeout)
        self.policy = policy

    async def close(self) -> None:
        await self.client.aclose()
        await self.sender.aclose()

    async def run(self, stop: asyncio.Event, poll_interval: float) -> None:
        jobs: list[_Job] = []
        while not stop.is_set():
            try:
                if not jobs:
                    jobs = await self._lease()
                if jobs:
                    # While deliveries keep coming, a round's attempts are recorded and the next
                    # round leased in one transaction: on SQLite's single write slot every
                    # transaction waits its turn behind ingest, and two per round halved the
                    # worker's pace under a burst of detractors.
                    jobs = await self._record(await self._send_all(jobs), lease_next=not stop.is_set())
                    if jobs:
                        continue
            except asyncio.CancelledError:
                raise
            except Exception:
                # Deliveries leased and not recorded are sent again when their lease expires.
                log.exception("delivery loop error; retrying")
                jobs = []
            if not stop.is_set():
                # Woken at once when this process queues a delivery; other processes' and
                # retries' deliveries are found by polling.
                await delivery_signal(self.db).wait(poll_interval)

    async def run_once(self) -> int:
        """Attempt every due delivery once (one round); returns how many were attempted."""
        jobs = await self._lease()
        if jobs:
            await self._record(await self._send_all(jobs))
        return len(jobs)

    async def _send_all(self, jobs: list[_Job]) -> list[tuple[_Job, _Result]]:
        results = await asyncio.gather(*(self._send_limited(job) for job in jobs))
        return list(zip(jobs, results))

    async def _lease(self) -> list[_Job]:
        async with self.db.unit_of_work() as session:
            return await self._lease_in(session)

    async def _lease_in(self, session: AsyncSession) -> list[_Job]:
        """Claim up to BATCH due deliveries in ``session``: their next attempt moves past the
        send timeout, so no other worker sends them meanwhile."""
        now = self.clock.now()
        leased_until = now + timedelta(seconds=self.timeout + 30)
        jobs = []
        for delivery in await repository.claim_due(session, now, BATCH):
            if delivery.channel is not None:
                delivery.next_attempt_at = leased_until
                jobs.append(
                    _Job(
                        delivery.id,
                        delivery.event_id,
                        delivery.target or "",
                        self._channel_secret(delivery.channel),
                        delivery.envelope.encode(),
                        delivery.channel_type,
                    )
                )
                continue
            subscription = await repository.get_subscription(session, delivery.subscription_id)
            if subscription is None:  # deleted since: nothing to send
                delivery.status, delivery.next_attempt_at = "cancelled", None
                continue
            delivery.next_attempt_at = leased_until
            jobs.append(
                _Job(delivery.id, delivery.event_id, subscription.url, subscription.secret, delivery.envelope.encode())
            )
        return jobs

    async def _send_limited(self, job: _Job) -> _Result:
        async with self.limit:
            return await self._send(job)

    async def _record(self, outcomes: list[tuple[_Job, _Result]], *, lease_next: bool = False) -> list[_Job]:
        """Store the attempts of one round in one transaction (one commit, not one per send);
        with ``lease_next``, lease the next round in the same transaction and return it."""
        now = self.clock.now()
        async with self.db.unit_of_work() as session:
            deliveries = await repository.deliveries_by_id(session, [job.delivery_id for job, _ in outcomes], lock=True)
            for job, result in outcomes:
                delivery = deliveries.get(job.delivery_id)
                if delivery is None:
                    continue
                delivery.attempts += 1
                delivery.last_attempt_at = now
                session.add(
                    DeliveryAttempt(
                        delivery_id=delivery.id,
                        attempted_at=now,
                        status_code=result.status_code,
                        # Rewritten since it was leased (a customer erased meanwhile): the
                        # receiver's answer may echo what was erased, so it is not kept.
                        response_body=result.body if delivery.envelope.encode() == job.body else None,
                        error=result.error,
                        duration_ms=result.duration_ms,
                    )
                )
                if result.ok:
                    delivery.status, delivery.delivered_at, delivery.next_attempt_at = "delivered", now, None
                    metrics.deliveries_sent.inc()
                elif now - delivery.created_at >= self.max_age:
                    delivery.status, delivery.next_attempt_at = "dead", None
                    metrics.deliveries_failed.inc()
                    log.error("delivery dead-lettered", extra={"delivery_id": delivery.id, "event_id": job.event_id})
                else:
                    delivery.next_attempt_at = next_attempt_at(delivery.attempts, now)
                    metrics.deliveries_failed.inc()
            return await self._lease_in(session) if lease_next else []

    def _channel_secret(self, name: str) -> str | None:
        channel = self.policy.channels.get(name) if self.policy else None
        return getattr(channel, "secret", None)

    async def _send(self, job: _Job) -> _Result:
        started = time.perf_counter()

        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        if job.channel_type is not None:
            sent = await channels.send(
                self.client,
                channel_type=job.channel_type,
                target=job.url,
                body=job.body,
                msg_id=job.event_id,
                secret=job.secret,
                settings=self.settings,
                allow_private=self.allow_private,
            )
            return _Result(sent.status_code, sent.body, sent.error, elapsed())

        try:
            await check_url(job.url, allow_private=self.allow_private)
        except UnsafeUrl as exc:
            return _Result(None, None, f"refused: {exc}", elapsed())
        # Standard Webhooks: the message id is the event id, identical on every retry,
        # so receivers can de-duplicate.
        # The timestamp is the real send time, not the injectable clock: receivers check
        # it against their own clock to refuse replays.
        headers = signing.headers(job.secret, msg_id=job.event_id, timestamp=int(time.time()), body=job.body)
        try:
            reply = await self.sender.post(job.url, job.body, headers)
            return _Result(reply.status_code, reply.text[:RESPONSE_BODY_LIMIT], None, elapsed())
        except SendError as exc:
            return _Result(None, None, str(exc)[:RESPONSE_BODY_LIMIT], elapsed())
