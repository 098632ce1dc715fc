"""Queries on responses. Only this module talks SQL for the ingest service.

The lookups run once per group commit, so they are built once, at import, and executed
on the session's Core connection: no per-call statement construction, no ORM layer.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Text, and_, bindparam, func, literal_column, null, select, type_coerce, union_all
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.ingest.models import Response
from npsloop.shared.models import ApiKey

_FIRST = (Response.id, Response.source, Response.request_hash, Response.comment)


async def get(session: AsyncSession, response_id: str) -> Response | None:
    return await session.get(Response, response_id)


def _pairs_lookup(column) -> dict[str, Any]:
    """The (source, ``column``) lookup, one statement per dialect, each with constant text.

    The pairs are joined as one parameter (two arrays on PostgreSQL, a JSON array on
    SQLite): one index lookup per pair whatever the planner's statistics say (right
    after a burst of inserts PostgreSQL's are stale and "source IN .. AND key IN .."
    scans every row of the source), and the same SQL for any group size, so prepared
    statements are reused instead of rendered and prepared per group.
    """
    pg = (
        func.unnest(bindparam("sources", type_=ARRAY(Text)), bindparam("values", type_=ARRAY(Text)))
        .table_valued("source", "value")
        .render_derived(name="wanted")
    )
    sqlite = func.json_each(bindparam("pairs", type_=Text)).table_valued("value").alias("wanted")
    return {
        "postgresql": select(*_FIRST, column).join(pg, and_(Response.source == pg.c.source, column == pg.c.value)),
        "sqlite": select(*_FIRST, column)
        .select_from(sqlite)
        .join(
            Response,
            and_(
                Response.source == func.json_extract(sqlite.c.value, literal_column("'$[0]'")),
                column == func.json_extract(sqlite.c.value, literal_column("'$[1]'")),
            ),
        ),
    }


_BY_KEY = _pairs_lookup(Response.idempotency_key)
_BY_EXTERNAL = _pairs_lookup(Response.external_id)


def _with_active_keys(lookups: dict[str, Any]) -> dict[str, Any]:
    """``lookups`` plus, as extra rows, which of the given API keys are active.

    A group commit needs both before it writes; asked together they are one round trip
    instead of two (on PostgreSQL a round trip is most of a small group's time). Key rows
    carry the key's id in ``id`` and NULL everywhere else; ``source`` is never NULL on a
    response, so it tells the two kinds apart.
    """
    key_ids = {
        "postgresql": func.unnest(bindparam("key_ids", type_=ARRAY(Text)))
        .table_valued("value")
        .render_derived(name="presented"),
        "sqlite": func.json_each(bindparam("key_ids", type_=Text)).table_valued("value").alias("presented"),
    }
    return {
        dialect: union_all(
            lookup,
            select(ApiKey.id, null(), null(), null(), null())
            .join(key_ids[dialect], ApiKey.id == key_ids[dialect].c.value)
            .where(ApiKey.revoked_at.is_(None)),
        )
        for dialect, lookup in lookups.items()
    }


_BY_KEY_AND_ACTIVE = _with_active_keys(_BY_KEY)


async def find_by_idempotency_keys(
    session: AsyncSession, wanted: set[tuple[str, str]], key_ids: set[str] = frozenset()
) -> tuple[dict[tuple[str, str], dict[str, Any]], set[str]]:
    """Earlier responses for these (source, Idempotency-Key) pairs, and which of ``key_ids``
    (API keys) exist unrevoked — in one query."""
    if not key_ids:
        return await _find_pairs(session, _BY_KEY, "idempotency_key", wanted), set()
    conn = await session.connection()
    dialect = conn.dialect.name
    key_list = list(key_ids)
    result = await conn.execute(
        _BY_KEY_AND_ACTIVE[dialect],
        {**_pair_params(dialect, wanted), "key_ids": key_list if dialect == "postgresql" else json.dumps(key_list)},
    )
    earlier: dict[tuple[str, str], dict[str, Any]] = {}
    active: set[str] = set()
    for row in result.mappings():
        if row["source"] is None:
            active.add(row["id"])
        else:
            earlier[(row["source"], row["idempotency_key"])] = dict(row)
    return earlier, active


async def find_by_external_ids(
    session: AsyncSession, wanted: set[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """Earlier responses for these (source, external_id) pairs, in one query."""
    return await _find_pairs(session, _BY_EXTERNAL, "external_id", wanted)


def _pair_params(dialect: str, wanted: set[tuple[str, str]]) -> dict[str, Any]:
    """The (source, value) pairs as the lookups of :func:`_pairs_lookup` take them."""
    pairs = list(wanted)
    if dialect == "postgresql":
        return {"sources": [s for s, _ in pairs], "values": [v for _, v in pairs]}
    return {"pairs": json.dumps(pairs)}


async def _find_pairs(
    session: AsyncSession, queries: dict[str, Any], name: str, wanted: set[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    if not wanted:
        return {}
    conn = await session.connection()
    result = await conn.execute(queries[conn.dialect.name], _pair_params(conn.dialect.name, wanted))
    return {(r["source"], r[name]): dict(r) for r in result.mappings()}


async def of_customer(session: AsyncSession, customer_id: str, *, limit: int) -> list[Response]:
    """The customer's responses, newest answer first."""
    query = (
        select(Response)
        .where(Response.customer_id == customer_id)
        .order_by(Response.responded_at.desc(), Response.id.desc())
        .limit(limit)
    )
    return list((await session.scalars(query)).all())


async def with_customer_text(session: AsyncSession, fragment: str, *, limit: int) -> list[Response]:
    """Responses whose stored customer JSON contains ``fragment`` (a compact ``"key":value`` pair,
    compared case-insensitively), newest first.

    A scan of the column: meant for a person searching, not for hot paths.
    """
    escaped = fragment.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    query = (
        select(Response)
        .where(func.lower(type_coerce(Response.customer, Text)).like(f"%{escaped}%", escape="\\"))
        .order_by(Response.responded_at.desc(), Response.id.desc())
        .limit(limit)
    )
    return list((await session.scalars(query)).all())
