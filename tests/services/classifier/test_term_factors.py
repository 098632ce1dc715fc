"""The organisation's labels override the built-in vocabulary where they disagree with it."""

from __future__ import annotations

import json

from npsloop.services.classifier.active import load_classifier
from npsloop.services.classifier.model import BuiltinClassifier
from npsloop.services.classifier.stored_model import save
from npsloop.services.classifier.text import raw_tokens
from npsloop.services.classifier.themes import ThemeMatcher, comment_stems
from npsloop.services.classifier.training import LabelledExample, fit_term_factors, train
from npsloop.shared.taxonomy import DEFAULT_THEMES

# An invented garden centre: "stock" is what it sells (its plants), not delivery; its
# customers complain about plants dying, which is the product.
GARDEN = [
    LabelledExample("Lovely stock of roses this spring", 9, ["product_quality"], "positive"),
    LabelledExample("The stock of herbs was wilting", 3, ["product_quality"], "negative"),
    LabelledExample("Great stock, healthy ferns", 10, ["product_quality"], "positive"),
    LabelledExample("Stock looked tired and overwatered", 4, ["product_quality"], "negative"),
    LabelledExample("Delivery van came two days late", 2, ["delivery_logistics"], "negative"),
    LabelledExample("The courier left the parcel in the rain", 3, ["delivery_logistics"], "negative"),
    LabelledExample("Staff knew every plant by name", 10, ["support_experience"], "positive"),
    LabelledExample("Nice cafe", 8, [], "positive"),
] * 6


def _hits(base: BuiltinClassifier, examples: list[LabelledExample]):
    hits = [base.theme_terms(e.comment, base.analyse(e.comment)) for e in examples]
    return hits, [set(e.themes or ()) for e in examples]


def test_a_term_the_labels_contradict_is_dropped_for_that_theme_only():
    base = BuiltinClassifier()
    hits, golds = _hits(base, GARDEN)
    factors = fit_term_factors(hits, golds, base.theme_ids)
    assert factors.get("delivery_logistics", {}).get(("stock",)) == 0.0
    assert ("courier",) not in factors.get("delivery_logistics", {})  # the labels agree with it
    reread = base.with_term_factors(factors)
    assert "delivery_logistics" not in {t.id for t in reread.classify("Fresh stock every week", 9).themes}
    assert "delivery_logistics" in {t.id for t in reread.classify("The courier was late", 3).themes}
    # The built-in model itself is untouched.
    assert "delivery_logistics" in {t.id for t in base.classify("Fresh stock every week", 9).themes}


def test_labels_that_agree_with_the_vocabulary_change_nothing():
    agreeing = [
        LabelledExample("The courier was late", 3, ["delivery_logistics"]),
        LabelledExample("Parcel arrived damaged", 2, ["delivery_logistics"]),
        LabelledExample("Very rude staff", 1, ["support_experience"]),
        LabelledExample("It is expensive", 4, ["pricing"]),
    ] * 5
    base = BuiltinClassifier()
    assert fit_term_factors(*_hits(base, agreeing), base.theme_ids) == {}


def test_a_theme_with_too_few_labelled_positives_keeps_its_vocabulary():
    # "stock" never labelled delivery, but delivery has no positives at all: not judged.
    only_products = [e for e in GARDEN if e.themes != ["delivery_logistics"]]
    base = BuiltinClassifier()
    assert "delivery_logistics" not in fit_term_factors(*_hits(base, only_products), base.theme_ids)


def test_factors_scale_every_form_and_leave_idioms_alone():
    base = BuiltinClassifier()
    matcher = base.matcher
    pricing = matcher.theme_ids.index("pricing")
    stems = comment_stems(raw_tokens("the price"))
    price = stems[-1:]
    key = (pricing, tuple(price))
    halved = matcher.with_factors({"pricing": {tuple(price): 0.5}})
    assert halved.matched_terms(stems)[key] == matcher.matched_terms(stems)[key] / 2
    idiom = comment_stems(raw_tokens("pay attention"))
    dropped = matcher.with_factors({"pricing": {tuple(price): 0.0, tuple(idiom): 0.0}})
    assert key not in dropped.matched_terms(stems)
    # "pay attention" is still an idiom guarding "pay": a factor does not turn it into a term.
    assert isinstance(dropped, ThemeMatcher) and dropped.evidence(idiom)[pricing] == 0.0


def test_the_trained_model_stores_and_applies_its_factors(tmp_path):
    base = BuiltinClassifier()
    model = train(GARDEN, themes=base.themes, base=base)
    assert model.term_factors["delivery_logistics"]["stock"] == 0.0
    version = save(model, tmp_path)
    stored = json.loads((tmp_path / "classifier" / f"{version}.json").read_text())
    assert stored["term_factors"]["delivery_logistics"] == {"stock": 0.0}
    clf = load_classifier(themes=DEFAULT_THEMES, data_dir=tmp_path)
    assert clf.version == version
    assert "delivery_logistics" not in {t.id for t in clf.classify("New stock in", 8).themes}


def test_a_model_stored_before_term_factors_still_loads_and_reads_the_vocabulary_unchanged(tmp_path):
    base = BuiltinClassifier()
    model = train(GARDEN, themes=base.themes, base=base)
    version = save(model, tmp_path)
    path = tmp_path / "classifier" / f"{version}.json"
    payload = json.loads(path.read_text())
    del payload["term_factors"]
    path.write_text(json.dumps(payload))
    clf = load_classifier(themes=DEFAULT_THEMES, data_dir=tmp_path)
    assert clf.version == version
    assert clf.model.term_factors == {} and clf.base.matcher.index == BuiltinClassifier().matcher.index
