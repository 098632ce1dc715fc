"""The lean webhook sender against real sockets: keep-alive, stale connections, no redirects,
timeouts, oversized answers, chunked answers, TLS names, and the private-address guard."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess

import pytest

from npsloop.services.deliveries.scheduled import LIMIT_GROWTH
from npsloop.services.deliveries.sender import MAX_ANSWER_BYTES, SendError, WebhookSender
from npsloop.shared.settings import Settings


class ScriptedServer:
    """An HTTP/1.1 server on 127.0.0.1 whose answer to each request is ``answer(n)`` (raw
    bytes; None = say nothing, b"" = hang up), counting connections and requests."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self, tls: ssl.SSLContext | None = None) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                self.requests.append(head + await reader.readexactly(length))
                reply = self.answer(len(self.requests))
                if reply is None:
                    await asyncio.sleep(3600)
                if reply == b"":  # hang up without answering
                    break
                writer.write(reply)
                await writer.drain()
                if b"connection: close" in reply.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def drop_idle_connections(self) -> None:
        for writer in self.writers:
            writer.close()

    async def close(self) -> None:
        self.drop_idle_connections()
        self.server.close()
        await self.server.wait_closed()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.fixture
async def serve():
    servers: list[ScriptedServer] = []

    async def start(answer, tls=None) -> tuple[ScriptedServer, int]:
        server = ScriptedServer(answer)
        servers.append(server)
        return server, await server.start(tls)

    yield start
    for server in servers:
        await server.close()


async def test_posts_reuse_one_keep_alive_connection_and_send_the_body_and_headers(serve):
    server, port = await serve(lambda n: OK)
    sender = WebhookSender(timeout=5, allow_private=True)
    for n in range(3):
        reply = await sender.post(f"http://127.0.0.1:{port}/hooks/in?x=1", b'{"n": %d}' % n, {"webhook-id": f"m{n}"})
        assert (reply.status_code, reply.text) == (200, "ok")
    await sender.aclose()
    assert server.connections == 1 and len(server.requests) == 3
    first = server.requests[0]
    assert first.startswith(b"POST /hooks/in?x=1 HTTP/1.1\r\n")
    assert f"host: 127.0.0.1:{port}".encode() in first.lower() and b"webhook-id: m0" in first.lower()
    assert first.endswith(b'{"n": 0}')


async def test_a_destination_at_its_full_share_keeps_its_connections_between_bursts(serve):
    """A destination that earned its full share of sends in flight (the base share times
    LIMIT_GROWTH) finds all its connections again for the next burst: closing the ones
    over a smaller idle pool made every burst open them anew, a large part of each send's CPU."""
    burst = Settings().delivery_concurrency_per_destination * LIMIT_GROWTH
    server, port = await serve(lambda n: OK)
    sender = WebhookSender(timeout=5, allow_private=True)
    try:
        for round_ in range(2):
            replies = await asyncio.gather(
                *(
                    sender.post(f"http://127.0.0.1:{port}/in", b"{}", {"webhook-id": f"{round_}-{n}"})
                    for n in range(burst)
                )
            )
            assert {r.status_code for r in replies} == {200}
    finally:
        await sender.aclose()
    assert len(server.requests) == 2 * burst
    assert server.connections == burst


async def test_a_connection_the_server_closed_while_idle_is_replaced_without_failing_the_post(serve):
    server, port = await serve(lambda n: OK)
    sender = WebhookSender(timeout=5, allow_private=True)
    assert (await sender.post(f"http://127.0.0.1:{port}/", b"{}", {})).status_code == 200
    server.drop_idle_connections()
    await asyncio.sleep(0.05)
    assert (await sender.post(f"http://127.0.0.1:{port}/", b"{}", {})).status_code == 200
    await sender.aclose()
    assert server.connections == 2 and len(server.requests) == 2


async def test_a_reused_connection_hung_up_before_the_answer_is_retried_once_on_a_new_one(serve):
    server, port = await serve(lambda n: b"" if n == 2 else OK)
    sender = WebhookSender(timeout=5, allow_private=True)
    assert (await sender.post(f"http://127.0.0.1:{port}/", b"{}", {"webhook-id": "a"})).status_code == 200
    assert (await sender.post(f"http://127.0.0.1:{port}/", b"{}", {"webhook-id": "b"})).status_code == 200
    await sender.aclose()
    assert server.connections == 2 and [b"webhook-id: b" in r for r in server.requests] == [False, True, True]


