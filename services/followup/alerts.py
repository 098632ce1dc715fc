"""Alerts: follow-up events become deliveries to the policy channels routing chose.

A consumer of the follow-up topic, so alerts never slow the transaction that opened or
breached a task, and an event redelivered after a crash alerts each channel only once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.deliveries import service as deliveries
from npsloop.services.deliveries.schemas import Alert
from npsloop.shared import events
from npsloop.shared.bus.contract import Subscription
from npsloop.shared.clock import Clock
from npsloop.shared.policy import Policy
from npsloop.shared.taxonomy import DEFAULT_THEMES

CONSUMER = "alerts"


def _when(value: str | None) -> str:
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _customer(data: dict[str, Any]) -> str:
    customer = data.get("customer") or {}
    label = customer.get("name") or customer.get("email") or customer["id"]
    extra = [v for v in (customer.get("account_id"), customer.get("segment")) if v]
    return f"{label} ({', '.join(extra)})" if extra else str(label)


def theme_labels(policy: Policy) -> dict[str, str]:
    """Theme id -> the label people know it by (the policy's taxonomy, else the built-in one)."""
    return {theme.id: theme.display_label for theme in policy.theme_definitions() or DEFAULT_THEMES}


def _themes(data: dict[str, Any], labels: Mapping[str, str]) -> str:
    # A theme since removed from the taxonomy still reads as words, not as a slug.
    names = [labels.get(t["id"]) or t["id"].replace("_", " ").capitalize() for t in data.get("themes") or []]
    return ", ".join(names) or "—"


def task_alert(event: events.CloudEvent, public_url: str, labels: Mapping[str, str] | None = None) -> Alert:
    data = event.data
    heading = {
        events.FOLLOWUP_OPENED: (
            "New detractor",
            f"A customer scored {data['score']}/10. Reach out before the SLA ends.",
        ),
        events.FOLLOWUP_SLA_WARNING: ("SLA warning", "This task is not acknowledged yet and its SLA is running out."),
        events.FOLLOWUP_SLA_BREACHED: ("SLA breached", "Nobody acknowledged this detractor before the SLA ended."),
        events.FOLLOWUP_REASSIGNED: ("Task reassigned", f"Now owned by {data.get('assignee') or 'the team queue'}."),
    }[event.type]
    return Alert(
        title=heading[0],
        summary=heading[1],
        comment=data.get("comment"),
        link=f"{public_url.rstrip('/')}/tasks/{data['task_id']}",
        fields=[
            ("Score", str(data["score"])),
            ("Customer", _customer(data)),
            ("Themes", _themes(data, labels or {})),
            ("Due", _when(data.get("due_at"))),
            ("Assignee", data.get("assignee") or "unassigned"),
            ("Team", data.get("team") or "—"),
        ],
    )


def referral_alert(event: events.CloudEvent) -> Alert:
    data = event.data
    return Alert(
        title="Promoter: ask for a referral",
        summary=f"A customer scored {data['score']}/10. A good moment to ask for a referral or a case study.",
        comment=data.get("comment"),
        fields=[("Score", str(data["score"])), ("Customer", _customer(data)), ("Owner", data.get("owner") or "—")],
    )


def review_alert(event: events.CloudEvent) -> Alert:
    data = event.data
    return Alert(
        title="Review request",
        summary="Invite this respondent to review us (sent to every respondent).",
        fields=[("Customer", _customer(data)), ("Review site", data["review_url"])],
        link=data["review_url"],
        link_label="Review site",
    )


def digest_alert(event: events.CloudEvent) -> Alert:
    data = event.data
    nps = "—" if data["nps"] is None else f"{data['nps']:+.1f}"
    return Alert(
        title=f"Daily digest: {data['team']}",
        summary=f"{_when(data['period_start'])} – {_when(data['period_end'])}",
        fields=[
            ("New detractors", str(data["new_detractors"])),
            ("Open tasks", str(data["open_tasks"])),
            ("SLA breaches", str(data["breaches"])),
            ("Resolved", str(data["resolved"])),
            ("NPS", f"{nps} ({data['responses']} responses)"),
        ],
        link=data.get("link"),
        link_label="Open the inbox",
    )


def targets(event: events.CloudEvent) -> list[str]:
    """Channel names an event alerts: the routed channel, plus escalation on a breach."""
    data = event.data
    names = [data.get("channel")]
    if event.type == events.FOLLOWUP_SLA_BREACHED:
        names.append(data.get("escalation_channel"))
    return list(dict.fromkeys(n for n in names if n))


async def alert(
    session: AsyncSession,
    event: events.CloudEvent,
    *,
    policy: Policy,
    clock: Clock,
    public_url: str,
    labels: Mapping[str, str] | None = None,
) -> int:
    """Store one delivery per target channel; returns how many were new.

    ``labels``: theme labels by id (``theme_labels(policy)`` when not given)."""
    if event.type == events.FOLLOWUP_CUSTOMER_MESSAGED:
        return await _message_customer(session, event, policy=policy, clock=clock)
    if event.type == events.REFERRAL_REQUESTED:
        message = referral_alert(event)
    elif event.type == events.REVIEW_REQUESTED:
        message = review_alert(event)
    elif event.type == events.FOLLOWUP_DIGEST:
        message = digest_alert(event)
    else:
        message = task_alert(event, public_url, theme_labels(policy) if labels is None else labels)
    created = 0
    for name in targets(event):
        channel = policy.channels.get(name)
        if channel is None or await deliveries.alert_enqueued(session, name=name, event_id=event.id):
            continue  # a channel removed from the policy since the event: nothing to send to
        deliveries.enqueue_alert(
            session,
            name=name,
            channel=channel,
            event_id=event.id,
            event_type=event.type,
            alert=message,
            envelope=event.to_json(),
            now=clock.now(),
        )
        created += 1
    return created


async def _message_customer(session: AsyncSession, event: events.CloudEvent, *, policy: Policy, clock: Clock) -> int:
    """The customer's email, once per event; with ``send_via: event`` a CRM sends it instead."""
    if policy.customer_messages.send_via != "email" or await deliveries.customer_message_enqueued(
        session, event_id=event.id
    ):
        return 0
    data = event.data
    deliveries.enqueue_customer_message(
        session,
        to=data["to"],
        subject=data["subject"],
        body=data["body"],
        event_id=event.id,
        event_type=event.type,
        now=clock.now(),
    )
    return 1


async def prefetch(session: AsyncSession, group: list[events.CloudEvent], *, policy: Policy) -> None:
    """Which of the group's events already have deliveries to the policy's channels and the
    customer (what ``alert_enqueued`` and ``customer_message_enqueued`` ask), in one query."""
    await deliveries.prefetch_alerts(session, [event.id for event in group], channel_names=list(policy.channels))


ALERTED = frozenset(
    {
        events.FOLLOWUP_OPENED,
        events.FOLLOWUP_SLA_WARNING,
        events.FOLLOWUP_SLA_BREACHED,
        events.FOLLOWUP_REASSIGNED,
        events.REFERRAL_REQUESTED,
        events.REVIEW_REQUESTED,
        events.FOLLOWUP_DIGEST,
        events.FOLLOWUP_CUSTOMER_MESSAGED,
    }
)


def subscriptions(*, policy: Policy, clock: Clock, public_url: str) -> list[Subscription]:
    labels = theme_labels(policy)

    async def on_followup(session: AsyncSession, event: events.CloudEvent) -> None:
        await alert(session, event, policy=policy, clock=clock, public_url=public_url, labels=labels)

    async def prefetch_group(session: AsyncSession, group: list[events.CloudEvent]) -> None:
        await prefetch(session, group, policy=policy)

    return [
        Subscription(
            consumer=CONSUMER,
            topics=(events.TOPIC_FOLLOWUPS,),
            handler=on_followup,
            event_types=ALERTED,
            prefetch=prefetch_group,
        )
    ]
