"""Who owns a detractor's task: the account owner from the response, else the team's
round-robin, else nobody (the team's queue)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.followup import repository
from npsloop.services.followup.models import RoutingCursor
from npsloop.shared.policy import Routed


async def owner_from(routed: Routed, facts: dict[str, Any]) -> str | None:
    """The value ``assignee_from`` names (``properties.account_owner``, ``customer.email`` …), if present."""
    if not routed.assignee_from:
        return None
    source, _, name = routed.assignee_from.partition(".")
    value = (facts.get(source) or {}).get(name)
    return str(value) if value not in (None, "") else None


async def assignee_for(session: AsyncSession, routed: Routed, facts: dict[str, Any]) -> str | None:
    owner = await owner_from(routed, facts)
    if owner is not None:
        return owner
    if not routed.members:
        return None
    # The cursor row is locked for the rest of the transaction, so two consumers never
    # hand the same turn to two tasks; it survives restarts, so the rotation is fair.
    cursor = await repository.routing_cursor(session, routed.team)
    if cursor is None:
        cursor = RoutingCursor(team=routed.team, position=0)
        session.add(cursor)
    repository.remember(session, repository.ROUTING_CURSOR, routed.team, cursor)
    member = routed.members[cursor.position % len(routed.members)]
    cursor.position += 1
    return member
