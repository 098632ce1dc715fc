"""Sentiment reads the comment with the score as context: requests, denials, absences."""

import pytest

from services.classifier.model import load_classifier

CLASSIFIER = load_classifier()


@pytest.mark.parametrize("comment, score", [
    ("Nothing could have been done better.", 10),
    ("I can't think of anything you could improve", 9),
    ("Couldn't have been better", 10),
    ("Nothing, very happy with it", 10),
    ("I could not fault them", 9),
])
def test_denied_requests_and_leading_nothing_read_as_praise(comment, score):
    assert CLASSIFIER.classify(comment, score).sentiment == "positive"


@pytest.mark.parametrize("comment, score", [
    ("Add an export to spreadsheets.", 10),
    ("Have more people on the phones", 9),
    ("No parking on site.", 8),
    ("Lack of updates from the team", 9),
    ("Still waiting for my refund", 8),
])
def test_a_comment_that_only_asks_or_names_what_is_missing_is_negative_even_with_a_high_score(comment, score):
    assert CLASSIFIER.classify(comment, score).sentiment == "negative"


def test_past_tense_praise_is_not_mistaken_for_a_request():
    assert CLASSIFIER.classify("Listened to me and explained everything", 9).sentiment == "positive"


def test_no_problems_is_praise_not_an_absence():
    assert CLASSIFIER.classify("No problems at all.", 9).sentiment == "positive"


@pytest.mark.parametrize("comment, score, expected", [
    ("Nothing to add", 10, "positive"),
    ("fine", 5, "neutral"),
    ("It is fine", 5, "neutral"),
])
def test_the_score_is_context_for_short_comments(comment, score, expected):
    assert CLASSIFIER.classify(comment, score).sentiment == expected
