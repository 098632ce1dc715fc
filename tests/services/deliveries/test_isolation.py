"""Per-destination isolation: a receiver that hangs or fails holds back only its own deliveries.

Real receivers on 127.0.0.1 — one that accepts and never answers, one that answers 500,
healthy ones, a Slack-like one — beside each other, and the delivery worker running as
it runs in production (its loop, not one round at a time).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from npsloop.services.deliveries import scheduled
from npsloop.services.deliveries.models import Delivery
from npsloop.services.deliveries.scheduled import LIMIT_GROWTH, DeliveryWorker
from tests.factories import post_response, response_body
from tests.services.followup.conftest import Loop, make_loop  # noqa: F401 - fixtures
from tests.support.receivers import HangingReceiver, HttpReceiver

OPENED = "npsloop.followup.opened.v1"


def policy(slack) -> str:
    return f"""
    channels:
      cs-slack: {{type: slack, url: "{slack.url}"}}
    teams:
      cs: {{members: [ann], channel: cs-slack}}
    """


@pytest.fixture
def hanging():
    r = HangingReceiver()
    yield r
    r.close()


@pytest.fixture
def healthy():
    r = HttpReceiver()
    yield r
    r.close()


@pytest.fixture
def failing():
    r = HttpReceiver(status=500)
    yield r
    r.close()


async def subscribe(loop: Loop, url: str) -> dict:
    reply = await loop.client.post("/v1/webhooks", json={"url": url, "events": [OPENED]}, headers=loop.headers)
    assert reply.status_code == 201, reply.text
    return reply.json()


def worker(loop: Loop, *, timeout: float, per_destination: int) -> DeliveryWorker:
    return DeliveryWorker(
        loop.runtime.db,
        loop.clock,
        timeout=timeout,
        max_age=timedelta(hours=26),
        allow_private=True,
        per_destination=per_destination,
        settings=loop.runtime.settings,
        policy=loop.runtime.policy,
    )


@asynccontextmanager
async def running(loop: Loop, *, timeout: float, per_destination: int, poll: float = 0.05) -> AsyncIterator[None]:
    """The delivery worker running in its own loop, as in production, stopped and closed after."""
    w = worker(loop, timeout=timeout, per_destination=per_destination)
    stop = asyncio.Event()
    task = asyncio.create_task(w.run(stop, poll_interval=poll))
    try:
        yield
    finally:
        stop.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await w.close()


async def until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Bounded wait for the worker loop to get somewhere (not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds:.0f} s: {what}"
        await asyncio.sleep(0.02)


async def scrape(loop: Loop) -> str:
    reply = await loop.client.get("/metrics")
    assert reply.status_code == 200
    return reply.text


def gauge(text: str, name: str) -> dict[str, float]:
    """A per-destination gauge's samples by destination label (all of kind subscription here)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples if family.name == name else ():
            assert sample.labels["kind"] == "subscription"
            found[sample.labels["destination"]] = sample.value
    return found


async def respond_detractors(loop: Loop, count: int) -> None:
    """``count`` detractors from different customers, each alerting every destination."""
    for i in range(count):
        await loop.respond(2, f"c{i}", comment=f"Broken again {i}")


async def statuses(loop: Loop, subscription_id: str | None) -> list[str]:
    """Statuses of a subscription's deliveries (None: of the policy channels')."""
    async with loop.runtime.db.sessions() as session:
        query = select(Delivery.status).where(
            Delivery.subscription_id == subscription_id if subscription_id else Delivery.channel.is_not(None)
        )
        return list((await session.scalars(query)).all())


