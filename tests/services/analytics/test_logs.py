"""Structured logs: a line about an event carries the event id and the response id, as JSON."""

from __future__ import annotations

import io
import json
import logging
import sys
from datetime import UTC, datetime

from npsloop.shared import events
from npsloop.shared.bus.contract import Subscription
from npsloop.shared.bus.processing import EventProcessor, event_ids
from npsloop.shared.observability import JsonFormatter, configure_logging


async def test_a_dead_lettered_event_logs_its_event_and_response_ids_as_json(runtime, clock, caplog):
    async def broken(session, event):
        raise RuntimeError("cannot handle this")

    processor = EventProcessor(runtime.db, clock, max_attempts=2, retry_base_seconds=0)
    subscription = Subscription(consumer="test-consumer", topics=(events.TOPIC_FOLLOWUPS,), handler=broken)
    event = events.new_event(
        events.FOLLOWUP_OPENED,
        key="cust-1",
        subject="task-1",
        time=clock.now(),
        data={"task_id": "task-1", "response_id": "resp-1"},
    )
    with caplog.at_level(logging.WARNING, logger="npsloop.bus"):
        assert await processor.handle(subscription, event, topic=events.TOPIC_FOLLOWUPS) == "dead_lettered"
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "npsloop.bus"]
    assert [line["message"] for line in lines] == ["handler failed", "handler failed", "event dead-lettered"]
    for line in lines:
        assert (line["event_id"], line["response_id"], line["consumer"]) == (event.id, "resp-1", "test-consumer")


async def test_response_events_name_their_response_on_log_lines():
    received = events.new_event(
        events.RESPONSE_RECEIVED, key="c", subject="r-9", time=datetime.now(UTC), data={"id": "r-9", "score": 3}
    )
    classified = events.new_event(
        events.RESPONSE_CLASSIFIED,
        key="c",
        subject="r-9",
        time=datetime.now(UTC),
        data={"response": {"id": "r-9"}, "classification": {}},
    )
    assert event_ids(received) == {"event_id": received.id, "response_id": "r-9"}
    assert event_ids(classified)["response_id"] == "r-9"


def test_log_lines_go_to_the_stderr_of_the_moment_even_after_the_one_configured_with_is_closed(monkeypatch):
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    first, later = io.StringIO(), io.StringIO()
    try:
        monkeypatch.setattr(sys, "stderr", first)
        configure_logging("INFO", "json")
        first.close()  # as pytest closes a test's captured stderr
        monkeypatch.setattr(sys, "stderr", later)
        logging.getLogger("npsloop.test").warning("after the first stream closed")
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    assert json.loads(later.getvalue())["message"] == "after the first stream closed"
