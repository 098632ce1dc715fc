"""A lean open-loop load generator: POSTs at a fixed rate over keep-alive HTTP/1.1 connections.

An httpx client spends most of a millisecond of CPU per request; on a two-core machine
that is CPU taken from the server being measured. This one writes each request as
prepared bytes and reads the answer with asyncio streams (tens of microseconds), keeps
a pool of persistent connections (a new one only when all are busy, up to
``max_connections``) and sends request *i* at ``start + i / rate`` whether or not earlier
ones have been answered — latency then includes any queueing in the server.
Bounded in count and time, and only ever aimed at 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Answer:
    index: int  # i of request(i)
    started: float  # time.time() when the request was due
    seconds: float  # from then until the whole answer was read
    status: int
    body: bytes


@dataclass
class Pool:
    host: str
    port: int
    max_connections: int
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = field(default_factory=list)
    opened: int = 0

    async def take(self, *, fresh: bool = False) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while not fresh and not self.idle and self.opened >= self.max_connections:
            await asyncio.sleep(0.001)
        if self.idle and not fresh:
            return self.idle.pop()
        self.opened += 1
        return await asyncio.open_connection(self.host, self.port)

    def give_back(self, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self.idle.append(connection)

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


async def _exchange(pool: Pool, request: bytes) -> tuple[int, bytes]:
    connection = await pool.take()
    try:
        status, body = await _send(connection, request)
    except (asyncio.IncompleteReadError, ConnectionError):
        # The server closed a keep-alive connection that sat idle (uvicorn: after 5 s)
        # before reading this request; send it once more on a new connection.
        connection[1].close()
        pool.opened -= 1
        connection = await pool.take(fresh=True)
        status, body = await _send(connection, request)
    pool.give_back(connection)
    return status, body


async def _send(connection: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes) -> tuple[int, bytes]:
    reader, writer = connection
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length) if length else b""


def post_request(host: str, port: int, path: str, document: dict, headers: dict[str, str]) -> bytes:
    body = json.dumps(document).encode()
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def open_loop(
    host: str, port: int, *, rate: int, seconds: float, request: Callable[[int], bytes], max_connections: int = 256
) -> list[Answer]:
    """Send ``request(i)`` for i = 0 … rate·seconds − 1 at ``rate`` per second; every answer
    (in the order they arrived; ``Answer.index`` is the request's i)."""
    pool = Pool(host, port, max_connections)
    answers: list[Answer] = []
    prepared = [request(i) for i in range(int(rate * seconds))]

    async def one(index: int, raw: bytes, due: float) -> None:
        # Timed from when the request was due, not when it went out: a generator that
        # fell behind must not hide the delay (coordinated omission).
        status, body = await _exchange(pool, raw)
        answers.append(Answer(index, wall + (due - begin), time.perf_counter() - due, status, body))

    tasks = []
    begin, wall = time.perf_counter(), time.time()
    for i, raw in enumerate(prepared):
        due = begin + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, raw, due)))
    await asyncio.gather(*tasks)
    pool.close()
    return answers
