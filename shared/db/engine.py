"""The engine: connections, unit-of-work sessions and commit signals for one database.

SQLite (the embedded default) and PostgreSQL run the same models and migrations; only
:class:`Database` knows which one it talks to.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from sqlalchemy import event, make_url, text
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

from npsloop.shared import sqlite_inline
from npsloop.shared.db.notify import CrossProcessSignals
from npsloop.shared.db.signals import EVENTS_APPENDED, RAISED, CommitSignal
from npsloop.shared.db.write_slot import WriterQueue

CONNECT_TIMEOUT_SECONDS = 5.0


class Database:
    """Engine, session factory and the commit signals for one database."""

    def __init__(
        self, url: str, *, echo: bool = False, pool_size: int = 10, statement_timeout: float | None = None
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = make_url(url).database
            if not path:  # sqlite3.connect needs a name; without one every connection failed
                raise ValueError(f"{url}: a SQLite URL names its database file (sqlite+aiosqlite:///path)")
            self.engine: AsyncEngine = create_async_engine(
                url,
                echo=echo,
                pool_size=pool_size,
                max_overflow=0,
                async_creator=lambda: sqlite_inline.connect(path, timeout=30),
            )
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        else:
            # Short connect and pool waits: with the database down a request fails in
            # seconds (503) instead of hanging on asyncpg's 60 s default.
            # Custom plans only: asyncpg prepares every statement, and after five runs
            # PostgreSQL may freeze a generic plan made while a table was still small; the
            # (source, key) lookup then stayed a sequential scan per pair as the table grew,
            # until autovacuum's ANALYZE happened to invalidate it (docs/decisions/db.md).
            # Planning these statements each time costs far less than that risk.
            server_settings = {"plan_cache_mode": "force_custom_plan"}
            connect_args: dict[str, Any] = {"timeout": CONNECT_TIMEOUT_SECONDS, "server_settings": server_settings}
            if statement_timeout:
                # Two bounds for a database that accepts connections but does not answer:
                # the server cancels a statement that runs (or waits for a lock) too long,
                # and the client gives up on a server that has gone silent altogether.
                server_settings["statement_timeout"] = str(int(statement_timeout * 1000))
                connect_args["command_timeout"] = statement_timeout + 1
            self.engine = create_async_engine(
                url,
                echo=echo,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_timeout=CONNECT_TIMEOUT_SECONDS,
                connect_args=connect_args,
            )
            event.listen(self.engine.sync_engine, "checkout", _ping_if_idle)
            event.listen(self.engine.sync_engine, "checkin", _note_last_use)
        # A Session class of this Database's own: commit listeners on the shared Session
        # class would fire for every Database of the process, and the first one to see a
        # commit would take its signal flags from the others.
        self._session_class = type("DatabaseSession", (Session,), {})
        self.sessions = async_sessionmaker(
            self.engine, expire_on_commit=False, autoflush=False, sync_session_class=self._session_class
        )
        self._signals: dict[str, CommitSignal] = {}
        # Called with each flag a committed transaction of this process raised: how other
        # processes hear of it (below; services/delivery_process.py).
        self._commit_hooks: list[Callable[[str], None]] = []
        # Wakes this process's log consumers and relay when a transaction appended events.
        self.commit_signal = self.signal(EVENTS_APPENDED)
        # On PostgreSQL, the same signals reach waiters in other processes (LISTEN/NOTIFY).
        self.cross_process: CrossProcessSignals | None = None
        if not self.is_sqlite:
            self.cross_process = CrossProcessSignals(url, self._signals)
            self.add_commit_hook(self.cross_process.announce)
        # SQLite has one writer at a time. Queueing this process's writers here, in
        # asyncio, is fair and fast; left to SQLite they would sleep-poll on busy_timeout.
        self._sqlite_write_lock = WriterQueue() if self.is_sqlite else None
        event.listen(self._session_class, "after_commit", self._after_commit)

    def signal(self, flag: str) -> CommitSignal:
        """The signal notified when a transaction that raised ``flag`` commits
        (:func:`~npsloop.shared.db.signals.signal_on_commit`); one per flag and Database."""
        found = self._signals.get(flag)
        if found is None:
            found = self._signals[flag] = CommitSignal()
        return found

    def add_commit_hook(self, hook: Callable[[str], None]) -> None:
        """Also call ``hook(flag)`` for every flag a transaction of this process raised, after it committed."""
        self._commit_hooks.append(hook)

    async def start_cross_process_signals(self, wait: float = 5.0) -> None:
        """Start hearing (and telling) other processes' commits, waiting up to ``wait`` seconds
        for the connection (without it, waiters poll); a no-op on SQLite."""
        if self.cross_process is not None:
            await self.cross_process.start()
            await self.cross_process.wait_connected(wait)

    def _after_commit(self, session: Session) -> None:
        # Every raised flag is announced, also those no waiter of this process listens to
        # (the API appends events that only other processes consume).
        for flag in sorted(session.info.pop(RAISED, ())):
            signal = self._signals.get(flag)
            if signal is not None:
                signal.notify()
            for hook in self._commit_hooks:
                hook(flag)

    @asynccontextmanager
    async def unit_of_work(self, *, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        """One transaction: commits when the block ends, rolls back on any exception.

        ``urgent`` writers (ingest, whose clients are waiting) go ahead of background
        work when SQLite's single write slot is contended.
        """
        if self._sqlite_write_lock is None:
            async with self.sessions() as session, session.begin():
                yield session
            return
        async with self._sqlite_write_lock.turn(urgent=urgent):
            waits = _lock_waits(time.monotonic() + SQLITE_LOCK_WAIT_SECONDS)
            while True:
                async with self.sessions() as session, session.begin():
                    # A writer takes SQLite's write lock at BEGIN (IMMEDIATE), so it never
                    # has to upgrade a read lock midway and fail with "database is locked".
                    if await _took_write_lock(session):
                        yield session
                        return
                # Another process holds the lock (see _sqlite_begin): wait without blocking the loop.
                await asyncio.sleep(next(waits))

    @asynccontextmanager
    async def statement_transactions(self) -> AsyncIterator[AsyncSession]:
        """A session in which every statement is a transaction of its own (PostgreSQL only).

        For writers whose writes are ONE statement (reads before it may see the database
        move on, as under READ COMMITTED anyway): it saves the BEGIN and COMMIT round trips
        a ``unit_of_work`` adds. Whoever may need a second write statement uses ``unit_of_work``.
        """
        if self.is_sqlite:
            raise RuntimeError("statement_transactions is for PostgreSQL; SQLite writers use unit_of_work")
        async with self.engine.connect() as connection:
            # Reset to the pool's default level when the connection goes back to the pool.
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            session = AsyncSession(
                bind=connection, expire_on_commit=False, autoflush=False, sync_session_class=self._session_class
            )
            try:
                yield session
            finally:
                await session.close()
                # No commit passes through the session here: signal what a commit would have.
                self._after_commit(session.sync_session)

    @contextmanager
    def urgent_writer(self) -> Iterator[None]:
        """Around a client-facing writer's preparation and ``unit_of_work(urgent=True)``:
        from the start, background writers leave SQLite's write slot to it."""
        if self._sqlite_write_lock is None:
            yield
            return
        with self._sqlite_write_lock.announce():
            yield

    def urgent_writer_waiting(self) -> bool:
        """True while a client-facing writer waits for SQLite's write slot; background
        work holding it should commit what it has and let that writer in."""
        return self._sqlite_write_lock is not None and self._sqlite_write_lock.urgent_waiting

    def urgent_writer_pending(self) -> bool:
        """A client-facing writer waits for (or prepares for) SQLite's write slot, even while
        the turn in progress is protected: for a turn that shares out its own time."""
        return self._sqlite_write_lock is not None and self._sqlite_write_lock.urgent_pending

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self.cross_process is not None:
            await self.cross_process.close()
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling is replaced by explicit BEGIN (below).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # a 202 means the row is on disk
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


