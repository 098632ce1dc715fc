"""Theme terms whose forms mean different things keep their own weights (themes.py)."""

from collections.abc import Callable

import pytest

from npsloop.services.classifier.active import load_classifier
from npsloop.services.classifier.text import raw_tokens
from npsloop.services.classifier.themes import ThemeMatcher, _apart_idioms, _context_keys, _parse_terms, comment_stems
from npsloop.shared.taxonomy import ThemeDefinition


@pytest.fixture(scope="module")
def clf():
    return load_classifier()


def ids(result):
    return {t.id for t in result.themes}


def test_forms_listed_apart_keep_their_weights_and_others_take_the_lowest():
    table, forms = _parse_terms("parking, park:0.6, parked, =train:0.6, by train, quick")
    assert table[("park",)] == 0.6  # "parks", a form not listed, counts as the weakest listed one
    assert forms[("park",)] == {"parking": 1.0, "park": 0.6, "parked": 1.0}
    assert table[("train",)] == 0.0 and forms[("train",)] == {"train": 0.6}  # "=": only as written
    assert table[("by", "train")] == 1.0 and ("by", "train") not in forms
    assert table[("quick",)] == 1.0 and ("quick",) not in forms


def one_theme(theme_id: str, label: str) -> tuple[ThemeMatcher, Callable[[str], float]]:
    """A matcher for one theme, and its evidence as a function of a comment's text."""
    matcher = ThemeMatcher.build([ThemeDefinition(id=theme_id, label=label, description=f"{label}.")])

    def evidence(text: str) -> float:
        tokens = raw_tokens(text)
        return matcher.evidence(comment_stems(tokens), tokens=tokens)[0]

    return matcher, evidence


def test_the_matcher_weighs_the_form_written():
    _, evidence = one_theme("delivery_logistics", "Delivery")

    assert evidence("No parking at all") == pytest.approx(1.0)
    assert evidence("Great care at Park House") == pytest.approx(0.6)
    assert evidence("Staff need more training") == 0.0
    assert evidence("I came by train") == pytest.approx(1.6)  # "by train" and the word "train", once each
    assert evidence("Parking and the car park were full, parked miles away") == pytest.approx(2.0)


@pytest.mark.parametrize(
    "comment",
    [
        "Staff need more training on autism.",
        "I am back on the right track now.",
        "Please address my concerns next time.",
        "Care was delivered with kindness.",
        "My care package was sorted quickly.",
        "Everything at Park House was excellent.",
    ],
)
def test_another_sense_of_a_logistics_word_is_not_logistics(clf, comment):
    assert "delivery_logistics" not in ids(clf.classify(comment, 8))


@pytest.mark.parametrize(
    "comment",
    [
        "Parking was impossible.",
        "The parcel was delivered late.",
        "I had to get the train and two buses.",
        "No tracking number was ever sent.",
        "They sent it to the wrong address.",
    ],
)
def test_logistics_is_still_found(clf, comment):
    assert "delivery_logistics" in ids(clf.classify(comment, 4))


def test_a_weak_form_no_longer_borrows_a_strong_forms_weight(clf):
    # "phoned" is strong ease-of-use evidence; a bare mention of a phone is not (before
    # builtin-1.3 both counted 1.0 because they share a stem).
    assert "ease_of_use" in ids(clf.classify("I phoned three times.", 5))
    assert "ease_of_use" not in ids(clf.classify("The phone app is great.", 9))


@pytest.mark.parametrize(
    "comment,theme",
    [
        ("They gave me all the time I needed.", "performance_reliability"),  # "timely" is not "time"
        ("My experience overall was fine.", "support_experience"),  # "experienced" staff is not "experience"
        ("Thank you all of them.", "ease_of_use"),  # the app's "theme" is not "them"
        ("We came by car.", "support_experience"),  # "caring" is not "car"
    ],
)
def test_a_word_is_not_read_as_another_word_with_its_stem(clf, comment, theme):
    assert theme not in ids(clf.classify(comment, 9))


@pytest.mark.parametrize(
    "comment,theme",
    [
        ("Appointments were timely.", "performance_reliability"),
        ("Very experienced staff.", "support_experience"),
        ("The theme and colours are ugly.", "ease_of_use"),
        ("Such caring people.", "support_experience"),
    ],
)
def test_the_listed_form_still_counts(clf, comment, theme):
    assert theme in ids(clf.classify(comment, 9))


