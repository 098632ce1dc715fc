"""``asyncapi.yaml`` (AsyncAPI 3), generated from the event models in code.

The topics come from ``shared.events``, every event's ``data`` from ``shared.event_data``,
the topic names from ``Settings``' defaults. ``python -m npsloop.shared.asyncapi`` rewrites
the file; ``--check`` fails when the committed file and the models differ (CI runs it as
a test).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic.json_schema import models_json_schema

from npsloop.shared import events
from npsloop.shared.bus.kafka import CLOUDEVENTS_CONTENT_TYPE, DLQ_SUFFIX
from npsloop.shared.event_data import DATA_MODELS
from npsloop.shared.settings import Settings

HEADER = "# Generated from shared/event_data.py by `python -m npsloop.shared.asyncapi`; do not edit by hand.\n"
SCHEMAS_REF = "#/components/schemas/{model}"
KAFKA_CONTENT_TYPE = CLOUDEVENTS_CONTENT_TYPE.decode()

# Headers a dead-lettered copy carries besides the original's (shared/bus/kafka.py).
DLQ_HEADERS = {
    "dlq_error": "The handler's last error (truncated to 2,000 characters).",
    "dlq_consumer": "The consumer group's service name, e.g. classifier.",
    "dlq_original_topic": "The topic the record was consumed from.",
    "dlq_original_partition": "Its partition.",
    "dlq_original_offset": "Its offset.",
    "dlq_attempts": "How many times the handler was tried.",
}

DESCRIPTION = """\
CloudEvents 1.0 that npsloop publishes, in the JSON event format.

On Kafka every record is in the structured content mode of the CloudEvents Kafka protocol
binding: the whole event is the record value, the `content-type` header is
`application/cloudevents+json; charset=UTF-8` and there are no `ce_` headers. The record
key is the customer id (the `partitionkey` extension attribute), so one customer's events
keep their order.

Outbound webhooks carry the same event as their body, signed per Standard Webhooks
(docs/integrating.md).

Topic names are the defaults (NPSLOOP_KAFKA_TOPIC_PREFIX=npsloop); each is configurable."""


def message_name(event_type: str) -> str:
    """npsloop.followup.sla_warning.v1 -> followupSlaWarningV1"""
    words = event_type.removeprefix("npsloop.").replace("_", ".").split(".")
    return words[0] + "".join(w.capitalize() for w in words[1:])


def _untitled(schema: Any) -> Any:
    """Pydantic's schema without its generated ``title`` keys (noise in a published document)."""
    if isinstance(schema, list):
        return [_untitled(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "properties":
            out[key] = {name: _untitled(prop) for name, prop in value.items()}
        else:
            out[key] = _untitled(value)
    return out


def data_schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    """(event type -> ``$ref`` of its data schema, the shared schemas for ``components``)."""
    models = list(dict.fromkeys(model for model, _ in DATA_MODELS.values()))
    refs, definitions = models_json_schema(
        [(model, "validation") for model in models], ref_template=SCHEMAS_REF, title="npsloop event data"
    )
    by_model = {model: refs[(model, "validation")] for model in models}
    data_refs = {event_type: by_model[model] for event_type, (model, _) in DATA_MODELS.items()}
    return data_refs, _untitled(definitions.get("$defs", {}))


def envelope_schema(event_type: str, data_ref: dict[str, Any]) -> dict[str, Any]:
    """The CloudEvent npsloop writes: every attribute it sets is required and typed."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "specversion",
            "id",
            "source",
            "type",
            "time",
            "subject",
            "datacontenttype",
            "partitionkey",
            "data",
        ],
        "properties": {
            "specversion": {"type": "string", "const": "1.0"},
            "id": {"type": "string", "minLength": 1, "description": "Unique per event; de-duplicate on it."},
            "source": {"type": "string", "const": events.SOURCE},
            "type": {"type": "string", "const": event_type},
            "time": {"type": "string", "format": "date-time", "description": "When the event happened (UTC)."},
            "subject": {
                "type": "string",
                "minLength": 1,
                "description": "The id of what the event is about: a response, task, referral, customer or team.",
            },
            "datacontenttype": {"type": "string", "const": "application/json"},
            "partitionkey": {
                "type": "string",
                "minLength": 1,
                "description": "CloudEvents partitioning extension: the Kafka record key. The customer id "
                "(team:NAME for digests), so one customer's events keep their order.",
            },
            "data": data_ref,
        },
    }


def build_document(settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or Settings.model_construct()  # defaults only: the environment must not change the document
    data_refs, schemas = data_schemas()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
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
        operations[f"publish{logical.capitalize()}"] = {
            "action": "send",
            "summary": "The outbox relay publishes each event once the transaction that wrote it committed.",
            "channel": {"$ref": f"#/channels/{logical}"},
            "messages": [{"$ref": f"#/channels/{logical}/messages/{message_name(t)}"} for t in types],
        }
        operations[f"consume{logical.capitalize()}"] = {
            "action": "receive",
            "summary": "npsloop's own services consume the topic, one consumer group per service.",
            "channel": {"$ref": f"#/channels/{logical}"},
            "bindings": {
                "kafka": {"groupId": {"type": "string", "description": "PREFIX.CONSUMER, one group per service"}}
            },
        }
        for event_type in types:
            summary = DATA_MODELS[event_type][1]
            messages[message_name(event_type)] = {
                "name": event_type,
                "title": event_type,
                "summary": summary,
                "contentType": "application/cloudevents+json",
                "payload": envelope_schema(event_type, data_refs[event_type]),
                "headers": {
                    "type": "object",
                    "required": ["content-type"],
                    "properties": {"content-type": {"type": "string", "const": KAFKA_CONTENT_TYPE}},
                },
                "bindings": {"kafka": {"key": {"type": "string", "description": "The customer id."}}},
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
        "asyncapi": "3.1.0",
        "info": {"title": "npsloop events", "version": "1.0.0", "description": DESCRIPTION},
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
        "components": {"messages": messages, "schemas": schemas},
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line descriptions as literal blocks, so the file reads like the docstrings."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def render(document: dict[str, Any] | None = None) -> str:
    return HEADER + yaml.dump(
        document or build_document(), Dumper=_Dumper, sort_keys=False, width=110, allow_unicode=True
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m npsloop.shared.asyncapi", description=__doc__)
    parser.add_argument("path", nargs="?", default="asyncapi.yaml", type=Path)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from the models")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.path.read_text(encoding="utf-8") if args.path.exists() else ""
        if current != text:
            print(f"{args.path} is out of date: run python -m npsloop.shared.asyncapi", file=sys.stderr)
            return 1
        return 0
    args.path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
