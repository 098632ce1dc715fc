"""Queries on responses. Only this module talks SQL for the ingest service."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest.models import Response


async def get(session: AsyncSession, response_id: str) -> Response | None:
    return await session.get(Response, response_id)


async def find_by_idempotency_key(session: AsyncSession, source: str, key: str) -> Response | None:
    return await session.scalar(select(Response).where(Response.source == source, Response.idempotency_key == key))


async def find_by_external_id(session: AsyncSession, source: str, external_id: str) -> Response | None:
    return await session.scalar(select(Response).where(Response.source == source, Response.external_id == external_id))