def test_sentiment_words_keep_their_forms_apart():
    from npsloop.services.classifier.sentiment import lexical_evidence

    def positive(text):
        return lexical_evidence(raw_tokens(text)).positive

    assert positive("The care was given on Tuesday.") == 0.0  # "=caring" praises; "care" is the service
    assert positive("Very caring nurses.") > 1.0
    assert positive("They listened.") > positive("They listen.") > 0.0  # listed apart: 0.8 and 0.3
    assert positive("She helped.") > positive("She helps.") > 0.0  # "helps" is not listed: the weaker form


def test_weigh_forms_keeps_the_sign_of_the_weakest_form():
    from npsloop.services.classifier.text import weigh_forms

    table, forms = weigh_forms([("annoying", -1.5), ("annoyed", -1.4), ("=caring", 1.4)])
    assert table[("annoy",)] == -1.4 and forms[("annoy",)] == {"annoying": -1.5, "annoyed": -1.4}
    assert table[("car",)] == 0.0 and forms[("car",)] == {"caring": 1.4}


def test_an_idiom_weighted_zero_keeps_its_words_out_of_the_theme(clf):
    assert "pricing" not in ids(clf.classify("Staff should pay more attention to patients.", 6))
    assert "pricing" not in ids(clf.classify("Nurses paying attention to me.", 9))
    assert "pricing" in ids(clf.classify("I had to pay for parking.", 6))
    assert "pricing" in ids(clf.classify("Pay attention to the price, it is too expensive.", 3))


@pytest.mark.parametrize(
    "comment",
    [
        "Exporting reports is easy and quick",  # a capability in use, praised
        "Loads of customisation, great options",
        "Couldn't wish for better care",  # an idiom of praise
        "I do not wish to say",
        "The coffee could have been hotter",  # a complaint, no capability asked for
        "I missed my appointment because of the lack of parking",
    ],
)
def test_a_feature_word_alone_is_not_a_feature_request(clf, comment):
    assert "missing_features" not in ids(clf.classify(comment, 8))


@pytest.mark.parametrize(
    "comment",
    [
        "I wish it could export to PDF",
        "Just add a pin lock option and it would be perfect",
        "You need a dark theme option",
        "The move option has been removed",
        "Still missing a search box",
        "Would be nice to have coffee in the waiting room",
    ],
)
def test_a_request_with_a_feature_word_is_a_feature_request(clf, comment):
    assert "missing_features" in ids(clf.classify(comment, 6))


# How people describe being treated, without naming staff or a role (builtin-1.6): these
# idioms are about the people serving them, in a shop, a clinic or a help desk alike.
@pytest.mark.parametrize(
    "comment,score",
    [
        ("The engineer went above and beyond to sort my router.", 10),
        ("Nothing was too much trouble for them.", 9),
        ("I was belittled when I asked a simple question.", 2),
        ("On the phone I felt like a number, not a customer.", 3),
        ("For once I felt heard and taken seriously.", 9),
        ("They put me at ease straight away.", 10),
    ],
)
def test_how_people_were_treated_is_support(clf, comment, score):
    assert "support_experience" in ids(clf.classify(comment, score))


@pytest.mark.parametrize(
    "comment,theme",
    [
        ("Please deal with refunds sooner.", "performance_reliability"),
        ("Nobody kept me in the loop about the outage.", "onboarding_communication"),
        ("I got mixed messages from sales and from billing.", "onboarding_communication"),
    ],
)
def test_timeliness_and_keeping_people_informed_without_the_obvious_words(clf, comment, theme):
    assert theme in ids(clf.classify(comment, 5))


# Context terms (builtin-1.7, ``~term`` in the lexicon): words that only praise or blame the
# whole experience, durations and words with another common sense say nothing of a theme
# alone, nor in company of each other; beside a clue of the theme they count.
def test_context_terms_are_parsed_apart_from_their_weights():
    table, _ = _parse_terms("~works great, bug, ~=days:0.25")
    assert table[("work", "great")] == 1.0 and table[("bug",)] == 1.0
    assert _context_keys("~works great, bug, ~=days:0.25, ~long time:0.5") == {
        ("work", "great"),
        ("day",),
        ("long", "time"),
    }


def test_context_counts_only_beside_a_clue():
    matcher, evidence = one_theme("performance_reliability", "Speed")

    assert evidence("We stayed three weeks and two days") == 0.0  # two durations are not a wait
    assert evidence("We waited three weeks") == pytest.approx(1.6)  # the wait, and how long it was
    # An organisation's term factors re-weight the terms; what is context stays context.
    assert matcher.with_factors({"performance_reliability": {("wait",): 0.5}}).context == matcher.context


