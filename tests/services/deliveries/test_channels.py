"""Policy channels on the wire: SMTP to a local aiosmtpd server, Slack and webhook POSTs to local receivers."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook

from npsloop.services.deliveries import channels
from npsloop.services.deliveries.schemas import Alert
from npsloop.services.followup.alerts import digest_alert
from npsloop.shared import events
from npsloop.shared.settings import Settings
from tests.support.receivers import HttpReceiver, block_kit_problems, inert_problems, mrkdwn_texts

HOSTILE = "<!channel> <!here> <https://evil.example|click here> <@U024BE7LH> <#C024BE7LH> @channel #general"


def long_comment(chars: int = 10_000, lines: int = 600) -> str:
    """A comment of ``chars`` characters over ``lines`` lines, full of what escaping lengthens."""
    line = "Billing & <support> broke again > twice; "
    per_line = chars // lines - 1
    body = "\n".join((line * (per_line // len(line) + 1))[:per_line] for _ in range(lines))
    return (body + "x" * chars)[:chars]


def quote_of(message: dict) -> str:
    (quote,) = [t["text"] for t in mrkdwn_texts(message) if t["text"].startswith("> ")]
    return quote


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


def test_a_10000_character_comment_of_600_lines_is_quoted_within_block_kit_limits():
    comment = long_comment()
    assert len(comment) == 10_000 and comment.count("\n") == 599
    message = channels.slack_message(
        Alert(title="New detractor", summary="Scored 1/10.", comment=comment, link=ALERT.link)
    )
    assert block_kit_problems(message) == [] and inert_problems(message) == []
    quote = quote_of(message)
    assert len(quote) <= 3000 and quote.endswith("…")
    assert all(line.startswith("> ") for line in quote.splitlines())  # quoted after the cut, not before
    assert re.search(r"&[a-z]{0,3}$", quote.removesuffix("…")) is None  # never cut inside an entity
    (note,) = [b for b in message["blocks"] if b["type"] == "context"]
    assert "of 10,000 characters shown" in note["elements"][0]["text"]


def test_a_cut_never_splits_an_entity():
    for n in range(2990, 3010):
        quote = quote_of(channels.slack_message(Alert(title="t", summary="s", comment="<" * n)))
        body = quote.removeprefix("> ").removesuffix("…")
        assert body.replace("&lt;", "") == "" and len(quote) <= 3000, n


def test_mentions_and_links_written_by_a_respondent_stay_text():
    alert = Alert(
        title="New detractor <!channel>",
        summary="Now owned by <!here>",
        comment=f"{HOSTILE}\nsecond line https://evil.example/login",
        fields=[("Customer", "<!everyone> <https://evil.example|Acme>"), ("Themes", "Pricing & <b>")],
        link=ALERT.link,
    )
    message = channels.slack_message(alert)
    assert block_kit_problems(message) == [] and inert_problems(message) == []
    quote = quote_of(message)
    assert quote.startswith("> &lt;!channel&gt; &lt;!here&gt; &lt;https://evil.example|click here&gt;")
    assert "\n> second line https://evil.example/login" in quote  # verbatim: not made a link either
    assert "&lt;!everyone&gt; &lt;https://evil.example|Acme&gt;" in str(message["blocks"])
    assert "Pricing &amp; &lt;b&gt;" in str(message["blocks"])


def test_every_text_is_cut_to_its_own_limit_after_escaping():
    alert = Alert(
        title="<" * 400,
        summary="&" * 5000,
        fields=[("<" * 300, ">" * 3000) for _ in range(14)],
        comment="\n" * 50 + "ok",
        link="https://npsloop.test/" + "x" * 3000,  # too long for a button: left out rather than refused
        link_label="y" * 200,
    )
    message = channels.slack_message(alert)
    assert block_kit_problems(message) == [] and inert_problems(message) == []
    assert [b["type"] for b in message["blocks"]] == ["header", "section", "section", "section"]
    assert quote_of(message) == "> ok"  # blank lines around a comment dropped


def test_a_digest_is_within_limits_and_inert():
    data = {
        "team": "<!here> cs",
        "channel": "cs-slack",
        "period_start": "2026-01-05T08:00:00+00:00",
        "period_end": "2026-01-06T08:00:00+00:00",
        "new_detractors": 3,
        "open_tasks": 2,
        "breaches": 1,
        "resolved": 0,
        "responses": 10,
        "nps": -20.0,
        "link": "http://npsloop.test/?team=cs",
    }
    event = events.new_event(
        events.FOLLOWUP_DIGEST, key="team:cs", subject="cs", data=data, time=datetime(2026, 1, 6, 8, tzinfo=UTC)
    )
    message = channels.slack_message(digest_alert(event))
    assert block_kit_problems(message) == [] and inert_problems(message) == []
    email = channels.email_message(digest_alert(event), subject_prefix="[npsloop]")
    assert "<!here>" not in email["html"] and "&lt;!here&gt; cs" in email["html"]


def test_email_bodies_escape_html_and_keep_a_plain_text_part():
    content = channels.email_message(ALERT, subject_prefix="[npsloop]")
    assert content["subject"] == "[npsloop] New detractor"
    assert "Billing <script> is broken" in content["text"] and "<script>" not in content["html"]
    hostile = channels.email_message(
        Alert(
            title="New detractor",
            summary="s",
            comment="line one\n<img src=x onerror=alert(1)>\nline three",
            fields=[("Customer", "<b>Acme</b>")],
            link="javascript:alert(1)",  # not a web link: left out
        ),
        subject_prefix="[npsloop]\r\nBcc: everyone@example.com",
    )
    assert "<img" not in hostile["html"] and "&lt;img src=x onerror=alert(1)&gt;" in hostile["html"]
    assert "<b>Acme" not in hostile["html"] and "javascript:" not in hostile["html"]
    assert "white-space:pre-wrap" in hostile["html"]  # the comment's lines stay lines
    assert "\n" not in hostile["subject"] and "\r" not in hostile["subject"]


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
