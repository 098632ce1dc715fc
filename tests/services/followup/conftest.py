"""A running npsloop with a given policy file, driven by hand; the local receivers its channels
talk to (Slack, webhook, SMTP) are the ``slack``, ``hook`` and ``smtp`` fixtures of tests/conftest.py."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from npsloop.services.app import create_app
from npsloop.services.deliveries.scheduled import DeliveryWorker
from npsloop.services.followup.scheduled import check_sla
from npsloop.services.runtime import Runtime
from npsloop.shared import auth
from npsloop.shared.clock import ManualClock
from npsloop.shared.settings import Settings
from tests.factories import DETRACTOR_COMMENT, post_response, response_body
from tests.support.event_contract import assert_logged_events_conform


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
        comment: str | None = DETRACTOR_COMMENT,
        *,
        customer: dict | None = None,
        **extra,
    ) -> str:
        """POST a response from ``who`` (``customer`` adds to its customer object), then drain."""
        body = response_body(score, who, comment, **extra)
        body["customer"].update(customer or {})
        response_id = await post_response(self.client, self.headers, body)
        await self.pump()
        return response_id

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
async def make_loop(
    database_url: str, tmp_path: Path, clock: ManualClock, request: pytest.FixtureRequest
) -> AsyncIterator:
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
    if made and request.node.get_closest_marker("hand_made_events") is None:
        await assert_logged_events_conform(database_url)
