"""Sentiment reads the comment with the score as context: requests, denials, absences.

Every comment here is written for the test; none is a row of the development data sets."""

import pytest

from npsloop.services.classifier.active import load_classifier

CLASSIFIER = load_classifier()


@pytest.mark.parametrize(
    "comment, score",
    [
        ("I cannot think of anything the nurse could have improved.", 9),  # one denial, two requests
        ("Nothing could have been handled better.", 10),
        ("I can't think of anything you could improve", 9),
        ("Couldn't have been better", 10),
        ("Nothing, very happy with it", 10),
        ("I could not fault them", 9),
    ],
)
def test_denied_requests_and_leading_nothing_read_as_praise(comment, score):
    assert CLASSIFIER.classify(comment, score).sentiment == "positive"


@pytest.mark.parametrize(
    "comment, score",
    [
        ("Add an export to spreadsheets.", 10),
        ("Have more people on the phones", 9),
        ("No parking on site.", 8),
        ("Lack of updates from the team", 9),
        ("Still waiting for my refund", 8),
    ],
)
def test_a_comment_that_only_asks_or_names_what_is_missing_is_negative_even_with_a_high_score(comment, score):
    assert CLASSIFIER.classify(comment, score).sentiment == "negative"


def test_past_tense_praise_is_not_mistaken_for_a_request():
    assert CLASSIFIER.classify("Listened to me and explained everything", 9).sentiment == "positive"


def test_no_problems_is_praise_not_an_absence():
    assert CLASSIFIER.classify("No problems at all.", 9).sentiment == "positive"


@pytest.mark.parametrize(
    "comment, score, expected",
    [
        ("Nothing to add", 10, "positive"),
        ("fine", 5, "neutral"),
        ("It is fine", 5, "neutral"),
    ],
)
def test_the_score_is_context_for_short_comments(comment, score, expected):
    assert CLASSIFIER.classify(comment, score).sentiment == expected


@pytest.mark.parametrize(
    "comment",
    [
        "I do not know.",
        "I am not sure",
        "Honestly not sure.",
        "Not sure really.",
        "No comment",
        "Prefer not to say",
        "Pass",
        "Too early to say.",
    ],
)
@pytest.mark.parametrize("score", [0, 8, 10, None])
def test_an_answer_that_declines_to_give_a_view_is_neutral_whatever_the_score(comment, score):
    result = CLASSIFIER.classify(comment, score)
    assert (result.sentiment, result.sentiment_score, result.themes) == ("neutral", 0.0, ())


@pytest.mark.parametrize(
    "comment, score, expected",
    [
        ("Nothing to add", 10, "positive"),  # answers the question: nothing to improve
        ("Not sure, the staff were rude and the wait was long", 9, "negative"),  # a view follows the hedge
        ("I know the staff were kind", 10, "positive"),
    ],
)
def test_a_hedge_with_a_view_or_a_nothing_answer_keeps_its_sentiment(comment, score, expected):
    assert CLASSIFIER.classify(comment, score).sentiment == expected


def test_a_negation_reaches_past_any_words():
    assert CLASSIFIER.classify("I really cannot think of anything that was helpful", None).sentiment == "negative"
    assert CLASSIFIER.classify("Did not get anything from anyone that was useful", None).sentiment == "negative"


@pytest.mark.parametrize(
    "comment",
    [
        "The nurses look after us well.",
        "The team care about how my family is doing.",
        "It was what I needed to get going again.",
    ],
)
def test_being_looked_after_is_praise_even_with_a_middling_score(comment):
    assert CLASSIFIER.classify(comment, 6).sentiment == "positive"


@pytest.mark.parametrize(
    "comment, score, expected",
    [
        ("Nothing was good about the visit.", 3, "negative"),  # "nothing" is the subject
        ("Nothing went well", None, "negative"),
        ("Nothing, all great", 9, "positive"),  # an empty answer, then praise
        ("Just nothing, great service", 10, "positive"),
        ("The doctor did not care about what we said.", 6, "negative"),  # a polar phrase, negated
        ("They never looked after him.", None, "negative"),
    ],
)
def test_leading_nothing_and_negated_phrases(comment, score, expected):
    assert CLASSIFIER.classify(comment, score).sentiment == expected


@pytest.mark.parametrize(
    "comment",
    [
        "I don't think anything about my last visit needs any improvement.",
        "Honestly I cannot think of anything in the whole process that anyone could do better.",
    ],
)
def test_a_denied_request_stays_denied_past_any_words(comment):
    # The "any" words keep the negation open beyond its usual reach, as they do for polar words:
    # the request words at the end are denied, so the comment praises instead of asking.
    assert CLASSIFIER.classify(comment, None).sentiment == "positive"


@pytest.mark.parametrize(
    "comment",
    [
        "Support from my adviser was great.",
        "Support with the forms was good.",
        "Help from the reception desk, always friendly.",
    ],
)
def test_a_request_verb_used_as_a_noun_is_not_a_request(comment):
    # A sentence opening with "help" or "support" asks for it ("Help me please") unless the word
    # is a noun: followed by "from", or the subject of a past-tense verb in its clause.
    assert CLASSIFIER.classify(comment, 9).sentiment == "positive"


@pytest.mark.parametrize(
    "comment",
    [
        "More staff were needed at the weekend.",
        "Support the night team, they were exhausted.",
        "Give us a call back when you say you will.",
    ],
)
def test_requests_with_a_past_tense_verb_elsewhere_still_ask(comment):
    assert CLASSIFIER.classify(comment, 9).sentiment == "negative"


@pytest.mark.parametrize(
    "comment, expected",
    [
        ("Is there anyone who might help with my booking?", "neutral"),  # asks for help, praises nothing
        ("Do you like the new layout?", "neutral"),
        ("Why is the app always so slow?", "negative"),  # a complaint asked as a question
        ("Can you help? The staff were lovely.", "positive"),  # the praise is not in the question
    ],
)
def test_praise_words_in_a_question_count_less(comment, expected):
    assert CLASSIFIER.classify(comment, None).sentiment == expected
