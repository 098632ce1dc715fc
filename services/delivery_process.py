"""``npsloop up``'s second process: the delivery worker, on the other core.

One process ran the API, every consumer and the delivery worker on one event loop, so
one core did all of it and sending alerts competed with classifying the next responses
(docs/decisions/0001-ingest-and-pipeline-performance.md). The delivery worker is the
part that talks to other people's servers and writes least, so ``up`` runs it as a child
process, on the same database, with the same guarantees (leases, at least once, the same
``webhook-id``). The webhook fan-out consumer stays with the other consumers in ``up``
itself: in its own process its writes contended with ingest for SQLite's one write lock,
which ingest's priority over background writers cannot arbitrate across processes, and
under a saturating load ingest halved.

Parent and child share one socket pair:

- parent → child: a byte whenever a transaction appended events or queued deliveries,
  so the child starts at once instead of at its next poll; end of file means the
  parent is gone, and the child stops (no orphan keeps sending);
- child → parent: every second, the child's counter increments as a JSON line, which
  the parent adds to its own, so ``/metrics`` counts the deliveries the child made.

The parent restarts a child that dies (backing off up to ``MAX_RESTART_DELAY``) and
``/readyz`` says whether it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import sys
import time

from npsloop.services.deliveries.wakeup import DELIVERIES_ENQUEUED
from npsloop.services.runtime import DELIVERY_WORKER
from npsloop.shared.db import Database
from npsloop.shared.observability import metrics
from npsloop.shared.settings import Settings

log = logging.getLogger("npsloop.delivery_process")

ROLES = (DELIVERY_WORKER,)
METRICS_INTERVAL_SECONDS = 1.0
MAX_RESTART_DELAY = 30.0
STABLE_SECONDS = 60.0  # a child that ran this long restarts at once if it dies again
STOP_TIMEOUT_SECONDS = 15.0  # the child finishes sends in flight (the worker's grace is 5 s)
WAKE = b"w"


class DeliveryProcess:
    """The parent's side: starts, wakes, supervises and stops the child."""

    def __init__(self, db: Database, *, command: list[str] | None = None) -> None:
        """The child is woken by every commit of ``db`` (the parent's) that queued deliveries."""
        self._command = command or [sys.executable, "-m", "npsloop.services.delivery_process"]
        self._writer: asyncio.StreamWriter | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task | None = None
        self._stopping = False
        self.restarts = 0
        # Only deliveries wake it: it runs no consumer, so new events are nothing to it.
        db.add_commit_hook(lambda flag: self.wake() if flag == DELIVERIES_ENQUEUED else None)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    def start(self) -> None:
        self._supervisor = asyncio.create_task(self._supervise(), name="delivery-process")

    def wake(self) -> None:
        """Tell the child there is work; one byte in flight is enough, so never queue more."""
        writer = self._writer
        if writer is None or writer.is_closing() or writer.transport.get_write_buffer_size():
            return
        with contextlib.suppress(OSError, RuntimeError):
            writer.write(WAKE)

    async def stop(self) -> None:
        self._stopping = True
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_SECONDS)
            except TimeoutError:
                log.warning("delivery process did not stop in time; killing it")
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)

    async def _supervise(self) -> None:
        delay = 1.0
        while not self._stopping:
            started = time.monotonic()
            code = await self._run_once()
            if self._stopping:
                return
            self.restarts += 1
            if time.monotonic() - started >= STABLE_SECONDS:
                delay = 1.0
            log.error(
                "delivery process exited; restarting",
                extra={"exit_code": code, "restart_in_seconds": delay, "restarts": self.restarts},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RESTART_DELAY)

    async def _run_once(self) -> int | None:
        ours, theirs = socket.socketpair()
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command, str(theirs.fileno()), pass_fds=(theirs.fileno(),)
            )
        except OSError:
            ours.close()
            log.exception("delivery process could not start")
            return None
        finally:
            theirs.close()
        self._process = process
        reader, self._writer = await asyncio.open_unix_connection(sock=ours)
        log.info("delivery process started", extra={"pid": process.pid})
        reports = asyncio.create_task(_read_counts(reader), name="delivery-process:metrics")
        try:
            return await process.wait()
        finally:
            # What the child sent before it went is still read, then the link closes.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(reports), 1.0)
            reports.cancel()
            await asyncio.gather(reports, return_exceptions=True)
            self._writer.close()
            self._writer = None


async def _read_counts(reader: asyncio.StreamReader) -> None:
    while line := await reader.readline():
        try:
            metrics.add_counts([(name, labels, amount) for name, labels, amount in json.loads(line)])
        except (ValueError, TypeError):
            log.warning(
                "unreadable metrics line from the delivery process", extra={"line": line[:200].decode(errors="replace")}
            )


class _CountReporter:
    """The child's side of the metrics: increments since the last report."""

    def __init__(self) -> None:
        self._sent: dict = {}

    def increments(self) -> list[tuple[str, dict[str, str], float]]:
        totals = metrics.counter_totals()
        changed = [
            (name, dict(labels), value - self._sent.get((name, labels), 0.0))
            for (name, labels), value in totals.items()
            if value != self._sent.get((name, labels), 0.0)
        ]
        self._sent = totals
        return changed


async def run_child(settings: Settings, fd: int) -> None:
    """The child: the deliveries role until SIGTERM/SIGINT or until the parent goes away."""
    from npsloop.services.deliveries.wakeup import delivery_signal
    from npsloop.services.runtime import Runtime
    from npsloop.shared import gc_tuning

    link = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_unix_connection(sock=link)
    runtime = Runtime.build(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # Ctrl-C in a terminal reaches the whole process group: the parent stops first and
    # then stops this child, which must not look like a crash to be restarted meanwhile.
    loop.add_signal_handler(signal.SIGINT, lambda: None)
    await runtime.ensure_transport_reachable(ROLES)
    await runtime.start(ROLES)
    if settings.gc_tuning:
        gc_tuning.tune_for_service()
    reporter = _CountReporter()

    async def listen() -> None:
        while await reader.read(4096):
            runtime.db.commit_signal.notify()
            delivery_signal(runtime.db).notify()
        log.warning("the npsloop up process is gone; stopping")
        stop.set()

    def report() -> None:
        if counts := reporter.increments():
            writer.write(json.dumps(counts).encode() + b"\n")

    async def report_periodically() -> None:
        while True:
            await asyncio.sleep(METRICS_INTERVAL_SECONDS)
            report()

    tasks = [asyncio.create_task(listen()), asyncio.create_task(report_periodically())]
    await stop.wait()
    await runtime.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    with contextlib.suppress(OSError, RuntimeError):
        report()
        await writer.drain()
        writer.close()


def main(argv: list[str] | None = None) -> int:
    from npsloop.services.runtime import run_server
    from npsloop.shared.observability import configure_logging
    from npsloop.shared.settings import ConfigError, load_settings

    args = sys.argv[1:] if argv is None else argv
    sys.setswitchinterval(0.0005)  # as the parent: see services.cli.main
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"npsloop: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    run_server(run_child(settings, int(args[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
