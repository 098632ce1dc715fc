"""Database access: declarative base, column types, engine and unit-of-work sessions.

SQLite (the embedded default) and PostgreSQL run the same models and migrations. Only
:class:`Database` knows which one it talks to.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, Text, event, make_url, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.types import TypeDecorator

from npsloop.shared import sqlite_inline
from npsloop.shared.jsontext import compact_json

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


CONNECT_TIMEOUT_SECONDS = 5.0


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for a log.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, aware UTC out, on both backends (SQLite stores naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = _as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC)


class JSONText(TypeDecorator[Any]):
    """JSON stored as text: identical on both backends and cheap to copy into events."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return json_text(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


def json_text(value: Any) -> str | None:
    """What :class:`JSONText` stores for ``value`` (for statements that bypass its bind step)."""
    return None if value is None else compact_json(value)


_SQLITE_DATETIME = "%04d-%02d-%02d %02d:%02d:%02d.%06d"  # SQLAlchemy's SQLite DATETIME storage format


def stored_datetime(value: datetime | None, dialect_name: str) -> datetime | str | None:
    """What :class:`UTCDateTime` hands the driver for ``value`` (for statements that bypass it)."""
    if value is None:
        return None
    value = _as_utc(value)
    if dialect_name != "sqlite":
        return value
    return _SQLITE_DATETIME % (
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


class BulkInsert:
    """``INSERT INTO table (columns)`` for many rows in one round trip, straight to the driver.

    A Core insert of N rows runs every column's bind processing and builds a parameter
    dict per row in Python — most of a bulk import's insert time. Callers of this class
    pass rows as tuples already in driver form (``json_text``, ``stored_datetime``).
    SQLite gets the driver's executemany (a loop in C); PostgreSQL gets one statement
    that inserts from one JSON parameter (``json_to_recordset``), so a thousand rows are
    a single Bind/Execute instead of a thousand, in the order given (``WITH
    ORDINALITY``), which keeps the event log's positions in the caller's order. One JSON
    text costs asyncpg about half the CPU of one typed array per column (measured: 10
    rows of 18 columns 302 -> 210 us, 100 rows 1.8 -> 0.9 ms). Only hot bulk paths use it.

    ``advisory_lock``: on PostgreSQL, the statement first takes this transaction-scoped
    advisory lock, then inserts — one round trip instead of a ``SELECT
    pg_advisory_xact_lock`` and the insert (see shared.outbox for why the log needs it).
    """

    def __init__(self, table: Any, columns: tuple[str, ...], *, advisory_lock: int | None = None) -> None:
        unknown = set(columns) - set(table.c.keys())
        if unknown:
            raise ValueError(f"{table.name} has no column(s) {sorted(unknown)}")
        self.table = table
        self.columns = columns
        self.advisory_lock = advisory_lock
        self._keys = tuple(f"c{n}" for n in range(len(columns)))
        self._sql: dict[tuple[str, BulkInsert | None], str] = {}

    def sql(self, dialect: Dialect, along: BulkInsert | None = None) -> str:
        """The statement; with ``along`` (PostgreSQL only), that insert runs first in the
        same statement, as a data-modifying CTE, its rows the first parameter and this one's the second."""
        cache_key = (dialect.name, along)
        statement = self._sql.get(cache_key)
        if statement is None:
            if dialect.name == "postgresql":
                ctes = []
                first = 1
                if along is not None:
                    ctes.append(f"along AS ({along._pg_insert(dialect, 1)} RETURNING 1)")
                    first += 1
                if self.advisory_lock is not None:
                    # Every row joins the lock's one row, so the lock is held before the first
                    # row reaches the insert and its defaults (a position from a sequence)
                    # are drawn; MATERIALIZED keeps the volatile call a step of its own.
                    # With ``along``, the lock waits for that insert to finish: an insert that
                    # waits on another transaction's row (a unique key) must not hold the lock
                    # meanwhile, or the two could deadlock.
                    after = " FROM (SELECT count(*) FROM along) AS done" if along is not None else ""
                    ctes.append(
                        f"lock AS MATERIALIZED (SELECT pg_advisory_xact_lock({int(self.advisory_lock)}){after})"
                    )
                statement = (f"WITH {', '.join(ctes)} " if ctes else "") + self._pg_insert(dialect, first)
            elif dialect.paramstyle == "qmark" and along is None:
                statement = f"{self._target(dialect)} VALUES ({', '.join('?' for _ in self.columns)})"
            else:  # pragma: no cover - npsloop ships with these two drivers
                raise NotImplementedError(f"{dialect.name} with paramstyle {dialect.paramstyle}")
            self._sql[cache_key] = statement
        return statement

    def _target(self, dialect: Dialect) -> str:
        preparer = dialect.identifier_preparer
        return f"INSERT INTO {preparer.format_table(self.table)} ({', '.join(preparer.quote(c) for c in self.columns)})"

    def _pg_insert(self, dialect: Dialect, param: int) -> str:
        columns = ", ".join(
            f"{key} {self.table.c[c].type.compile(dialect=dialect)}" for key, c in zip(self._keys, self.columns)
        )
        values = ", ".join(f"v.{key}" for key in self._keys)
        lock = " CROSS JOIN lock" if self.advisory_lock is not None else ""
        return (
            f"{self._target(dialect)} SELECT {values} FROM ROWS FROM (json_to_recordset(${param}::json) "
            f"AS ({columns})) WITH ORDINALITY AS v({', '.join(self._keys)}, ordinal){lock} ORDER BY v.ordinal"
        )

    def _pg_rows(self, rows: list[tuple[Any, ...]]) -> str:
        keys = self._keys
        return compact_json([dict(zip(keys, row)) for row in rows])

    async def run(
        self,
        connection: Any,
        rows: list[tuple[Any, ...]],
        *,
        along: tuple[BulkInsert, list[tuple[Any, ...]]] | None = None,
    ) -> None:
        """Insert ``rows`` (tuples in ``columns`` order) on an AsyncConnection.

        ``along``: another insert and its rows to run first — on PostgreSQL in the same
        statement (one round trip instead of two), on SQLite just before.
        """
        if along is not None and not (rows and along[1] and connection.dialect.name == "postgresql"):
            await along[0].run(connection, along[1])  # nothing to combine: on its own, first
            along = None
        if not rows:
            return
        if connection.dialect.name == "postgresql":
            params = (self._pg_rows(rows),) if along is None else (along[0]._pg_rows(along[1]), self._pg_rows(rows))
            await connection.exec_driver_sql(self.sql(connection.dialect, along[0] if along else None), params)
        else:
            await connection.exec_driver_sql(self.sql(connection.dialect), rows)


# session.info flag: this transaction queued outbound deliveries (see Database.delivery_signal).
DELIVERIES_ENQUEUED = "deliveries_enqueued"


class CommitSignal:
    """Wakes in-process consumers as soon as a transaction that appended events commits.

    Other processes still see new rows by polling; this only shortens the embedded path.
    """

    def __init__(self) -> None:
        self._waiters: set[asyncio.Event] = set()

    def notify(self) -> None:
        for waiter in list(self._waiters):
            waiter.set()

    async def wait(self, timeout: float) -> None:
        waiter = asyncio.Event()
        self._waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(waiter)


class WriterQueue:
    """One writer at a time, urgent writers first (SQLite allows a single writer).

    Background consumers may lag under a burst of requests — their events wait safely in
    the log — but a client waiting for its 202 never queues behind them.

    The slot passes straight from the writer releasing it to the next one — the oldest
    urgent writer if any, else the oldest background one. (An asyncio.Lock wakes its
    oldest waiter whatever it is: a background writer woken that way had to run once only
    to hand the slot back, and each such detour cost the waiting request a turn of a busy
    event loop — 3 ms per ingest group under load.) An urgent writer that is still
    preparing its rows announces itself (:meth:`announce`), and a free slot goes to a
    background writer only on the loop's next turn, once the ingest writer had its chance
    to start its next group: otherwise background writers took the slot for a group and a
    disk flush between every two ingest groups.

    So that consumers are never stalled for the whole of a long burst, a background writer
    that waited ``BACKGROUND_MAX_WAIT`` gets the next turn regardless (at most one such
    turn per ``BACKGROUND_MAX_WAIT``), and keeps it for up to ``BACKGROUND_TURN`` before
    it is asked to commit (``urgent_waiting``): about a twentieth of the slot under a
    sustained burst (measured with `npsloop up` under wrk).
    """

    BACKGROUND_MAX_WAIT = 0.25  # seconds
    BACKGROUND_TURN = 0.02  # seconds
    # Any background turn runs this long before an ingest writer may ask it to commit.
    # Cut short after every event, a consumer made one transaction — a commit and a turn
    # on the single slot — per event whenever ingest was busy; at 100 requests/s alerts
    # then lagged by seconds. Ten milliseconds of work per turn costs a waiting request
    # at most that.
    BACKGROUND_MIN_TURN = 0.01  # seconds

    def __init__(self) -> None:
        self._held = False
        self._announced = 0
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._background: deque[tuple[asyncio.Future[None], float]] = deque()  # (waiter, since)
        self._protected_until = 0.0  # a background turn given for waiting too long runs until then
        self._last_protected = float("-inf")  # when the last such turn was given
        self._hand_over_scheduled = False

    @property
    def urgent_waiting(self) -> bool:
        if self._protected_until and time.monotonic() < self._protected_until:
            return False
        return bool(self._urgent) or self._announced > 0

    @contextmanager
    def announce(self) -> Iterator[None]:
        """Around an urgent writer's preparation and turn: background writers wait."""
        self._announced += 1
        try:
            yield
        finally:
            self._announced -= 1
            self._hand_over_soon()

    @asynccontextmanager
    async def turn(self, *, urgent: bool) -> AsyncIterator[None]:
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._held = False
            self._protected_until = 0.0
            self._hand_over(urgent_only=True)
            self._hand_over_soon()

    def _starved(self) -> bool:
        # One such turn per BACKGROUND_MAX_WAIT, not one per waiting consumer back to back:
        # several consumers starved together would otherwise hold ingest up for all their turns.
        now = time.monotonic()
        return (
            bool(self._background)
            and now - self._background[0][1] >= self.BACKGROUND_MAX_WAIT
            and now - self._last_protected >= self.BACKGROUND_MAX_WAIT
        )

    async def _acquire(self, urgent: bool) -> None:
        self._drop_cancelled()
        if (
            not self._held
            and not self._urgent
            and not self._starved()
            and (urgent or (not self._announced and not self._background))
        ):
            self._held = True
            if not urgent:
                self._protected_until = time.monotonic() + self.BACKGROUND_MIN_TURN
            return
        handed = asyncio.get_running_loop().create_future()
        if urgent:
            self._urgent.append(handed)
        else:
            self._background.append((handed, time.monotonic()))
        self._hand_over(urgent_only=True)  # a free slot: a background writer that waited too long goes now
        self._hand_over_soon()
        try:
            await handed  # resolved by _hand_over: the slot is ours, already marked held
        except asyncio.CancelledError:
            if handed.done() and not handed.cancelled():
                self._held = False  # handed over just as we were cancelled: pass it on
                self._hand_over_soon()
            else:
                self._forget(handed)
            raise

    def _forget(self, handed: asyncio.Future[None]) -> None:
        if handed in self._urgent:
            self._urgent.remove(handed)
        self._background = deque(entry for entry in self._background if entry[0] is not handed)

    def _hand_over_soon(self) -> None:
        if not self._hand_over_scheduled:
            self._hand_over_scheduled = True
            asyncio.get_running_loop().call_soon(self._hand_over)

    def _hand_over(self, urgent_only: bool = False) -> None:
        """Give the free slot to the next writer in line, if any may have it now
        (``urgent_only``: now only to an urgent or a starved background writer)."""
        if not urgent_only:
            self._hand_over_scheduled = False
        if self._held:
            return
        self._drop_cancelled()
        starved = self._starved()
        if self._urgent and not starved:
            self._held = True
            self._urgent.popleft().set_result(None)
        elif self._background and (starved or (not urgent_only and not self._announced)):
            self._held = True
            now = time.monotonic()
            if starved:
                self._last_protected = now
            self._protected_until = now + (self.BACKGROUND_TURN if starved else self.BACKGROUND_MIN_TURN)
            self._background.popleft()[0].set_result(None)

    def _drop_cancelled(self) -> None:
        while self._urgent and self._urgent[0].done():
            self._urgent.popleft()
        while self._background and self._background[0][0].done():
            self._background.popleft()


class Database:
    """Engine, session factory and the commit signal for one database."""

    def __init__(
        self, url: str, *, echo: bool = False, pool_size: int = 10, statement_timeout: float | None = None
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = make_url(url).database
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
            # PostgreSQL may freeze a generic plan made while a table was still small. The
            # (source, key) lookup then stayed a sequential scan per pair as the table grew
            # — 2.7 ms per row during a first bulk import into a fresh database, until
            # autovacuum's ANALYZE happened to invalidate it. Planning these statements
            # each time costs far less than that risk.
            server_settings = {"plan_cache_mode": "force_custom_plan"}
            connect_args: dict = {"timeout": CONNECT_TIMEOUT_SECONDS, "server_settings": server_settings}
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
        self.commit_signal = CommitSignal()
        # Wakes the delivery worker of this process when a transaction that queued
        # deliveries commits, instead of it finding them at its next poll.
        self.delivery_signal = CommitSignal()
        # SQLite has one writer at a time. Queueing this process's writers here, in
        # asyncio, is fair and fast; left to SQLite they would sleep-poll on busy_timeout.
        self._sqlite_write_lock = WriterQueue() if self.is_sqlite else None
        event.listen(self._session_class, "after_commit", self._after_commit)

    def _after_commit(self, session: Session) -> None:
        if session.info.pop("events_appended", False):
            self.commit_signal.notify()
        if session.info.pop(DELIVERIES_ENQUEUED, False):
            self.delivery_signal.notify()

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
        a ``unit_of_work`` adds, a third of a small group commit's time on the database.
        Whoever may need a second write statement uses ``unit_of_work``.
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

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
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
# pool_pre_ping pings on every checkout: one extra round trip per transaction, a fifth of
# the ingest writer's time on PostgreSQL. A connection that sat idle (where a restarted
# server or a dropped link hides) is still pinged; one used moments ago that has died
# fails its statement, which invalidates the pool, and the request gets a 503 to retry.
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