@pytest.mark.parametrize(
    "alone,with_clue,theme",
    [
        ("It works great.", "It works great on my tablet.", "product_quality"),
        (
            "Useless for me, though it works fine for others.",
            "Useless, it crashes every time I open it.",
            "product_quality",
        ),
        (
            "Excellent care from start to finish.",
            "Excellent care, and my pain is gone since the surgery.",
            "product_quality",
        ),
        (
            "It was over in a few minutes and two hours.",
            "The queue took a few minutes and two hours.",
            "performance_reliability",
        ),
        ("Everything went smoothly and efficiently.", "Went smoothly, no queue at all.", "performance_reliability"),
        ("The charge lasts all day.", "They charge a fee for every export.", "pricing"),
        ("It was easy.", "Easy, and the menus are clear.", "ease_of_use"),
        (
            "I came in for treatment of my condition.",
            "The treatment of my condition worked wonders.",
            "product_quality",
        ),
        ("The GPs were lovely.", "The GPS is broken.", "product_quality"),
        ("I signed up immediately.", "The page loads immediately.", "performance_reliability"),
        ("I feel stable at the moment.", "The app is stable and never crashes.", "performance_reliability"),
        # builtin-1.8: "money" of any kind, and product_quality's catch-all words
        ("Staff are not in it for the money.", "They took my money and never sent a refund.", "pricing"),
        ("Good quality of service overall.", "Good quality, and not one bug so far.", "product_quality"),
        (
            "Help was always there for any problem or issue I had.",
            "Every problem and issue I reported was fixed.",
            "product_quality",
        ),
        (
            "Staff were keen to help and to improve things.",
            "The update improved it, no more glitches.",
            "product_quality",
        ),
    ],
)
def test_a_context_word_alone_is_no_theme_and_beside_a_clue_it_is(clf, alone, with_clue, theme):
    assert theme not in ids(clf.classify(alone, 7))
    assert theme in ids(clf.classify(with_clue, 7))


# "It helped", "they helped me" tell how it turned out; "help me" asked for ("Please help me",
# "Can someone help me?") does not (builtin-1.7: "helped me", "helps me", "helping me" as written).
@pytest.mark.parametrize("comment", ["They helped me.", "It helps me sleep."])
def test_help_that_worked_is_an_outcome(clf, comment):
    assert "product_quality" in ids(clf.classify(comment, 9))


@pytest.mark.parametrize("comment", ["Please help me.", "Can someone help me with this?", "I asked them to help me."])
def test_help_asked_for_is_no_outcome(clf, comment):
    assert "product_quality" not in ids(clf.classify(comment, 3))


@pytest.mark.parametrize("comment", ["What a waste of money.", "I want my money back."])
def test_money_in_a_phrase_of_price_is_pricing(clf, comment):
    assert "pricing" in ids(clf.classify(comment, 2))


# builtin-1.8: an idiom written ``word ... word:0`` holds anywhere in one clause, either way round.
def test_an_idiom_of_two_words_apart_guards_them_in_their_clause():
    assert _apart_idioms("pay ... attention:0, price") == {("pay", "attention"), ("attention", "pay")}
    assert _parse_terms("pay ... attention:0, fee")[0] == {("fee",): 1.0}
    matcher, evidence = one_theme("pricing", "Price")
    assert evidence("Attention to every detail was paid") == 0.0
    assert evidence("They paid no attention, and I paid twice") == pytest.approx(1.0)  # another clause
    assert evidence("I paid for the upgrade") == pytest.approx(1.0)
    assert matcher.with_factors({"pricing": {("pay",): 0.5}}).apart == matcher.apart


def test_being_rushed_is_said_of_staff_not_of_speed():
    # builtin-1.8: an appointment that felt rushed tells how staff gave their time.
    _, speed = one_theme("performance_reliability", "Speed")
    _, staff = one_theme("support_experience", "Staff")
    assert speed("The appointment felt rushed") == 0.0
    assert staff("The appointment felt rushed") == pytest.approx(0.5)


# builtin-1.8: what someone helped me understand is information, not how the service turned out.
@pytest.mark.parametrize(
    "comment", ["She helped me understand the letter.", "Helping me to understand what happens next."]
)
def test_help_to_understand_is_no_outcome(clf, comment):
    assert "product_quality" not in ids(clf.classify(comment, 9))
