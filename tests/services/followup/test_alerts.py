"""Routing, the SLA clock and alerts to real local channels: Slack (Block Kit), SMTP, signed webhooks."""

from __future__ import annotations

from datetime import datetime, timedelta

from standardwebhooks.webhooks import Webhook

from tests.support.receivers import field_values, inert_problems

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def policy(slack, hook, extra: str = "") -> str:
    return f"""
    sla:
      - match: {{score: "0-4"}}
        due_in: 24h
      - match: {{score: "5-6"}}
        due_in: 48h
    channels:
      cs-slack: {{type: slack, url: "{slack.url}"}}
      cs-mail: {{type: email, to: ["cs@example.com", "lead@example.com"]}}
      crm: {{type: webhook, url: "{hook.url}", secret: "{SECRET}"}}
    teams:
      cs: {{members: [ann, bob]}}
    routing:
      - match: {{segment: enterprise}}
        assignee_from: properties.account_owner
        team: enterprise-cs
        channel: cs-slack
        escalate_to: cs-mail
      - match: {{touchpoint: support}}
        team: cs
        channel: cs-slack
        escalate_to: crm
    {extra}
    """


async def test_a_detractor_is_alerted_on_the_routed_slack_channel_with_a_block_kit_message(make_loop, slack, hook):
    loop = await make_loop(policy(slack, hook))
    await loop.respond(
        2,
        "acme-7",
        "The export crashes and support never answered",
        customer={"name": "Acme", "segment": "enterprise"},
        properties={"account_owner": "kim"},
    )
    (task,) = await loop.tasks()
    assert (task["assignee"], task["team"], task["channel"], task["escalation_channel"]) == (
        "kim",
        "enterprise-cs",
        "cs-slack",
        "cs-mail",
    )
    assert await loop.deliver() == 1
    (message,) = slack.messages()  # checks the Block Kit shape
    values = field_values(message)
    assert values["Score"] == "2" and values["Customer"].startswith("Acme")
    assert values["Themes"] != "" and values["Due"] == datetime.fromisoformat(task["due_at"]).strftime(
        "%Y-%m-%d %H:%M UTC"
    )
    assert any("The export crashes" in b.get("text", {}).get("text", "") for b in message["blocks"])
    (button,) = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert button["url"] == f"http://npsloop.test/tasks/{task['id']}"
    # Redelivering the events never alerts twice.
    await loop.pump()
    assert await loop.deliver() == 0


async def test_routing_takes_the_account_owner_else_team_round_robin_else_the_default_queue(make_loop, slack, hook):
    loop = await make_loop(policy(slack, hook))
    await loop.respond(3, "e1", customer={"segment": "enterprise"}, properties={"account_owner": "kim"})
    for customer in ("s1", "s2", "s3"):
        await loop.respond(3, customer, survey={"touchpoint": "support"})
    await loop.respond(3, "plain")
    await loop.respond(3, "e2", customer={"segment": "enterprise"})  # no owner property, team without members
    owners = {t["customer_id"]: (t["assignee"], t["team"]) for t in await loop.tasks()}
    # No rule matched "plain": it lands in the default queue "cs", whose members rotate on.
    assert owners == {
        "e1": ("kim", "enterprise-cs"),
        "s1": ("ann", "cs"),
        "s2": ("bob", "cs"),
        "s3": ("ann", "cs"),
        "plain": ("bob", "cs"),
        "e2": (None, "enterprise-cs"),
    }


