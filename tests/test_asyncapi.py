"""asyncapi.yaml is generated from the event models and must stay in step with them.

The expected document is built here from ``shared.events`` (types, topics, the CloudEvent
model) and ``Settings`` (default topic names); the test fails when the committed file
differs. To regenerate after changing events: NPSLOOP_REGENERATE_ASYNCAPI=1 pytest tests/test_asyncapi.py
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from npsloop.shared import events
from npsloop.shared.bus.kafka import DLQ_SUFFIX
from npsloop.shared.settings import Settings

DOCUMENT = Path(__file__).resolve().parent.parent / "asyncapi.yaml"

DLQ_HEADERS = {
    "dlq_error": "The handler's last error (truncated to 2,000 characters).",
    "dlq_consumer": "The consumer group's service name, e.g. classifier.",
    "dlq_original_topic": "The topic the record was consumed from.",
    "dlq_original_partition": "Its partition.",
    "dlq_original_offset": "Its offset.",
    "dlq_attempts": "How many times the handler was tried.",
}


def message_name(event_type: str) -> str:
    # npsloop.followup.sla_warning.v1 -> followupSlaWarningV1
    words = event_type.removeprefix("npsloop.").replace("_", ".").split(".")
    return words[0] + "".join(w.capitalize() for w in words[1:])


def envelope_schema(event_type: str) -> dict:
    schema = events.CloudEvent.model_json_schema()
    properties = {name: {k: v for k, v in prop.items() if k != "title"} for name, prop in schema["properties"].items()}
    properties["type"] = {"type": "string", "const": event_type}
    properties["specversion"] = {"type": "string", "const": "1.0"}
    properties["partitionkey"]["description"] = "The customer id; also the Kafka message key."
    properties["data"]["description"] = "The event's payload (JSON object)."
    return {"type": "object", "required": sorted(schema.get("required", [])), "properties": properties}


def build_document() -> dict:
    settings = Settings.model_construct()  # defaults only: the environment must not change the document
    channels: dict = {}
    operations: dict = {}
    messages: dict = {}
    for logical in sorted(set(events.EVENT_TOPICS.values())):
        address = settings.kafka_topic(logical)
        types = [t for t, topic in events.EVENT_TOPICS.items() if topic == logical]
        channels[logical] = {
            "address": address,
            "description": f"Events of the {logical} topic, keyed by customer id (per-customer order).",
            "messages": {message_name(t): {"$ref": f"#/components/messages/{message_name(t)}"} for t in types},
        }
        channels[f"{logical}DeadLetters"] = {
            "address": address + DLQ_SUFFIX,
            "description": f"Records from {address} that a consumer could not handle after its retries; "
            "the value and key are the original's.",
            "messages": {"deadLetter": {"$ref": "#/components/messages/deadLetter"}},
        }
        operations[f"consume{logical.capitalize()}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{logical}"},
            "bindings": {
                "kafka": {"groupId": {"type": "string", "description": "PREFIX.CONSUMER, one group per service"}}
            },
        }
        for event_type in types:
            messages[message_name(event_type)] = {
                "name": event_type,
                "contentType": "application/cloudevents+json",
                "payload": envelope_schema(event_type),
                "bindings": {"kafka": {"key": {"type": "string", "description": "customer id"}}},
                "headers": {
                    "type": "object",
                    "properties": {
                        "content-type": {"type": "string", "const": "application/cloudevents+json; charset=UTF-8"},
                        "ce_id": {"type": "string"},
                        "ce_type": {"type": "string", "const": event_type},
                    },
                },
            }
    messages["deadLetter"] = {
        "name": "deadLetter",
        "payload": {"description": "The original record's value, unchanged."},
        "headers": {
            "type": "object",
            "required": sorted(DLQ_HEADERS),
            "properties": {k: {"type": "string", "description": v} for k, v in DLQ_HEADERS.items()},
        },
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "npsloop events",
            "version": "1.0.0",
            "description": "CloudEvents 1.0 (structured mode, JSON) that npsloop publishes. Topic names are "
            "the defaults (NPSLOOP_KAFKA_TOPIC_PREFIX=npsloop); each is configurable.",
        },
        "defaultContentType": "application/cloudevents+json",
        "servers": {
            "kafka": {
                "host": "localhost:9094",
                "protocol": "kafka",
                "description": "The docker-compose broker (NPSLOOP_KAFKA_BOOTSTRAP_SERVERS).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def test_asyncapi_document_matches_the_event_models():
    expected = build_document()
    if os.environ.get("NPSLOOP_REGENERATE_ASYNCAPI") == "1":
        DOCUMENT.write_text(
            "# Generated from shared/events.py by tests/test_asyncapi.py; do not edit by hand.\n"
            + yaml.safe_dump(expected, sort_keys=False, width=110)
        )
    assert yaml.safe_load(DOCUMENT.read_text()) == expected, (
        "asyncapi.yaml is out of date: NPSLOOP_REGENERATE_ASYNCAPI=1 pytest tests/test_asyncapi.py"
    )


def test_every_event_type_is_documented_on_the_channel_of_its_topic():
    document = yaml.safe_load(DOCUMENT.read_text())
    assert document["asyncapi"].startswith("3.")
    for event_type, logical in events.EVENT_TOPICS.items():
        channel = document["channels"][logical]
        assert channel["address"] == f"npsloop.{logical}"
        assert message_name(event_type) in channel["messages"], event_type
        assert document["components"]["messages"][message_name(event_type)]["name"] == event_type