async def test_a_new_connection_hung_up_before_the_answer_is_an_error_not_a_retry(serve):
    server, port = await serve(lambda n: b"")
    sender = WebhookSender(timeout=5, allow_private=True)
    with pytest.raises(SendError, match="RemoteProtocolError"):
        await sender.post(f"http://127.0.0.1:{port}/", b"{}", {})
    await sender.aclose()
    assert server.connections == 1 and len(server.requests) == 1


async def test_redirects_are_answers_not_followed_and_connection_close_is_honoured(serve):
    server, port = await serve(
        lambda n: (
            b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    )
    sender = WebhookSender(timeout=5, allow_private=True)
    for _ in range(2):
        assert (await sender.post(f"http://127.0.0.1:{port}/", b"{}", {})).status_code == 302
    await sender.aclose()
    assert len(server.requests) == 2 and server.connections == 2  # never to the Location


async def test_a_chunked_answer_is_read_and_an_oversized_one_is_cut_and_not_reused(serve):
    big = b"x" * (MAX_ANSWER_BYTES * 3)
    answers = {
        1: b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nbroke\r\n0\r\n\r\n",
        2: b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(big) + big,
        3: OK,
    }
    server, port = await serve(lambda n: answers[n])
    sender = WebhookSender(timeout=5, allow_private=True)
    first = await sender.post(f"http://127.0.0.1:{port}/", b"{}", {})
    assert (first.status_code, first.text) == (500, "broke")
    second = await sender.post(f"http://127.0.0.1:{port}/", b"{}", {})
    assert second.status_code == 200 and MAX_ANSWER_BYTES < len(second.body) < len(big)
    assert (await sender.post(f"http://127.0.0.1:{port}/", b"{}", {})).status_code == 200
    await sender.aclose()
    assert server.connections == 2  # the first reused for the second; the cut one not reused


async def test_a_server_that_never_answers_times_out(serve):
    _, port = await serve(lambda n: None)
    sender = WebhookSender(timeout=0.3, allow_private=True)
    with pytest.raises(SendError, match="Timeout"):
        await sender.post(f"http://127.0.0.1:{port}/", b"{}", {})
    await sender.aclose()


async def test_nothing_listening_and_garbage_answers_are_send_errors(serve):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    sender = WebhookSender(timeout=5, allow_private=True)
    with pytest.raises(SendError, match="ConnectError"):
        await sender.post(f"http://127.0.0.1:{closed_port}/", b"{}", {})
    _, port = await serve(lambda n: b"SMTP ready\r\n\r\n")
    with pytest.raises(SendError, match="RemoteProtocolError"):
        await sender.post(f"http://127.0.0.1:{port}/", b"{}", {})
    with pytest.raises(SendError, match="not an http"):
        await sender.post("ftp://127.0.0.1/", b"{}", {})
    await sender.aclose()


async def test_private_addresses_are_refused_at_connection_time_even_after_a_rebinding(serve, monkeypatch):
    server, port = await serve(lambda n: OK)
    loop = asyncio.get_running_loop()
    real_getaddrinfo = loop.getaddrinfo

    async def rebinding_getaddrinfo(host, port_, *args, **kwargs):
        if host != "rebind.example":
            return await real_getaddrinfo(host, port_, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port_))]

    monkeypatch.setattr(type(loop), "getaddrinfo", lambda self, *a, **k: rebinding_getaddrinfo(*a, **k))
    sender = WebhookSender(timeout=5, allow_private=False)
    for url in (f"http://127.0.0.1:{port}/", f"http://rebind.example:{port}/"):
        with pytest.raises(SendError, match="refused.*127.0.0.1"):
            await sender.post(url, b"{}", {})
    await sender.aclose()
    assert server.connections == 0


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for the name "localhost" (openssl, as on any Debian)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


async def test_tls_verifies_the_url_host_name(serve, certificate):
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    server, port = await serve(lambda n: OK, tls=server_tls)
    trusting = ssl.create_default_context(cafile=cert)
    sender = WebhookSender(timeout=5, allow_private=True, ssl_context=trusting)
    assert (await sender.post(f"https://localhost:{port}/", b"{}", {})).status_code == 200
    with pytest.raises(SendError, match="ConnectError.*(certificate|match|hostname)"):
        await sender.post(f"https://127.0.0.1:{port}/", b"{}", {})  # the certificate names localhost only
    await sender.aclose()
    untrusting = WebhookSender(timeout=5, allow_private=True)  # the system's trust store
    with pytest.raises(SendError, match="ConnectError.*certificate"):
        await untrusting.post(f"https://localhost:{port}/", b"{}", {})
    await untrusting.aclose()
    assert len(server.requests) == 1
