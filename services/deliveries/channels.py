"""Policy channels — Slack incoming webhooks, email over SMTP, signed webhooks.

An alert becomes one stored ``deliveries`` row per channel, rendered when it is created
(``envelope``, by services.deliveries.messages) and sent by the same DeliveryWorker as
webhook subscriptions: every attempt stored, backoff with jitter, dead after
``delivery_max_age_hours``.
"""

from __future__ import annotations

import asyncio
import json
import smtplib
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.deliveries import repository, signing
from npsloop.services.deliveries.messages import email_message, slack_message
from npsloop.services.deliveries.models import Delivery
from npsloop.services.deliveries.schemas import Alert
from npsloop.services.deliveries.urls import UnsafeUrl, check_url, check_url_at_startup
from npsloop.services.deliveries.wakeup import DELIVERIES_ENQUEUED
from npsloop.shared import row_buffer
from npsloop.shared.db import signal_on_commit
from npsloop.shared.ids import new_id
from npsloop.shared.policy import EmailChannel, Policy, SlackChannel, WebhookChannel
from npsloop.shared.settings import ConfigError, Settings

RESPONSE_BODY_LIMIT = 2000


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    body: str | None
    error: str | None


def check_targets(policy: Policy, *, allow_private: bool) -> None:
    """Stop start-up on a channel whose URL points at an internal address: every alert to it
    would be refused and retried for a day, unnoticed."""
    for name, channel in policy.channels.items():
        url = getattr(channel, "url", None)
        if url is None:
            continue
        try:
            check_url_at_startup(str(url), allow_private=allow_private)
        except UnsafeUrl as exc:
            raise ConfigError(
                f"policy file: channels.{name}.url {exc}; set NPSLOOP_ALLOW_PRIVATE_WEBHOOK_URLS=true "
                "to send alerts to internal addresses"
            ) from None


def enqueue(
    session: AsyncSession,
    *,
    name: str,
    channel: SlackChannel | EmailChannel | WebhookChannel,
    event_id: str,
    event_type: str,
    alert: Alert,
    envelope: str,
    now: datetime,
) -> Delivery:
    """Store one pending delivery of ``alert`` (or, for webhooks, the CloudEvent ``envelope``) to a channel.

    The caller de-duplicates with ``already_enqueued``; the unique (channel, event_id) key
    is the backstop, so an event alerts each channel at most once.
    """
    if isinstance(channel, SlackChannel):
        body, target = json.dumps(slack_message(alert)), str(channel.url)
    elif isinstance(channel, EmailChannel):
        body, target = json.dumps(email_message(alert, subject_prefix=channel.subject_prefix)), json.dumps(channel.to)
    else:
        body, target = envelope, str(channel.url)
    return add_pending(
        session,
        name=name,
        channel_type=channel.type,
        target=target,
        body=body,
        event_id=event_id,
        event_type=event_type,
        now=now,
    )


def add_pending(
    session: AsyncSession,
    *,
    name: str,
    channel_type: str,
    target: str,
    body: str,
    event_id: str,
    event_type: str,
    now: datetime,
) -> Delivery:
    """Store one pending delivery to a named channel, due now, and wake the worker on commit."""
    delivery = row_buffer.add(
        session,
        Delivery,
        id=new_id(),
        subscription_id=None,
        channel=name,
        channel_type=channel_type,
        target=target,
        event_id=event_id,
        event_type=event_type,
        envelope=body,
        status="pending",
        attempts=0,
        created_at=now,
        next_attempt_at=now,
    )
    repository.remember_delivery(session, event_id, f"channel:{name}")
    signal_on_commit(session, DELIVERIES_ENQUEUED)
    return delivery


async def already_enqueued(session: AsyncSession, *, name: str, event_id: str) -> bool:
    return await repository.channel_delivery_exists(session, name, event_id)


def request_headers(channel_type: str, *, msg_id: str, secret: str | None, body: bytes) -> dict[str, str]:
    """Headers of a POST to a Slack or webhook channel: webhooks get Standard Webhooks' id and
    timestamp (and signature, with a secret), the same id on every attempt."""
    if channel_type != "webhook":
        return {"content-type": "application/json"}
    stamp = int(time.time())
    if secret:
        return signing.headers(secret, msg_id=msg_id, timestamp=stamp, body=body)
    return {"webhook-id": msg_id, "webhook-timestamp": str(stamp), "content-type": "application/json"}


async def send_email(
    *, target: str, body: bytes, msg_id: str, settings: Settings, executor: Executor | None = None
) -> SendResult:
    """One email attempt on ``executor``'s threads (SMTP is blocking; the loop's default executor without one)."""
    return await asyncio.get_running_loop().run_in_executor(
        executor, _send_email, settings, json.loads(target), json.loads(body), msg_id
    )


async def send(
    client: httpx.AsyncClient,
    *,
    channel_type: str,
    target: str,
    body: bytes,
    msg_id: str,
    secret: str | None,
    settings: Settings,
    allow_private: bool,
) -> SendResult:
    """One attempt through ``client``; never raises for a receiver's failure (the result records it).

    The delivery worker sends Slack and webhook channels through its lean sender instead
    (services.deliveries.attempts), with the same headers."""
    if channel_type == "email":
        return await send_email(target=target, body=body, msg_id=msg_id, settings=settings)
    try:
        await check_url(target, allow_private=allow_private)
    except UnsafeUrl as exc:
        return SendResult(None, None, f"refused: {exc}")
    headers = request_headers(channel_type, msg_id=msg_id, secret=secret, body=body)
    try:
        reply = await client.post(target, content=body, headers=headers)
        return SendResult(reply.status_code, reply.text[:RESPONSE_BODY_LIMIT], None)
    except httpx.HTTPError as exc:
        return SendResult(None, None, f"{type(exc).__name__}: {exc}"[:RESPONSE_BODY_LIMIT])


def _send_email(settings: Settings, to: list[str], content: dict, msg_id: str) -> SendResult:
    if not settings.smtp_host:
        return SendResult(None, None, "NPSLOOP_SMTP_HOST is not set; email channels cannot send")
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = content["subject"], settings.smtp_from, ", ".join(to)
    message["Date"] = formatdate(usegmt=True)
    # Stable across retries, so mail clients and receivers can de-duplicate.
    message["Message-ID"] = f"<{msg_id}@npsloop>"
    message.set_content(content["text"])
    message.add_alternative(content["html"], subtype="html")
    smtp_class = smtplib.SMTP_SSL if settings.smtp_security == "tls" else smtplib.SMTP
    try:
        with smtp_class(settings.smtp_host, settings.smtp_port, timeout=settings.delivery_timeout_seconds) as smtp:
            smtp.ehlo()
            if settings.smtp_security == "starttls" and smtp.has_extn("starttls"):
                smtp.starttls()
                smtp.ehlo()
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password or "")
            refused = smtp.send_message(message)
        if refused:
            return SendResult(550, None, f"refused recipients: {', '.join(refused)}")
        return SendResult(250, "accepted", None)
    except smtplib.SMTPResponseException as exc:
        return SendResult(exc.smtp_code, None, f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"[:RESPONSE_BODY_LIMIT])
    except (smtplib.SMTPException, OSError) as exc:
        return SendResult(None, None, f"{type(exc).__name__}: {exc}"[:RESPONSE_BODY_LIMIT])
