"""Poison events are dead-lettered with their reason while later events flow; ``npsloop dlq``."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from npsloop.services.classifier.models import StoredClassification
from npsloop.shared import events, outbox
from npsloop.shared.models import DeadLetter, EventLogEntry
from tests.factories import post_response
from tests.support import processes


def _cli_env(runtime, tmp_path) -> dict[str, str]:
    return processes.base_env(
        NPSLOOP_DATABASE_URL=runtime.settings.resolved_database_url, NPSLOOP_DATA_DIR=str(tmp_path / "data")
    )


@pytest.mark.hand_made_events  # the poison event is malformed on purpose
async def test_a_poison_event_is_dead_lettered_after_its_attempts_and_later_events_keep_flowing(
    client, runtime, make_key, pump, tmp_path
):
    headers = await make_key("admin")
    poison = events.new_event(
        events.RESPONSE_RECEIVED,
        key="cust-poison",
        subject="no-such-response",
        data={"id": "no-such-response"},
        time=runtime.clock.now(),
    )  # no score, no customer
    async with runtime.db.unit_of_work() as session:
        await outbox.append(session, poison, clock=runtime.clock)
    healthy_id = await post_response(client, headers, score=4, customer="cust-after")
    await pump()

    async with runtime.db.sessions() as session:
        (letter,) = (await session.scalars(select(DeadLetter))).all()
        assert await session.get(StoredClassification, healthy_id) is not None  # not blocked behind it
    assert letter.consumer == "classifier" and letter.event_id == poison.id
    assert letter.attempts == runtime.settings.handler_max_attempts and "KeyError" in letter.error

    env = _cli_env(runtime, tmp_path)
    listing = processes.run_cli("dlq", "list", env=env, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    (line,) = listing.stdout.strip().splitlines()
    assert line.split("\t")[:4] == [str(letter.id), "classifier", events.RESPONSE_RECEIVED, poison.id]
    assert "KeyError" in line

    shown = processes.run_cli("dlq", "show", str(letter.id), env=env, cwd=tmp_path)
    detail = json.loads(shown.stdout)
    assert (
        detail["envelope"]["id"] == poison.id
        and detail["attempts"] == letter.attempts
        and "KeyError" in detail["error"]
    )

    still = processes.run_cli("dlq", "redrive", str(letter.id), env=env, cwd=tmp_path)
    assert still.returncode == 1 and "still failing" in still.stdout and "Traceback" not in still.stderr
    assert processes.run_cli("dlq", "show", "999999", env=env, cwd=tmp_path).returncode == 1


async def test_redrive_runs_the_dead_letters_own_consumer_once(client, runtime, make_key, pump, tmp_path):
    """The dead letter is written by the test, as a classifier that was broken when the
    event arrived (a bug fixed since) would have left it; the redrive uses today's handler."""
    headers = await make_key("admin")
    posted_id = await post_response(client, headers, score=9, customer="c-r", comment="Lovely")
    async with runtime.db.unit_of_work() as session:
        entry = await session.scalar(select(EventLogEntry).where(EventLogEntry.type == events.RESPONSE_RECEIVED))
        letter = DeadLetter(
            consumer="classifier",
            event_id=entry.event_id,
            topic=entry.topic,
            type=entry.type,
            envelope=entry.envelope,
            error="RuntimeError: model file missing",
            attempts=5,
            created_at=runtime.clock.now(),
        )
        session.add(letter)
    env = _cli_env(runtime, tmp_path)
    redriven = processes.run_cli("dlq", "redrive", "--all", env=env, cwd=tmp_path)
    assert redriven.returncode == 0, redriven.stdout + redriven.stderr
    assert redriven.stdout.strip() == f"{letter.id}\thandled"
    async with runtime.db.sessions() as session:
        assert await session.get(StoredClassification, posted_id) is not None
        assert (await session.get(DeadLetter, letter.id)).redriven_at is not None
    assert processes.run_cli("dlq", "list", env=env, cwd=tmp_path).stdout.strip() == ""
    assert str(letter.id) in processes.run_cli("dlq", "list", "--all", env=env, cwd=tmp_path).stdout
    # The normal consumer reaches the same event later and skips it: classified once.
    await pump()
    async with runtime.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(StoredClassification)) == 1
    again = processes.run_cli("dlq", "redrive", str(letter.id), env=env, cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.strip() == f"{letter.id}\tskipped"
