"""The parent/child plumbing of ``npsloop up``'s delivery process, without processes."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace

import pytest

from npsloop.services import delivery_process
from npsloop.shared.observability import Metrics
from npsloop.shared.settings import Settings


def test_counter_increments_added_in_another_process_add_up():
    child, parent = Metrics(), Metrics()
    child.deliveries_sent.inc(3)
    child.events_handled.labels(consumer="webhooks", type="npsloop.followup.opened.v1").inc(2)
    parent.deliveries_sent.inc(1)
    parent.add_counts([(name, dict(labels), value) for (name, labels), value in child.counter_totals().items()])
    totals = parent.counter_totals()
    assert totals[("deliveries_sent", ())] == 4
    assert totals[("events_handled", (("consumer", "webhooks"), ("type", "npsloop.followup.opened.v1")))] == 2


def test_foreign_or_negative_counts_are_ignored():
    metrics = Metrics()
    metrics.add_counts(
        [
            ("no_such_counter", {}, 1.0),
            ("deliveries_sent", {}, -5.0),
            ("deliveries_sent", {}, float("nan")),
            ("events_handled", {"unexpected": "label"}, 1.0),
            ("deliveries_failed", {}, 2.0),
        ]
    )
    totals = metrics.counter_totals()
    assert totals[("deliveries_sent", ())] == 0
    assert totals[("deliveries_failed", ())] == 2


def test_the_child_reports_only_what_changed_since_its_last_report(monkeypatch):
    metrics = Metrics()
    monkeypatch.setattr(delivery_process, "metrics", metrics)
    reporter = delivery_process._CountReporter()
    metrics.deliveries_sent.inc(2)
    assert reporter.increments() == [("deliveries_sent", {}, 2.0)]
    assert reporter.increments() == []
    metrics.deliveries_sent.inc()
    metrics.deliveries_failed.inc()
    assert sorted(reporter.increments()) == [("deliveries_failed", {}, 1.0), ("deliveries_sent", {}, 1.0)]


async def test_waking_a_child_that_reads_nothing_buffers_at_most_one_byte():
    hooks = []
    parent = delivery_process.DeliveryProcess(SimpleNamespace(add_commit_hook=hooks.append))
    ours, theirs = socket.socketpair()  # theirs is never read: a stuck child
    try:
        _reader, parent._writer = await asyncio.open_unix_connection(sock=ours)
        for _ in range(200_000):  # far more than the kernel's socket buffer holds
            hooks[0]("deliveries_enqueued")
        assert parent._writer.transport.get_write_buffer_size() <= 1
        theirs.setblocking(False)
        assert theirs.recv(1 << 20)  # the wake-ups that fit did arrive
    finally:
        parent._writer.close()
        theirs.close()


@pytest.mark.parametrize(
    ("setting", "cores", "database", "expected"),
    [
        ("on", 1, "sqlite", True),
        ("off", 8, "postgresql", False),
        ("auto", 1, "postgresql", False),
        ("auto", 2, "postgresql", True),
        ("auto", 8, "sqlite", False),
    ],
)
def test_up_uses_a_second_process_when_asked_or_on_postgresql_with_a_second_core(
    monkeypatch, setting, cores, database, expected
):
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(cores)))
    url = "postgresql+asyncpg://npsloop@127.0.0.1/npsloop" if database == "postgresql" else None
    settings = Settings(delivery_process=setting, database_url=url)
    assert settings.sends_deliveries_from_second_process is expected
