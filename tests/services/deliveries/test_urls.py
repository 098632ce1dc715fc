"""Private webhook targets are refused again at delivery time, and the delivery client connects
only to the address it checked (SSRF and DNS rebinding: services/deliveries/urls.py)."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import text

from npsloop.services.deliveries.scheduled import DeliveryWorker
from tests.factories import post_response, subscribe_webhook
from tests.support.receivers import HttpReceiver


async def test_a_webhook_target_that_turns_private_is_refused_at_delivery_time(client, runtime, make_key, pump):
    """The subscription was accepted while private targets were allowed (standing in for a
    host name that resolved to a public address then); by delivery time it is refused."""
    receiver = HttpReceiver()
    try:
        headers = await make_key("admin")
        await subscribe_webhook(client, headers, receiver.url)
        await post_response(client, headers, score=2, customer="c-ssrf")
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