async def test_a_breach_alerts_the_routed_and_the_escalation_channel_once_and_an_acknowledged_task_never(
    make_loop, slack, hook, smtp
):
    loop = await make_loop(policy(slack, hook), smtp_host="127.0.0.1", smtp_port=smtp.port)
    await loop.respond(1, "late", customer={"segment": "enterprise"}, properties={"account_owner": "kim"})
    await loop.respond(1, "handled", customer={"segment": "enterprise"}, properties={"account_owner": "kim"})
    handled = next(t for t in await loop.tasks() if t["customer_id"] == "handled")
    await loop.client.post(f"/v1/tasks/{handled['id']}/acknowledge", headers=loop.headers)
    await loop.deliver()
    slack.requests.clear()

    await loop.tick(hours=18, minutes=1)  # past 75 % of 24 h
    await loop.tick(minutes=1)
    assert await loop.deliver() == 1
    assert [m["blocks"][0]["text"]["text"] for m in slack.messages()] == ["SLA warning"]
    assert smtp.inbox.messages == []  # warnings go to the routed channel only
    slack.requests.clear()

    for _ in range(3):  # a restarted monitor never breaches twice
        await loop.tick(hours=6)
    assert await loop.deliver() == 2
    (breach,) = slack.messages()
    assert breach["blocks"][0]["text"]["text"] == "SLA breached" and field_values(breach)["Customer"].startswith("late")
    (mail,) = smtp.inbox.messages
    assert mail["To"] == "cs@example.com, lead@example.com" and "SLA breached" in mail["Subject"]
    kinds = sorted(part.get_content_type() for part in mail.walk() if not part.is_multipart())
    assert kinds == ["text/html", "text/plain"]
    assert "late" in mail.get_payload()[0].get_payload(decode=True).decode()
    (late,) = list(await loop.tasks(breached="true"))
    assert late["customer_id"] == "late"
    log = (await loop.client.get("/v1/deliveries", params={"channel": "cs-mail"}, headers=loop.headers)).json()
    assert [(d["status"], d["attempt_log"][0]["status_code"]) for d in log["deliveries"]] == [("delivered", 250)]


async def test_the_webhook_channel_sends_standard_webhooks_signed_events(make_loop, slack, hook):
    loop = await make_loop(policy(slack, hook))
    await loop.respond(4, "s1", survey={"touchpoint": "support"})
    await loop.tick(hours=25)
    await loop.deliver()
    (request,) = hook.requests
    event = Webhook(SECRET).verify(request.body, request.headers)  # raises unless correctly signed
    assert event["type"] == "npsloop.followup.sla_breached.v1" and event["data"]["customer"]["id"] == "s1"
    assert request.headers["webhook-id"] == event["id"]


async def test_reassigning_a_task_is_audited_emitted_and_alerted(make_loop, slack, hook):
    loop = await make_loop(policy(slack, hook))
    await loop.respond(2, "s1", survey={"touchpoint": "support"})
    (task,) = await loop.tasks()
    base = f"/v1/tasks/{task['id']}/reassign"
    assert (await loop.client.post(base, json={}, headers=loop.headers)).status_code == 422
    unknown = await loop.client.post(base, json={"channel": "pager"}, headers=loop.headers)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "channel"
    moved = await loop.client.post(
        base, json={"assignee": "zoe", "team": "enterprise-cs", "note": "Knows them"}, headers=loop.headers
    )
    assert moved.status_code == 200 and (moved.json()["assignee"], moved.json()["team"]) == ("zoe", "enterprise-cs")
    detail = (await loop.client.get(f"/v1/tasks/{task['id']}", headers=loop.headers)).json()
    (audit,) = [e for e in detail["events"] if e["type"] == "reassigned"]
    assert audit["actor"] == "dana" and audit["note"] == "Knows them"
    assert audit["data"] == {
        "from": {"assignee": "ann", "team": "cs", "channel": "cs-slack"},
        "to": {"assignee": "zoe", "team": "enterprise-cs", "channel": "cs-slack"},
    }
    await loop.pump()
    await loop.deliver()
    assert sorted(m["blocks"][0]["text"]["text"] for m in slack.messages()) == ["New detractor", "Task reassigned"]


async def test_the_sla_counts_business_hours_in_the_team_time_zone(make_loop, slack, hook, clock):
    extra = 'business_hours: {timezone: Europe/Berlin, days: mon-fri, hours: "09:00-17:00"}'
    loop = await make_loop(policy(slack, hook, extra))
    clock.set(datetime.fromisoformat("2026-01-09T15:00:00+00:00"))  # Friday 16:00 in Berlin
    await loop.respond(2, "s1", survey={"touchpoint": "support"})
    (task,) = await loop.tasks()
    assert datetime.fromisoformat(task["due_at"]) == datetime.fromisoformat("2026-01-14T15:00:00+00:00")
    await loop.tick(days=3)  # Monday 16:00: only 8 working hours have passed
    assert (await loop.tasks())[0]["warned_at"] is None
    await loop.tick(days=1)  # Tuesday 16:00: 16 h, under 75 %
    assert (await loop.tasks())[0]["warned_at"] is None
    await loop.tick(hours=20)  # Wednesday 12:00: 19 h, past 75 % (an outside-hours clock would have breached)
    (task,) = await loop.tasks()
    assert task["warned_at"] is not None and task["breached_at"] is None


