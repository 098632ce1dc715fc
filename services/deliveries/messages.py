"""An alert rendered for people: a Slack Block Kit message or an email, safe whatever a respondent wrote.

Slack: every text is escaped as Slack's formatting rules require (``&``, ``<``, ``>``), so
no comment can mention ``@channel`` or plant a link, and the mrkdwn texts are ``verbatim``
(no automatic links, channel names or mentions either); every block stays within Block
Kit's limits after escaping, quoting and cutting — Slack refuses a message with one block
over its limit, and the alert would never arrive. Email: the HTML part is HTML-escaped.
"""

from __future__ import annotations

import html

from npsloop.services.deliveries.schemas import Alert

# Block Kit's limits (docs.slack.dev, reference/block-kit).
SECTION_TEXT_MAX = 3000
HEADER_TEXT_MAX = 150
FIELD_TEXT_MAX = 2000
FIELDS_MAX = 10
BLOCKS_MAX = 50
BUTTON_TEXT_MAX = 75
BUTTON_URL_MAX = 3000
CONTEXT_TEXT_MAX = 3000
FALLBACK_TEXT_MAX = 3000  # ours: the notification text; Slack takes more but shows far less
LABEL_MAX = 100
ELLIPSIS = "…"


def mrkdwn_escape(text: str) -> str:
    """Text as Slack shows it literally: ``<!channel>`` stays those characters, not a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    """``text`` (escaped already) within ``limit`` characters, ending in … when cut and never
    inside an entity such as ``&amp;``."""
    if len(text) <= limit:
        return text
    cut = text[: limit - len(ELLIPSIS)]
    amp = cut.rfind("&", max(0, len(cut) - len("&amp;") + 1))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + ELLIPSIS


def _mrkdwn(text: str, limit: int) -> dict:
    return {"type": "mrkdwn", "text": _cut(mrkdwn_escape(text), limit) or "—", "verbatim": True}


def _plain(text: str, limit: int) -> dict:
    return {"type": "plain_text", "text": _cut(text, limit) or "—", "emoji": True}


def _quote(comment: str) -> tuple[str, int]:
    """The comment as a block quote within a section's limit, and how many of its characters it shows.

    Every line gets its "> " and its escaping before the cut, so the section never grows past
    the limit afterwards; runs of blank lines become one.
    """
    lines: list[str] = []
    for line in comment.strip().splitlines():
        line = line.rstrip()
        if line or (lines and lines[-1]):
            lines.append(line)
    quoted = "\n".join(f"> {mrkdwn_escape(line)}" for line in lines)
    if len(quoted) <= SECTION_TEXT_MAX:
        return quoted, len(comment)
    shown = _cut(quoted, SECTION_TEXT_MAX)
    plain = html.unescape(shown[: -len(ELLIPSIS)].replace("\n> ", "\n").removeprefix("> "))
    return shown, len(plain)


def slack_message(alert: Alert) -> dict:
    """A Block Kit message: header, summary, the comment quoted, facts as fields, a link button."""
    blocks: list[dict] = [
        {"type": "header", "text": _plain(alert.title, HEADER_TEXT_MAX)},
        {"type": "section", "text": _mrkdwn(alert.summary, SECTION_TEXT_MAX)},
    ]
    comment = (alert.comment or "").strip()
    if comment:
        quoted, shown = _quote(comment)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": quoted, "verbatim": True}})
        if shown < len(comment):
            where = " The whole comment is on the task." if alert.link else ""
            note = f"Comment shortened: {shown:,} of {len(comment):,} characters shown.{where}"
            blocks.append({"type": "context", "elements": [_mrkdwn(note, CONTEXT_TEXT_MAX)]})
    if alert.fields:
        facts = []
        for label, value in alert.fields[:FIELDS_MAX]:
            head = f"*{_cut(mrkdwn_escape(label), LABEL_MAX)}*\n"
            facts.append(
                {
                    "type": "mrkdwn",
                    "text": head + (_cut(mrkdwn_escape(value), FIELD_TEXT_MAX - len(head)) or "—"),
                    "verbatim": True,
                }
            )
        blocks.append({"type": "section", "fields": facts})
    if alert.link and alert.link.startswith(("https://", "http://")) and len(alert.link) <= BUTTON_URL_MAX:
        button = {"type": "button", "text": _plain(alert.link_label, BUTTON_TEXT_MAX), "url": alert.link}
        blocks.append({"type": "actions", "elements": [button]})
    fallback = _cut(mrkdwn_escape(f"{alert.title}: {alert.summary}"), FALLBACK_TEXT_MAX)
    return {"text": fallback, "blocks": blocks[:BLOCKS_MAX]}


def email_message(alert: Alert, *, subject_prefix: str) -> dict:
    """Subject, plain text and HTML bodies of an alert email; everything in the HTML part escaped."""
    lines = [alert.summary, ""]
    if alert.comment:
        lines += [f'"{alert.comment}"', ""]
    lines += [f"{label}: {value}" for label, value in alert.fields]
    if alert.link:
        lines += ["", f"{alert.link_label}: {alert.link}"]
    rows = "".join(
        f"<tr><th align='left'>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
        for label, value in alert.fields
    )
    quote = (
        f"<blockquote style='white-space:pre-wrap'>{html.escape(alert.comment)}</blockquote>" if alert.comment else ""
    )
    link = ""
    if alert.link and alert.link.startswith(("https://", "http://")):
        link = f"<p><a href='{html.escape(alert.link)}'>{html.escape(alert.link_label)}</a></p>"
    body_html = (
        f"<html><body><h2>{html.escape(alert.title)}</h2><p>{html.escape(alert.summary)}</p>{quote}"
        f"<table>{rows}</table>{link}</body></html>"
    )
    subject = " ".join(f"{subject_prefix} {alert.title}".split())  # one line: no header injection
    return {"subject": subject, "text": "\n".join(lines), "html": body_html}
