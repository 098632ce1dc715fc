"""What a trained sentiment head reads beyond words (``sentiment_head.READING`` 2), and that a
head stored before it keeps reading as it was fitted."""

import json

from npsloop.services.classifier.active import load_classifier
from npsloop.services.classifier.model import BuiltinClassifier
from npsloop.services.classifier.sentiment_head import (
    READING,
    SentimentHead,
    negated_terms,
    style_readings,
    word_char_terms,
)
from npsloop.services.classifier.stored_model import save
from npsloop.services.classifier.trained import TrainedClassifier
from npsloop.services.classifier.training import LabelledExample, train

BASE = BuiltinClassifier()


def negated(comment: str) -> set[str]:
    return {term.removeprefix("n:") for term in negated_terms(BASE.analyse(comment).stems)}


def stem_of(word: str) -> str:
    (stem,) = BASE.analyse(word).stems
    return stem


def test_a_negation_reaches_the_next_words_of_its_clause_only():
    helpful, staff, slow = stem_of("helpful"), stem_of("staff"), stem_of("slow")
    assert helpful in negated("The staff were not very helpful")
    assert staff not in negated("The staff were not very helpful")
    assert helpful not in negated("Not slow. Helpful staff")  # the sentence ended the scope
    assert helpful not in negated("Not slow but helpful")  # so does a contrast word
    assert slow in negated("I can't think of anything slow")  # "any" words keep it open
    assert negated("Helpful staff") == set()


def test_links_and_handles_are_one_term_each_other_words_their_character_n_grams():
    assert word_char_terms("https://t.co/x1y2z3") == ["c:<link>"]
    assert word_char_terms("www.example.com/page") == ["c:<link>"]
    assert word_char_terms("@someairline") == ["c:<handle>"]
    assert {"c: hel", "c:help", "c: help"} <= set(word_char_terms("help"))
    assert word_char_terms("@") != ["c:<handle>"]
    # a head fitted before reading 2 reads a link's characters, as it was fitted on them
    assert word_char_terms("https://t.co/x1y2z3", reading=1) != ["c:<link>"]


def test_style_readings_say_how_the_comment_is_written_and_nothing_for_a_plain_one():
    shouted = style_readings("WHY is my bag STILL missing?!! :(")
    assert set(shouted) == {"sty:excl", "sty:q", "sty:caps", "sty:nemo"}
    assert shouted["sty:excl"] == 2 / 3 and shouted["sty:caps"] == 2 / 3
    assert set(style_readings("Sooo good, thank you \U0001f600")) == {"sty:elong", "sty:pemo"}
    assert style_readings("The room was fine.") == {}
    # a link's "?" and "://" are neither a question nor a frown
    assert style_readings("Rebooked: https://example.com/trip?id=7 HTTP://EXAMPLE.COM/x") == {}
    assert set(style_readings("Rebooked :/ https://example.com/trip?id=7")) == {"sty:nemo"}


# An invented organisation whose customers call a good checkout "zippy" and a bad one "clunky",
# words the built-in lexicon does not know, each time saying what it was not as well: every
# comment holds "not", "zippy" and "clunky", so only what the negation reaches tells them apart.
NOUNS = ("checkout", "app", "till", "kiosk", "website", "counter")
ZIPPY = (
    [LabelledExample(f"Zippy {noun}, not clunky", None, None, "positive") for noun in NOUNS] * 12
    + [LabelledExample(f"Clunky {noun}, not zippy", None, None, "negative") for noun in NOUNS] * 12
    + [LabelledExample(f"The {noun} is where it was", None, None, "neutral") for noun in NOUNS[:4]] * 20
)


def test_a_word_under_a_negation_is_learnt_as_its_own_term():
    assert BASE.classify("Clunky till, not zippy", None).sentiment == "neutral"  # no word it knows
    model = train(ZIPPY, themes=BASE.themes, base=BASE)
    stack = model.sentiment_stack
    assert stack is not None and stack.reading == READING == 2
    positive, _, negative = stack.vocab["word"]["n:" + stem_of("zippy")][1:]
    assert negative > positive  # "not ... zippy" was said of bad checkouts
    clf = TrainedClassifier(model, BASE)
    # no bigram of these was in the labels: the negated term decides
    assert clf.classify("Payment page not exactly zippy", None).sentiment == "negative"
    assert clf.classify("Payment page not exactly clunky", None).sentiment == "positive"


def test_a_stored_head_reads_links_handles_negations_and_style_as_the_fitted_one(tmp_path):
    model = train(ZIPPY, themes=BASE.themes, base=BASE)
    save(model, tmp_path)
    stored, fresh = load_classifier(data_dir=tmp_path), TrainedClassifier(model, BASE)
    for comment in (
        "@shop the till is NOT zippy!! https://t.co/abc",
        "Zippy checkout :)",
        "Not zippy. Clunky.",
    ):
        a, b = stored.classify(comment, None), fresh.classify(comment, None)
        assert (a.sentiment, a.sentiment_score) == (b.sentiment, b.sentiment_score)


def test_a_head_stored_before_reading_2_reads_words_only(tmp_path):
    model = train(ZIPPY, themes=BASE.themes, base=BASE)
    version = save(model, tmp_path)
    path = tmp_path / "classifier" / f"{version}.json"
    payload = json.loads(path.read_text())
    del payload["sentiment_stack"]["reading"]  # as every head was stored until now
    path.write_text(json.dumps(payload))
    loaded = load_classifier(data_dir=tmp_path)
    assert isinstance(loaded, TrainedClassifier) and loaded.sentiment is not None
    assert loaded.sentiment.reading == 1
    head: SentimentHead = loaded.sentiment
    analysis = BASE.analyse("Clunky, not zippy!! @shop")
    label, value = BASE.sentiment_of(analysis, None)
    feats = {f"w:{s}": 1.0 for s in analysis.stems if s != "|"}
    # reading 1 leaves the negated term, the style and the handle out even though the file
    # holds rows for them: the same weights read with them give another answer
    dense = loaded._vector("Clunky, not zippy!! @shop")
    words_only = head.probabilities(feats, "Clunky, not zippy!! @shop", label, value, dense, stems=analysis.stems)
    head.reading = 2
    assert (
        head.probabilities(feats, "Clunky, not zippy!! @shop", label, value, dense, stems=analysis.stems) != words_only
    )
