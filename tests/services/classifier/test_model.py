import pytest

from npsloop.services.classifier.active import load_classifier
from npsloop.services.classifier.model import (
    BuiltinClassifier,
    Classification,
    Classifier,
    ThemeScore,
    category_for_score,
    drop_passing_mentions,
)
from npsloop.shared.taxonomy import DEFAULT_THEMES, ThemeDefinition


@pytest.fixture(scope="module")
def clf():
    return load_classifier()


def ids(result):
    return {t.id for t in result.themes}


@pytest.mark.parametrize(
    "score,category",
    [
        (10, "promoter"),
        (9, "promoter"),
        (8, "passive"),
        (7, "passive"),
        (6, "detractor"),
        (0, "detractor"),
        (None, None),
    ],
)
def test_category_for_score(score, category):
    assert category_for_score(score) == category


def test_category_rejects_out_of_range():
    with pytest.raises(ValueError):
        category_for_score(11)


def test_contract_and_as_dict(clf):
    assert isinstance(clf, Classifier)
    result = clf.classify("The agent on the phone was rude and the refund took weeks", 2)
    assert isinstance(result, Classification)
    data = result.as_dict()
    assert set(data) == {"category", "themes", "sentiment", "sentiment_score", "language", "classifier_version"}
    assert data["category"] == "detractor" and data["sentiment"] == "negative"
    assert {"support_experience", "pricing"} <= {t["id"] for t in data["themes"]}
    assert all(0 < t["confidence"] <= 1 for t in data["themes"])
    assert data["classifier_version"] == clf.version == "builtin-1.8"
    assert -1 <= data["sentiment_score"] <= 1 and data["language"] == "en"


@pytest.mark.parametrize("comment", [None, "", "   ", "n/a", "N/A", "Nothing.", "none", "No comment", "nothing!!"])
def test_empty_comments_get_no_themes(clf, comment):
    assert clf.classify(comment, 9).themes == ()


def test_score_is_context_for_sentiment(clf):
    assert clf.classify("10 - nothing to add", 10).sentiment == "positive"
    assert clf.classify("Nothing to add", 10).sentiment == "positive"
    assert clf.classify("fine", 5).sentiment != "negative"
    assert clf.classify(None, 1).sentiment == "negative"
    assert clf.classify("", None).sentiment == "neutral"


def test_negation(clf):
    assert clf.classify("The checkout was not slow at all", None).sentiment == "positive"
    assert clf.classify("The helpdesk was not helpful", None).sentiment == "negative"
    assert "performance_reliability" in ids(clf.classify("Honestly not slow at all", 9))


def test_a_denied_request_is_praise_not_a_feature_request(clf):
    praise = clf.classify("Nothing could have been better", 10)
    assert praise.themes == () and praise.sentiment == "positive"
    assert "missing_features" in ids(clf.classify("It could have a dark mode", 8))  # the same phrase, not denied


def test_contrast_keeps_both_themes_and_is_not_positive(clf):
    result = clf.classify("Support was great but the price keeps going up and it is too expensive", 6)
    assert {"support_experience", "pricing"} <= ids(result)
    assert result.sentiment != "positive"


def test_default_theme_examples(clf):
    assert "delivery_logistics" in ids(clf.classify("My parcel arrived late and the courier lost it", 3))
    assert "ease_of_use" in ids(clf.classify("The menu is confusing and hard to navigate", 5))
    assert "performance_reliability" in ids(clf.classify("It keeps crashing and the page freezes", 2))
    assert "onboarding_communication" in ids(clf.classify("Nobody explained the next steps, no information", 4))
    assert "missing_features" in ids(clf.classify("Please add an option to export reports", 8))


def test_zero_shot_custom_theme_from_keywords_description_or_examples():
    themes = DEFAULT_THEMES + [
        ThemeDefinition(id="loyalty_scheme", description="", keywords=["reward points", "loyalty card"]),
        ThemeDefinition(id="mobile_app", description="The smartphone application: login, screens and app store"),
        ThemeDefinition(
            id="cafe", description="", examples=["The cafeteria sandwiches were stale", "Cafeteria coffee was cold"]
        ),
    ]
    clf = load_classifier(themes=themes)
    assert "loyalty_scheme" in ids(clf.classify("I never got my reward points this month", 4))
    assert "mobile_app" in ids(clf.classify("The smartphone application keeps logging me out", 5))
    assert "cafe" in ids(clf.classify("Lovely cafeteria, the sandwiches were fresh", 9))
    assert clf.version.startswith("builtin-1.8+themes.")


def test_removed_theme_is_never_returned():
    themes = [t for t in DEFAULT_THEMES if t.id != "pricing"]
    clf = load_classifier(themes=themes)
    assert "pricing" not in ids(clf.classify("Far too expensive, the price doubled", 2))


