"""The policy file: every key validated at start-up with errors that name the key path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from npsloop.services.followup.digest import latest_period_end
from npsloop.shared.business_hours import BusinessHours
from npsloop.shared.policy import Digest, Policy, load_policy
from npsloop.shared.settings import ConfigError

ISSUE_EXAMPLE = """
sla:
  - match: {score: "0-4"}
    due_in: 24h
  - match: {score: "5-6", segment: enterprise}
    due_in: 24h
  - match: {score: "5-6"}
    due_in: 48h
sla_warning_at: 0.75
business_hours: {timezone: Europe/Berlin, days: mon-fri, hours: "09:00-17:00"}
channels:
  cs-slack: {type: slack, url: "https://hooks.slack.com/services/T000/B000/XXXX"}
  cs-mail:  {type: email, to: ["cs@example.com"]}
  crm:      {type: webhook, url: "https://crm.example.com/hooks/nps"}
routing:
  - match: {segment: enterprise}
    assignee_from: properties.account_owner
    team: enterprise-cs
    channel: cs-slack
    escalate_to: cs-mail
  - match: {}
    team: cs
    channel: cs-slack
throttle:
  referral_every: 30d
  survey_every: 90d
"""


def load(tmp_path: Path, text: str) -> Policy:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return load_policy(path)


def test_the_issue_example_policy_loads_and_routes_by_segment(tmp_path):
    policy = load(tmp_path, ISSUE_EXAMPLE)
    enterprise = policy.route({"score": 5, "segment": "enterprise", "properties": {}})
    assert (enterprise.team, enterprise.channel, enterprise.escalate_to) == ("enterprise-cs", "cs-slack", "cs-mail")
    assert policy.route({"score": 5}).team == "cs"
    assert policy.sla_for({"score": 5, "segment": "enterprise"}) == timedelta(hours=24)
    assert policy.sla_for({"score": 5, "segment": "smb"}) == timedelta(hours=48)
    assert policy.team_channels() == {"enterprise-cs": "cs-slack", "cs": "cs-slack"}


@pytest.mark.parametrize(
    "text, named",
    [
        ("review_requests: {audience: promoters, channel: crm, url: 'https://g.page/r'}", "review_requests.audience"),
        ("routing: [{match: {}, channel: nowhere}]", "routing.0.channel"),
        ("routing: [{match: {}, escalate_to: pager}]", "routing.0.escalate_to"),
        ("business_hours: {timezone: Mars/Olympus}", "business_hours.timezone"),
        ("business_hours: {days: mon-fry}", "business_hours.days"),
        ("business_hours: {hours: '17:00-09:00'}", "business_hours"),
        ("sla: [{match: {score: '0-4'}, due_in: soon}]", "sla.0.due_in"),
        ("sla: [{match: {score: '0-11'}, due_in: 1h}]", "sla.0.match.score"),
        ("sla: [{match: {plan: gold}, due_in: 1h}]", "sla.0.match"),
        ("channels: {x: {type: pager, url: 'https://x.example'}}", "channels.x"),
        ("channels: {x: {type: email, to: []}}", "channels.x.email.to"),
        ("channels: {x: {type: slack}}", "channels.x.slack.url"),
        ("routing: [{assignee_from: owner}]", "routing.0.assignee_from"),
        ("throttle: {survey_every: often}", "throttle.survey_every"),
        ("digest: {at: '25:00'}", "digest.at"),
        ("sla_warning_at: 1.5", "sla_warning_at"),
        ("surprise: true", "surprise"),
    ],
)
def test_a_wrong_key_stops_start_up_with_a_message_naming_it(tmp_path, text, named):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert named in str(caught.value), str(caught.value)


def test_review_requests_cannot_be_gated_to_promoters(tmp_path):
    with pytest.raises(ConfigError, match="review gating"):
        load(
            tmp_path,
            "channels: {crm: {type: webhook, url: 'https://crm.example.com/h'}}\n"
            "review_requests: {audience: promoters, channel: crm, url: 'https://g.page/r'}",
        )
    policy = load(
        tmp_path,
        "channels: {crm: {type: webhook, url: 'https://crm.example.com/h'}}\n"
        "review_requests: {audience: every_respondent, channel: crm, url: 'https://g.page/r'}",
    )
    assert policy.review_requests.audience == "every_respondent"


def test_business_hours_count_only_working_time_in_the_team_time_zone():
    hours = BusinessHours(timezone="Europe/Berlin", days="mon-fri", hours="09:00-17:00")
    friday_4pm_berlin = datetime(2026, 1, 9, 15, 0, tzinfo=UTC)
    # 1 h on Friday, 8 h Monday, 8 h Tuesday, 7 h Wednesday → Wednesday 16:00 Berlin.
    assert hours.add(friday_4pm_berlin, timedelta(hours=24)) == datetime(2026, 1, 14, 15, 0, tzinfo=UTC)
    saturday = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
    assert hours.add(saturday, timedelta(hours=1)) == datetime(2026, 1, 12, 9, 0, tzinfo=UTC)  # Mon 10:00 CET
    # Across the spring DST change 09:00 stays 09:00 local (07:00 UTC in summer).
    before_dst = datetime(2026, 3, 27, 15, 0, tzinfo=UTC)  # Fri 16:00 CET
    assert hours.add(before_dst, timedelta(hours=2)) == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)


def test_the_digest_period_ends_at_the_configured_local_time():
    digest = Digest(every="1d", at="09:00", timezone="Europe/Berlin")
    at_10_berlin = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)
    assert latest_period_end(digest, at_10_berlin) == datetime(2026, 1, 6, 8, 0, tzinfo=UTC)
    at_7_berlin = datetime(2026, 1, 6, 6, 0, tzinfo=UTC)
    assert latest_period_end(digest, at_7_berlin) == datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    hourly = Digest(every="1h", at="00:00")
    assert latest_period_end(hourly, datetime(2026, 1, 6, 9, 30, tzinfo=UTC)) == datetime(2026, 1, 6, 9, 0, tzinfo=UTC)


def test_the_documented_policy_example_is_a_valid_policy(tmp_path):
    page = (Path(__file__).parents[3] / "docs" / "policy.md").read_text()
    section = page.split("## A complete example", 1)[1]
    example = section.split("```yaml", 1)[1].split("```", 1)[0]
    policy = load(tmp_path, example)
    assert policy.route({"segment": "enterprise", "score": 3}).escalate_to == "cs-mail"
    assert policy.review_requests.audience == "none"
    # an account tier is sent as a response property: a gold account's 5 gets 24 h, not 48 h
    assert policy.sla_for({"score": 5, "properties": {"tier": "gold"}}) == timedelta(hours=24)
    assert policy.sla_for({"score": 5, "properties": {"tier": "silver"}}) == timedelta(hours=48)
