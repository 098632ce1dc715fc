"""A running npsloop with a given policy file, and the local receivers its channels talk to:
a Slack-like receiver that checks Block Kit, an HTTP webhook receiver, an aiosmtpd server."""

from __future__ import annotations

import email
import socket
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import Message
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller

from npsloop.services.app import create_app
from npsloop.services.deliveries.scheduled import DeliveryWorker
from npsloop.services.followup.scheduled import check_sla
from npsloop.services.runtime import Runtime
from npsloop.shared import auth
from npsloop.shared.clock import ManualClock
from npsloop.shared.settings import Settings
from tests.receivers import HttpReceiver


def block_kit_problems(payload: dict) -> list[str]:
    """What Slack would refuse in an incoming-webhook message (the subset npsloop uses), with
    Block Kit's documented limits: text objects 1-3000 characters, headers 150, fields 2000
    and at most 10, button text 75 and url 3000, at most 50 blocks."""
    problems = []

    def text_object(where: str, obj: dict, limit: int, kinds=("mrkdwn", "plain_text")) -> None:
        if obj.get("type") not in kinds:
            problems.append(f"{where}: text type must be one of {kinds}")
        text = obj.get("text")
        if not isinstance(text, str) or not 1 <= len(text) <= limit:
            problems.append(f"{where}: text needs 1-{limit} characters, has {len(text or '')}")
        if "verbatim" in obj and obj["type"] != "mrkdwn":
            problems.append(f"{where}: verbatim is for mrkdwn only")

    if not isinstance(payload.get("text"), str) or not payload["text"]:
        problems.append("text: a fallback text is required")
    blocks = payload.get("blocks")
    if not isinstance(blocks, list) or not 1 <= len(blocks) <= 50:
        return problems + ["blocks: 1-50 blocks required"]
    for i, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "header":
            text_object(f"blocks.{i}.text", block["text"], 150, ("plain_text",))
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"blocks.{i}: section needs text or fields")
            if "text" in block:
                text_object(f"blocks.{i}.text", block["text"], 3000)
            for j, f in enumerate(block.get("fields", [])):
                text_object(f"blocks.{i}.fields.{j}", f, 2000)
            if len(block.get("fields", [])) > 10:
                problems.append(f"blocks.{i}: at most 10 fields")
        elif kind == "actions":
            for element in block["elements"]:
                if element["type"] != "button" or not element["url"].startswith("http") or len(element["url"]) > 3000:
                    problems.append(f"blocks.{i}: button needs a url of up to 3000 characters")
                text_object(f"blocks.{i}.button", element["text"], 75, ("plain_text",))
        elif kind == "context":
            if not 1 <= len(block["elements"]) <= 10:
                problems.append(f"blocks.{i}: context needs 1-10 elements")
            for j, element in enumerate(block["elements"]):
                text_object(f"blocks.{i}.elements.{j}", element, 3000)
        else:
            problems.append(f"blocks.{i}: unexpected block type {kind!r}")
    return problems


def mrkdwn_texts(payload: dict) -> list[dict]:
    """Every mrkdwn text object of a message (section texts, fields, context elements)."""
    found = []
    for block in payload["blocks"]:
        for obj in [block.get("text"), *block.get("fields", []), *block.get("elements", [])]:
            if isinstance(obj, dict) and obj.get("type") == "mrkdwn":
                found.append(obj)
    return found


def inert_problems(payload: dict) -> list[str]:
    """Respondent text that Slack would turn into a mention, a link or a channel name: any
    ``<`` in mrkdwn (``<!channel>``, ``<url|text>``, ``<@U…>``), or a mrkdwn text without
    ``verbatim`` (automatic parsing of bare URLs, @mentions and #channels)."""
    problems = [f"fallback text has '<': {payload['text'][:80]!r}"] if "<" in payload["text"] else []
    for obj in mrkdwn_texts(payload):
        if "<" in obj["text"]:
            problems.append(f"mrkdwn has '<': {obj['text'][:80]!r}")
        if obj.get("verbatim") is not True:
            problems.append(f"mrkdwn not verbatim: {obj['text'][:80]!r}")
    return problems


