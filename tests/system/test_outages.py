"""Outages: the database going away and coming back; a webhook receiver down for hours.

The database outage is real: npsloop talks to PostgreSQL through a TCP proxy the test
owns, and "down" means the proxy drops every connection and refuses new ones (the
machine's PostgreSQL server itself is never stopped; other work shares it).
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from npsloop.services.app import create_app
from npsloop.services.deliveries.scheduled import DeliveryWorker
from npsloop.services.ingest.models import Response
from npsloop.services.runtime import Runtime
from npsloop.shared.settings import Settings
from tests.factories import post_response, subscribe_webhook
from tests.support.receivers import HttpReceiver


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; ``down()`` cuts every connection and refuses new ones."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    def freeze(self) -> None:
        """Connections stay open but nothing passes either way: a database gone silent."""
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers |= {client_writer, upstream_writer}

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    await self._flowing.wait()
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.transport.abort()
                self._writers.discard(writer)

        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_with_the_database_down_ingest_answers_503_fast_and_recovers_by_itself(
    database_url, tmp_path, make_key, capsys
):
    from sqlalchemy.engine import make_url

    real = make_url(database_url)
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 5432)
    await proxy.up()
    settings = Settings(
        database_url=real.set(port=proxy.port).render_as_string(hide_password=False),
        data_dir=tmp_path / "data",
        environment="test",
    )
    runtime = Runtime.build(settings)
    headers = await make_key("admin")
    app = create_app(runtime, worker_roles=())
    body = {"score": 3, "comment": "down?", "customer": {"id": "c-outage"}}
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://npsloop.test") as http:
            before = await http.post("/v1/responses", json=body, headers={**headers, "Idempotency-Key": "k-before"})
            assert before.status_code == 202

            await proxy.down()
            answers = []
            for attempt in range(5):
                started = time.monotonic()
                reply = await http.post(
                    "/v1/responses", json=body, headers={**headers, "Idempotency-Key": f"k-during-{attempt}"}
                )
                answers.append((reply, time.monotonic() - started))
            for reply, seconds in answers:
                assert reply.status_code == 503, reply.text
                assert seconds < 6.0
                assert reply.headers["content-type"] == "application/problem+json"
                assert int(reply.headers["retry-after"]) >= 1
                text = reply.text.lower()
                assert "select" not in text and "insert" not in text and "traceback" not in text
                assert str(proxy.target[1]) not in text  # no connection details either
            ready = await http.get("/readyz")
            assert ready.status_code == 503

            await proxy.up()  # same port: the pool reconnects on its own
            recovered_after = time.monotonic()
            while True:
                again = await http.post(
                    "/v1/responses", json=body, headers={**headers, "Idempotency-Key": "k-during-0"}
                )
                if again.status_code == 202 or time.monotonic() - recovered_after > 10:
                    break
                await asyncio.sleep(0.2)
            assert again.status_code == 202, again.text
            repeat = await http.post("/v1/responses", json=body, headers={**headers, "Idempotency-Key": "k-during-0"})
            assert repeat.json()["id"] == again.json()["id"]
            assert (await http.get("/readyz")).status_code == 200
    finally:
        await runtime.close()
        if proxy._server is not None and proxy._server.is_serving():
            await proxy.down()

    # Counted straight on the database: exactly the two acknowledged responses, nothing half-written.
    direct = Runtime.build(Settings(database_url=database_url, data_dir=tmp_path / "data2", environment="test"))
    try:
        async with direct.db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Response)) == 2
    finally:
        await direct.close()
    slowest = max(s for _, s in answers)
    with capsys.disabled():
        print(
            f"\ndatabase down: 5 POSTs answered 503 in at most {slowest * 1000:.0f} ms; "
            f"recovered {time.monotonic() - recovered_after:.1f} s after the database came back"
        )


async def test_a_webhook_receiver_down_for_hours_gets_the_alert_once_it_is_back(client, runtime, clock, make_key, pump):
    receiver = HttpReceiver(status=503)
    worker = DeliveryWorker(runtime.db, runtime.clock, timeout=5, max_age=timedelta(hours=26), allow_private=True)
    try:
        headers = await make_key("admin")
        hook = await subscribe_webhook(client, headers, receiver.url, ["npsloop.followup.opened.v1"])
        await post_response(client, headers, score=1, customer="c-hours")
        await pump()
        # Eight hours of a dead receiver, the worker waking every 10 minutes of moved time.
        for _ in range(48):
            await worker.run_once()
            clock.advance(minutes=10)
        failures = len(receiver.requests)
        assert 5 <= failures <= 20  # backoff: a few attempts, not one per wake-up
        receiver.status = 200
        for _ in range(8):  # at most the one-hour backoff cap later
            await worker.run_once()
            clock.advance(minutes=10)
        delivered = list(receiver.requests[failures:])
        assert len(delivered) == 1
        payload = Webhook(hook["secret"]).verify(delivered[0].body, delivered[0].headers)
        assert payload["type"] == "npsloop.followup.opened.v1"
        assert {r.headers["webhook-id"] for r in receiver.requests} == {payload["id"]}  # one stable id throughout
        (delivery,) = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=headers)).json()["deliveries"]
        assert delivery["status"] == "delivered" and delivery["attempts"] == failures + 1
    finally:
        await worker.close()
        receiver.close()


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_silent_or_locked_database_gets_503_within_the_statement_timeout(database_url, tmp_path, make_key):
    """The database accepts connections but does not answer: first a table lock another
    session holds (the server's statement_timeout cancels the wait), then a server gone
    silent mid-connection (the client's command timeout gives up). Neither hangs."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    real = make_url(database_url)
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 5432)
    await proxy.up()
    timeout = 1.0
    settings = Settings(
        database_url=real.set(port=proxy.port).render_as_string(hide_password=False),
        data_dir=tmp_path / "data",
        environment="test",
        database_statement_timeout_seconds=timeout,
    )
    runtime = Runtime.build(settings)
    headers = await make_key("admin")
    app = create_app(runtime, worker_roles=())
    body = {"score": 3, "comment": "hung?", "customer": {"id": "c-hung"}}
    locker = Runtime.build(Settings(database_url=database_url, data_dir=tmp_path / "locker", environment="test"))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://npsloop.test") as http:
            assert (await http.post("/v1/responses", json=body, headers=headers)).status_code == 202

            async with locker.db.engine.connect() as connection:
                await connection.execute(text("LOCK TABLE responses IN ACCESS EXCLUSIVE MODE"))
                started = time.monotonic()
                locked = await http.post("/v1/responses", json=body, headers={**headers, "Idempotency-Key": "k-lock"})
                locked_seconds = time.monotonic() - started
                await connection.rollback()
            assert locked.status_code == 503, locked.text
            assert locked_seconds < timeout + 3

            proxy.freeze()
            started = time.monotonic()
            silent = await http.post("/v1/responses", json=body, headers={**headers, "Idempotency-Key": "k-silent"})
            silent_seconds = time.monotonic() - started
            assert silent.status_code == 503, silent.text
            assert silent_seconds < timeout + 8  # command timeout, or a fresh connection's 5 s connect timeout
            proxy.thaw()
            await proxy.down()  # the frozen connections are dead to the pool; fresh ones work again
            await proxy.up()
            deadline = time.monotonic() + 15
            while True:
                again = await http.post("/v1/responses", json=body, headers={**headers, "Idempotency-Key": "k-lock"})
                if again.status_code == 202 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert again.status_code == 202, again.text
    finally:
        await runtime.close()
        await locker.close()
        if proxy._server is not None and proxy._server.is_serving():
            await proxy.down()
    from npsloop.shared.db import Database

    direct = Database(database_url)
    try:
        async with direct.sessions() as session:
            stored = await session.scalar(select(func.count()).select_from(Response))
    finally:
        await direct.dispose()
    assert stored == 2, "the first POST and the retried k-lock one; nothing from the failed attempts"
    print(
        f"\nlocked table: 503 after {locked_seconds:.1f} s; silent server: 503 after {silent_seconds:.1f} s "
        f"(statement timeout {timeout:.0f} s)"
    )
