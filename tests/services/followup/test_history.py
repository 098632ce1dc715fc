"""Answers imported as history (``history: true``): follow-up leaves alone those whose SLA,
counted from ``responded_at``, had run out when they arrived — and only those."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from npsloop.services.followup.models import ReferralRequest, Task
from npsloop.shared.models import EventLogEntry
from tests.factories import post_response, response_body


def _answer(score: int, customer: str, *, days_ago: float, history: bool, clock) -> dict:
    responded = clock.now() - timedelta(days=days_ago)
    return response_body(
        score, customer, "It crashed during checkout", responded_at=responded.isoformat(), history=history
    )


async def _tasks_by_response(runtime) -> set[str]:
    async with runtime.db.sessions() as session:
        return set((await session.scalars(select(Task.response_id))).all())


async def test_a_detractor_imported_long_after_its_sla_opens_no_task_but_is_classified(
    client, runtime, clock, make_key, pump
):
    headers = await make_key("admin")
    old = await post_response(client, headers, _answer(2, "old", days_ago=30, history=True, clock=clock))
    await pump()
    assert await _tasks_by_response(runtime) == set()
    stored = (await client.get(f"/v1/responses/{old}", headers=headers)).json()
    assert stored["history"] is True and stored["category"] == "detractor"
    async with runtime.db.sessions() as session:
        opened = await session.scalar(
            select(func.count()).select_from(EventLogEntry).where(EventLogEntry.type == "npsloop.followup.opened.v1")
        )
    assert opened == 0


async def test_history_still_inside_its_sla_and_late_live_answers_are_followed_up(
    client, runtime, clock, make_key, pump
):
    headers = await make_key("admin")
    # Scores 0-4 have 24 hours by default: 2 hours old is still inside it.
    recent = await post_response(client, headers, _answer(3, "recent", days_ago=2 / 24, history=True, clock=clock))
    # Not history: an app that sends an old answer late gets the follow-up it always got.
    live = await post_response(client, headers, _answer(3, "live", days_ago=30, history=False, clock=clock))
    await pump()
    assert await _tasks_by_response(runtime) == {recent, live}


async def test_the_sla_of_the_answer_decides_a_5_has_48_hours(client, runtime, clock, make_key, pump):
    headers = await make_key("admin")
    inside = await post_response(client, headers, _answer(5, "inside", days_ago=1.5, history=True, clock=clock))
    await post_response(client, headers, _answer(2, "outside", days_ago=1.5, history=True, clock=clock))
    await pump()
    assert await _tasks_by_response(runtime) == {inside}


async def test_an_old_promoter_from_history_gets_no_referral_request(client, runtime, clock, make_key, pump):
    headers = await make_key("admin")
    await post_response(client, headers, _answer(10, "fan", days_ago=90, history=True, clock=clock))
    await pump()
    async with runtime.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ReferralRequest)) == 0


async def test_a_late_comment_on_old_history_still_opens_no_task(client, runtime, clock, make_key, pump):
    headers = await make_key("admin")
    body = _answer(1, "later", days_ago=10, history=True, clock=clock) | {"comment": None, "external_id": "h-1"}
    await post_response(client, headers, body)
    await pump()
    await post_response(client, headers, body | {"comment": "Billing was wrong three times"})
    await pump()
    assert await _tasks_by_response(runtime) == set()
