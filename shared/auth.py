"""API keys: created once, stored as SHA-256, scoped, revocable."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.shared.clock import Clock
from npsloop.shared.models import ApiKey

SCOPES = (
    "responses:write",
    "responses:read",
    "tasks:read",
    "tasks:write",
    "analytics:read",
    "surveys:read",  # survey eligibility: when a customer last answered, nothing else
    "admin",
)
KEY_PREFIX = "nps"


class InvalidKeyRequest(ValueError):
    """A key request that cannot be honoured (unknown scope, empty name)."""


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(raw: str | list[str]) -> list[str]:
    scopes = [s.strip() for s in (raw.split(",") if isinstance(raw, str) else raw) if s.strip()]
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise InvalidKeyRequest(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    if not scopes:
        raise InvalidKeyRequest("at least one scope is required")
    return sorted(set(scopes))


async def create_key(session: AsyncSession, *, name: str, scopes: list[str], clock: Clock) -> tuple[ApiKey, str]:
    """Store a new key and return it with its clear text, which is never stored."""
    if not name.strip():
        raise InvalidKeyRequest("name must not be empty")
    key_id = secrets.token_hex(6)
    clear = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(24)}"
    row = ApiKey(
        id=key_id, name=name.strip(), key_hash=_hash(clear), scopes=parse_scopes(scopes), created_at=clock.now()
    )
    session.add(row)
    return row, clear


async def authenticate(session: AsyncSession, presented: str) -> Principal | None:
    """The principal for a presented key, or None. Compares hashes in constant time."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    row = await session.get(ApiKey, parts[1])
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, _hash(presented)):
        return None
    return Principal(key_id=row.id, name=row.name, scopes=frozenset(row.scopes))


class KeyCache:
    """Remembers key rows by id so the hot path can verify a key without a query.

    Only for callers that re-check revocation right before they write (the ingest
    writer does, in services.ingest.service.decide); everything else authenticates against
    the database on every request.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self._rows: dict[str, tuple[str, Principal]] = {}
        self._max = max_entries

    async def authenticate(self, session_factory, presented: str) -> Principal | None:
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX:
            return None
        cached = self._rows.get(parts[1])
        if cached is None:
            async with session_factory() as session:
                row = await session.get(ApiKey, parts[1])
            if row is None or row.revoked_at is not None:
                return None
            cached = (row.key_hash, Principal(key_id=row.id, name=row.name, scopes=frozenset(row.scopes)))
            if len(self._rows) >= self._max:
                self._rows.clear()
            self._rows[row.id] = cached
        key_hash, principal = cached
        return principal if hmac.compare_digest(key_hash, _hash(presented)) else None


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    return list((await session.scalars(select(ApiKey).order_by(ApiKey.created_at))).all())


async def revoke_key(session: AsyncSession, key_id: str, *, clock: Clock) -> bool:
    row = await session.get(ApiKey, key_id)
    if row is None:
        return False
    if row.revoked_at is None:
        row.revoked_at = clock.now()
    return True
