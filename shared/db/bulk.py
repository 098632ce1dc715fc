"""Many rows in one round trip on both dialects, for the hot bulk paths (event log, ingest, row buffer)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Dialect

from npsloop.shared.jsontext import compact_json


class BulkInsert:
    """``INSERT INTO table (columns)`` for many rows in one round trip, straight to the driver.

    A Core insert runs every column's bind processing and builds a dict per row in Python,
    most of a bulk import's insert time; callers of this class pass tuples already in driver
    form (``json_text``, ``stored_datetime``). SQLite gets the driver's executemany (a loop
    in C). PostgreSQL gets one statement that inserts from one JSON parameter
    (``json_to_recordset``), in the order given (``WITH ORDINALITY``, which keeps the event
    log's positions in the caller's order): one Bind/Execute for a thousand rows, and one
    JSON text costs asyncpg less CPU than a typed array per column (docs/decisions/db.md).

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
