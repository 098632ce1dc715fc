"""Rows a consumer transaction writes, in one statement per table when its handlers are done.

Consumers handle up to a couple of hundred events per transaction, and their handlers
add or change a few rows per event. As ORM objects each row costs about 0.1 ms of CPU
(instrumented construction, attribute events, unit-of-work bookkeeping at flush) — most
of a consumer's time. Inside a transaction the bus runs (see shared.bus.processing) a
new row is instead a plain :class:`PendingRow`, inserted with the others of its table by
:func:`flush` straight to the driver (:class:`shared.db.BulkInsert`); a row a prefetch
loaded with :func:`loaded` is updated there, in one executemany, once :func:`changed`.

Until the flush a row may still change (a later event of the same group updates what an
earlier one wrote): it is read when it is written. Outside such a transaction (an API
request, a replay, a test calling a service function) :func:`add` is simply
``session.add(Model(...))`` and ORM objects track their own changes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, bindparam, inspect, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.shared.db import Base, BulkInsert, JSONText, UTCDateTime, json_text, stored_datetime

_BUFFER = "row_buffer"
_TABLE_ORDER: dict[Any, int] = {}


class PendingRow:
    """A row not inserted yet: one attribute per column, like a new ORM object."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


class LoadedRow(PendingRow):
    """A stored row read as plain attributes (see :func:`loaded`)."""


class _Buffer:
    def __init__(self) -> None:
        self.new: dict[type[Base], list[PendingRow]] = {}
        self.changed: dict[type[Base], dict[int, LoadedRow]] = {}


class _Writer:
    """How one model's rows become driver-ready values (what the column types would bind)."""

    def __init__(self, model: type[Base]) -> None:
        table = model.__table__
        if not isinstance(table, Table):  # declarative typing says FromClause; every model here maps a Table
            raise TypeError(f"{model.__name__} is not mapped to a table")
        attrs = [
            (prop.key, prop.columns[0])
            for prop in inspect(model).column_attrs
            if prop.columns[0] is not table.autoincrement_column
        ]
        for key, column in attrs:
            if column.server_default is not None or (column.default is not None and not column.default.is_scalar):
                raise ValueError(f"{table.name}.{key}: only scalar Python defaults are supported")
        self.keys = tuple(key for key, _ in attrs)
        # Every column starts as None or its scalar default, as on a new ORM object.
        self.blank = {key: column.default.arg if column.default is not None else None for key, column in attrs}
        self.kinds = tuple(
            "json"
            if isinstance(column.type, JSONText)
            else "datetime"
            if isinstance(column.type, UTCDateTime)
            else None
            for _, column in attrs
        )
        self.insert = BulkInsert(table, tuple(column.name for _, column in attrs))
        # UPDATE … SET every other column WHERE primary key: a Core executemany, with the
        # columns' own bind processing (updates are fewer than inserts).
        primary = set(table.primary_key.columns)
        self.primary_key = tuple(key for key, column in attrs if column in primary)
        self.set_keys = tuple(key for key, column in attrs if column not in primary)
        self.update = (
            update(table)
            .where(*[column == bindparam(f"pk_{key}") for key, column in attrs if column in primary])
            .values({column.key: bindparam(f"v_{key}") for key, column in attrs if column not in primary})
        )

    def insert_row(self, pending: PendingRow, dialect_name: str) -> tuple[Any, ...]:
        values = pending.__dict__
        return tuple(
            [
                values[key]
                if kind is None
                else json_text(values[key])
                if kind == "json"
                else stored_datetime(values[key], dialect_name)
                for key, kind in zip(self.keys, self.kinds)
            ]
        )

    def update_params(self, row: LoadedRow) -> dict[str, Any]:
        if not self.primary_key:
            raise ValueError(f"{self.insert.table.name}: rows keyed by an autoincrement column are not updated here")
        values = row.__dict__
        params = {f"v_{key}": values[key] for key in self.set_keys}
        params.update((f"pk_{key}", values[key]) for key in self.primary_key)
        return params


_WRITERS: dict[type[Base], _Writer] = {}


def _writer(model: type[Base]) -> _Writer:
    writer = _WRITERS.get(model)
    if writer is None:
        writer = _WRITERS[model] = _Writer(model)
    return writer


def _table_order(model: type[Base]) -> int:
    """Parents before children, so a row's foreign key finds the row it refers to."""
    table = model.__table__
    if table not in _TABLE_ORDER:  # a model imported since the last sort
        _TABLE_ORDER.clear()
        _TABLE_ORDER.update((t, n) for n, t in enumerate(Base.metadata.sorted_tables))
    return _TABLE_ORDER[table]


def start(session: AsyncSession) -> None:
    """From now on, rows :func:`add`-ed in this session wait for :func:`flush`."""
    session.info[_BUFFER] = _Buffer()


def add(session: AsyncSession, model: type[Base], **values: Any) -> Any:
    """A new row of ``model``: pending until :func:`flush` if buffering, else an ORM object added to the session."""
    buffer: _Buffer | None = session.info.get(_BUFFER)
    if buffer is None:
        row = model(**values)
        session.add(row)
        return row
    pending = PendingRow({**_writer(model).blank, **values})
    buffer.new.setdefault(model, []).append(pending)
    return pending


def loaded(mapping: RowMapping) -> LoadedRow:
    """A row of a ``select(Model.__table__)`` result as plain attributes (a prefetch's read for update)."""
    return LoadedRow(dict(mapping))


def changed(session: AsyncSession, model: type[Base], row: Any) -> None:
    """Note that ``row``'s attributes were changed: a :class:`LoadedRow` is updated at :func:`flush`.

    An ORM object tracks its own changes and a :class:`PendingRow` is inserted as it
    stands at the flush, so for those there is nothing to do.
    """
    if isinstance(row, LoadedRow):
        buffer: _Buffer = session.info[_BUFFER]  # prefetches (and so loaded rows) only exist in consumer groups
        buffer.changed.setdefault(model, {})[id(row)] = row


async def flush(session: AsyncSession) -> None:
    """Insert the new rows and update the changed ones (one statement per table); stop buffering."""
    buffer: _Buffer | None = session.info.pop(_BUFFER, None)
    if buffer is None or not (buffer.new or buffer.changed):
        return
    conn = await session.connection()
    dialect_name = conn.dialect.name
    for model in sorted(buffer.new, key=_table_order):
        writer = _writer(model)
        await writer.insert.run(conn, [writer.insert_row(pending, dialect_name) for pending in buffer.new[model]])
    for model, rows in buffer.changed.items():
        writer = _writer(model)
        await conn.execute(writer.update, [writer.update_params(row) for row in rows.values()])