# A connection back in use within this many seconds is not pinged first. SQLAlchemy's
# pool_pre_ping pings on every checkout: one extra round trip per transaction, a large
# share of the ingest writer's time on PostgreSQL (docs/decisions/db.md). A connection
# that sat idle (where a restarted server or a dropped link hides) is still pinged; one
# used moments ago that has died fails its statement, which invalidates the pool, and
# the request gets a 503 to retry.
IDLE_PING_SECONDS = 1.0


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    if time.monotonic() - record.info.get("npsloop_last_use", 0.0) < IDLE_PING_SECONDS:
        return
    try:
        dbapi_connection.ping()  # asyncpg's adapter: BEGIN, ";", ROLLBACK — three round trips
    except Exception as exc:
        # The pool drops this connection and checks out a fresh one.
        raise DisconnectionError("connection failed its ping") from exc


def _note_last_use(_dbapi_connection: Any, record: Any) -> None:
    record.info["npsloop_last_use"] = time.monotonic()


_IMMEDIATE = "npsloop_sqlite_immediate"


# How long a writer waits for another process to release SQLite's write lock (the
# busy_timeout every other statement keeps) before its transaction fails.
SQLITE_LOCK_WAIT_SECONDS = 30.0
SQLITE_BUSY_TIMEOUT_MS = int(SQLITE_LOCK_WAIT_SECONDS * 1000)


def _sqlite_begin(conn: Any) -> None:
    # The driver's implicit transactions are off (see _sqlite_pragmas); readers get a
    # deferred BEGIN, which WAL lets run beside the writer.
    if not conn.get_execution_options().get(_IMMEDIATE):
        conn.exec_driver_sql("BEGIN")
        return
    # Statements run on the event loop's thread (shared/sqlite_inline.py). When another
    # process (a CLI command, a role of a scaled deployment) holds the write lock, SQLite's
    # busy handler would wait for it right here, freezing every request of this process,
    # in sleeps of up to 100 ms. So BEGIN IMMEDIATE gives up at once, and unit_of_work
    # waits with asyncio sleeps of a millisecond or so before it tries again.
    conn.exec_driver_sql("PRAGMA busy_timeout=0")
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    finally:
        conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


async def _took_write_lock(session: AsyncSession) -> bool:
    """Begin the session's transaction with SQLite's write lock; False if another process holds it."""
    try:
        await session.connection(execution_options={_IMMEDIATE: True})
    except OperationalError as exc:
        if "database is locked" in str(exc.orig):
            return False
        raise
    return True


def _lock_waits(deadline: float) -> Iterator[float]:
    """Sleeps between attempts at the write lock: from 0.5 ms doubling to 8 ms, until ``deadline``."""
    delay = 0.0005
    while time.monotonic() < deadline:
        yield delay
        delay = min(delay * 2, 0.008)
    raise OperationalError(
        "BEGIN IMMEDIATE",
        {},
        sqlite3.OperationalError(
            f"database is locked (another process held SQLite's write lock for {SQLITE_LOCK_WAIT_SECONDS:.0f} s)"
        ),
    )


SessionFactory = Callable[[], AsyncSession]
