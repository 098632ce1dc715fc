"""Queries on responses. Only this module talks SQL for the ingest service.

The lookups run once per group commit, so they are built once, at import, and executed
on the session's Core connection: no per-call statement construction, no ORM layer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence, Set
from datetime import datetime
from typing import Any

from sqlalchemy import Text, and_, bindparam, case, func, literal_column, null, select, type_coerce, union_all
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.ingest.models import Response
from npsloop.shared.models import ApiKey

_FIRST = (Response.id, Response.source, Response.request_hash, Response.comment)


async def get(session: AsyncSession, response_id: str, *, lock: bool = False) -> Response | None:
    """``lock``: FOR UPDATE, for a change built on what is read."""
    return await session.get(Response, response_id, with_for_update=lock)


async def get_many(session: AsyncSession, response_ids: Sequence[str]) -> list[Response]:
    if not response_ids:
        return []
    return list((await session.scalars(select(Response).where(Response.id.in_(list(response_ids))))).all())


async def page(
    session: AsyncSession, *, since: datetime | None, after: tuple[datetime, str] | None, limit: int
) -> list[Response]:
    """Stored responses in (received_at, id) order, keyset-paged, optionally from ``since`` on."""
    query = select(Response).order_by(Response.received_at, Response.id).limit(limit)
    if since is not None:
        query = query.where(Response.received_at >= since)
    if after is not None:
        received_at, response_id = after
        query = query.where(
            (Response.received_at > received_at) | ((Response.received_at == received_at) & (Response.id > response_id))
        )
    return list((await session.scalars(query)).all())


async def newest_with_comment(session: AsyncSession, *, limit: int) -> list[Response]:
    """The ``limit`` most recently received responses that still hold a comment (an erased or
    purged comment is gone), newest first."""
    query = (
        select(Response)
        .where(Response.comment.is_not(None), Response.comment != "")
        .order_by(Response.received_at.desc(), Response.id.desc())
        .limit(limit)
    )
    return list((await session.scalars(query)).all())


async def count(session: AsyncSession, *, since: datetime | None) -> int:
    query = select(func.count()).select_from(Response)
    if since is not None:
        query = query.where(Response.received_at >= since)
    return int(await session.scalar(query) or 0)


async def score_counts(session: AsyncSession, start: datetime, end: datetime) -> tuple[int, int, int]:
    """(promoters, passives, detractors) among responses received in [start, end); category follows the score."""
    category = case((Response.score >= 9, "promoter"), (Response.score >= 7, "passive"), else_="detractor")
    query = (
        select(category, func.count())
        .where(Response.received_at >= start, Response.received_at < end)
        .group_by(category)
    )
    found: dict[str, int] = dict((await session.execute(query)).all())
    return found.get("promoter", 0), found.get("passive", 0), found.get("detractor", 0)


async def last_responded_at(
    session: AsyncSession, *, customer_id: str | None = None, account_id: str | None = None
) -> datetime | None:
    column = Response.customer_id if customer_id is not None else Response.account_id
    return await session.scalar(select(func.max(Response.responded_at)).where(column == (customer_id or account_id)))


async def last_account_id(session: AsyncSession, customer_id: str) -> str | None:
    """The account of the customer's latest response that named one."""
    return await session.scalar(
        select(Response.account_id)
        .where(Response.customer_id == customer_id, Response.account_id.is_not(None))
        .order_by(Response.responded_at.desc())
        .limit(1)
    )


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
    session: AsyncSession, wanted: set[tuple[str, str]], key_ids: Set[str] = frozenset()
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


async def answers_of(
    session: AsyncSession, *, customer_ids: Sequence[str], account_ids: Sequence[str], before: datetime
) -> list[tuple[str, str | None, int, datetime]]:
    """``(customer_id, account_id, score, responded_at)`` of these customers' or accounts' answers before ``before``."""
    found: dict[tuple[str, datetime, int], tuple[str, str | None, int, datetime]] = {}
    for column, ids in ((Response.customer_id, customer_ids), (Response.account_id, account_ids)):
        for chunk in _chunks(list(ids)):
            query = select(Response.customer_id, Response.account_id, Response.score, Response.responded_at).where(
                column.in_(chunk), Response.responded_at < before
            )
            for customer_id, account_id, score, responded_at in (await session.execute(query)).all():
                found[customer_id, responded_at, score] = (customer_id, account_id, score, responded_at)
    return list(found.values())


async def property_names(session: AsyncSession, *, start: datetime, end: datetime, sample: int) -> dict[str, int]:
    """How many of the period's newest ``sample`` responses carry each property name."""
    query = (
        select(Response.properties)
        .where(Response.responded_at >= start, Response.responded_at < end)
        .order_by(Response.responded_at.desc())
        .limit(sample)
    )
    counts: dict[str, int] = {}
    for (properties,) in (await session.execute(query)).all():
        for name in properties or {}:
            counts[name] = counts.get(name, 0) + 1
    return counts


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
