"""Policy channels on the wire: SMTP to a local aiosmtpd server, Slack and webhook POSTs to local receivers."""

from __future__ import annotations

import json

import httpx
from standardwebhooks.webhooks import Webhook

from npsloop.services.deliveries import channels
from npsloop.services.deliveries.channels import Alert
from npsloop.shared.settings import Settings
from tests.support.receivers import HttpReceiver, block_kit_problems

ALERT = Alert(
    title="New detractor",
    summary="Scored 2/10.",
    comment="Billing <script> is broken",
    fields=[("Score", "2"), ("Customer", "Acme")],
    link="http://npsloop.test/tasks/t1",
)


def test_slack_messages_are_valid_block_kit():
    message = channels.slack_message(ALERT)
    assert block_kit_problems(message) == []
    long = channels.slack_message(Alert(title="x" * 400, summary="y" * 5000, fields=[(str(i), "v") for i in range(14)]))
    assert block_kit_problems(long) == []


def test_email_bodies_escape_html_and_keep_a_plain_text_part():
    content = channels.email_message(ALERT, subject_prefix="[npsloop]")
    assert content["subject"] == "[npsloop] New detractor"
    assert "Billing <script> is broken" in content["text"] and "<script>" not in content["html"]


async def test_email_goes_out_over_smtp_with_a_stable_message_id(smtp):
    settings = Settings(smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_from="alerts@npsloop.test")
    body = json.dumps(channels.email_message(ALERT, subject_prefix="[npsloop]")).encode()
    async with httpx.AsyncClient() as client:
        result = await channels.send(
            client,
            channel_type="email",
            target=json.dumps(["cs@example.com"]),
            body=body,
            msg_id="evt-1",
            secret=None,
            settings=settings,
            allow_private=False,
        )
    assert (result.status_code, result.error) == (250, None)
    (mail,) = smtp.inbox.messages
    assert (mail["From"], mail["To"], mail["Message-ID"]) == (
        "alerts@npsloop.test",
        "cs@example.com",
        "<evt-1@npsloop>",
    )


async def test_email_without_an_smtp_server_fails_visibly():
    body = json.dumps(channels.email_message(ALERT, subject_prefix="")).encode()
    async with httpx.AsyncClient() as client:
        result = await channels.send(
            client,
            channel_type="email",
            target='["cs@example.com"]',
            body=body,
            msg_id="evt-1",
            secret=None,
            settings=Settings(),
            allow_private=False,
        )
    assert result.status_code is None and "NPSLOOP_SMTP_HOST" in result.error


async def test_channel_urls_on_private_networks_are_refused_unless_allowed():
    receiver = HttpReceiver()
    try:
        async with httpx.AsyncClient() as client:
            refused = await channels.send(
                client,
                channel_type="slack",
                target=receiver.url,
                body=b"{}",
                msg_id="e",
                secret=None,
                settings=Settings(),
                allow_private=False,
            )
            allowed = await channels.send(
                client,
                channel_type="webhook",
                target=receiver.url,
                body=b'{"a":1}',
                msg_id="e",
                secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                settings=Settings(),
                allow_private=True,
            )
    finally:
        receiver.close()
    assert refused.error.startswith("refused") and allowed.status_code == 200
    (request,) = receiver.requests
    assert Webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").verify(request.body, request.headers) == {"a": 1}
