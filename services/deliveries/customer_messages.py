"""Messages to a customer (closing the loop) as stored, retried email deliveries.

Unlike an alert, the text is a person's own words to the customer: sent as written, with
no heading, fields or links added, from the configured SMTP sender.
"""

from __future__ import annotations

import html
import json
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.deliveries import channels, repository
from npsloop.services.deliveries.models import Delivery

CHANNEL = "customer-email"


async def already_enqueued(session: AsyncSession, *, event_id: str) -> bool:
    return await repository.channel_delivery_exists(session, CHANNEL, event_id)


def enqueue(
    session: AsyncSession, *, to: str, subject: str, body: str, event_id: str, event_type: str, now: datetime
) -> Delivery:
    """One pending email to ``to``; the unique (channel, event_id) key keeps it to one per event."""
    paragraphs = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in body.split("\n\n"))
    content = {"subject": subject, "text": body, "html": f"<html><body>{paragraphs}</body></html>"}
    return channels.add_pending(
        session,
        name=CHANNEL,
        channel_type="email",
        target=json.dumps([to]),
        body=json.dumps(content),
        event_id=event_id,
        event_type=event_type,
        now=now,
    )
