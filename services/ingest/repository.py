"""Queries on responses. Only this module talks SQL for the ingest service."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest.models import Response

_FIRST = (Response.id, Response.source, Response.request_hash, Response.comment)


async def get(session: AsyncSession, response_id: str) -> Response | None:
    return await session.get(Response, response_id)


async def find_by_idempotency_keys(session: AsyncSession,
                                   wanted: set[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Earlier responses for these (source, Idempotency-Key) pairs, in one query."""
    if not wanted:
        return {}
    query = select(*_FIRST, Response.idempotency_key).where(
        Response.source.in_({s for s, _ in wanted}), Response.idempotency_key.in_({k for _, k in wanted}))
    rows = (await session.execute(query)).mappings().all()
    return {(r["source"], r["idempotency_key"]): dict(r) for r in rows if (r["source"], r["idempotency_key"]) in wanted}


async def find_by_external_ids(session: AsyncSession,
                               wanted: set[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Earlier responses for these (source, external_id) pairs, in one query."""
    if not wanted:
        return {}
    query = select(*_FIRST, Response.external_id).where(
        Response.source.in_({s for s, _ in wanted}), Response.external_id.in_({e for _, e in wanted}))
    rows = (await session.execute(query)).mappings().all()
    return {(r["source"], r["external_id"]): dict(r) for r in rows if (r["source"], r["external_id"]) in wanted}
