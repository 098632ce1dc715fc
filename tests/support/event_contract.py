"""Events checked against ``asyncapi.yaml`` with ``jsonschema`` (software npsloop did not write).

The fixtures that build a running npsloop (``runtime`` in tests/conftest.py, ``make_loop``
in tests/services/followup/conftest.py) call :func:`assert_logged_events_conform` when a
test ends, so every event the suite makes npsloop write is validated against the
published document. A test that writes events of its own making (poison events, bus
tests with arbitrary payloads) says so with ``@pytest.mark.hand_made_events``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from sqlalchemy import select
from sqlalchemy.exc import OperationalError, ProgrammingError

from npsloop.shared.db import Database
from npsloop.shared.models import EventLogEntry

DOCUMENT = Path(__file__).resolve().parents[2] / "asyncapi.yaml"
_URI = "urn:npsloop:asyncapi"


@cache
def _document() -> dict[str, Any]:
    return yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))


@cache
def _validators() -> dict[str, Draft7Validator]:
    """One validator per event type: its message's payload, references resolved in the document."""
    document = _document()
    # AsyncAPI's default schema format is a superset of JSON Schema draft 7.
    registry = Registry().with_resource(_URI, Resource.from_contents(document, default_specification=DRAFT7))
    validators = {}
    for key, message in document["components"]["messages"].items():
        if key == "deadLetter":
            continue
        schema = {"$ref": f"{_URI}#/components/messages/{key}/payload"}
        validators[message["name"]] = Draft7Validator(schema, registry=registry, format_checker=FormatChecker())
    return validators


def documented_event_types() -> set[str]:
    return set(_validators())


def problems(envelope: Any) -> list[str]:
    """Why ``envelope`` (parsed JSON) is not an event the document describes; empty if it is."""
    if not isinstance(envelope, dict):
        return ["the event is not a JSON object"]
    validator = _validators().get(str(envelope.get("type")))
    if validator is None:
        return [f"type {envelope.get('type')!r} is not documented"]
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(envelope)'}: {error.message}"
        for error in sorted(validator.iter_errors(envelope), key=lambda e: list(map(str, e.absolute_path)))
    ]


def assert_conforms(envelope: Any) -> None:
    found = problems(envelope)
    assert not found, f"event does not match asyncapi.yaml: {found}\n{json.dumps(envelope)[:2000]}"


async def logged_envelopes(database_url: str) -> list[dict[str, Any]]:
    """Every envelope in the event log; none when the test left no readable log behind."""
    db = Database(database_url)
    try:
        async with db.sessions() as session:
            rows = (await session.scalars(select(EventLogEntry.envelope).order_by(EventLogEntry.position))).all()
    except (OperationalError, ProgrammingError):
        # A test that dropped or broke the database (outage and migration tests) left no log to check.
        return []
    finally:
        await db.dispose()
    return [json.loads(row) for row in rows]


async def assert_logged_events_conform(database_url: str) -> int:
    """Validate the log's events against the document; returns how many were checked."""
    envelopes = await logged_envelopes(database_url)
    failures = [(e.get("type"), problems(e)) for e in envelopes]
    failures = [f for f in failures if f[1]]
    assert not failures, f"{len(failures)} of {len(envelopes)} logged events do not match asyncapi.yaml: {failures[:5]}"
    return len(envelopes)
