"""The lean POST /v1/responses path answers exactly as the full FastAPI stack does.

Two apps share one database: the real one (lean path in front) and one with the lean path
switched off. Every request below goes to both; status, content type, problem body and
the headers a client acts on must match. Valid requests must take the lean path (the
point of it) and still be durable, de-duplicated and announced like before.
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from sqlalchemy import func, select

from npsloop.services.app import create_app
from npsloop.services.ingest.models import Response
from npsloop.shared.models import EventLogEntry

BODY = {"score": 3, "comment": "Support never answered", "customer": {"id": "cust-fp", "segment": "smb"}}


@pytest.fixture
async def apps(runtime):
    """(lean, full): the app as deployed, and the same app with the lean path off."""
    lean, full = create_app(runtime, worker_roles=()), create_app(runtime, worker_roles=())
    full.fast_path = None
    calls = {"full_stack": 0}
    real_full_stack = lean.full_stack

    async def counting_full_stack(scope, receive, send):
        calls["full_stack"] += 1
        await real_full_stack(scope, receive, send)

    lean.fast_path.fallback = counting_full_stack
    clients = [
        httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://npsloop.test") for a in (lean, full)
    ]
    yield clients[0], clients[1], calls, lean
    for c in clients:
        await c.aclose()
    for a in (lean, full):
        await a.state.ingest_writer.close()


async def _both(apps, content: bytes, headers: dict[str, str]) -> tuple[httpx.Response, httpx.Response]:
    lean, full, *_ = apps
    return (
        await lean.post("/v1/responses", content=content, headers=headers),
        await full.post("/v1/responses", content=content, headers=headers),
    )


def _same(a: httpx.Response, b: httpx.Response) -> None:
    assert a.status_code == b.status_code, (a.text, b.text)
    assert a.headers["content-type"] == b.headers["content-type"]
    for header in ("www-authenticate", "retry-after"):
        assert a.headers.get(header) == b.headers.get(header)
    if a.headers["content-type"] == "application/problem+json":
        assert a.json() == b.json()


async def _count(runtime, model) -> int:
    async with runtime.db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def test_a_valid_post_takes_the_lean_path_and_is_stored_and_announced(apps, runtime, make_key):
    lean, _, calls, _ = apps
    headers = {**await make_key("responses:write"), "Idempotency-Key": "fp-1"}
    first = await lean.post("/v1/responses", json=BODY, headers=headers)
    again = await lean.post("/v1/responses", json=BODY, headers=headers)
    assert calls["full_stack"] == 0
    assert first.status_code == 202 and first.headers["content-type"] == "application/json"
    response_id = first.json()["id"]
    assert isinstance(response_id, str) and response_id
    parsed = uuid.UUID(response_id)  # the service's ids: version-7 UUIDs in the 8-4-4-4-12 form (shared/ids.py)
    assert str(parsed) == response_id and parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert first.json() == {"id": response_id, "status": "accepted", "duplicate": False}
    assert again.json() == {"id": response_id, "status": "accepted", "duplicate": True}
    assert await _count(runtime, Response) == 1 and await _count(runtime, EventLogEntry) == 1
    async with runtime.db.sessions() as session:
        assert await session.scalar(select(Response.id)) == response_id


async def test_a_charset_in_the_content_type_still_takes_the_lean_path(apps, make_key):
    lean, _, calls, _ = apps
    headers = {**await make_key("responses:write"), "Content-Type": "application/json; charset=utf-8"}
    reply = await lean.post("/v1/responses", content=json.dumps(BODY).encode(), headers=headers)
    assert reply.status_code == 202 and calls["full_stack"] == 0


@pytest.mark.parametrize(
    "content, extra, status",
    [
        (json.dumps({**BODY, "score": 11}).encode(), {}, 422),  # out of range: 422 naming score
        (json.dumps({**BODY, "score": "7"}).encode(), {}, 422),  # strict int
        (json.dumps({"score": 5}).encode(), {}, 422),  # customer missing
        (json.dumps({**BODY, "colour": "red"}).encode(), {}, 422),  # unknown field
        (json.dumps({**BODY, "responded_at": "2026-01-01T10:00:00"}).encode(), {}, 422),  # naive time
        (json.dumps([BODY]).encode(), {}, 422),  # not an object
        (b"{not json", {}, 400),  # 400
        (b"", {}, 422),  # no body
        (json.dumps(BODY).encode(), {"Content-Type": "text/plain"}, 415),  # not declared JSON
        (json.dumps(BODY).encode(), {"Idempotency-Key": ""}, 422),
        (json.dumps(BODY).encode(), {"Idempotency-Key": "k" * 201}, 422),
        (json.dumps({**BODY, "comment": "x" * 70_000}).encode(), {}, 422),  # comment too long: 422
        (b'{"comment": "' + b"x" * 1_100_000 + b'"}', {}, 413),  # over the body limit: 413
    ],
)
async def test_invalid_requests_get_the_same_answer_as_through_the_framework(apps, make_key, content, extra, status):
    headers = {**await make_key("responses:write"), "Content-Type": "application/json", **extra}
    lean, full = await _both(apps, content, headers)
    assert lean.status_code == status, lean.text
    assert full.status_code == status, full.text
    _same(lean, full)


@pytest.mark.parametrize("authorization", [None, "Basic abc", "Bearer ", "Bearer nps_nope_nope", "Bearer garbage"])
async def test_missing_or_unknown_keys_get_the_same_401(apps, authorization):
    headers = {"Content-Type": "application/json", **({"Authorization": authorization} if authorization else {})}
    lean, full = await _both(apps, json.dumps(BODY).encode(), headers)
    assert lean.status_code == 401
    _same(lean, full)


async def test_a_key_without_the_write_scope_gets_the_same_403(apps, make_key):
    headers = {**await make_key("responses:read"), "Content-Type": "application/json"}
    lean, full = await _both(apps, json.dumps(BODY).encode(), headers)
    assert lean.status_code == 403
    _same(lean, full)


async def test_an_idempotency_key_reused_for_another_body_gets_the_same_409(apps, make_key):
    headers = {**await make_key("responses:write"), "Content-Type": "application/json", "Idempotency-Key": "fp-409"}
    lean, full, *_ = apps
    assert (await lean.post("/v1/responses", json=BODY, headers=headers)).status_code == 202
    a = await lean.post("/v1/responses", json={**BODY, "score": 9}, headers=headers)
    b = await full.post("/v1/responses", json={**BODY, "score": 9}, headers=headers)
    assert a.status_code == 409
    _same(a, b)


async def test_a_key_revoked_after_it_was_cached_writes_nothing(apps, runtime, make_key):
    from npsloop.shared import auth

    lean, *_ = apps
    headers = await make_key("responses:write")
    assert (await lean.post("/v1/responses", json=BODY, headers=headers)).status_code == 202  # now cached
    key_id = headers["Authorization"].split("_")[1]
    async with runtime.db.unit_of_work() as session:
        await auth.revoke_key(session, key_id, clock=runtime.clock)
    reply = await lean.post("/v1/responses", json={**BODY, "score": 4}, headers=headers)
    assert reply.status_code == 401 and reply.headers["content-type"] == "application/problem+json"
    assert await _count(runtime, Response) == 1


async def test_in_one_group_commit_only_the_revoked_keys_submissions_are_refused(apps, runtime, make_key):
    """Concurrent POSTs share a group commit; the revocation check is per submission."""
    import asyncio

    from npsloop.shared import auth

    lean, *_ = apps
    revoked, active = await make_key("responses:write", name="old-app"), await make_key("responses:write")
    for headers in (revoked, active):  # both keys cached
        assert (await lean.post("/v1/responses", json=BODY, headers=headers)).status_code == 202
    async with runtime.db.unit_of_work() as session:
        await auth.revoke_key(session, revoked["Authorization"].split("_")[1], clock=runtime.clock)
    replies = await asyncio.gather(
        *(
            lean.post("/v1/responses", json={**BODY, "score": n % 11}, headers=revoked if n % 2 else active)
            for n in range(20)
        )
    )
    assert [r.status_code for r in replies] == [401 if n % 2 else 202 for n in range(20)]
    assert await _count(runtime, Response) == 2 + 10


async def test_over_the_rate_limit_the_answer_is_the_same_429_and_no_token_is_taken_twice(apps, make_key):
    from npsloop.shared.rate_limit import RateLimiter

    lean_client, full_client, calls, lean_app = apps
    headers = {**await make_key("responses:write"), "Content-Type": "application/json"}
    # One shared limiter with a burst of 2 and (almost) no refill.
    limiter = RateLimiter(0.001, 2)
    lean_app.state.rate_limiter = limiter
    full_client._transport.app.state.rate_limiter = limiter
    invalid = await lean_client.post("/v1/responses", json={**BODY, "score": 11}, headers=headers)
    assert invalid.status_code == 422  # handed to the framework: it took one token, not two
    assert (await lean_client.post("/v1/responses", json=BODY, headers=headers)).status_code == 202
    a = await lean_client.post("/v1/responses", json=BODY, headers=headers)
    b = await full_client.post("/v1/responses", json=BODY, headers=headers)
    assert a.status_code == 429
    _same(a, b)


def _batch(prefix: str, n: int) -> list[dict]:
    return [
        {
            "score": i % 11,
            "comment": "Too slow" if i % 2 else None,
            "external_id": f"{prefix}-{i}",
            "customer": {"id": f"{prefix}-c{i}"},
            "responded_at": "2026-05-01T10:00:00+02:00",
        }
        for i in range(n)
    ]


async def test_an_all_valid_batch_takes_the_lean_path_with_the_routes_answer(apps, runtime, make_key):
    lean, full, calls, _ = apps
    headers = await make_key("responses:write")
    fast = await lean.post("/v1/responses/batch", json={"responses": _batch("lean", 40)}, headers=headers)
    assert calls["full_stack"] == 0
    slow = await full.post("/v1/responses/batch", json={"responses": _batch("full", 40)}, headers=headers)
    assert fast.status_code == slow.status_code == 202
    strip = lambda doc: {**doc, "results": [{**r, "id": r["id"] is not None} for r in doc["results"]]}  # noqa: E731
    assert strip(fast.json()) == strip(slow.json())
    assert fast.json()["accepted"] == 40 and [r["index"] for r in fast.json()["results"]] == list(range(40))

    again = await lean.post("/v1/responses/batch", json={"responses": _batch("lean", 40)}, headers=headers)
    assert again.json()["duplicates"] == 40
    assert [r["id"] for r in again.json()["results"]] == [r["id"] for r in fast.json()["results"]]
    assert await _count(runtime, Response) == 80 and await _count(runtime, EventLogEntry) == 80

    async with runtime.db.sessions() as session:
        first = await session.get(Response, fast.json()["results"][1]["id"])
        envelope = (
            (
                await session.execute(
                    select(EventLogEntry.envelope)
                    .where(EventLogEntry.event_id.is_not(None))
                    .order_by(EventLogEntry.position)
                    .limit(2)
                )
            )
            .scalars()
            .all()[1]
        )
    assert (first.score, first.comment, first.external_id, first.customer_id) == (1, "Too slow", "lean-1", "lean-c1")
    assert first.responded_at.isoformat() == "2026-05-01T08:00:00+00:00"
    event = json.loads(envelope)
    assert event["subject"] == first.id and event["partitionkey"] == "lean-c1"
    assert event["data"]["responded_at"] == "2026-05-01T08:00:00+00:00" and event["data"]["comment"] == "Too slow"


async def test_a_batch_with_an_invalid_item_goes_to_the_route_which_reports_it(apps, runtime, make_key):
    lean, _, calls, _ = apps
    headers = await make_key("responses:write")
    items = _batch("mixed", 3)
    items[1]["score"] = 11
    reply = await lean.post("/v1/responses/batch", json={"responses": items}, headers=headers)
    assert calls["full_stack"] == 1 and reply.status_code == 202
    assert [r["status"] for r in reply.json()["results"]] == ["accepted", "rejected", "accepted"]
    assert reply.json()["results"][1]["errors"][0]["field"] == "score"
    assert await _count(runtime, Response) == 2


async def test_a_batch_from_a_key_revoked_after_it_was_cached_writes_nothing(apps, runtime, make_key):
    lean, _, calls, _ = apps
    headers = await make_key("responses:write")
    assert (
        await lean.post("/v1/responses/batch", json={"responses": _batch("rv", 1)}, headers=headers)
    ).status_code == 202  # the key is now cached
    from npsloop.shared import auth

    async with runtime.db.unit_of_work() as session:
        assert await auth.revoke_key(session, headers["Authorization"].split("_")[1], clock=runtime.clock)
    reply = await lean.post("/v1/responses/batch", json={"responses": _batch("rv2", 5)}, headers=headers)
    assert reply.status_code == 401 and reply.headers["content-type"] == "application/problem+json"
    assert await _count(runtime, Response) == 1
