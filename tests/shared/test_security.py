"""Abuse: limits, error bodies that leak nothing, keys hashed and revoked at once, rate limits.
Private webhook targets refused at delivery time: tests/services/deliveries/test_urls.py."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import select, text

from npsloop.shared.models import ApiKey
from npsloop.shared.web import DbDep

LEAKS = (
    "traceback",
    "select ",
    "insert ",
    "from api_keys",
    "sqlalchemy",
    "asyncpg",
    "sqlite3",
    "whsec_",
    'file "',
    "line ",
    "nps_",
)


def assert_leaks_nothing(reply) -> None:
    assert reply.headers["content-type"] == "application/problem+json"
    body = reply.text.lower()
    for marker in LEAKS:
        assert marker not in body, f"{marker!r} in {reply.status_code} body: {reply.text}"
    problem = reply.json()
    assert problem["status"] == reply.status_code and problem["title"]


async def test_error_bodies_never_show_stack_traces_sql_or_secrets(client, runtime, make_key):
    """Two throwaway routes raise the way real bugs do: a Python error whose message holds a
    secret and SQL, and a real SQL error from the database driver."""
    headers = await make_key("admin")
    app = client._transport.app

    async def python_bug() -> None:
        raise RuntimeError("SELECT key_hash FROM api_keys WHERE id='x' -- whsec_c2VjcmV0 nps_abc_def")

    async def sql_bug(db: DbDep) -> None:
        async with db.unit_of_work() as session:
            await session.execute(text("SELECT secret FROM webhook_subscriptions WHERE no_such_column = 1"))

    app.add_api_route("/v1/_test/python-bug", python_bug)
    app.add_api_route("/v1/_test/sql-bug", sql_bug)
    # As a server sees it: the 500 page is sent, then the error goes to the server's log.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://npsloop.test") as server_view:
        for path in ("/v1/_test/python-bug", "/v1/_test/sql-bug"):
            reply = await server_view.get(path)
            assert reply.status_code == 500
            assert_leaks_nothing(reply)

    replies = [
        await client.post(
            "/v1/responses",
            content=b'{"score": 5, "customer": {"id": ',
            headers={**headers, "content-type": "application/json"},
        ),
        await client.post(
            "/v1/responses",
            content=b"x" * (runtime.settings.max_body_bytes + 1),
            headers={**headers, "content-type": "application/json"},
        ),
        await client.post("/v1/responses", json={"score": "ten", "customer": {"id": "c"}}, headers=headers),
        await client.get("/v1/responses/does-not-exist", headers=headers),
        await client.get("/v1/responses/x", headers={"Authorization": "Bearer nps_deadbeef_guess"}),
        await client.delete("/v1/responses/x", headers=headers),
        await client.get("/v1/nowhere"),
    ]
    replies.append(
        await client.post(
            "/v1/responses", json={"score": 5, "customer": {"id": "c"}}, headers={**headers, "Idempotency-Key": ""}
        )
    )  # found by schemathesis: was a 500
    assert [r.status_code for r in replies] == [400, 413, 422, 404, 401, 405, 404, 422]
    for reply in replies:
        assert_leaks_nothing(reply)
    assert "score" in replies[2].json()["errors"][0]["field"]


async def test_keys_are_stored_only_as_hashes_and_revocation_takes_effect_at_once(client, runtime, make_key):
    headers = await make_key("responses:write", "responses:read")
    clear = headers["Authorization"].split(" ", 1)[1]
    async with runtime.db.sessions() as session:
        # every column of every stored key row, not the ORM objects' reprs
        dumped = json.dumps([list(map(str, row)) for row in (await session.execute(select(ApiKey.__table__))).all()])
    secret = clear.split("_", 2)[2]
    assert len(secret) >= 24 and clear.split("_")[1] in dumped  # the id is stored in clear, so the dump is real
    assert clear not in dumped and secret not in dumped
    body = {"score": 8, "customer": {"id": "c-revoke"}}
    assert (await client.post("/v1/responses", json=body, headers=headers)).status_code == 202  # key now cached

    admin = await make_key("admin")
    from npsloop.shared import auth

    async with runtime.db.unit_of_work() as session:
        assert await auth.revoke_key(session, clear.split("_")[1], clock=runtime.clock)
    for method, path, kwargs in (("POST", "/v1/responses", {"json": body}), ("GET", "/v1/tasks", {})):
        reply = await client.request(method, path, headers=headers, **kwargs)
        assert reply.status_code == 401, (path, reply.text)
    assert (await client.get("/v1/tasks", headers=admin)).status_code == 200


async def test_a_key_over_its_rate_gets_429_with_retry_after_and_other_keys_are_not_affected(client, runtime, make_key):
    runtime.settings.rate_limit_per_second = 0.5
    runtime.settings.rate_limit_burst = 3
    busy = await make_key("tasks:read", name="busy-app")
    calm = await make_key("tasks:read", name="calm-app")
    statuses = [(await client.get("/v1/tasks", headers=busy)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = await client.get("/v1/tasks", headers=busy)
    assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 2
    assert_leaks_nothing(limited)
    assert (await client.get("/v1/tasks", headers=calm)).status_code == 200


def test_the_default_rate_limit_is_generous():
    from npsloop.shared.settings import Settings

    settings = Settings()
    assert settings.rate_limit_per_second >= 1000 and settings.rate_limit_burst >= 2000
