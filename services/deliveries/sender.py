"""Webhook POSTs over pooled HTTP/1.1 keep-alive connections: the delivery worker's hot path.

httpx 0.28 / httpcore 1.0 walk the whole connection pool, polling every idle socket, when
each request starts and when it ends. Measured here against a local receiver, a POST cost
0.9 ms of CPU at concurrency 1 and 2.25 ms at the delivery worker's concurrency of 20 —
at 150 alerts a second, a third of a core. This sender keeps idle connections per origin
(newest first), speaks HTTP/1.1 through h11 (the parser httpcore itself uses) on asyncio
streams, and does nothing else.

The guarantees are the guarded httpx client's (services.deliveries.urls):

- unless private targets are allowed, it connects only to an address it checked at
  connection time (a name that re-resolves to a private address is refused, not followed);
- TLS verifies the certificate against the URL's host name (SNI included);
- no redirects: a 3xx is an answer like any other non-2xx, and the attempt failed;
- one timeout per attempt, covering connect, send and the whole answer.

A request that fails on a reused connection before any byte of the answer arrived is sent
once more on a new connection: the server closed an idle keep-alive connection under it.
The receiver sees at most one delivery of the bytes, and every attempt carries the same
``webhook-id`` for de-duplication anyway.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11
import httpx

from npsloop.services.deliveries.urls import UnsafeUrl, resolve_checked

# An answer's body is kept for the attempt log up to this much; a longer one is not read
# to its end: the connection is closed instead of reused.
MAX_ANSWER_BYTES = 64 * 1024
KEEPALIVE_SECONDS = 5.0  # httpx's default: a server may close a connection idle longer
# Idle connections kept per origin: enough for two destinations on one origin (a webhook
# and a Slack channel, say) each at its full share of sends in flight (the default share
# of 16 earns up to 64, services/deliveries/scheduled.py). Fewer, and every burst past
# the pool closed connections only to open them again for the next one.
MAX_IDLE_PER_ORIGIN = 128
_READ_SIZE = 65536

Origin = tuple[str, str, int]


@dataclass(frozen=True)
class Reply:
    status_code: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class SendError(Exception):
    """No answer: refused, could not connect, broken connection, bad HTTP, or timed out.
    The message reads like httpx's (``"ConnectError: ..."``) for the attempt log."""


class _StaleConnection(Exception):
    """A reused connection broke before the answer began."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0

    def usable(self, now: float) -> bool:
        return now - self.idle_since < KEEPALIVE_SECONDS and not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


class WebhookSender:
    def __init__(self, *, timeout: float, allow_private: bool, ssl_context: ssl.SSLContext | None = None) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self._ssl_context = ssl_context
        self._idle: dict[Origin, list[_Connection]] = {}

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Reply:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SendError(f"UnsupportedProtocol: {url!r} is not an http(s) URL")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise SendError(f"InvalidURL: {exc}") from None
        origin = (parts.scheme, parts.hostname, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request = h11.Request(
            method="POST",
            target=target,
            headers=[("host", parts.netloc.rpartition("@")[2]), ("content-length", str(len(body))), *headers.items()],
        )
        try:
            async with asyncio.timeout(self.timeout):
                connection = self._take_idle(origin)
                if connection is not None:
                    try:
                        return await self._exchange(origin, connection, request, body)
                    except _StaleConnection:
                        pass
                try:
                    return await self._exchange(origin, await self._connect(origin), request, body)
                except _StaleConnection as exc:
                    raise SendError(
                        f"RemoteProtocolError: {exc.__cause__ or 'the server closed the connection'}"
                    ) from None
        except TimeoutError:
            raise SendError(f"Timeout: no complete answer within {self.timeout:g} s") from None

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if connection.usable(now):
                return connection
            connection.close()
        return None

    def _give_back(self, origin: Origin, connection: _Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if len(idle) >= MAX_IDLE_PER_ORIGIN:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)

    async def _connect(self, origin: Origin) -> _Connection:
        scheme, host, port = origin
        try:
            address = host if self.allow_private else await resolve_checked(host, port)
        except UnsafeUrl as exc:
            raise SendError(f"ConnectError: refused: {exc}") from None
        tls = None
        if scheme == "https":
            if self._ssl_context is None:
                self._ssl_context = httpx.create_ssl_context()
            tls = self._ssl_context
        try:
            reader, writer = await asyncio.open_connection(
                address, port, ssl=tls, server_hostname=host if tls else None
            )
        except (OSError, ssl.SSLError) as exc:
            raise SendError(f"ConnectError: {exc}") from None
        return _Connection(reader, writer)

    async def _exchange(self, origin: Origin, connection: _Connection, request: h11.Request, body: bytes) -> Reply:
        protocol = connection.protocol
        answered = False
        try:
            connection.writer.write(
                protocol.send(request) + protocol.send(h11.Data(data=body)) + protocol.send(h11.EndOfMessage())
            )
            await connection.writer.drain()
            status, chunks, size = 0, [], 0
            while True:
                event = protocol.next_event()
                if event is h11.NEED_DATA:
                    data = await connection.reader.read(_READ_SIZE)
                    protocol.receive_data(data)  # b"" tells h11 the server closed its side
                    continue
                if isinstance(event, h11.InformationalResponse):
                    continue
                if isinstance(event, h11.Response):
                    answered, status = True, event.status_code
                elif isinstance(event, h11.Data):
                    chunks.append(event.data)
                    size += len(event.data)
                    if size > MAX_ANSWER_BYTES:  # keep what the log needs; do not read the rest
                        connection.close()
                        return Reply(status, b"".join(chunks))
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise h11.RemoteProtocolError("the server closed the connection")
        except (OSError, h11.ProtocolError, ssl.SSLError) as exc:
            connection.close()
            if not answered:
                raise _StaleConnection() from exc
            raise SendError(f"RemoteProtocolError: {exc}") from None
        except BaseException:
            connection.close()  # cancelled or timed out mid-exchange: the connection's state is unknown
            raise
        if protocol.our_state is h11.DONE and protocol.their_state is h11.DONE:
            protocol.start_next_cycle()
            self._give_back(origin, connection)
        else:  # "Connection: close", or an answer before our request was complete
            connection.close()
        return Reply(status, b"".join(chunks))