async def test_a_hanging_destination_holds_only_its_share_while_every_other_destination_flows(
    make_loop, slack, hanging, healthy
):
    """Three subscriptions to a receiver that never answers hold at most their share each; the
    healthy subscription and the Slack channel get all their alerts, recorded as delivered,
    while every hanging send is still waiting for its (long) timeout."""
    loop = await make_loop(policy(slack))
    stuck = [await subscribe(loop, hanging.url(f"/hang/{i}")) for i in range(3)]
    good = await subscribe(loop, healthy.url)
    detractors = 30
    await respond_detractors(loop, detractors)
    share = 4
    async with running(loop, timeout=60, per_destination=share):
        await until(lambda: len(healthy.requests) >= detractors and len(slack.requests) >= detractors, 30, "alerts")
        await until(lambda: hanging.open_requests == 3 * share, 10, "hanging sends")
        # Recorded as each finished, not when the slowest of a round ended.
        for _ in range(100):
            delivered = await statuses(loop, good["id"]) + await statuses(loop, None)
            if delivered == ["delivered"] * 2 * detractors:
                break
            await asyncio.sleep(0.05)
        assert delivered == ["delivered"] * 2 * detractors
        assert hanging.most_open == 3 * share and len(hanging.requests) == 3 * share  # none timed out yet
        listing = (await loop.client.get("/v1/deliveries", headers=loop.headers)).json()
        backlog = {d["id"]: d for d in listing["destinations"]}
        for subscription in stuck:
            assert backlog[subscription["id"]]["kind"] == "subscription"
            assert backlog[subscription["id"]]["pending"] == detractors
        assert good["id"] not in backlog and "cs-slack" not in backlog
    assert len({r.headers["webhook-id"] for r in healthy.requests}) == detractors
    slack.messages()  # every Slack message is valid Block Kit
    pending = gauge(await scrape(loop), "npsloop_delivery_destination_pending")
    assert pending == {s["id"][:8]: detractors for s in stuck}  # labels: short ids, never URLs


async def test_a_destination_that_answers_quickly_earns_more_slots_and_a_hanging_one_none(make_loop, slack, hanging):
    """Under a backlog, a receiver answering within a fraction of the timeout gets more sends
    in flight than the base share (up to LIMIT_GROWTH times it); one that never answers
    keeps the base for its whole timeout."""
    quick = HttpReceiver(delay=0.05)
    try:
        loop = await make_loop(policy(slack))
        await subscribe(loop, hanging.url("/hang"))
        good = await subscribe(loop, quick.url)
        detractors = 80
        await respond_detractors(loop, detractors)
        base = 2
        async with running(loop, timeout=60, per_destination=base):
            await until(lambda: len(quick.requests) >= detractors, 60, "the quick receiver's alerts")
            await until(lambda: hanging.open_requests == base, 10, "hanging sends")
            # Recorded while the worker runs: stopping it (cancelled here) may drop the last
            # group's records, which are then sent again with the same id when the lease ends.
            for _ in range(100):
                delivered = (await statuses(loop, good["id"])).count("delivered")
                if delivered == detractors:
                    break
                await asyncio.sleep(0.05)
        assert delivered == detractors
        assert base < quick.most_open <= base * LIMIT_GROWTH
        assert hanging.most_open == base and len(hanging.requests) == base
        assert len({r.headers["webhook-id"] for r in quick.requests}) == detractors
    finally:
        quick.close()


async def test_a_failing_destination_is_backed_off_as_a_whole_and_recovers_by_itself(
    make_loop, slack, failing, healthy, clock
):
    loop = await make_loop(policy(slack))
    down = await subscribe(loop, failing.url)
    await subscribe(loop, healthy.url)
    for i in range(10):
        await loop.respond(3, f"c{i}")
    async with running(loop, timeout=5, per_destination=2, poll=0.02):
        await until(lambda: len(healthy.requests) == 10 and len(slack.requests) == 10, 20, "healthy alerts")

        async def breaker() -> dict:
            listing = (await loop.client.get(f"/v1/webhooks/{down['id']}/deliveries", headers=loop.headers)).json()
            return listing["destinations"][0] if listing["destinations"] else {}

        for _ in range(200):
            if (await breaker()).get("state") == "open":
                break
            await asyncio.sleep(0.02)
        state = await breaker()
        assert state["state"] == "open" and state["pending"] == 10 and state["last_error"] == "HTTP 500"
        tried = len(failing.requests)
        assert 3 <= tried <= 4  # the threshold, plus the send in flight beside the third
        await asyncio.sleep(0.5)  # many worker cycles: none sends to the backed-off destination
        assert len(failing.requests) == tried
        assert gauge(await scrape(loop), "npsloop_delivery_destination_open") == {down["id"][:8]: 1.0}

        failing.status = 200
        clock.advance(seconds=8)  # past the first cooldown (5 s ± 20 %) and the first retries' backoff
        await until(lambda: len(failing.requests) >= tried + 10, 20, "the backlog after recovery")
        for _ in range(100):  # recorded just after the receiver saw them
            if set(await statuses(loop, down["id"])) == {"delivered"}:
                break
            await asyncio.sleep(0.05)
        assert set(await statuses(loop, down["id"])) == {"delivered"}
        assert (await breaker()) == {}  # closed, nothing pending: no longer listed
    secret = down["secret"]
    by_event: dict[str, set[str]] = {}
    for request in failing.requests:
        payload = Webhook(secret).verify(request.body, request.headers)
        by_event.setdefault(payload["id"], set()).add(request.headers["webhook-id"])
    assert len(by_event) == 10 and all(ids == {event} for event, ids in by_event.items())
    # While it was backed off, its deliveries kept their attempts: only those tried have more than one.
    async with loop.runtime.db.sessions() as session:
        attempts = (
            await session.scalars(select(Delivery.attempts).where(Delivery.subscription_id == down["id"]))
        ).all()
    assert sorted(attempts) == [1] * (10 - tried) + [2] * tried


