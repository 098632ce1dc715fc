"""Builds a running npsloop from Settings: database, policy, classifier, bus and workers.

``npsloop up`` runs every role in one process; ``npsloop serve ROLE`` runs one. Either
way the handlers are the same functions; only the transport and the roles differ.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from npsloop.services.classifier import handlers as classifier_handlers
from npsloop.services.classifier.active import ActiveClassifier
from npsloop.services.classifier.retrain import retrain_if_due
from npsloop.services.deliveries import channels
from npsloop.services.deliveries import handlers as delivery_handlers
from npsloop.services.deliveries.scheduled import DeliveryWorker
from npsloop.services.deliveries.wakeup import delivery_signal
from npsloop.services.followup import handlers as followup_handlers
from npsloop.services.followup.digest import send_digests
from npsloop.services.followup.scheduled import check_sla
from npsloop.services.privacy import service as privacy_service
from npsloop.services.privacy.scheduled import purge_expired_comments, run_retention
from npsloop.shared.bus.contract import Subscription, Transport
from npsloop.shared.bus.dblog import DatabaseLogTransport
from npsloop.shared.bus.kafka import KafkaTopics, KafkaTransport
from npsloop.shared.bus.log_retention import prune_event_log
from npsloop.shared.bus.processing import EventProcessor
from npsloop.shared.bus.relay import OutboxRelay
from npsloop.shared.clock import Clock, SystemClock
from npsloop.shared.db import Database
from npsloop.shared.policy import Policy, load_policy
from npsloop.shared.settings import Settings

log = logging.getLogger("npsloop.runtime")

# Roles that run in the background (the "api" role is the HTTP server itself). "relay"
# forwards the outbox to Kafka; on the database log it has nothing to do.
WORKER_ROLES = ("classifier", "followup", "deliveries", "sla", "relay", "retention")
# The two halves of "deliveries", for npsloop up, which runs the worker in a process of its
# own (services/delivery_process.py) and the fan-out consumer with the other consumers.
WEBHOOK_FAN_OUT, DELIVERY_WORKER = "deliveries:fan-out", "deliveries:worker"
ROLES = ("api", *WORKER_ROLES)


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    db: Database
    policy: Policy
    classifier: ActiveClassifier
    processor: EventProcessor
    transport: Transport
    _tasks: list[asyncio.Task] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _delivery_worker: DeliveryWorker | None = None
    relay: OutboxRelay | None = None  # only in Kafka mode

    @classmethod
    def build(cls, settings: Settings, *, clock: Clock | None = None) -> Runtime:
        """Everything validated up front: a bad policy or taxonomy stops start-up here."""
        clock = clock or SystemClock(settings.clock_offset_seconds)
        policy = load_policy(settings.policy_file)
        channels.check_targets(policy, allow_private=settings.allow_private_webhook_urls)
        classifier = ActiveClassifier(themes=policy.theme_definitions(), data_dir=settings.data_dir)
        if settings.is_sqlite:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(
            settings.resolved_database_url, statement_timeout=settings.database_statement_timeout_seconds or None
        )
        processor = EventProcessor(
            db,
            clock,
            max_attempts=settings.handler_max_attempts,
            retry_base_seconds=settings.handler_retry_base_seconds,
            screen=privacy_service.screen_events,
        )
        transport: Transport
        relay = None
        if settings.kafka_bootstrap_servers:
            transport = KafkaTransport.from_settings(settings, processor)
            relay = OutboxRelay(
                db,
                clock,
                bootstrap_servers=settings.kafka_bootstrap_servers,
                topics=KafkaTopics.from_settings(settings),
                poll_interval=settings.poll_interval_seconds,
                request_timeout_ms=settings.kafka_request_timeout_ms,
            )
        else:
            transport = DatabaseLogTransport(db, clock, processor, poll_interval=settings.poll_interval_seconds)
        return cls(
            settings=settings,
            clock=clock,
            db=db,
            policy=policy,
            classifier=classifier,
            processor=processor,
            transport=transport,
            relay=relay,
        )

    async def ensure_transport_reachable(self, roles: tuple[str, ...]) -> None:
        """Fail start-up with a clear message when a role needs Kafka and no broker answers."""
        if isinstance(self.transport, KafkaTransport) and (self.subscriptions(roles) or "relay" in roles):
            await self.transport.ensure_reachable()

    def subscriptions(self, roles: tuple[str, ...] = WORKER_ROLES) -> list[Subscription]:
        subs: list[Subscription] = []
        if "classifier" in roles:
            subs += classifier_handlers.subscriptions(classifier=self.classifier, clock=self.clock)
        if "followup" in roles:
            subs += followup_handlers.subscriptions(
                policy=self.policy, clock=self.clock, public_url=self.settings.public_url
            )
        if "deliveries" in roles or WEBHOOK_FAN_OUT in roles:
            subs += delivery_handlers.subscriptions(clock=self.clock)
        return subs

    async def start(self, roles: tuple[str, ...] = WORKER_ROLES) -> None:
        """Start the background work of ``roles`` as tasks of the running loop."""
        self._stop.clear()
        self._spawn(self._classifier_reload_loop(), "classifier-reload")
        if "classifier" in roles and self.settings.classifier_retrain_after_corrections:
            self._spawn(self._classifier_retrain_loop(), "classifier-retrain")
        if "deliveries" in roles or DELIVERY_WORKER in roles:
            self._delivery_worker = DeliveryWorker(
                self.db,
                self.clock,
                timeout=self.settings.delivery_timeout_seconds,
                max_age=timedelta(hours=self.settings.delivery_max_age_hours),
                allow_private=self.settings.allow_private_webhook_urls,
                concurrency=self.settings.delivery_concurrency,
                channel_concurrency=self.settings.delivery_channel_concurrency,
                per_destination=self.settings.delivery_concurrency_per_destination,
                settings=self.settings,
                policy=self.policy,
            )
            self._spawn(self._delivery_worker.run(self._stop, self.settings.poll_interval_seconds), "deliveries")
        subscriptions = self.subscriptions(roles)
        if isinstance(self.transport, DatabaseLogTransport) and self.db.is_sqlite and len(subscriptions) > 1:
            # One writer at a time anyway: the consumers share their turns, and the delivery
            # worker of this process records and leases at their end (see run_together).
            names = ",".join(s.consumer for s in subscriptions)
            together = self.transport.run_together(subscriptions, self._stop, also=self._delivery_worker)
            self._spawn(together, f"consumers:{names}")
        else:
            for subscription in subscriptions:
                self._spawn(self.transport.run(subscription, self._stop), f"consumer:{subscription.consumer}")
        if "sla" in roles:
            self._spawn(self._sla_loop(), "sla")
        if "relay" in roles and self.relay is not None:
            self._spawn(self.relay.run(self._stop), "relay")
        if "retention" in roles:
            self._spawn(
                run_retention(
                    self._retention_jobs(), interval=self.settings.retention_check_interval_seconds, stop=self._stop
                ),
                "retention",
            )
        await self.db.start_cross_process_signals()  # after the workers made their signals
        log.info(
            "workers started",
            extra={"roles": ",".join(r for r in roles if r != "api"), "transport": self.transport.name},
        )

    def _retention_jobs(self) -> list[tuple[str, Callable[[], Awaitable[object]]]]:
        jobs: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            (
                "event log",
                lambda: prune_event_log(
                    self.db,
                    clock=self.clock,
                    retention_days=self.settings.event_log_retention_days,
                    kafka_mode=self.relay is not None,
                    subscriptions=self.subscriptions(),
                ),
            )
        ]
        if self.settings.comment_retention_days:
            days = self.settings.comment_retention_days
            jobs.append(("comments", lambda: purge_expired_comments(self.db, clock=self.clock, retention_days=days)))
        return jobs

    def _spawn(self, coro, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def _every(self, seconds: float, job: Callable[[], Awaitable[object]], failed: str) -> None:
        """Run ``job`` now and then every ``seconds`` until stopped; a failure is logged and
        the job runs again at its next turn."""
        while not self._stop.is_set():
            try:
                await job()
            except Exception:
                log.exception(failed)
            try:
                await asyncio.wait_for(self._stop.wait(), seconds)
            except TimeoutError:
                pass

    def _classifier_reload_loop(self) -> Awaitable[None]:
        """Every role that classifies (the classifier, the API's corrections) picks up a newly
        trained version within ``classifier_reload_seconds``."""
        return self._every(
            self.settings.classifier_reload_seconds,
            lambda: asyncio.to_thread(self.classifier.refresh),
            "classifier reload failed; keeping the current version",
        )

    def _classifier_retrain_loop(self) -> Awaitable[None]:
        """Train a new version after ``classifier_retrain_after_corrections`` new corrections;
        the reload loop then switches every role to it."""
        return self._every(
            self.settings.classifier_reload_seconds,
            lambda: retrain_if_due(
                self.db,
                after_corrections=self.settings.classifier_retrain_after_corrections,
                themes=self.policy.theme_definitions(),
                data_dir=self.settings.data_dir,
                clock=self.clock,
            ),
            "classifier retraining failed; retrying at the next check",
        )

    def _sla_loop(self) -> Awaitable[None]:
        return self._every(self.settings.sla_check_interval_seconds, self._check_sla, "sla check failed; retrying")

    async def _check_sla(self) -> None:
        async with self.db.unit_of_work() as session:
            await check_sla(session, clock=self.clock)
        async with self.db.unit_of_work() as session:
            await send_digests(session, policy=self.policy, clock=self.clock, public_url=self.settings.public_url)

    async def stop(self) -> None:
        """Finish the event in hand, then stop every worker."""
        self._stop.set()
        self.db.commit_signal.notify()  # idle workers wake now, not at their next poll
        delivery_signal(self.db).notify()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=10)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._tasks.clear()
        if self._delivery_worker is not None:
            await self._delivery_worker.close()

    async def close(self) -> None:
        await self.stop()
        await self.db.dispose()


def run_server(coro) -> None:
    """Run a long-lived server coroutine on uvloop when it is installed (it is a
    dependency): its faster wake-ups matter because every database call is a hand-off
    from a driver thread back to the loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coro)
