"""asyncapi.yaml is generated from the event models, requires what CloudEvents requires,
rejects malformed events, and passes the AsyncAPI CLI's own validation."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from npsloop.shared import asyncapi, event_data, events
from tests.support.event_contract import DOCUMENT, documented_event_types, problems
from tests.support.external_tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
ASYNCAPI_CLI = ROOT / "node_modules" / ".bin" / "asyncapi"


def valid_received_event() -> dict:
    data = event_data.Response(
        id="r-1",
        score=3,
        comment="Too slow",
        customer=event_data.Customer(id="c-1", email="ann@example.com"),
        survey=event_data.Survey(touchpoint="support", kind="transactional", channel="email"),
        lifecycle_stage=None,
        properties={"plan": "pro", "seats": 12},
        responded_at=datetime(2026, 5, 1, 10, tzinfo=UTC),
        received_at=datetime(2026, 5, 1, 10, 0, 1, tzinfo=UTC),
        external_id=None,
    ).model_dump(mode="json")
    event = events.new_event(
        events.RESPONSE_RECEIVED, key="c-1", subject="r-1", data=data, time=datetime(2026, 5, 1, 10, tzinfo=UTC)
    )
    return yaml.safe_load(event.to_json())


def test_asyncapi_yaml_is_what_the_event_models_generate():
    assert DOCUMENT.read_text(encoding="utf-8") == asyncapi.render(), (
        "asyncapi.yaml is out of date: python -m npsloop.shared.asyncapi"
    )
    assert asyncapi.main(["--check", str(DOCUMENT)]) == 0


def test_every_event_type_has_a_data_model_and_a_message_on_the_channel_of_its_topic():
    document = yaml.safe_load(DOCUMENT.read_text())
    assert document["asyncapi"].startswith("3.")
    assert set(event_data.DATA_MODELS) == set(events.EVENT_TYPES) == documented_event_types()
    for event_type, logical in events.EVENT_TOPICS.items():
        channel = document["channels"][logical]
        assert channel["address"] == f"npsloop.{logical}"
        name = asyncapi.message_name(event_type)
        assert name in channel["messages"], event_type
        message = document["components"]["messages"][name]
        assert message["name"] == event_type
        data = message["payload"]["properties"]["data"]
        assert data == {"$ref": f"#/components/schemas/{event_data.DATA_MODELS[event_type][0].__name__}"}


def test_the_envelope_requires_every_attribute_cloudevents_requires_and_npsloop_sets():
    document = yaml.safe_load(DOCUMENT.read_text())
    for name, message in document["components"]["messages"].items():
        if name == "deadLetter":
            continue
        required = set(message["payload"]["required"])
        assert {"specversion", "id", "source", "type"} <= required, name
        assert {"time", "subject", "datacontenttype", "partitionkey", "data"} <= required, name
        # The Kafka binding's structured mode: the content type says so, no ce_ headers.
        headers = message["headers"]["properties"]
        assert headers == {"content-type": {"type": "string", "const": "application/cloudevents+json; charset=UTF-8"}}


def test_a_well_formed_event_validates():
    assert problems(valid_received_event()) == []


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda e: e.pop("id"), "'id' is a required property"),
        (lambda e: e.pop("source"), "'source' is a required property"),
        (lambda e: e.pop("specversion"), "'specversion' is a required property"),
        (lambda e: e.update(specversion="0.3"), "specversion"),
        (lambda e: e.update(time="yesterday"), "time"),
        (lambda e: e["data"].update(score="not a number"), "data/score"),
        (lambda e: e["data"].update(score=11), "data/score"),
        (lambda e: e["data"].pop("customer"), "'customer' is a required property"),
        (lambda e: e["data"]["customer"].pop("id"), "'id' is a required property"),
        (lambda e: e["data"].update(surprise=True), "'surprise' was unexpected"),
        (lambda e: e["data"]["survey"].update(kind="weekly"), "data/survey/kind"),
        (lambda e: e.update(type="npsloop.response.invented.v1"), "is not documented"),
    ],
)
def test_a_malformed_event_is_rejected_with_the_reason(change, named):
    event = copy.deepcopy(valid_received_event())
    change(event)
    found = problems(event)
    assert found and any(named in p for p in found), found


def test_the_asyncapi_cli_validates_the_document(tmp_path):
    if not ASYNCAPI_CLI.exists():
        if shutil.which("npm") is None:
            require_tool("npm is not installed, so the AsyncAPI CLI (@asyncapi/cli) cannot be")
        require_tool("the AsyncAPI CLI is not installed: run `npm ci` (make install-test does)")
    # Its usage metrics are off (they would be sent to a third party); the file says so.
    analytics = tmp_path / ".asyncapi-analytics"
    analytics.write_text(json.dumps({"analyticsEnabled": "false", "infoMessageShown": "true", "userID": "npsloop-ci"}))
    env = {**os.environ, "HOME": str(tmp_path), "ASYNCAPI_METRICS_CONFIG_PATH": str(analytics), "NO_COLOR": "1"}
    result = subprocess.run(
        [str(ASYNCAPI_CLI), "validate", str(DOCUMENT), "--fail-severity", "warn"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "is valid" in output, output