async def test_a_failing_channel_is_retried_with_backoff_for_over_24_hours_then_dead_and_visible(
    make_loop, slack, hook, clock
):
    loop = await make_loop(policy(slack, hook))
    slack.status = 500
    await loop.respond(2, "s1", survey={"touchpoint": "support"})
    assert await loop.deliver() == 1
    assert await loop.deliver() == 0  # backing off
    attempts = 1
    for _ in range(200):
        clock.advance(hours=1, minutes=30)
        attempts += await loop.deliver()
        log = (await loop.client.get("/v1/deliveries", params={"status": "dead"}, headers=loop.headers)).json()
        if log["deliveries"]:
            break
    (dead,) = log["deliveries"]
    first, last = dead["attempt_log"][0], dead["attempt_log"][-1]
    assert datetime.fromisoformat(last["attempted_at"]) - datetime.fromisoformat(first["attempted_at"]) >= timedelta(
        hours=24
    )
    assert dead["channel"] == "cs-slack" and dead["subscription_id"] is None and len(dead["attempt_log"]) == attempts
    assert last["status_code"] == 500 and last["response_body"] == "receiver is down"
    slack.status = 200
    again = await loop.client.post(f"/v1/deliveries/{dead['id']}/redeliver", headers=loop.headers)
    assert again.status_code == 202
    assert await loop.deliver() == 1 and slack.messages()[-1]["blocks"][0]["text"]["text"] == "New detractor"


async def test_first_contact_after_due_at_counts_as_a_breach_even_if_the_monitor_never_ran(make_loop, slack, hook):
    loop = await make_loop(policy(slack, hook))
    await loop.respond(2, "s1", survey={"touchpoint": "support"})
    await loop.respond(2, "s2", survey={"touchpoint": "support"})
    on_time, late = sorted(await loop.tasks(), key=lambda t: t["customer_id"])
    await loop.client.post(f"/v1/tasks/{on_time['id']}/acknowledge", headers=loop.headers)
    loop.clock.advance(hours=30)  # the monitor was down the whole time
    acked = (await loop.client.post(f"/v1/tasks/{late['id']}/acknowledge", headers=loop.headers)).json()
    assert acked["breached"] is True and acked["sla_met"] is False
    assert (await loop.client.get(f"/v1/tasks/{on_time['id']}", headers=loop.headers)).json()["sla_met"] is True
    await loop.tick(minutes=1)
    detail = (await loop.client.get(f"/v1/tasks/{late['id']}", headers=loop.headers)).json()
    assert [e["type"] for e in detail["events"]] == ["opened", "sla_breached", "acknowledged"]


async def test_a_long_hostile_comment_reaches_slack_and_email_within_limits_inert_and_with_theme_labels(
    make_loop, slack, hook, smtp
):
    """Through the whole pipeline: a 10,000-character comment of many lines, with mentions and a
    disguised link in it, gives Slack a message it accepts and that pings nobody, and an email
    whose HTML shows the text rather than running it; themes read as their labels."""
    loop = await make_loop(
        f"""
        channels:
          cs-slack: {{type: slack, url: "{slack.url}"}}
          cs-mail: {{type: email, to: ["cs@example.com"]}}
        teams:
          cs: {{members: [ann], channel: cs-slack}}
        routing:
          - match: {{touchpoint: support}}
            team: cs
            channel: cs-mail
        """,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
    )
    hostile = "<!channel> support never answered <https://evil.example|open your invoice> <b>&</b>"
    comment = (hostile + "\n" + "The support agent was rude and slow.\n" * 300)[:10_000]
    await loop.respond(1, "acme", comment, customer={"name": "<!here> Acme"})
    await loop.respond(1, "bolt", hostile, survey={"touchpoint": "support"})
    assert await loop.deliver() == 2
    (message,) = slack.messages()  # Block Kit's limits, checked by the receiver
    assert inert_problems(message) == []
    assert field_values(message)["Customer"] == "&lt;!here&gt; Acme"
    themes = field_values(message)["Themes"]
    assert "Support and staff" in themes and "support_experience" not in themes
    (mail,) = smtp.inbox.messages
    html_part = next(p for p in mail.walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()
    assert "<b>&</b>" not in html_part and "&lt;b&gt;&amp;&lt;/b&gt;" in html_part
    assert "Support and staff" in html_part
