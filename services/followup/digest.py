"""The periodic digest per team channel: new detractors, open tasks, breaches, NPS of the period.

Sent once per team and period whatever restarts happen: the ``digests`` row and the
``npsloop.followup.digest.v1`` event are written in one transaction, keyed by period end.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.followup import repository
from npsloop.services.followup.models import DigestSent
from npsloop.services.ingest import service as ingest
from npsloop.shared import events, outbox
from npsloop.shared.clock import Clock
from npsloop.shared.policy import Digest, Policy

_ANCHOR = date(2000, 1, 3)  # a Monday: weekly digests land on Mondays


def latest_period_end(digest: Digest, now: datetime) -> datetime:
    """The most recent digest moment at or before ``now`` (wall-clock ``at`` in the digest's zone)."""
    zone = ZoneInfo(digest.timezone)
    hour, minute = (int(x) for x in digest.at.split(":"))
    if digest.every % timedelta(days=1) == timedelta(0):
        local_now = now.astimezone(zone)
        day = local_now.date()
        if datetime.combine(day, time(hour, minute), tzinfo=zone) > local_now:
            day -= timedelta(days=1)
        day -= timedelta(days=(day - _ANCHOR).days % digest.every.days)
        return datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(UTC)
    anchor = datetime.combine(_ANCHOR, time(hour, minute), tzinfo=zone).astimezone(UTC)
    return anchor + digest.every * ((now - anchor) // digest.every)


def _nps(promoters: int, passives: int, detractors: int) -> float | None:
    total = promoters + passives + detractors
    return round(100.0 * (promoters - detractors) / total, 1) if total else None


async def send_digests(session: AsyncSession, *, policy: Policy, clock: Clock, public_url: str) -> int:
    """Emit the digest of the latest finished period for every team channel not yet sent; returns how many."""
    if not policy.digest.enabled:
        return 0
    now = clock.now()
    end = latest_period_end(policy.digest, now)
    start = end - policy.digest.every
    nps_counts = await ingest.score_counts(session, start, end)
    sent = 0
    for team, channel in sorted(policy.team_channels().items()):
        if await repository.digest_sent(session, team, end):
            continue
        counts = await repository.team_counts(session, team, start, end)
        summary = {
            "team": team,
            "channel": channel,
            "period_start": start.isoformat(),
            "period_end": end.isoformat(),
            **counts,
            "responses": sum(nps_counts),
            "nps": _nps(*nps_counts),
            "link": f"{public_url.rstrip('/')}/?team={team}",
        }
        session.add(DigestSent(team=team, period_end=end, channel=channel, summary=summary, sent_at=now))
        if any(counts.values()):
            # A team with nothing to do is recorded but not told: empty digests teach people to ignore them.
            await outbox.append(
                session,
                events.new_event(events.FOLLOWUP_DIGEST, key=f"team:{team}", subject=team, data=summary, time=now),
                clock=clock,
            )
            sent += 1
    return sent
