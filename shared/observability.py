"""Logging (one JSON object per line in production, readable locally) and Prometheus metrics."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS and not k.startswith("_")})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v}" for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS and not k.startswith("_")
        )
        base = f"{datetime.fromtimestamp(record.created).strftime('%H:%M:%S')} {record.levelname:<7} {record.name}: {record.getMessage()}"
        text = f"{base}  {extras}" if extras else base
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class StderrHandler(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is when a record is emitted, not as it was when logging
    was configured: a command run in-process by a test configures logging while pytest's
    captured stderr is in place, and that file is closed once the test ends, which broke
    every later log line of the run ("I/O operation on closed file")."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging(level: str = "INFO", fmt: str = "auto") -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("uvicorn.access").setLevel("WARNING")
    logging.getLogger("alembic").setLevel("WARNING")


MAX_DESTINATION_LABELS = 50  # per-destination series beyond these are summed as destination="other"


class Metrics:
    """Every metric npsloop exposes, on its own registry (no import-time global state in tests)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.responses_ingested = Counter("npsloop_responses_ingested", "Responses accepted by ingest.", registry=r)
        self.responses_classified = Counter("npsloop_responses_classified", "Responses classified.", registry=r)
        self.events_handled = Counter(
            "npsloop_events_handled", "Events handled per consumer.", ["consumer", "type"], registry=r
        )
        self.dead_letters_written = Counter(
            "npsloop_dead_letters_written", "Events dead-lettered.", ["consumer"], registry=r
        )
        self.tasks_opened = Counter("npsloop_tasks_opened", "Follow-up tasks opened.", registry=r)
        self.sla_warnings = Counter("npsloop_sla_warnings", "SLA warnings emitted.", registry=r)
        self.sla_breaches = Counter("npsloop_sla_breaches", "SLA breaches recorded.", registry=r)
        self.deliveries_sent = Counter("npsloop_deliveries_sent", "Deliveries that succeeded.", registry=r)
        self.deliveries_failed = Counter("npsloop_deliveries_failed", "Delivery attempts that failed.", registry=r)
        # Per destination: ``kind`` subscription | channel, ``destination`` the policy channel's name or
        # the subscription id's first 8 characters (never a URL); past MAX_DESTINATION_LABELS, "other".
        self.delivery_destination_pending = Gauge(
            "npsloop_delivery_destination_pending",
            "Deliveries pending per destination.",
            ["kind", "destination"],
            registry=r,
        )
        self.delivery_destination_oldest_pending_seconds = Gauge(
            "npsloop_delivery_destination_oldest_pending_seconds",
            "Age of the oldest pending delivery per destination.",
            ["kind", "destination"],
            registry=r,
        )
        self.delivery_destination_open = Gauge(
            "npsloop_delivery_destination_open",
            "1 while a destination's circuit breaker holds its deliveries back (open or probing).",
            ["kind", "destination"],
            registry=r,
        )
        self.delivery_breaker_openings = Counter(
            "npsloop_delivery_breaker_openings",
            "Times a destination was backed off by this process's delivery worker.",
            ["kind"],
            registry=r,
        )
        self.request_latency = Histogram(
            "npsloop_http_request_duration_seconds",
            "HTTP request latency.",
            ["method", "route", "status"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.tasks_open = Gauge("npsloop_tasks_open", "Open follow-up tasks.", ["team"], registry=r)
        self.outbox_backlog = Gauge(
            "npsloop_outbox_backlog", "Events not yet read by every consumer / relayed.", registry=r
        )
        self.consumer_lag = Gauge(
            "npsloop_consumer_lag", "Events behind the head of the log.", ["consumer"], registry=r
        )
        self.dead_letters = Gauge("npsloop_dead_letters", "Dead letters not yet redriven.", registry=r)
        # The recovery rate (a first-class metric, docs/api.md) over detractors' next answers in the
        # last RECOVERY_WINDOW; measured and recovered too, so PromQL can pool or compare them.
        self.recovery_measured = Gauge(
            "npsloop_recovery_measured",
            "Resolved detractors who answered again (next answers in the last 90 days).",
            registry=r,
        )
        self.recovery_recovered = Gauge(
            "npsloop_recovery_recovered", "Of those, how many came back passive or promoter.", registry=r
        )
        self.recovery_rate = Gauge(
            "npsloop_recovery_rate", "recovered / measured; NaN while none is measured.", registry=r
        )

    def _counters(self) -> dict[str, Counter]:
        return {name: value for name, value in vars(self).items() if isinstance(value, Counter)}

    def counter_totals(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every counter series' value, keyed by (attribute, labels): what a second process
        of the same server reports to the one that serves /metrics."""
        totals: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for name, counter in self._counters().items():
            for family in counter.collect():
                for sample in family.samples:
                    if sample.name.endswith("_total"):
                        totals[(name, tuple(sorted(sample.labels.items())))] = sample.value
        return totals

    def add_counts(self, counts: list[tuple[str, dict[str, str], float]]) -> None:
        """Add another process's counter increments (attribute, labels, amount) to this one's;
        unknown names and non-positive amounts are ignored, so counters only go up."""
        counters = self._counters()
        for name, labels, amount in counts:
            counter = counters.get(name)
            if counter is None or not amount > 0:
                continue
            try:
                (counter.labels(**labels) if labels else counter).inc(amount)
            except ValueError:  # labels that do not fit this counter: a version mismatch
                continue


metrics = Metrics()
