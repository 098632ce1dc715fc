"""What a customer's new answer changes beyond tasks: their category, the recovery of
earlier resolved detractor tasks, the nurture segment event, the review-site request."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.followup import repository
from npsloop.services.followup.models import CustomerCategory, Recovery
from npsloop.shared import events, outbox, row_buffer
from npsloop.shared.clock import Clock
from npsloop.shared.policy import Policy

RECOVERED = ("passive", "promoter")


async def note_answer(
    session: AsyncSession, response: dict[str, Any], category: str, *, policy: Policy, clock: Clock
) -> None:
    """Record the customer's newest category and everything that follows from it.

    Runs once per response: a re-classification of the same response, or of an older one
    (a replay of history), finds the stored answer as new or newer and does nothing.
    """
    customer = response.get("customer") or {}
    received_at = datetime.fromisoformat(response["received_at"])
    current = await repository.customer_category(session, customer["id"])
    if current is not None and (current.response_id == response["id"] or current.received_at > received_at):
        return
    previous = current.category if current is not None else None
    if current is None:
        current = row_buffer.add(
            session,
            CustomerCategory,
            customer_id=customer["id"],
            category=category,
            response_id=response["id"],
            received_at=received_at,
        )
        repository.remember(session, repository.CATEGORY, customer["id"], current)
    else:
        current.category, current.response_id, current.received_at = category, response["id"], received_at
        row_buffer.changed(session, CustomerCategory, current)
    await _measure_recoveries(session, response, category, received_at)
    now = clock.now()
    if policy.passives.segment_event and "passive" in (category, previous):
        # Nurture tools add passives and need to hear when someone leaves the segment.
        await outbox.emit(
            session,
            events.CUSTOMER_SEGMENT_CHANGED,
            key=customer["id"],
            subject=customer["id"],
            time=now,
            clock=clock,
            data={
                "customer": customer,
                "segment": category,
                "previous_segment": previous,
                "response_id": response["id"],
                "score": response["score"],
            },
        )
    review = policy.review_requests
    if review.audience == "every_respondent":  # never by category: see ReviewRequests
        await outbox.emit(
            session,
            events.REVIEW_REQUESTED,
            key=customer["id"],
            subject=response["id"],
            time=now,
            clock=clock,
            data={
                "customer": customer,
                "response_id": response["id"],
                "review_url": str(review.url),
                "channel": review.channel,
            },
        )


async def _measure_recoveries(
    session: AsyncSession, response: dict[str, Any], category: str, received_at: datetime
) -> None:
    customer_id = response["customer"]["id"]
    measured = await repository.resolved_awaiting_answer(session, customer_id, received_at, response["id"])
    unmeasured = repository.prefetched(session, repository.RESOLVED_UNMEASURED)
    if measured and unmeasured is not None and customer_id in unmeasured:
        unmeasured[customer_id] = [t for t in unmeasured[customer_id] if t not in measured]
    for task in measured:
        row_buffer.add(
            session,
            Recovery,
            task_id=task.id,
            customer_id=customer_id,
            account_id=task.account_id,
            team=task.team,
            outcome=task.outcome,
            detractor_response_id=task.response_id,
            detractor_score=task.score,
            next_response_id=response["id"],
            next_score=response["score"],
            next_category=category,
            recovered=category in RECOVERED,
            resolved_at=task.resolved_at,
            answered_at=received_at,
        )