class SlackReceiver(HttpReceiver):
    """Answers like Slack: 200 "ok", or 400 "invalid_blocks" for a malformed message."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.problems: list[list[str]] = []

    def messages(self) -> list[dict]:
        found = []
        for request in self.requests:
            payload = request.json()
            self.problems.append(block_kit_problems(payload))
            found.append(payload)
        assert not any(self.problems), self.problems
        return found


def field_values(message: dict) -> dict[str, str]:
    values = {}
    for block in message["blocks"]:
        for f in block.get("fields", []):
            label, _, value = f["text"].partition("\n")
            values[label.strip("*")] = value
    return values


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def slack():
    r = SlackReceiver()
    yield r
    r.close()


@pytest.fixture
def hook():
    r = HttpReceiver()
    yield r
    r.close()


@pytest.fixture
def smtp():
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    controller.inbox = inbox
    yield controller
    controller.stop()


@dataclass
class Loop:
    """npsloop with a policy: the app, its consumers, SLA monitor and delivery worker, driven by hand."""

    runtime: Runtime
    client: httpx.AsyncClient
    clock: ManualClock
    headers: dict[str, str] = field(default_factory=dict)

    async def pump(self) -> None:
        subs = self.runtime.subscriptions()
        while True:
            worked = False
            for sub in subs:
                worked = await self.runtime.transport.drain_once(sub) or worked
            if not worked:
                return

    async def respond(
        self,
        score: int,
        who: str = "c1",
        comment: str | None = "It keeps crashing",
        *,
        customer: dict | None = None,
        **extra,
    ) -> str:
        body = {"score": score, "comment": comment, "customer": {"id": who, **(customer or {})}, **extra}
        reply = await self.client.post("/v1/responses", json=body, headers=self.headers)
        assert reply.status_code == 202, reply.text
        await self.pump()
        return reply.json()["id"]

    async def tick(self, **advance: float) -> None:
        """Move the clock, run the SLA monitor, drain the consumers."""
        self.clock.advance(**advance)
        async with self.runtime.db.unit_of_work() as session:
            await check_sla(session, clock=self.clock)
        await self.pump()

    async def deliver(self) -> int:
        worker = DeliveryWorker(
            self.runtime.db,
            self.clock,
            timeout=5,
            max_age=timedelta(hours=26),
            allow_private=True,
            settings=self.runtime.settings,
            policy=self.runtime.policy,
        )
        try:
            return await worker.run_once()
        finally:
            await worker.close()

    async def tasks(self, **params) -> list[dict]:
        return (await self.client.get("/v1/tasks", params=params, headers=self.headers)).json()["tasks"]


@pytest.fixture
async def make_loop(database_url: str, tmp_path: Path, clock: ManualClock) -> AsyncIterator:
    made: list[Runtime] = []
    clients: list[httpx.AsyncClient] = []

    async def make(policy_yaml: str, **settings_overrides) -> Loop:
        path = tmp_path / f"policy-{len(made)}.yaml"
        path.write_text(textwrap.dedent(policy_yaml))
        settings = Settings(
            database_url=database_url,
            data_dir=tmp_path / "data",
            environment="test",
            allow_private_webhook_urls=True,
            handler_retry_base_seconds=0.0,
            poll_interval_seconds=0.05,
            policy_file=path,
            public_url="http://npsloop.test",
            **settings_overrides,
        )
        runtime = Runtime.build(settings, clock=clock)
        made.append(runtime)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(runtime, worker_roles=())), base_url="http://npsloop.test"
        )
        clients.append(client)
        async with runtime.db.unit_of_work() as session:
            _, clear = await auth.create_key(session, name="dana", scopes=["admin"], clock=clock)
        return Loop(runtime, client, clock, {"Authorization": f"Bearer {clear}"})

    yield make
    for client in clients:
        await client.aclose()
    for runtime in made:
        await runtime.close()
