"""Abuse: limits, error bodies that leak nothing, keys hashed and revoked at once, rate limits,
and private webhook targets refused again at delivery time."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
from sqlalchemy import select, text

from npsloop.services.deliveries.scheduled import DeliveryWorker
from npsloop.shared.models import ApiKey
from npsloop.shared.web import DbDep
from tests.support.receivers import HttpReceiver

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


async def test_a_webhook_target_that_turns_private_is_refused_at_delivery_time(client, runtime, make_key, pump):
    """The subscription was accepted while private targets were allowed (standing in for a
    host name that resolved to a public address then); by delivery time it is refused."""
    receiver = HttpReceiver()
    try:
        headers = await make_key("admin")
        assert (
            await client.post("/v1/webhooks", json={"url": receiver.url, "events": ["*"]}, headers=headers)
        ).status_code == 201
        await client.post("/v1/responses", json={"score": 2, "customer": {"id": "c-ssrf"}}, headers=headers)
        await pump()
        worker = DeliveryWorker(runtime.db, runtime.clock, timeout=5, max_age=timedelta(hours=26), allow_private=False)
        assert await worker.run_once() > 0
        await worker.close()
        assert receiver.requests == []
        async with runtime.db.sessions() as session:
            errors = (await session.scalars(text("SELECT error FROM delivery_attempts"))).all()
        assert errors and all(e and "address" in e for e in errors)
    finally:
        receiver.close()


async def test_a_name_that_rebinds_to_loopback_after_the_check_is_never_connected_to(monkeypatch):
    """DNS rebinding: the name resolves to a public address for the up-front check and to
    127.0.0.1 (where a receiver listens) when the client connects. The delivery client
    connects only to an address it checked at connection time, so nothing reaches the receiver."""
    import asyncio
    import socket

    from npsloop.services.deliveries import channels
    from npsloop.services.deliveries.urls import guarded_client
    from npsloop.shared.settings import Settings

    receiver = HttpReceiver()
    real_getaddrinfo = asyncio.get_running_loop().getaddrinfo
    lookups: list[str] = []

    async def rebinding_getaddrinfo(host, port, *args, **kwargs):
        if (host.decode() if isinstance(host, bytes) else host) != "rebind.example":  # anyio passes bytes
            return await real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(host)
        address = "93.184.216.34" if len(lookups) == 1 else "127.0.0.1"  # public first, then loopback
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(
        type(asyncio.get_running_loop()), "getaddrinfo", lambda self, *a, **k: rebinding_getaddrinfo(*a, **k)
    )
    port = int(receiver.url.rsplit(":", 1)[1].split("/", 1)[0])
    url = f"http://rebind.example:{port}/hook"

    async def deliver(client: httpx.AsyncClient):
        lookups.clear()  # each delivery: check_url sees the public answer, the connection the loopback one
        try:
            return await channels.send(
                client,
                channel_type="webhook",
                target=url,
                body=b"{}",
                msg_id="msg_rebind",
                secret=None,
                settings=Settings(),
                allow_private=False,
            )
        finally:
            await client.aclose()

    try:
        # The attack works against a client that resolves the name again: it reaches loopback.
        unguarded = await deliver(httpx.AsyncClient(timeout=5))
        assert unguarded.status_code == 200 and len(receiver.requests) == 1
        guarded = await deliver(guarded_client(timeout=5, allow_private=False))
    finally:
        receiver.close()
    assert len(lookups) == 2, "the name was not looked up again at connection time"
    assert guarded.status_code is None and "refused" in guarded.error and "127.0.0.1" in guarded.error, guarded
    assert len(receiver.requests) == 1  # only the unguarded client's request


async def test_the_guarded_client_delivers_to_the_address_it_checked(monkeypatch):
    """The other half: a name whose address passes the check is connected to, with the
    request's Host header still naming the host (so virtual hosts and TLS names keep working).
    Loopback stands in for a public address here — the machine has no internet — by letting
    the check accept it."""
    import asyncio
    import socket

    from npsloop.services.deliveries import urls

    receiver = HttpReceiver()
    real_getaddrinfo = asyncio.get_running_loop().getaddrinfo

    async def fake_getaddrinfo(host, port, *args, **kwargs):
        if (host.decode() if isinstance(host, bytes) else host) == "hooks.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return await real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(
        type(asyncio.get_running_loop()), "getaddrinfo", lambda self, *a, **k: fake_getaddrinfo(*a, **k)
    )
    monkeypatch.setattr(urls, "_check_address", lambda address: None)
    port = int(receiver.url.rsplit(":", 1)[1].split("/", 1)[0])
    client = urls.guarded_client(timeout=5, allow_private=False)
    try:
        reply = await client.post(f"http://hooks.example:{port}/hook", content=b"{}")
    finally:
        await client.aclose()
        receiver.close()
    assert reply.status_code == 200
    assert len(receiver.requests) == 1
    assert receiver.requests[0].headers["host"] == f"hooks.example:{port}"
