"""May this customer (or account) be surveyed now? ``throttle.survey_every`` counted from
the last response and from the last survey the app reported sending."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.followup import repository
from npsloop.services.followup.models import SurveySend
from npsloop.services.ingest import service as ingest
from npsloop.shared.clock import Clock
from npsloop.shared.policy import Policy


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    next_eligible_at: datetime | None
    reason: str
    last_response_at: datetime | None
    last_sent_at: datetime | None


async def eligibility(
    session: AsyncSession, *, customer_id: str | None, account_id: str | None, policy: Policy, clock: Clock
) -> Eligibility:
    """Eligible unless a response or a send for the customer or the account is younger than ``survey_every``.

    Without ``account_id`` the customer's account is the one they last answered or were
    surveyed under, so one answer throttles everyone on the account.

    ``reason``: ``never_surveyed``, ``throttle_elapsed``, ``recently_responded`` or ``recently_surveyed``.
    """
    now = clock.now()
    if account_id is None and customer_id is not None:
        # "Per account too": a customer asked about alone still waits for a colleague's answer.
        account_id = await ingest.last_account_id(session, customer_id)
        if account_id is None:
            account_id = await repository.last_sent_account_id(session, customer_id)
    responses, sends = [], []
    for key in ({"customer_id": customer_id}, {"account_id": account_id}):
        if next(iter(key.values())) is not None:
            responses.append(await ingest.last_responded_at(session, **key))
            sends.append(await repository.last_sent_at(session, **key))
    last_response = max((r for r in responses if r), default=None)
    last_sent = max((s for s in sends if s), default=None)
    latest = max((m for m in (last_response, last_sent) if m), default=None)
    if latest is None:
        return Eligibility(True, None, "never_surveyed", None, None)
    next_at = latest + policy.throttle.survey_every
    if next_at <= now:
        return Eligibility(True, None, "throttle_elapsed", last_response, last_sent)
    reason = "recently_responded" if latest == last_response else "recently_surveyed"
    return Eligibility(False, next_at, reason, last_response, last_sent)


def record_send(
    session: AsyncSession,
    *,
    customer_id: str | None,
    account_id: str | None,
    channel: str | None,
    touchpoint: str | None,
    sent_at: datetime | None,
    actor: str,
    clock: Clock,
) -> SurveySend:
    send = SurveySend(
        customer_id=customer_id,
        account_id=account_id,
        channel=channel,
        touchpoint=touchpoint,
        sent_at=sent_at or clock.now(),
        recorded_by=actor,
    )
    session.add(send)
    return send
