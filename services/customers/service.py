"""Assembles a customer's story from the services that own each part, through their public functions."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.classifier import service as classifier
from npsloop.services.customers.schemas import (
    CustomerMatch,
    CustomerOut,
    CustomerResponseOut,
    ReferralRequestOut,
)
from npsloop.services.followup import service as followup
from npsloop.services.followup.schemas import EligibilityOut, OutcomeOut, TaskOut
from npsloop.services.ingest import service as ingest
from npsloop.shared.clock import Clock
from npsloop.shared.policy import Policy
from npsloop.shared.problems import NotFound


def _category(score: int) -> str:
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"


async def story(session: AsyncSession, customer_id: str, *, policy: Policy, clock: Clock) -> CustomerOut:
    """Everything about one customer; ``NotFound`` when they never answered or were erased.

    An erased customer's rows carry a pseudonym instead of their id, so they are not found here.
    """
    responses = await ingest.customer_responses(session, customer_id)
    if not responses:
        raise NotFound(f"customer {customer_id} has no responses (unknown, or erased)")
    classified = await classifier.current_classifications(session, [r["id"] for r in responses])
    followed = await followup.customer_followup(session, customer_id, policy=policy, clock=clock)
    newest = responses[0]
    customer = newest.get("customer") or {}
    rows = []
    for response in responses:
        found = classified.get(response["id"], {})
        survey = response.get("survey") or {}
        rows.append(
            CustomerResponseOut(
                id=response["id"],
                score=response["score"],
                category=found.get("category") or _category(response["score"]),
                comment=response.get("comment"),
                themes=found.get("themes") or [],
                sentiment=found.get("sentiment"),
                touchpoint=survey.get("touchpoint"),
                survey=survey,
                properties=response.get("properties") or {},
                responded_at=response["responded_at"],
                received_at=response["received_at"],
                classified_at=found.get("classified_at"),
            )
        )
    return CustomerOut(
        customer_id=customer_id,
        customer=customer,
        account_id=customer.get("account_id"),
        segment=customer.get("segment"),
        category=followed.category or rows[0].category,
        responses=rows,
        tasks=[TaskOut.of(task) for task in followed.tasks],
        business_outcomes=[OutcomeOut.model_validate(o) for o in followed.business_outcomes],
        referral_requests=[
            ReferralRequestOut(id=r.id, response_id=r.response_id, requested_at=r.requested_at)
            for r in followed.referral_requests
        ],
        eligibility=EligibilityOut(**followed.eligibility.__dict__),
    )


async def find(session: AsyncSession, *, email: str | None, customer_id: str | None) -> list[CustomerMatch]:
    """Customers whose newest known identity has this email, or whose id is this one."""
    return [
        CustomerMatch(**found) for found in await ingest.find_customers(session, email=email, customer_id=customer_id)
    ]