async def test_the_consumers_shared_turn_leases_the_alerts_it_queues_and_records_them_later(
    make_loop, backend, slack, healthy
):
    """In ``up`` on SQLite the worker books at the end of the consumers' shared turn: the turn
    that opens a detractor's task leases its alerts in the same commit and the sends start
    then, with no turn of the worker's own; a later turn records the answers."""
    if backend != "sqlite":
        pytest.skip("shared turns are for SQLite's single write slot")
    loop = await make_loop(policy(slack))
    good = await subscribe(loop, healthy.url)
    detractors = 5
    for i in range(detractors):  # stored, not yet handled by any consumer
        await post_response(loop.client, loop.headers, response_body(2, f"c{i}", f"Broken again {i}"))
    w = worker(loop, timeout=5, per_destination=detractors)
    subs, transport = loop.runtime.subscriptions(), loop.runtime.transport
    try:
        assert await transport.drain_together(subs, also=w)  # classified, task, alert rows, leased
        await until(lambda: len(healthy.requests) == detractors and len(slack.requests) == detractors, 10, "sends")
        assert await statuses(loop, good["id"]) == ["pending"] * detractors  # sent, not yet recorded
        for _ in range(100):
            await transport.drain_together(subs, also=w)
            if await statuses(loop, good["id"]) + await statuses(loop, None) == ["delivered"] * 2 * detractors:
                break
            await asyncio.sleep(0.05)
        assert await statuses(loop, good["id"]) + await statuses(loop, None) == ["delivered"] * 2 * detractors
    finally:
        await w.close()
    assert len({r.headers["webhook-id"] for r in healthy.requests}) == detractors


async def test_a_subscription_created_while_the_worker_runs_is_served_without_waiting_for_a_reread(
    make_loop, slack, healthy, monkeypatch
):
    """The worker reads the subscriptions now and then; a new one announces itself when its
    transaction commits, so its first alerts go at once. Here the worker would not read them
    again nor look for unknown destinations within the test: only the signal can bring it."""
    monkeypatch.setattr(scheduled, "SUBSCRIPTIONS_TTL_SECONDS", 3600.0)
    monkeypatch.setattr(scheduled, "DISCOVERY_SECONDS", 3600.0)
    loop = await make_loop(policy(slack))
    async with running(loop, timeout=10, per_destination=4):
        await respond_detractors(loop, 1)
        await until(lambda: len(slack.requests) >= 1, 10, "the worker running, its first read done")
        created = await subscribe(loop, healthy.url)
        await respond_detractors(loop, 3)
        await until(lambda: len(healthy.requests) >= 3, 10, "the new subscription's alerts")
        assert await statuses(loop, created["id"]) != []
        deleted = await loop.client.delete(f"/v1/webhooks/{created['id']}", headers=loop.headers)
        assert deleted.status_code in (200, 204), deleted.text
        await asyncio.sleep(0.2)
        await respond_detractors(loop, 2)
        await until(lambda: len(slack.requests) >= 6, 10, "the team's alerts")
    assert len(healthy.requests) == 3, "nothing sent to a deleted subscription"
