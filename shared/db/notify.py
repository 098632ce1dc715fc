"""Commit signals across processes on PostgreSQL: LISTEN/NOTIFY instead of waiting for a poll.

With one process per role, each stage found the previous stage's events at its next poll
(``NPSLOOP_POLL_INTERVAL_SECONDS``): three hand-offs between ingest and an alert, each up
to one interval. Here every process keeps one extra connection that LISTENs on a channel
per commit signal and NOTIFYs after its own commits, so a consumer in another process
starts at once. Polling stays as the fallback: a lost notification, or this connection
down, costs one poll interval, never an event.

The NOTIFY is sent on this connection after the transaction committed, not inside it: a
commit on the ingest path costs no extra round trip, and whoever wakes finds the rows.
Notifications are coalesced: while one is in flight, later commits ask for one more, so
there is always a NOTIFY after the last commit, and never more than one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from typing import Any

from sqlalchemy import make_url

from npsloop.shared.db.signals import CommitSignal

log = logging.getLogger("npsloop.db.notify")

CHANNEL_PREFIX = "npsloop_"
MAX_CHANNEL_BYTES = 63
RECONNECT_SECONDS = 5.0


def channel(flag: str) -> str:
    """The flag's channel name: PostgreSQL cuts identifiers at 63 bytes, so a longer one
    ends in a digest of the whole (two long flags never share a channel)."""
    name = f"{CHANNEL_PREFIX}{flag}"
    if len(name.encode()) <= MAX_CHANNEL_BYTES:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return f"{name.encode()[: MAX_CHANNEL_BYTES - 17].decode(errors='ignore')}~{digest}"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class CrossProcessSignals:
    """One LISTEN/NOTIFY connection for a Database's commit signals (PostgreSQL only)."""

    def __init__(self, url: str, signals: dict[str, CommitSignal]) -> None:
        self._dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._signals = signals  # the Database's own dict: signals made later are listened to on (re)connect
        self._connection: Any = None
        self._listening: set[str] = set()
        self._wanted: set[str] = set()  # flags to announce
        self._sending = False
        self._task: asyncio.Task | None = None
        self._connected = asyncio.Event()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._keep_connected(), name="db:listen-notify")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._disconnect()

    async def wait_connected(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def announce(self, flag: str) -> None:
        """After a local commit that raised ``flag``: NOTIFY the other processes (coalesced)."""
        if self._connection is None:
            return  # not connected: the others find it at their next poll
        self._wanted.add(flag)
        if not self._sending:
            self._sending = True
            asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        try:
            while self._wanted and self._connection is not None:
                flags, self._wanted = self._wanted, set()
                # One round trip for all of them (a commit raises a flag per topic it appended to).
                await self._connection.execute("; ".join(f"NOTIFY {_quoted(channel(flag))}" for flag in sorted(flags)))
        except Exception as exc:  # the connection broke: _keep_connected reconnects
            log.debug("notify failed", extra={"error": repr(exc)})
        finally:
            self._sending = False

    async def _keep_connected(self) -> None:
        import asyncpg

        while True:
            try:
                self._connection = await asyncpg.connect(self._dsn, timeout=5)
                self._listening.clear()
                await self._listen_to_new_signals()
                self._connected.set()
                while not self._connection.is_closed():
                    await asyncio.sleep(1.0)
                    await self._listen_to_new_signals()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "LISTEN/NOTIFY connection lost; consumers poll meanwhile",
                    extra={"error": repr(exc), "retry_in_seconds": RECONNECT_SECONDS},
                )
            finally:
                self._connected.clear()
                await self._disconnect()
            await asyncio.sleep(RECONNECT_SECONDS)

    async def _listen_to_new_signals(self) -> None:
        for flag, signal in list(self._signals.items()):
            if flag not in self._listening:
                await self._connection.add_listener(channel(flag), _waker(signal))
                self._listening.add(flag)

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 2)


def _waker(signal: CommitSignal):
    def wake(_connection: Any, _pid: int, _channel: str, _payload: str) -> None:
        signal.notify()

    return wake
