"""The delivery worker: sends due deliveries as they come, records every attempt, retries, dead-letters.

Deliveries flow, they do not go in rounds. Each destination (a webhook subscription, a
policy channel) has a bounded share of the worker's sends; a finished send's slot is
reused at once, and its attempt is recorded with whatever else finished meanwhile, in the
transaction that leases the next deliveries. A receiver that never answers therefore holds
only its own share, for one timeout, and then its circuit breaker opens
(services.deliveries.destinations). Policy channels draw on a pool of their own, so
subscription traffic never starves an alert.

A delivery is leased (``next_attempt_at`` pushed past the timeout) before it is sent, so
two workers never send the same attempt; a worker killed mid-send leaves the lease to
expire and the delivery is sent again — at least once, same ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.deliveries import attempts, customer_messages, repository
from npsloop.services.deliveries.attempts import AttemptSender, Job, Result
from npsloop.services.deliveries.destinations import (
    CHANNEL,
    SUBSCRIPTION,
    Breaker,
    Destination,
    is_destination_failure,
    key_of,
    short_label,
    water_level,
)
from npsloop.services.deliveries.wakeup import DELIVERIES_ENQUEUED, delivery_signal, subscriptions_signal
from npsloop.shared.clock import Clock
from npsloop.shared.db import CommitSignal, Database, raised
from npsloop.shared.observability import metrics
from npsloop.shared.policy import Policy
from npsloop.shared.settings import Settings

log = logging.getLogger("npsloop.deliveries")

LEASE_MARGIN_SECONDS = 30.0  # a lease outlives the send timeout by this, for the recording to commit
# After a send finishes, wait up to this long for the others in flight, to record them in one
# commit: each transaction costs milliseconds of CPU and, on SQLite, a turn of the one write slot.
GROUP_SECONDS = 0.02
# Subscriptions are read again at least this often; a change committed with the signal
# (services.deliveries.wakeup) is read at once.
SUBSCRIPTIONS_TTL_SECONDS = 1.0
DISCOVERY_SECONDS = 5.0  # how often to look for destinations beyond the known ones
STOP_GRACE_SECONDS = 5.0
# A destination that answers within this (or a quarter of the send timeout, if less) while
# all its slots are busy earns one more slot, up to this many times the per-destination base.
# A receiver that never answers earns none, so it holds no more than the base for a timeout.
QUICK_ANSWER_SECONDS = 1.0
LIMIT_GROWTH = 4


@dataclass
class _Pool:
    size: int
    in_flight: int = 0
    probes: int = 0


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        timeout: float,
        max_age: timedelta,
        allow_private: bool,
        concurrency: int = 128,
        channel_concurrency: int = 96,
        per_destination: int = 16,
        settings: Settings | None = None,
        policy: Policy | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.timeout = timeout
        self.max_age = max_age
        self.allow_private = allow_private
        self.per_destination = per_destination
        self.settings = settings or Settings(delivery_timeout_seconds=timeout)
        self.policy = policy
        self.attempts = AttemptSender(
            timeout=timeout, allow_private=allow_private, settings=self.settings, smtp_threads=channel_concurrency
        )
        self._pools = {SUBSCRIPTION: _Pool(concurrency), CHANNEL: _Pool(channel_concurrency)}
        self._destinations: dict[str, Destination] = {}
        self._rotation = itertools.count()
        self._finished: list[tuple[Job, Result]] = []
        self._wake = asyncio.Event()
        self._signal = delivery_signal(db)  # made now: cross-process listeners start with what exists
        self._subscriptions_changed = subscriptions_signal(db)
        self._signalled = True
        self._sends: set[asyncio.Task] = set()
        self._loaded = False
        self._subscriptions_read = float("-inf")
        self._discovered = float("-inf")
        # The known channel destinations: the policy's, and the customer emails (not in the
        # policy file), so their deliveries go at once rather than at the next discovery scan.
        for name in [*(policy.channels if policy else ()), customer_messages.CHANNEL]:
            self._destination(f"{CHANNEL}:{name}")

    async def close(self) -> None:
        for task in list(self._sends):
            task.cancel()  # not recorded: sent again when its lease expires
        await asyncio.gather(*self._sends, return_exceptions=True)
        await self.attempts.aclose()

    async def run(self, stop: asyncio.Event, poll_interval: float) -> None:
        listener = asyncio.create_task(self._listen(self._signal), name="deliveries:signal")
        subscriptions = asyncio.create_task(
            self._listen(self._subscriptions_changed, reread_subscriptions=True), name="deliveries:subscriptions"
        )
        last_look = float("-inf")
        try:
            while not stop.is_set():
                look = self._signalled or time.monotonic() - last_look >= poll_interval
                if look:
                    self._signalled, last_look = False, time.monotonic()
                try:
                    await self._cycle(look_everywhere=look)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # Deliveries leased and not recorded are sent again when their lease expires.
                    log.exception("delivery loop error; retrying")
                if stop.is_set():
                    break
                await self._wait(max(0.0, last_look + poll_interval - time.monotonic()))
            await self._finish_in_flight()
        finally:
            listener.cancel()
            subscriptions.cancel()

    async def run_once(self) -> int:
        """Attempt every delivery due now once; returns how many attempts were made.

        Sends and leases go on until nothing due now is left (a backed-off destination's
        probe that succeeds lets the rest of its deliveries go in the same call)."""
        due_by = self.clock.now()
        self._subscriptions_read = self._discovered = float("-inf")
        attempted = 0
        while True:
            started = await self._cycle(look_everywhere=True, due_by=due_by)
            attempted += started
            if not started and not self._sends and not self._finished:
                return attempted
            if self._sends:
                await asyncio.wait(set(self._sends))

    async def _listen(self, signal: CommitSignal, *, reread_subscriptions: bool = False) -> None:
        """Catches every notification of ``signal``, also those that fire while a cycle runs.
        ``reread_subscriptions``: a subscription was created or deleted, read them at the next
        turn (its first events do not wait out the subscriptions' time to live)."""
        while True:
            await signal.wait(3600)
            if reread_subscriptions:
                self._subscriptions_read = float("-inf")
            self._signalled = True
            self._wake.set()

    async def _wait(self, timeout: float) -> None:
        if not self._finished and not self._signalled:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                return
        if self._signalled:
            return
        # A send finished: give the others of its group a moment to finish too, and record them together.
        deadline = time.monotonic() + GROUP_SECONDS
        while self._sends and time.monotonic() < deadline:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), deadline - time.monotonic())
            except TimeoutError:
                break

    async def _finish_in_flight(self) -> None:
        """On stop: let the sends in flight end (briefly) and record them."""
        if self._sends:
            await asyncio.wait(set(self._sends), timeout=min(self.timeout, STOP_GRACE_SECONDS))
        if self._finished:
            try:
                await self._cycle(look_everywhere=False, lease=False)
            except Exception:
                log.exception("recording the last attempts failed; they are sent again when their lease expires")

    async def _cycle(self, *, look_everywhere: bool, due_by: datetime | None = None, lease: bool = True) -> int:
        """Record what finished, then lease for the free slots, in one transaction; start the sends."""
        if not lease and not self._finished:
            return 0
        if not (self._finished or look_everywhere or any(d.backlogged for d in self._destinations.values())):
            return 0
        if not self._finished and self._loaded and not await self._anything_due(due_by):
            return 0  # idle: a read, not a turn of SQLite's one write lock every poll
        async with self.db.unit_of_work() as session:
            # Should this transaction fail, these attempts are not recorded; their deliveries are
            # sent again when their leases expire.
            jobs, _ = await self._book(session, look_everywhere=look_everywhere, due_by=due_by, lease=lease)
        for job in jobs:
            self._start(job)
        return len(jobs)

    def wants_turn(self, session: AsyncSession) -> bool:
        """Whether the worker has bookkeeping for a turn: attempts to record, deliveries that
        ``session``'s transaction queued, or a destination with more due than it leased."""
        return bool(
            self._finished
            or raised(session, DELIVERIES_ENQUEUED)
            or any(d.backlogged for d in self._destinations.values())
        )

    async def book_in(self, session: AsyncSession) -> Callable[[bool], None]:
        """The worker's bookkeeping inside another writer's transaction — in ``up`` on SQLite,
        the consumers' shared turn (DatabaseLogTransport.run_together): attempts recorded and
        the deliveries that turn queued leased in its commit, rather than in a turn of the
        worker's own behind ingest and the consumers. Returns what to do once that
        transaction has ended (True: committed): start the sends, or keep the attempts for
        the next record."""
        jobs, finished = await self._book(session, look_everywhere=True, due_by=None, lease=True)

        def ended(committed: bool) -> None:
            if committed:
                for job in jobs:
                    self._start(job)
            else:
                self._finished[:0] = finished

        return ended

    async def _book(
        self, session: AsyncSession, *, look_everywhere: bool, due_by: datetime | None, lease: bool
    ) -> tuple[list[Job], list[tuple[Job, Result]]]:
        """Record what finished, then lease for the free slots, in ``session``'s transaction.

        What finished is taken once the transaction has begun, so attempts that end while it
        waits for the database (SQLite's single write slot under load) go in the same commit."""
        jobs: list[Job] = []
        finished, self._finished = self._finished, []
        now = self.clock.now()
        if not self._loaded:
            await self._load(session)
        if finished:
            await attempts.record(session, finished, now=now, max_age=self.max_age)
        if lease:
            await self._learn_destinations(session, now, look_everywhere)
            wanted = self._wanted(now, look_everywhere)
            if wanted:
                jobs = await self._lease_in(session, wanted, due_by or now, now)
        await self._save_states(session, now)
        return jobs, finished

    async def _anything_due(self, due_by: datetime | None) -> bool:
        async with self.db.sessions() as session:
            return await repository.any_due(session, due_by or self.clock.now())

    async def _load(self, session: AsyncSession) -> None:
        """Breakers a previous run left open stay open: a restart does not hammer a dead receiver."""
        for row in await repository.destination_states(session):
            self._destination(row.key).breaker = Breaker.from_row(row)
        self._loaded = True

    def _destination(self, key: str) -> Destination:
        destination = self._destinations.get(key)
        if destination is None:
            destination = self._destinations[key] = Destination(key)
        return destination

    async def _learn_destinations(self, session: AsyncSession, now: datetime, look_everywhere: bool) -> None:
        if not look_everywhere:
            return
        moment = time.monotonic()
        if moment - self._subscriptions_read >= SUBSCRIPTIONS_TTL_SECONDS:
            self._subscriptions_read = moment
            active = {f"{SUBSCRIPTION}:{i}" for i in await repository.active_subscription_ids(session)}
            for key in active:
                self._destination(key)
            for key, destination in list(self._destinations.items()):
                if destination.kind == SUBSCRIPTION and key not in active and not destination.in_flight:
                    del self._destinations[key]  # deleted; discovery brings it back while it has due deliveries
        if moment - self._discovered >= DISCOVERY_SECONDS:
            self._discovered = moment
            for subscription_id, channel in await repository.due_destinations(session, now):
                self._destination(f"{SUBSCRIPTION}:{subscription_id}" if subscription_id else f"{CHANNEL}:{channel}")

    def _wanted(self, now: datetime, look_everywhere: bool) -> list[tuple[Destination, int]]:
        """How many due deliveries to ask for, per destination: its share (bounded by the breaker)
        less what it has in flight. The pools' limits are applied to what the lease finds."""
        # Each kind's pool is shared max-min fairly among the destinations that have sends in
        # flight or deliveries waiting, each wanting what its breaker and limit allow: with an
        # equal split, three receivers that never answer (each held to its base) halved what a
        # healthy one beside them could have in flight.
        demands: dict[str, list[int]] = {SUBSCRIPTION: [], CHANNEL: []}
        for destination in self._destinations.values():
            if destination.in_flight or destination.backlogged:
                wants = destination.breaker.capacity(now, self._limit(destination))
                demands[destination.kind].append(max(wants, destination.in_flight))
        level = {kind: water_level(pool.size, demands[kind]) for kind, pool in self._pools.items()}
        ordered = list(self._destinations.values())
        if ordered:  # a different destination first each time, so none is always served last
            start = next(self._rotation) % len(ordered)
            ordered = ordered[start:] + ordered[:start]
        wanted = []
        for destination in ordered:
            if not (look_everywhere or destination.backlogged):
                continue
            pool = self._pools[destination.kind]
            share = min(self._limit(destination), level[destination.kind])
            free = min(destination.breaker.capacity(now, share) - destination.in_flight, pool.size - pool.in_flight)
            if free <= 0:
                continue
            if destination.breaker.probing(now) and pool.probes >= max(1, pool.size // 4):
                continue  # many destinations down at once: their probes may not fill the pool
            wanted.append((destination, free))
        return wanted

    async def _lease_in(
        self, session: AsyncSession, wanted: list[tuple[Destination, int]], due_by: datetime, now: datetime
    ) -> list[Job]:
        """Lease due deliveries for ``wanted``: their next attempt moves past the send timeout,
        so no other worker sends them meanwhile."""
        asked = {destination.key: n for destination, n in wanted}
        targets = []
        for destination, n in wanted:
            destination.backlogged = False
            subscription_id = destination.ref if destination.kind == SUBSCRIPTION else None
            targets.append((subscription_id, destination.ref if subscription_id is None else None, n))
        room = {kind: pool.size - pool.in_flight for kind, pool in self._pools.items()}
        taken: dict[str, int] = {}
        leased_until = now + timedelta(seconds=self.timeout + LEASE_MARGIN_SECONDS)
        jobs = []
        claimed = await repository.claim_due(session, due_by, targets)
        subscriptions = await repository.subscriptions_by_id(
            session, {d.subscription_id for d in claimed if d.subscription_id is not None}
        )
        cancelled = []
        for delivery in claimed:
            destination = self._destination(key_of(delivery))
            count = taken.get(destination.key, 0)
            if count >= asked.get(destination.key, 0) or room[destination.kind] <= 0:
                destination.backlogged = True
                continue  # locked until commit, left as it was
            if count + 1 == asked[destination.key]:
                destination.backlogged = True  # found all it asked for: more may be due
            if delivery.channel is not None:
                url, secret = delivery.target or "", self._channel_secret(delivery.channel)
            else:
                subscription = subscriptions.get(delivery.subscription_id or "")
                if subscription is None:  # deleted since: nothing to send
                    cancelled.append(delivery.id)
                    continue
                url, secret = subscription.url, subscription.secret
            probe = destination.breaker.probing(now)
            if probe and destination.breaker.start_probe():
                destination.dirty = True
            taken[destination.key] = count + 1
            room[destination.kind] -= 1
            jobs.append(
                Job(
                    delivery.id,
                    delivery.event_id,
                    destination.key,
                    url,
                    secret,
                    delivery.envelope.encode(),
                    delivery.channel_type if delivery.channel is not None else None,
                    probe,
                )
            )
        # One statement for the whole lease, not an ORM update per row (these rows are locked).
        await repository.lease(session, [job.delivery_id for job in jobs], until=leased_until)
        await repository.cancel(session, cancelled)
        return jobs

    def _start(self, job: Job) -> None:
        destination = self._destination(job.key)
        pool = self._pools[destination.kind]
        destination.in_flight += 1
        pool.in_flight += 1
        pool.probes += job.probe
        task = asyncio.create_task(self._send_and_report(job))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _send_and_report(self, job: Job) -> None:
        result = await self.attempts.attempt(job)
        self._adapt_limit(job, result)
        self._take_outcome(job, result, self.clock.now())
        self._finished.append((job, result))
        self._wake.set()

    def _limit(self, destination: Destination) -> int:
        """Sends the destination may have in flight: what it earned, or the base."""
        return destination.limit or self.per_destination

    def _adapt_limit(self, job: Job, result: Result) -> None:
        """More slots for a destination that answers quickly while all of its are busy; back to
        fewer on a slow answer or a failure. A fixed share capped a healthy receiver at that
        many sends per round trip under load, however fast it answered, while the share must
        stay small for a receiver that hangs (it holds its slots for a whole timeout)."""
        destination = self._destination(job.key)
        base = self.per_destination
        limit = self._limit(destination)
        quick = result.ok and result.duration_ms < 1000 * min(QUICK_ANSWER_SECONDS, self.timeout / 4)
        if quick and destination.in_flight >= limit:  # counted before this send's slot is freed
            destination.limit = min(limit + 1, base * LIMIT_GROWTH)
        elif not quick:
            destination.limit = max(base, limit // 2)

    def _take_outcome(self, job: Job, result: Result, now: datetime) -> None:
        """Free the send's slot and tell the breaker in one step, as the send ends: no lease
        decision ever sees a slot freed by a failure the breaker has not counted."""
        destination = self._destination(job.key)
        pool = self._pools[destination.kind]
        destination.in_flight -= 1
        pool.in_flight -= 1
        pool.probes -= job.probe
        answered = result.ok or not is_destination_failure(
            channel_type=job.channel_type, status_code=result.status_code
        )
        error = result.error or (None if result.ok else f"HTTP {result.status_code}")
        was_closed = destination.breaker.state == "closed"
        if destination.breaker.record(ok=answered, error=error, now=now):
            destination.dirty = True
            if destination.breaker.state == "open":
                metrics.delivery_breaker_openings.labels(kind=destination.kind).inc()
                log.warning(
                    "destination backed off" if was_closed else "destination still failing",
                    extra={
                        "destination": f"{destination.kind}:{short_label(destination.key)}",
                        "retry_at": destination.breaker.retry_at,
                        "error": error,
                    },
                )
            elif not was_closed:
                log.info("destination answers again", extra={"destination": short_label(destination.key)})

    async def _save_states(self, session: AsyncSession, now: datetime) -> None:
        for destination in self._destinations.values():
            if destination.dirty:
                breaker = destination.breaker
                await repository.save_destination_state(
                    session,
                    destination.key,
                    state=breaker.state,
                    failures=breaker.failures,
                    openings=breaker.openings,
                    retry_at=breaker.retry_at,
                    last_error=breaker.last_error,
                    updated_at=now,
                )
                destination.dirty = False

    def _channel_secret(self, name: str) -> str | None:
        channel = self.policy.channels.get(name) if self.policy else None
        return getattr(channel, "secret", None)
