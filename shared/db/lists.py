"""``column IN (values)`` that is one statement however many values there are.

SQLAlchemy writes ``IN ($1, $2, …)`` with a parameter per value, so each length of list is
a statement of its own. On PostgreSQL asyncpg prepares each new statement on its
connection (a round trip, a parse and a plan), and a consumer's groups come in every
size: most of its lookups were prepared anew. ``= ANY($1)`` with one array parameter is the
same statement for every length. SQLite prepares nothing across the wire and keeps ``IN``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute


def among(
    session: AsyncSession, column: ColumnElement[Any] | QueryableAttribute[Any], values: Iterable[Any]
) -> ColumnElement[bool]:
    """``column`` is one of ``values`` (as ``column.in_(values)``), for a query run on ``session``."""
    values = list(values)
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)
