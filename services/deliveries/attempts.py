"""One delivery attempt: sent over the wire, then stored with its outcome.

The delivery worker (services.deliveries.scheduled) decides what to send and when; this
module sends one attempt and never raises for a receiver's failure (the result says what
happened), and stores attempts, retries and dead letters.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.deliveries import channels, repository, signing
from npsloop.services.deliveries.sender import SendError, WebhookSender
from npsloop.services.deliveries.service import next_attempt_at
from npsloop.services.deliveries.urls import UnsafeUrl, check_url
from npsloop.shared.observability import metrics
from npsloop.shared.settings import Settings

log = logging.getLogger("npsloop.deliveries")

RESPONSE_BODY_LIMIT = 2000


@dataclass(frozen=True)
class Job:
    delivery_id: str
    event_id: str
    key: str  # the destination (services.deliveries.destinations.key_of)
    url: str
    secret: str | None
    body: bytes
    channel_type: str | None = None  # set for policy channels (slack | email | webhook)
    probe: bool = False  # the one send that tells whether a backed-off destination is back


@dataclass(frozen=True)
class Result:
    status_code: int | None
    body: str | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class AttemptSender:
    """Sends attempts: every HTTP POST (subscriptions, Slack and webhook channels) through the lean
    sender, emails over SMTP."""

    def __init__(self, *, timeout: float, allow_private: bool, settings: Settings, smtp_threads: int) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self.settings = settings
        # httpx's pool walk cost a millisecond of CPU per POST at the worker's concurrency (see
        # services.deliveries.sender): Slack alerts took as much CPU as everything else they needed.
        self.sender = WebhookSender(timeout=timeout, allow_private=allow_private)
        # SMTP is blocking: its own threads, so a hanging mail server never takes the default
        # executor's few threads, which name resolution for every other destination needs.
        self._smtp_threads = ThreadPoolExecutor(max_workers=smtp_threads, thread_name_prefix="npsloop-smtp")

    async def aclose(self) -> None:
        await self.sender.aclose()
        self._smtp_threads.shutdown(wait=False, cancel_futures=True)

    async def attempt(self, job: Job) -> Result:
        """One attempt, bounded by the timeout whatever hangs (connect, DNS, SMTP)."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout + 1):  # the senders time out first
                result = await self._send(job)
        except TimeoutError:
            result = Result(None, None, f"Timeout: no complete answer within {self.timeout:g} s", 0)
        except Exception as exc:  # a bug must not lose the attempt: it is recorded and retried
            log.exception("delivery send failed", extra={"delivery_id": job.delivery_id, "event_id": job.event_id})
            result = Result(None, None, f"{type(exc).__name__}: {exc}"[:RESPONSE_BODY_LIMIT], 0)
        if not result.duration_ms:
            result = Result(result.status_code, result.body, result.error, int((time.perf_counter() - started) * 1000))
        return result

    async def _send(self, job: Job) -> Result:
        started = time.perf_counter()

        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        if job.channel_type == "email":
            sent = await channels.send_email(
                target=job.url, body=job.body, msg_id=job.event_id, settings=self.settings, executor=self._smtp_threads
            )
            return Result(sent.status_code, sent.body, sent.error, elapsed())

        try:
            await check_url(job.url, allow_private=self.allow_private)
        except UnsafeUrl as exc:
            return Result(None, None, f"refused: {exc}", elapsed())
        if job.channel_type is not None:
            headers = channels.request_headers(job.channel_type, msg_id=job.event_id, secret=job.secret, body=job.body)
        else:
            # Standard Webhooks: the message id is the event id, identical on every retry,
            # so receivers can de-duplicate.
            # The timestamp is the real send time, not the injectable clock: receivers check
            # it against their own clock to refuse replays.
            headers = signing.headers(job.secret or "", msg_id=job.event_id, timestamp=int(time.time()), body=job.body)
        try:
            reply = await self.sender.post(job.url, job.body, headers)
            return Result(reply.status_code, reply.text[:RESPONSE_BODY_LIMIT], None, elapsed())
        except SendError as exc:
            return Result(None, None, str(exc)[:RESPONSE_BODY_LIMIT], elapsed())


async def record(
    session: AsyncSession, outcomes: list[tuple[Job, Result]], *, now: datetime, max_age: timedelta
) -> None:
    """Store attempts (one commit for all that finished since the last one): delivered, retried
    with backoff, or dead once the delivery is older than ``max_age``."""
    # FOR UPDATE: an erasure rewriting these deliveries waits, or is seen (see below).
    # Plain rows and one statement per kind of outcome: an ORM object and an UPDATE per
    # delivery cost more CPU than sending it.
    targets = await repository.attempt_targets(session, [job.delivery_id for job, _ in outcomes])
    stored: list[dict] = []
    delivered: list[str] = []
    dead: list[str] = []
    retries: list[tuple[str, datetime]] = []
    for job, result in outcomes:
        target = targets.get(job.delivery_id)
        if target is None:
            continue
        stored.append(
            {
                "delivery_id": job.delivery_id,
                "attempted_at": now,
                "status_code": result.status_code,
                # Rewritten since it was leased (a customer erased meanwhile): the
                # receiver's answer may echo what was erased, so it is not kept.
                "response_body": result.body if target.envelope.encode() == job.body else None,
                "error": result.error,
                "duration_ms": result.duration_ms,
            }
        )
        if result.ok:
            delivered.append(job.delivery_id)
            metrics.deliveries_sent.inc()
        elif now - target.created_at >= max_age:
            dead.append(job.delivery_id)
            metrics.deliveries_failed.inc()
            log.error("delivery dead-lettered", extra={"delivery_id": job.delivery_id, "event_id": job.event_id})
        else:
            retries.append((job.delivery_id, next_attempt_at(target.attempts + 1, now)))
            metrics.deliveries_failed.inc()
    await repository.store_attempts(session, stored, delivered=delivered, dead=dead, retries=retries, now=now)