def test_unsupported_language_returns_code_and_no_themes(clf):
    result = clf.classify("El personal fue muy amable pero la entrega llegó tarde", 8)
    assert result.language == "es" and result.themes == ()
    assert clf.classify("Die Lieferung war sehr langsam und das ist nicht gut", 3).language == "de"
    assert clf.classify("Доставка была быстрой", 9).language == "ru"


def test_deterministic(clf):
    text = "Quick delivery, friendly driver, but the app is confusing"
    assert clf.classify(text, 8) == clf.classify(text, 8)
    assert BuiltinClassifier().classify(text, 8) == clf.classify(text, 8)


def test_theme_scores_are_sorted_by_confidence(clf):
    result = clf.classify("Expensive, slow, buggy and the staff were rude and unhelpful", 0)
    confidences = [t.confidence for t in result.themes]
    assert confidences == sorted(confidences, reverse=True)
    assert all(isinstance(t, ThemeScore) for t in result.themes)


@pytest.mark.parametrize(
    "comment",
    [
        "Thanks, but I have been on hold for an hour",
        "Please help, nobody has answered my emails",
        "They hung up on me twice",
        "Sat at the gate for hours",
    ],
)
def test_pleas_for_help_and_courtesy_next_to_a_complaint_read_negative(comment):
    assert BuiltinClassifier().classify(comment, None).sentiment == "negative"


def test_thanks_alone_is_still_praise():
    assert BuiltinClassifier().classify("Thank you so much, all sorted", None).sentiment == "positive"


@pytest.mark.parametrize(
    ("comment", "theme"),
    [
        ("The nurse in charge was lovely", "pricing"),
        ("She was easy to talk to", "ease_of_use"),
        ("I could not find fault with anything", "ease_of_use"),
        ("Good access to mental health treatment", "product_quality"),
    ],
)
def test_idioms_and_words_that_only_name_a_service_are_not_a_theme_alone(comment, theme):
    assert theme not in {t.id for t in BuiltinClassifier().classify(comment, 9).themes}


@pytest.mark.parametrize(
    ("comment", "theme"),
    [
        ("Love the product, would recommend it", "product_quality"),
        ("The premium package suits our team", "delivery_logistics"),
        ("A nice collection of templates", "delivery_logistics"),
    ],
)
def test_naming_the_product_or_a_package_is_not_a_judgement_of_it(comment, theme):
    assert theme not in {t.id for t in BuiltinClassifier().classify(comment, 9).themes}


def test_a_faulty_product_is_still_product_quality():
    assert "product_quality" in {t.id for t in BuiltinClassifier().classify("The product is faulty", 2).themes}


def test_a_weak_passing_mention_beside_the_main_theme_is_dropped():
    # Weak evidence (below one full-weight term) under a third of the main theme's is dropped;
    # evidence of a full-weight term, or a weak reading as the comment's main theme, stays.
    assert drop_passing_mentions([0.7, 3.0, 1.0, 0.0]) == [0.0, 3.0, 1.0, 0.0]
    assert drop_passing_mentions([0.7, 2.0]) == [0.7, 2.0]
    assert drop_passing_mentions([0.8]) == [0.8]
    assert drop_passing_mentions([]) == []
    clf = BuiltinClassifier()
    alone = clf.classify("They helped me.", 9)
    passing = clf.classify(
        "The nurses were lovely, kind and patient, they listened to me and were so helpful, and they helped me.", 9
    )
    assert "product_quality" in {t.id for t in alone.themes}
    assert {t.id for t in passing.themes} == {"support_experience"}


def test_one_word_of_speed_beside_a_much_stronger_main_theme_is_a_passing_mention():
    # builtin-1.8: for performance_reliability (PASSING_FULL_SHARE) one full-weight term is
    # dropped beside a main theme with twice its evidence; other themes keep it.
    ids = ("support_experience", "performance_reliability", "pricing")
    assert drop_passing_mentions([2.5, 1.0, 1.0], ids) == [2.5, 0.0, 1.0]
    assert drop_passing_mentions([2.5, 1.6, 0.0], ids) == [2.5, 1.6, 0.0]  # two terms' worth stays
    assert drop_passing_mentions([1.5, 1.0, 0.0], ids) == [1.5, 1.0, 0.0]  # not twice as strong
    assert drop_passing_mentions([2.5, 1.0, 1.0]) == [2.5, 1.0, 1.0]  # themes unnamed: weak rule only
    clf = BuiltinClassifier()
    alone = clf.classify("The phone was answered quickly.", 9)
    passing = clf.classify("Lovely staff, so kind, caring and friendly, and the phone was answered quickly.", 9)
    assert "performance_reliability" in {t.id for t in alone.themes}
    assert "performance_reliability" not in {t.id for t in passing.themes}
    assert "support_experience" in {t.id for t in passing.themes}
