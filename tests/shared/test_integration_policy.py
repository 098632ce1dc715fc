"""The policy's ``integrations.formbricks`` keys: good ones load, bad ones stop start-up naming the key."""

from __future__ import annotations

import pytest

from npsloop.shared.policy import load_policy
from npsloop.shared.settings import ConfigError

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def policy_file(tmp_path, text: str):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def test_a_survey_maps_its_questions_and_where_the_customer_comes_from(tmp_path):
    policy = load_policy(
        policy_file(
            tmp_path,
            f"""
integrations:
  formbricks:
    secret: {SECRET}
    surveys:
      clsurvey1:
        score_question: nps
        comment_question: why
        customer_id: contactAttributes.accountId
        customer_email: contactAttributes.email
        touchpoint: support
        kind: transactional
        properties: {{product: web, tier: 2}}
""",
        )
    )
    config = policy.integrations.formbricks
    assert config is not None and len(config.secret_key()) == 24
    survey = config.surveys["clsurvey1"]
    assert survey.customer_id_paths == ["contactAttributes.accountId"]
    assert (survey.score_question, survey.comment_question, survey.touchpoint) == ("nps", "why", "support")
    assert survey.properties == {"product": "web", "tier": 2}


def test_without_the_keys_the_integration_is_off():
    assert load_policy(None).integrations.formbricks is None


@pytest.mark.parametrize(
    ("survey", "key", "reason"),
    [
        ("customer_id: email", "integrations.formbricks.surveys.s1.customer_id", "must be contact.userId"),
        ("customer_email: person.mail", "integrations.formbricks.surveys.s1.customer_email", "contactAttributes"),
        ("kind: weekly", "integrations.formbricks.surveys.s1.kind", "transactional"),
        ("scorer: nps", "integrations.formbricks.surveys.s1.scorer", "Extra inputs"),
    ],
)
def test_a_wrong_survey_key_stops_start_up_naming_it(tmp_path, survey, key, reason):
    text = f"""
integrations:
  formbricks:
    secret: {SECRET}
    surveys:
      s1:
        score_question: nps
        {survey}
"""
    with pytest.raises(ConfigError) as raised:
        load_policy(policy_file(tmp_path, text))
    assert key in str(raised.value) and reason in str(raised.value)


@pytest.mark.parametrize(
    ("formbricks", "key"),
    [
        ("secret: hunter2", "integrations.formbricks.secret"),
        ("secret: whsec_abcdefghijklmnopq", "integrations.formbricks.secret"),
        ("surveys: {}", "integrations.formbricks.secret"),
        (f"secret: {SECRET}\n    surveys: {{s1: {{comment_question: why}}}}", "surveys.s1.score_question"),
    ],
)
def test_a_missing_or_malformed_secret_or_score_question_is_named(tmp_path, formbricks, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_policy(policy_file(tmp_path, f"integrations:\n  formbricks:\n    {formbricks}\n"))
